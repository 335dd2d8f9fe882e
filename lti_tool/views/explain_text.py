""" "Why not yet?" in the page language, for the learner's course page.

The badge engine returns conditions, LMS readings and missing requirements as data
(a rule node kind with its values). This module words them with the page's gettext:
conditions and missing requirements as the learner's steps through `step_text`, and
the LMS readings here. Every text is escaped HTML, with activity
names inside `<bdi>` so a name written right to left does not reorder the text
around it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from markupsafe import Markup

from badge_engine.explain import (
    NOT_REPORTED,
    READING_COURSE,
    READING_GRADE,
    Explanation,
    LmsReading,
)
from badge_engine.facts import CompletionState
from lti_tool import i18n
from lti_tool.i18n import gettext as _
from lti_tool.views.rule_text import RuleDescription, activity_label
from lti_tool.views.step_text import Grades, describe_condition_step, describe_step


@dataclass
class ConditionText:
    """One condition of the award rule in words, with the LMS data behind it.

    `parts` contains the conditions of a combination's nested rules.
    """

    met: bool
    depth: int
    description: RuleDescription
    readings: list[Markup]
    parts: list[ConditionText] = field(default_factory=list)


@dataclass
class ExplanationText:
    """An explanation in the page language, as `_explain.html` shows it."""

    met: bool
    source: str
    read_at: datetime
    # Every condition in rule order, the nested ones included.
    conditions: list[ConditionText]
    missing: list[RuleDescription]

    @property
    def top_conditions(self) -> list[ConditionText]:
        """The conditions at depth 0, each with its nested conditions in `parts`."""
        return [condition for condition in self.conditions if condition.depth == 0]


def explanation_text(explanation: Explanation) -> ExplanationText:
    """Word the explanation's conditions, readings and missing requirements."""
    names = explanation.activity_names
    conditions = [
        ConditionText(
            met=condition.met,
            depth=condition.depth,
            description=describe_condition_step(condition.rule, names),
            readings=[reading_text(item, names) for item in condition.readings],
        )
        for condition in explanation.conditions
    ]
    _nest_conditions(conditions)
    return ExplanationText(
        met=explanation.met,
        source=explanation.source,
        read_at=explanation.read_at,
        conditions=conditions,
        missing=[
            describe_step(rule, names, _reported_grades(explanation))
            for rule in explanation.missing_rules
        ],
    )


def _nest_conditions(conditions: list[ConditionText]) -> None:
    """Put each condition into the `parts` of the combination it is nested in.

    The badge engine lists the conditions depth first, each nested condition one
    `depth` deeper than its combination and after it.
    """
    open_combinations: list[ConditionText] = []
    for condition in conditions:
        while open_combinations and open_combinations[-1].depth >= condition.depth:
            open_combinations.pop()
        if open_combinations:
            open_combinations[-1].parts.append(condition)
        open_combinations.append(condition)


def _reported_grades(explanation: Explanation) -> Grades:
    """Return the grade percentages the LMS reported for the explained conditions."""
    return {
        reading.activity_id: reading.percent
        for condition in explanation.conditions
        for reading in condition.readings
        if reading.kind == READING_GRADE and reading.percent is not None
    }


def reading_text(reading: LmsReading, names: dict[str, str]) -> Markup:
    """Word one value the LMS reported for a condition."""
    if reading.kind == READING_COURSE:
        if reading.state == "completed":
            return _dated(_("course completed"), reading.at)
        return Markup.escape(_("course not completed"))

    if reading.kind == READING_GRADE:
        if reading.percent is None:
            return Markup.escape(_("no grade"))
        grade = _(
            "grade of %(percent)s", percent=i18n.localized_percent(reading.percent)
        )
        return _dated(grade, reading.at)

    state = Markup.escape(_activity_state_text(reading.state))
    # The LMS gives a time only for a completion, so a reading without one names
    # the state alone.
    if reading.at is not None:
        state = _dated(state, reading.at)
    # The label and the value are joined by the catalogue's own colon, so French
    # puts its no-break space before it.
    return _markup(
        _(
            "%(label)s: %(value)s",
            label=activity_label(reading.activity_id or "", names),
            value=state,
        )
    )


def _activity_state_text(state: str | None) -> str:
    labels = {
        CompletionState.INCOMPLETE.value: _("not completed"),
        CompletionState.COMPLETE.value: _("completed"),
        CompletionState.PASSED.value: _("passed"),
        CompletionState.FAILED.value: _("failed"),
        NOT_REPORTED: _("not reported"),
    }
    return labels.get(state or "", state or "")


def _dated(text: str, moment: datetime | None) -> Markup:
    """Add the LMS's time to a reading, or state that the LMS gave none."""
    if moment is None:
        return _markup(
            _(
                "%(reading)s, at a time the LMS did not report",
                reading=Markup.escape(text),
            )
        )
    time = Markup('<time datetime="{}">{}</time>').format(
        moment.isoformat(), i18n.localized_datetime(moment)
    )
    return _markup(_("%(reading)s on %(time)s", reading=Markup.escape(text), time=time))


def _markup(translated: str) -> Markup:
    """Mark a translated message as HTML after its values were filled in.

    The catalogues are part of the code and trusted, and every value put into a
    message here is a Markup that escaped the text from the LMS.
    """
    return Markup(translated)  # noqa: S704 - see the docstring
