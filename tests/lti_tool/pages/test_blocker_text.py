"""Award blockers and replaced versions on the instructor's course page, in each
page language."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import pytest

from badge_engine.explain import (
    BLOCKER_DELIVERY_NEEDS_CONSENT,
    BLOCKER_ENROLMENT_INACTIVE,
    BLOCKER_LEARNER_UNKNOWN,
    BLOCKER_NO_EMAIL,
    BLOCKER_NO_IDENTITY,
    BLOCKER_REVERSAL_UNDER_REVIEW,
    Blocker,
)
from connectors.hpass.models import Delivery, DeliveryStatus
from lti_tool.views.blocker_text import blocker_text

from .conftest import add_credential, launch_as

REVERSED_AT = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
TIME_TAG = '<time datetime="2026-03-01T08:00:00+00:00">'
BLOCKERS = {
    "enrolment": Blocker(BLOCKER_ENROLMENT_INACTIVE),
    "unknown": Blocker(BLOCKER_LEARNER_UNKNOWN),
    "identity": Blocker(BLOCKER_NO_IDENTITY),
    "email": Blocker(BLOCKER_NO_EMAIL),
    "reversal": Blocker(BLOCKER_REVERSAL_UNDER_REVIEW, {"reversed_at": REVERSED_AT}),
    "reversal_untimed": Blocker(BLOCKER_REVERSAL_UNDER_REVIEW),
    "one_delivery": Blocker(BLOCKER_DELIVERY_NEEDS_CONSENT, {"deliveries": 1}),
    "deliveries": Blocker(BLOCKER_DELIVERY_NEEDS_CONSENT, {"deliveries": 3}),
    "new_code": Blocker("new_code"),
}
# The start of each blocker's text in each page language.
EXPECTED = {
    "en": {
        "enrolment": "The LMS does not track this learner's completion",
        "unknown": "The bridge has not seen this learner yet.",
        "identity": "The learner has no email address or LMS account",
        "email": "The LMS shares no email address for this learner",
        "reversal": "The LMS reported the completion reversed on " + TIME_TAG,
        "reversal_untimed": "The LMS reported the completion reversed. An",
        "one_delivery": "1 delivery waits for the learner",
        "deliveries": "3 deliveries wait for the learner",
        "new_code": 'The badge cannot be awarded (<bdi dir="ltr">new_code</bdi>).',
    },
    "fr": {
        "enrolment": "Le LMS ne suit pas l’achèvement de cet apprenant",
        "unknown": "Le pont n’a pas encore vu cet apprenant.",
        "identity": "L’apprenant n’a ni adresse e-mail ni compte LMS",
        "email": "Le LMS ne partage aucune adresse e-mail pour cet apprenant",
        "reversal": "Le LMS a signalé l’annulation de l’achèvement le " + TIME_TAG,
        "reversal_untimed": "Le LMS a signalé l’annulation de l’achèvement. Un",
        "one_delivery": "1 livraison attend que l’apprenant",
        "deliveries": "3 livraisons attendent que l’apprenant",
        "new_code": 'Le badge ne peut pas être attribué (<bdi dir="ltr">new_code</bdi>).',
    },
    "es": {
        "enrolment": "El LMS no registra la finalización de este estudiante",
        "unknown": "El puente aún no ha visto a este estudiante.",
        "identity": "El estudiante no tiene una dirección de correo electrónico",
        "email": "El LMS no comparte ninguna dirección de correo electrónico",
        "reversal": "El LMS informó el " + TIME_TAG,
        "reversal_untimed": "El LMS informó de que la finalización se anuló.",
        "one_delivery": "1 entrega espera a que el estudiante",
        "deliveries": "3 entregas esperan a que el estudiante",
        "new_code": 'La insignia no se puede conceder (<bdi dir="ltr">new_code</bdi>).',
    },
    "ar": {
        "enrolment": "لا يتتبّع نظام إدارة التعلّم إكمال هذا المتعلّم",
        "unknown": "لم يرَ الجسر هذا المتعلّم بعد.",
        "identity": "ليس لدى المتعلّم عنوان بريد إلكتروني",
        "email": "لا يشارك نظام إدارة التعلّم أي عنوان بريد إلكتروني",
        "reversal": "أبلغ نظام إدارة التعلّم عن إلغاء الإكمال في " + TIME_TAG,
        "reversal_untimed": "أبلغ نظام إدارة التعلّم عن إلغاء الإكمال.",
        "one_delivery": "ينتظر تسليم واحد (1)",
        "deliveries": "ينتظر 3 تسليمات",
        "new_code": 'لا يمكن منح الشارة (<bdi dir="ltr">new_code</bdi>).',
    },
}
# Words of the engine's English messages that no translation contains.
ENGLISH_BLOCKER_WORDS = (
    "The LMS",
    "The bridge",
    "The learner",
    "learner",
    "enrolment",
    "reversed",
    "waits",
    "portfolio again",
    "email address",
)


def render(app, locale: str, blocker: Blocker) -> str:
    with app.test_request_context("/", headers={"Accept-Language": locale}):
        worded = blocker_text(blocker)
    assert worded.code == blocker.code
    # Entities are unescaped so that apostrophes read as typed. Tags stay.
    return html.unescape(worded.text)


@pytest.mark.parametrize("locale", sorted(EXPECTED))
@pytest.mark.parametrize("case", sorted(BLOCKERS))
def test_blocker_text_each_language(app, locale, case):
    """Each blocker code is worded in the page language, with its values."""
    text = render(app, locale, BLOCKERS[case])

    assert text.startswith(EXPECTED[locale][case])


@pytest.mark.parametrize("locale", ["fr", "es", "ar"])
@pytest.mark.parametrize("case", sorted(BLOCKERS))
def test_blocker_text_not_english(app, locale, case):
    """A translated blocker contains none of the engine's English message."""
    text = render(app, locale, BLOCKERS[case])

    assert BLOCKERS[case].message not in text
    for word in ENGLISH_BLOCKER_WORDS:
        assert word not in text, word


def test_blocker_time_localised(app):
    """The reversal time is a <time> element in the page language's format."""
    text = render(app, "fr", BLOCKERS["reversal"])
    displayed = text.split(TIME_TAG, 1)[1].split("</time>", 1)[0]

    assert "mars 2026" in displayed
    assert "T08:00" not in displayed


def instructor_page_with_blockers(client, db, tenant, locale: str) -> str:
    """Render the instructor page with an award that has three blockers: the
    learner has no email, the LMS reversed the completion, and a delivery waits
    for consent."""
    credential = add_credential(db, tenant)
    credential.completion_reversed_at = REVERSED_AT
    db.add(
        Delivery(
            provider_id=tenant.provider_id,
            credential_id=credential.id,
            status=DeliveryStatus.NEEDS_CONSENT.value,
        )
    )
    db.commit()
    launch_as(client, tenant, "instructor", locale=locale)
    response = client.get(f"/course/{tenant.course_id}")
    assert response.status_code == 200
    return html.unescape(response.get_data(as_text=True))


def blocker_paragraphs(page: str) -> dict[str, str]:
    return dict(
        re.findall(r'<p class="blocker" data-code="([a-z_]+)">(.*?)</p>', page, re.S)
    )


def test_instructor_page_blockers_french(client, db, tenants):
    """A French instructor reads every blocker in French, with no English text."""
    alpha, _ = tenants
    page = instructor_page_with_blockers(client, db, alpha, "fr")
    blockers = blocker_paragraphs(page)

    assert sorted(blockers) == [
        BLOCKER_DELIVERY_NEEDS_CONSENT,
        BLOCKER_NO_EMAIL,
        BLOCKER_REVERSAL_UNDER_REVIEW,
    ]
    assert blockers[BLOCKER_NO_EMAIL].startswith(EXPECTED["fr"]["email"])
    assert blockers[BLOCKER_REVERSAL_UNDER_REVIEW].startswith(
        EXPECTED["fr"]["reversal"]
    )
    assert blockers[BLOCKER_DELIVERY_NEEDS_CONSENT].startswith(
        EXPECTED["fr"]["one_delivery"]
    )
    for code, text in blockers.items():
        assert Blocker(code).message not in page
        for word in ENGLISH_BLOCKER_WORDS:
            assert word not in text, (code, word)


def test_instructor_page_blockers_english(client, db, tenants):
    """An English instructor reads the same blockers in English."""
    alpha, _ = tenants
    page = instructor_page_with_blockers(client, db, alpha, "en")
    blockers = blocker_paragraphs(page)

    assert blockers[BLOCKER_NO_EMAIL].startswith(EXPECTED["en"]["email"])
    assert blockers[BLOCKER_REVERSAL_UNDER_REVIEW].startswith(
        EXPECTED["en"]["reversal"]
    )
    assert blockers[BLOCKER_DELIVERY_NEEDS_CONSENT].startswith(
        EXPECTED["en"]["one_delivery"]
    )


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("correction", "Remplacé par une version corrigée"),
        ("renewal", "Remplacé par une version renouvelée"),
    ],
)
def test_instructor_page_supersede_reason_french(client, db, tenants, reason, expected):
    """A replaced award names why it was replaced in French, not by its code."""
    alpha, _ = tenants
    credential = add_credential(db, alpha)
    credential.status = "superseded"
    credential.live_key = None
    credential.supersede_reason = reason
    db.commit()
    launch_as(client, alpha, "instructor", locale="fr")

    page = html.unescape(
        client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    )
    replaced = re.findall(r'<p class="superseded"[^>]*>(.*?)</p>', page, re.S)

    assert replaced == [expected]
    assert f"({reason})" not in page
