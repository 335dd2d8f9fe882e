"""Award blockers in the page language, for the instructor's course page.

The badge engine returns each reason a learner cannot receive a badge as a code with
its values, and words it in English only for JSON clients. This module words it with
the page's gettext. Every text is escaped HTML.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from badge_engine.explain import (
    BLOCKER_DELIVERY_NEEDS_CONSENT,
    BLOCKER_ENROLMENT_INACTIVE,
    BLOCKER_LEARNER_UNKNOWN,
    BLOCKER_NO_EMAIL,
    BLOCKER_NO_IDENTITY,
    BLOCKER_REVERSAL_UNDER_REVIEW,
    Blocker,
)
from lti_tool import i18n
from lti_tool.i18n import gettext as _
from lti_tool.i18n import ngettext


@dataclass
class BlockerText:
    """A blocker in words: its engine code, for the page's `data-code`, and `text`."""

    code: str
    text: Markup


def blocker_text(blocker: Blocker) -> BlockerText:
    """Word one blocker in the page language."""
    return BlockerText(blocker.code, _blocker_words(blocker))


def _blocker_words(blocker: Blocker) -> Markup:
    code = blocker.code
    if code == BLOCKER_ENROLMENT_INACTIVE:
        text = _(
            "The LMS does not track this learner's completion in the course because "
            "the enrolment is not active. Reactivate the enrolment in the LMS."
        )
    elif code == BLOCKER_LEARNER_UNKNOWN:
        text = _(
            "The bridge has not seen this learner yet. The learner appears after "
            "their first launch or completion."
        )
    elif code == BLOCKER_NO_IDENTITY:
        text = _(
            "The learner has no email address or LMS account that the badge could "
            "name. Ask the LMS admin to share the email address in launches."
        )
    elif code == BLOCKER_NO_EMAIL:
        text = _(
            "The LMS shares no email address for this learner, so the badge names "
            "their LMS account and portfolios cannot match it by email."
        )
    elif code == BLOCKER_REVERSAL_UNDER_REVIEW:
        return _reversal_text(blocker)
    elif code == BLOCKER_DELIVERY_NEEDS_CONSENT:
        text = ngettext(
            "%(num)d delivery waits for the learner to link their portfolio again "
            "and grant access.",
            "%(num)d deliveries wait for the learner to link their portfolio again "
            "and grant access.",
            blocker.values.get("deliveries", 1),
        )
    else:
        # A code added to the engine before its wording here still shows its code.
        text = i18n.gettext_html(
            "The badge cannot be awarded (%(code)s).", code=i18n.isolate_ltr(code)
        )
    return Markup.escape(text)


def _reversal_text(blocker: Blocker) -> Markup:
    moment = blocker.values.get("reversed_at")
    if moment is None:
        return Markup.escape(
            _(
                "The LMS reported the completion reversed. An instructor decides "
                "whether to revoke the badge."
            )
        )
    time = Markup('<time datetime="{}">{}</time>').format(
        moment.isoformat(), i18n.localized_datetime(moment)
    )
    return _markup(
        _(
            "The LMS reported the completion reversed on %(time)s. An instructor "
            "decides whether to revoke the badge.",
            time=time,
        )
    )


def _markup(translated: str) -> Markup:
    """Mark a translated message as HTML after its values were filled in.

    The catalogues are part of the code and trusted, and the only value put into a
    message here is a Markup that escaped its text.
    """
    return Markup(translated)  # noqa: S704 - see the docstring
