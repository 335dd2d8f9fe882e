"""The parts of an award rule a learner has still to meet, worded as their steps.

`rule_text` describes a rule for anyone who reads the badge ("the learner completes
…"). The learner's "Still missing" lists use the steps here instead ("Complete …",
"Reach 80% or more in …"), and a grade step gives the learner's grade when the LMS
has reported one. A date window ends a step as in `rule_text`.
"""

from __future__ import annotations

from markupsafe import Markup

from badge_engine.explain import COMPLETION_TIME
from badge_engine.rules import LearnerProgress
from lti_tool import i18n
from lti_tool.i18n import gettext as _
from lti_tool.views.rule_text import (
    RuleDescription,
    activity_label,
    describe_rule_node,
    with_window,
)

# The learner's grades as percentages, by activity id. The course total is under
# the key None.
Grades = dict[str | None, float]


def progress_grades(progress: LearnerProgress) -> Grades:
    """Return the grades in the learner's progress that the LMS gave a percentage."""
    grades: Grades = {
        activity_id: grade.percent
        for activity_id, grade in progress.grades.items()
        if grade.percent is not None
    }
    if progress.course_grade is not None and progress.course_grade.percent is not None:
        grades[None] = progress.course_grade.percent
    return grades


def describe_step(
    node: object, names: dict[str, str], grades: Grades | None = None
) -> RuleDescription:
    """Word a rule node the learner has still to meet as what they have to do.

    `names` maps activity ids to their names from the LMS. A combination gets an
    introducing sentence with one step per part, in their order.
    """
    if not isinstance(node, dict):
        return RuleDescription(_unknown_step())

    grades = grades or {}
    kind = node.get("kind")
    if kind == COMPLETION_TIME:
        # The learner met this part, so there is no step to word. What is missing
        # is the LMS's date of it, which `rule_text` describes.
        return describe_rule_node(node, names)
    if kind in ("all_of", "any_of"):
        children = node.get("rules")
        if not isinstance(children, list) or not children:
            return RuleDescription(_unknown_step())
        if kind == "all_of":
            text = _("Meet every one of these conditions:")
        else:
            text = _("Meet at least one of these conditions:")
        description = RuleDescription(
            Markup.escape(text),
            [describe_step(child, names, grades) for child in children],
        )
    else:
        description = RuleDescription(_leaf_step(kind, node, names, grades))
    return with_window(description, node)


def _leaf_step(kind: object, node: dict, names: dict[str, str], grades: Grades) -> Markup:
    if kind == "course_completed":
        return Markup.escape(_("Complete the course."))
    if kind == "activity_completed":
        activity_id = node.get("activity_id")
        if not isinstance(activity_id, str):
            return _unknown_step()
        return _complete_activity(activity_id, names)
    if kind in ("activities_completed", "activities_completed_at_least"):
        return _activity_set_step(kind, node, names)
    if kind == "grade_at_least":
        return _grade_step(node, names, grades)
    return _unknown_step()


def _complete_activity(activity_id: str, names: dict[str, str]) -> Markup:
    return _markup(
        _("Complete %(activity)s.", activity=activity_label(activity_id, names))
    )


def _activity_set_step(kind: str, node: dict, names: dict[str, str]) -> Markup:
    activity_ids = node.get("activity_ids")
    if (
        not isinstance(activity_ids, list)
        or not activity_ids
        or not all(isinstance(item, str) for item in activity_ids)
    ):
        return _unknown_step()

    listed = Markup.escape(i18n.list_separator()).join(
        activity_label(item, names) for item in activity_ids
    )
    if kind == "activities_completed_at_least":
        count = node.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            return _unknown_step()
        return _markup(
            _(
                "Complete at least %(minimum)s of these activities: %(activities)s.",
                minimum=i18n.localized_number(count),
                activities=listed,
            )
        )

    if len(activity_ids) == 1:
        return _complete_activity(activity_ids[0], names)
    if node.get("match") == "any":
        text = _(
            "Complete any one of these activities: %(activities)s.", activities=listed
        )
    else:
        text = _("Complete all of these activities: %(activities)s.", activities=listed)
    return _markup(text)


def _grade_step(node: dict, names: dict[str, str], grades: Grades) -> Markup:
    percent = node.get("min_percent")
    if not isinstance(percent, (int, float)) or isinstance(percent, bool):
        return _unknown_step()
    activity_id = node.get("activity_id")
    if activity_id is not None and not isinstance(activity_id, str):
        return _unknown_step()

    minimum = i18n.localized_percent(percent)
    grade = grades.get(activity_id)
    now = i18n.localized_percent(grade) if grade is not None else None
    if activity_id is None:
        if now is None:
            text = _("Reach %(percent)s or more in the course total.", percent=minimum)
        else:
            text = _(
                "Reach %(percent)s or more in the course total (your grade now: "
                "%(grade)s).",
                percent=minimum,
                grade=now,
            )
        return Markup.escape(text)

    activity = activity_label(activity_id, names)
    if now is None:
        return _markup(
            _(
                "Reach %(percent)s or more in %(activity)s.",
                percent=Markup.escape(minimum),
                activity=activity,
            )
        )
    return _markup(
        _(
            "Reach %(percent)s or more in %(activity)s (your grade now: %(grade)s).",
            percent=Markup.escape(minimum),
            activity=activity,
            grade=Markup.escape(now),
        )
    )


def _markup(translated: str) -> Markup:
    """Mark a translated message as HTML after its values were filled in.

    The catalogues are part of the code and trusted, and every value put into a
    message here is a Markup that escaped the text from the rule or the LMS.
    """
    return Markup(translated)  # noqa: S704 - see the docstring


def _unknown_step() -> Markup:
    return Markup.escape(
        _(
            "Meet a condition that this page cannot describe. Ask your course's "
            "instructor what it requires."
        )
    )
