"""Award rules worded as the learner's own steps, for the learner's course page.

`rule_text` describes a rule for anyone who reads the badge ("the learner completes
…"). Everything the learner page shows about a rule uses the steps here instead
("Complete …", "Reach 80% or more in …", "Do all of these:"): the "Still missing"
lists and the "Why not yet?" conditions. A grade step gives the learner's grade
when the LMS has reported one, and a date window ends the step with its dates.
The instructor's rule preview lists each learner's missing steps with them too.
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
    window_bound,
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
        return _completion_time_step(node, names)
    if kind in ("all_of", "any_of"):
        children = node.get("rules")
        if not isinstance(children, list) or not children:
            return RuleDescription(_unknown_step())
        description = RuleDescription(
            _combination_step(kind),
            [describe_step(child, names, grades) for child in children],
        )
    else:
        description = RuleDescription(_leaf_step(kind, node, names, grades))
    return with_window(description, node, _window_step)


def describe_condition_step(node: object, names: dict[str, str]) -> RuleDescription:
    """Word one rule node as the learner's step, without its nested rules.

    For the "Why not yet?" conditions, where the nested rules follow as their own
    items and the LMS readings beside each condition give the learner's grades. A
    combination gets its introducing sentence, with its date window in `window`.
    """
    if not isinstance(node, dict):
        return RuleDescription(_unknown_step())

    kind = node.get("kind")
    if kind in ("all_of", "any_of"):
        description = RuleDescription(_combination_step(kind))
        window = node.get("window")
        if window is not None:
            description.window = _window_step(window)
        return description
    description = RuleDescription(_leaf_step(kind, node, names, {}))
    return with_window(description, node, _window_step)


def _combination_step(kind: str) -> Markup:
    if kind == "all_of":
        return Markup.escape(_("Do all of these:"))
    return Markup.escape(_("Do one of these:"))


def _completion_time_step(node: dict, names: dict[str, str]) -> RuleDescription:
    """Word a part the learner has met whose LMS time is missing.

    The rule node comes from `missing_rules`: its window cannot be checked, because
    the LMS gave no time for the met rule under "rule".
    """
    description = RuleDescription(
        Markup.escape(
            _(
                "You have done this, but the LMS did not report when, so it cannot "
                "be checked against the dates below:"
            )
        ),
        [describe_step(node.get("rule"), names)],
    )
    return with_window(description, node, _window_step)


def _window_step(window: object) -> Markup:
    """Word a date window as when the learner has to take the step.

    A window counts from its "from" time and ends just before its "until" time.
    """
    start = window_bound(window, "from")
    end = window_bound(window, "until")
    if start is not None and end is not None:
        return _markup(
            _("Do this between %(start)s and %(end)s.", start=start, end=end)
        )
    if start is not None:
        return _markup(_("Do this on or after %(start)s.", start=start))
    if end is not None:
        return _markup(_("Do this before %(end)s.", end=end))
    return Markup.escape(_("Do this within the dates the badge's award rule sets."))


def _leaf_step(
    kind: object, node: dict, names: dict[str, str], grades: Grades
) -> Markup:
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
