"""The admin page's LMS site list: each connection's last contact, in every language."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from badge_engine.db import utcnow
from connectors.contacts import record_event, record_failure, record_success
from connectors.models import ConnectionState, ContactSource, LmsConnection
from lti_tool.accounts import AccountRole
from tests.support.seed import add_moodle_connection

from .conftest import add_account, sign_in

ADMIN_EMAIL = "admin@alpha.org"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
DOWN = "Could not connect to Moodle at http://127.0.0.1:9: the connection failed."


def site_item(page: str, name: str) -> str:
    """Return the list item of the LMS site named `name`."""
    match = re.search(
        rf'<li data-contact="[a-z]+"><span dir="auto">{re.escape(name)}</span>.*?</ul>',
        page,
        re.S,
    )
    assert match, f"no list item for {name!r}"
    return match.group(0)


@pytest.fixture
def sites(app, db, tenants):
    """Alpha's Moodle connection and four more, one per contact state; beta's
    connection has a failure that alpha's page must not show."""
    alpha, beta = tenants
    vault = app.extensions["hpass"].vault
    provider = db.get(LmsConnection, alpha.connection_id).provider_id

    def connection(name: str, url: str) -> LmsConnection:
        from badge_engine.models import Provider

        added = add_moodle_connection(db, vault, db.get(Provider, provider), url, "t")
        added.name = name
        return added

    healthy = connection("Healthy", "https://healthy.invalid")
    record_success(db, healthy, ContactSource.POLL, at=T0)
    record_event(db, healthy, T0 + timedelta(minutes=1))

    down = connection("Down", "https://down.invalid")
    record_success(db, down, ContactSource.POLL, at=T0)
    record_failure(db, down, ContactSource.POLL, DOWN, at=T0 + timedelta(hours=1))

    broken = connection("Broken", "https://broken.invalid")
    broken.state = ConnectionState.BROKEN.value
    broken.state_detail = "Moodle rejected the token. Save a new token."
    record_failure(db, broken, ContactSource.REREAD, "invalidtoken", at=T0)

    gone = connection("Gone", "https://gone.invalid")
    gone.state = ConnectionState.DISCONNECTED.value
    gone.site_key = None
    gone.disconnected_at = utcnow()

    record_failure(
        db, db.get(LmsConnection, beta.connection_id), ContactSource.POLL, "beta secret"
    )
    db.commit()
    fresh = db.get(LmsConnection, alpha.connection_id)
    fresh.name = "Fresh"
    db.commit()
    add_account(db, ADMIN_EMAIL, AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    return alpha


def admin_page(client, locale: str = "en") -> str:
    sign_in(client, ADMIN_EMAIL)
    response = client.get("/admin/connect", headers={"Accept-Language": locale})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_healthy_site_shows_last_success(client, sites):
    """A site whose last contact succeeded shows when, by what, and its last event."""
    item = site_item(admin_page(client), "Healthy")

    assert 'data-contact="succeeded"' in item
    assert "Connected" in item
    assert "Last successful contact:" in item
    assert '<time datetime="2026-12-01T09:00:00+00:00">' in item
    assert "(completion poll)" in item
    assert "Last event received:" in item
    assert '<time datetime="2026-12-01T09:01:00+00:00">' in item
    assert "Not responding" not in item


def test_down_site_not_responding(client, sites):
    """A site whose last contact failed is shown so, with time, reason and next step."""
    item = site_item(admin_page(client), "Down")

    assert 'data-contact="failed"' in item
    assert "<strong>Not responding</strong>" in item
    assert "Last contact failed:" in item
    assert '<time datetime="2026-12-01T10:00:00+00:00">' in item
    assert DOWN in item
    assert "The bridge keeps retrying." in item
    assert "Last successful contact:" in item
    assert ">Connected<" not in item


def test_broken_site_keeps_its_own_step(client, sites):
    """A broken site shows its state detail and the failure, without the retry text."""
    item = site_item(admin_page(client), "Broken")

    assert "<strong>Not working</strong>" in item
    assert "Save a new token." in item
    assert "Last contact failed:" in item
    assert "(re-read of a learner)" in item
    assert "The bridge keeps retrying." not in item


def test_site_without_contact(client, sites):
    """A connection with no recorded contact states that none is recorded yet."""
    item = site_item(admin_page(client), "Fresh")

    assert 'data-contact="none"' in item
    assert "Connected, no contact recorded yet" in item
    assert "has recorded no poll, re-read or event" in item


def test_disconnected_site_shows_no_contact(client, sites):
    """A disconnected site keeps its state and lists no contact facts."""
    page = admin_page(client)
    start = page.index('<span dir="auto">Gone</span>')
    item = page[start : page.index("</li>", start)]

    assert "<strong>Disconnected</strong>" in item
    assert "contact-facts" not in item


def test_other_provider_contact_hidden(client, sites):
    """Another provider's recorded failure never appears on the page."""
    assert "beta secret" not in admin_page(client)


def test_status_list_has_no_live_region(client, sites):
    """The site list is static text, so it carries no role=status or alert."""
    page = admin_page(client)
    start = page.index('<ul class="connections">')
    listing = page[start : page.index("<h3", start)]

    assert "role=" not in listing


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        ("fr", ("Ne répond pas", "Le dernier échange a échoué", "Le pont réessaie")),
        ("es", ("No responde", "El último contacto falló", "El puente sigue")),
        ("ar", ("لا يستجيب", "فشل آخر تواصل", "يواصل الجسر")),
    ],
)
def test_contact_text_translated(client, sites, locale, words):
    """The contact lines are in the page language; Arabic pages are right-to-left."""
    page = admin_page(client, locale)
    item = site_item(page, "Down")

    for word in words:
        assert word in item
    assert f'<html lang="{locale}"' in page
    if locale == "ar":
        assert 'dir="rtl"' in page


NBSP = "\u00a0"
# Per language: the colon that joins a label to its value, the three labels, and
# the source of the Down site's failure.
CONTACT_LABELS = {
    "en": (
        ": ",
        "Last successful contact",
        "Last contact failed",
        "Last event received",
        "(completion poll)",
    ),
    "fr": (
        f"{NBSP}: ",
        "Dernier échange réussi",
        "Le dernier échange a échoué",
        "Dernier événement reçu",
        "(relevé des achèvements)",
    ),
    "es": (
        ": ",
        "Último contacto correcto",
        "El último contacto falló",
        "Último evento recibido",
        "(consulta de finalizaciones)",
    ),
    "ar": (
        ": ",
        "آخر تواصل ناجح",
        "فشل آخر تواصل",
        "آخر حدث وارد",
        "(استطلاع الإتمامات)",
    ),
}


@pytest.mark.parametrize("locale", sorted(CONTACT_LABELS))
def test_contact_label_colon(client, sites, locale):
    """Each contact line joins label and value with the language's colon, so French
    puts a no-break space before it, also before the failure's reason."""
    colon, success, failure, event, source = CONTACT_LABELS[locale]
    page = admin_page(client, locale)
    healthy = site_item(page, "Healthy")
    down = site_item(page, "Down")

    assert f"{success}{colon}<time" in healthy
    assert f"{event}{colon}<time" in healthy
    assert f"{failure}{colon}<time" in down
    assert f'{source}{colon}<span dir="auto">{DOWN}</span>' in down
    if locale == "fr":
        assert " : " not in healthy
        assert " : " not in down
