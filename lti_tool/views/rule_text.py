"""Award rules described in the page language, for any reader of the badge.

The instructor page shows these descriptions ("the learner completes …"). The
learner page words a rule as the learner's own steps, through `step_text`.

`describe_rule` turns an award rule document (see docs/award-rules.md) into a
sentence, and a combination (`all_of`, `any_of`) into a sentence with one nested
description per part. Activities are named by the names the page has read from the
LMS, and by their id where it has none. A node whose kind or fields this module does
not know gets a general sentence, so no rule kind reaches a page as raw text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from markupsafe import Markup

from badge_engine.rules import InvalidAwardRule, validate_award_rule
from lti_tool import i18n
from lti_tool.i18n import gettext as _
from lti_tool.i18n import ngettext
from lti_tool.views.rule_form import ActivityRuleFields, activity_rule_fields


@dataclass
class RuleDescription:
    """A rule node in words: `text` is escaped HTML, and `parts` describes the nested
    rules of a combination, in their order.

    A date window on a single condition ends `text`. On a combination it is
    `window`, shown after the parts, because `text` ends with a colon that
    introduces them.
    """

    text: Markup
    parts: list[RuleDescription] = field(default_factory=list)
    window: Markup | None = None


def describe_rule(award_rule: object, names: dict[str, str]) -> RuleDescription:
    """Describe an award rule document for the "Awarded when:" line.

    Rules the instructor's builder wrote keep its flat wording, where a minimum
    grade is listed next to its activity. Every other shape is described node by
    node. A missing or malformed document gets the general sentence.
    """
    node = award_rule.get("rule") if isinstance(award_rule, dict) else None
    if not isinstance(node, dict):
        return RuleDescription(_unknown_text())

    if node.get("kind") == "course_completed" and "window" not in node:
        return RuleDescription(Markup.escape(_("the learner completes the course.")))
    fields = _builder_fields(node)
    if fields is not None:
        return RuleDescription(_builder_text(fields, names))
    return _describe_node(node, names)


def _builder_fields(node: dict) -> ActivityRuleFields | None:
    # The builder's reader expects a valid rule. An invalid one is described node
    # by node, where each malformed node gets the general sentence.
    try:
        validate_award_rule({"version": 1, "rule": node})
    except InvalidAwardRule:
        return None
    return activity_rule_fields(node)


def _builder_text(fields: ActivityRuleFields, names: dict[str, str]) -> Markup:
    listed = i18n.list_separator().join(
        _builder_listed_activity(activity_id, names, fields.min_percent)
        for activity_id in fields.activity_ids
    )
    if fields.match == "any":
        text = _("the learner completes any of: %(activities)s.", activities=listed)
    else:
        text = _("the learner completes all of: %(activities)s.", activities=listed)
    return Markup.escape(text)


def _builder_listed_activity(
    activity_id: str, names: dict[str, str], min_percent: dict
) -> str:
    name = names.get(activity_id, activity_id)
    if activity_id in min_percent:
        return _(
            "%(activity)s (grade of at least %(percent)s)",
            activity=name,
            percent=i18n.localized_percent(min_percent[activity_id]),
        )
    return name


def _describe_node(node: object, names: dict[str, str]) -> RuleDescription:
    if not isinstance(node, dict):
        return RuleDescription(_unknown_text())

    kind = node.get("kind")
    if kind in ("all_of", "any_of"):
        children = node.get("rules")
        if not isinstance(children, list) or not children:
            return RuleDescription(_unknown_text())
        description = RuleDescription(
            _combination_text(kind),
            [_describe_node(child, names) for child in children],
        )
    else:
        description = RuleDescription(_leaf_text(kind, node, names))
    return with_window(description, node)


def _combination_text(kind: str) -> Markup:
    if kind == "all_of":
        text = _("the learner meets every one of these conditions:")
    else:
        text = _("the learner meets at least one of these conditions:")
    return Markup.escape(text)


def with_window(
    description: RuleDescription,
    node: dict,
    window_text: Callable[[object], Markup] | None = None,
) -> RuleDescription:
    """Add the node's date window to its description, worded by `window_text`.

    The window ends the sentence of a single condition, and goes to `window` on a
    combination. `window_text` defaults to this module's wording for any reader.
    """
    window = node.get("window")
    if window is None:
        return description
    worded = (window_text or _window_text)(window)
    if description.parts:
        description.window = worded
    else:
        description.text = Markup("{} {}").format(description.text, worded)
    return description


def _leaf_text(kind: object, node: dict, names: dict[str, str]) -> Markup:
    if kind == "course_completed":
        return Markup.escape(_("the learner completes the course."))
    if kind == "activity_completed":
        activity_id = node.get("activity_id")
        if not isinstance(activity_id, str):
            return _unknown_text()
        return _single_activity_text(activity_id, names)
    if kind in ("activities_completed", "activities_completed_at_least"):
        return _activity_set_text(kind, node, names)
    if kind == "grade_at_least":
        return _grade_text(node, names)
    return _unknown_text()


def _single_activity_text(activity_id: str, names: dict[str, str]) -> Markup:
    return _markup(
        _(
            "the learner completes %(activity)s.",
            activity=activity_label(activity_id, names),
        )
    )


def _activity_set_text(kind: str, node: dict, names: dict[str, str]) -> Markup:
    activity_ids = node.get("activity_ids")
    if (
        not isinstance(activity_ids, list)
        or not activity_ids
        or not all(isinstance(item, str) for item in activity_ids)
    ):
        return _unknown_text()

    listed = Markup.escape(i18n.list_separator()).join(
        activity_label(item, names) for item in activity_ids
    )
    total = len(activity_ids)
    if kind == "activities_completed_at_least":
        count = node.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            return _unknown_text()
        return _markup(
            ngettext(
                "the learner completes at least %(minimum)s of this %(num)d "
                "activity: %(activities)s.",
                "the learner completes at least %(minimum)s of these %(num)d "
                "activities: %(activities)s.",
                total,
                minimum=i18n.localized_number(count),
                activities=listed,
            )
        )

    if total == 1:
        return _single_activity_text(activity_ids[0], names)
    if node.get("match") == "any":
        text = ngettext(
            "the learner completes any one of this %(num)d activity: %(activities)s.",
            "the learner completes any one of these %(num)d activities: "
            "%(activities)s.",
            total,
            activities=listed,
        )
    else:
        text = ngettext(
            "the learner completes this %(num)d activity: %(activities)s.",
            "the learner completes all %(num)d of these activities: %(activities)s.",
            total,
            activities=listed,
        )
    return _markup(text)


def _grade_text(node: dict, names: dict[str, str]) -> Markup:
    percent = node.get("min_percent")
    if not isinstance(percent, (int, float)) or isinstance(percent, bool):
        return _unknown_text()

    percent_text = i18n.localized_percent(percent)
    activity_id = node.get("activity_id")
    if activity_id is None:
        return Markup.escape(
            _(
                "the learner's course total is at or above %(percent)s.",
                percent=percent_text,
            )
        )
    if not isinstance(activity_id, str):
        return _unknown_text()
    return _markup(
        _(
            "the learner's grade in %(activity)s is at or above %(percent)s.",
            activity=activity_label(activity_id, names),
            percent=percent_text,
        )
    )


def _markup(translated: str) -> Markup:
    """Mark a translated message as HTML after its values were filled in.

    The catalogues are part of the code and trusted. Every value put into a message
    with HTML is a Markup, which escaped the text from the rule or the LMS.
    """
    return Markup(translated)  # noqa: S704 - see the docstring


def activity_label(activity_id: str, names: dict[str, str]) -> Markup:
    """Name an activity by the name read from the LMS, or by its id without one."""
    name = names.get(activity_id)
    if name:
        return _markup(_("“%(name)s”", name=Markup("<bdi>{}</bdi>").format(name)))
    return _markup(
        _("activity %(id)s", id=Markup('<bdi dir="ltr">{}</bdi>').format(activity_id))
    )


def _window_text(window: object) -> Markup:
    start = window_bound(window, "from")
    end = window_bound(window, "until")
    if start is not None and end is not None:
        message = _("It counts only if met from %(start)s and before %(end)s.")
    elif start is not None:
        message = _("It counts only if met from %(start)s.")
    elif end is not None:
        message = _("It counts only if met before %(end)s.")
    else:
        return Markup.escape(_("It counts only if met within a date window."))
    return _markup(message % {"start": start, "end": end})


def window_bound(window: object, key: str) -> Markup | None:
    """Return a window's bound ("from" or "until") as a `<time>` element, or None
    when it is missing or not a date-time with a time zone."""
    if not isinstance(window, dict) or not isinstance(window.get(key), str):
        return None
    try:
        moment = datetime.fromisoformat(window[key].replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return Markup('<time datetime="{}">{}</time>').format(
        moment.isoformat(), i18n.localized_datetime(moment)
    )


def _unknown_text() -> Markup:
    return Markup.escape(
        _(
            "the learner meets a condition that this page cannot describe. The "
            "badge's award rule shows it in full through the command line or the API."
        )
    )
