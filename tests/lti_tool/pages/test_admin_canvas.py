"""The "Add a Canvas site" form on /admin/connect, against a Canvas stand-in."""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from connectors.canvas.connection import REQUIRED_SCOPES
from connectors.canvas.models import CanvasCredential
from connectors.models import LmsConnection
from lti_tool.accounts import AccountRole, AuditEvent
from lti_tool.demo.peers.canvas import FakeCanvas
from lti_tool.demo.peers.serving import serve_in_thread

from .conftest import add_account, sign_in

CANVAS_COURSE_ID = 565


@pytest.fixture
def canvas():
    fake = FakeCanvas()
    fake.add_course(CANVAS_COURSE_ID)
    fake.add_students(CANVAS_COURSE_ID, [123])
    fake.complete(CANVAS_COURSE_ID, 123, datetime(2026, 3, 1, tzinfo=timezone.utc))
    with serve_in_thread(fake.app) as server:
        fake.url = server.url
        yield fake


@pytest.fixture
def admin(client, tenants, db):
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")
    return alpha


def _form(url: str, token: str, **fields) -> dict:
    return {
        "csrf": "test-csrf",
        "canvas_name": "Campus Canvas",
        "canvas_url": url,
        "canvas_token": token,
        "canvas_course": str(CANVAS_COURSE_ID),
        **fields,
    }


def _post(client, data: dict, language: str = "en"):
    response = client.post(
        "/admin/connect/canvas", data=data, headers={"Accept-Language": language}
    )
    return response, html.unescape(response.get_data(as_text=True))


def _canvas_count(db, provider_id: int) -> int:
    db.expire_all()
    return db.scalar(
        select(func.count(LmsConnection.id)).where(
            LmsConnection.provider_id == provider_id, LmsConnection.kind == "canvas"
        )
    )


def test_connect_page_has_canvas_form(client, admin):
    """The connect page offers a Canvas form beside the Moodle one, with labels."""
    page = client.get("/admin/connect").get_data(as_text=True)

    assert "Add a Moodle site" in page
    assert "Add a Canvas site" in page
    assert 'action="/admin/connect/canvas"' in page
    for field in (
        "canvas_name",
        "canvas_url",
        "canvas_token",
        "canvas_course",
        "canvas_client_id",
        "canvas_client_secret",
        "canvas_refresh_token",
    ):
        assert f'<label for="{field}">' in page, field
        assert f'id="{field}" name="{field}"' in page, field
    assert '<fieldset aria-describedby="canvas-developer-key-hint">' in page
    assert 'id="canvas-developer-key-hint"' in page


def test_canvas_connect_shows_secret_once(client, app, db, admin, canvas):
    """A connected Canvas site stores its token encrypted and shows the secret once."""
    token = canvas.issue_token()

    response, page = _post(client, _form(canvas.url + "/", token))
    later = client.get("/admin/connect").get_data(as_text=True)

    assert response.status_code == 200
    connection = db.scalar(
        select(LmsConnection).where(LmsConnection.name == "Campus Canvas")
    )
    assert connection.kind == "canvas"
    assert connection.base_url == canvas.url
    assert connection.provider_id == admin.provider_id
    credential = db.scalar(
        select(CanvasCredential).where(
            CanvasCredential.lms_connection_id == connection.id
        )
    )
    assert credential.auth_kind == "access_token"
    vault = app.extensions["hpass"].vault
    assert vault.decrypt(credential.access_token_encrypted) in (token, token.encode())
    secret = re.search(
        r'id="new-webhook-secret" class="secret" type="text" readonly value="([\w-]+)"',
        page,
    ).group(1)
    assert f"/webhooks/canvas/{connection.public_id}?token={secret}" in page
    assert secret not in later
    assert token not in page
    assert "Campus Canvas" in later
    assert "did not grant the bridge these scopes" not in page


def test_canvas_connect_developer_key(client, app, db, admin, canvas):
    """All three developer key fields store OAuth2 credentials."""
    refresh_token = canvas.add_developer_key("10000000000001", "key-secret")
    data = _form(
        canvas.url,
        canvas.issue_token(),
        canvas_client_id="10000000000001",
        canvas_client_secret="key-secret",
        canvas_refresh_token=refresh_token,
    )

    response, page = _post(client, data)

    assert response.status_code == 200, page
    credential = db.scalar(select(CanvasCredential))
    assert credential.auth_kind == "oauth2"
    assert credential.client_id == "10000000000001"
    assert "key-secret" not in page
    assert refresh_token not in page


def test_canvas_connect_half_developer_key(client, db, admin, canvas):
    """A client id without its secret and refresh token is flagged on both."""
    data = _form(canvas.url, canvas.issue_token(), canvas_client_id="1")

    response, page = _post(client, data)

    assert response.status_code == 400
    assert 'id="canvas_client_secret-error"' in page
    assert 'id="canvas_refresh_token-error"' in page
    assert 'id="canvas_client_id-error"' not in page
    assert "needs its client id, secret and refresh token together" in page
    assert 'value="1"' in page
    assert _canvas_count(db, admin.provider_id) == 0


def test_canvas_connect_required_fields(client, db, admin):
    """Empty fields are listed in the error summary, each linked to its field."""
    response, page = _post(client, {"csrf": "test-csrf"})

    assert response.status_code == 400
    assert 'id="error-summary"' in page
    for field in ("canvas_name", "canvas_url", "canvas_token", "canvas_course"):
        assert f'<a href="#{field}">' in page, field
        assert f'id="{field}-error"' in page, field
        assert (
            f'aria-describedby="{field}-hint {field}-error" aria-invalid="true"'
            in (page)
            or f'aria-describedby="{field}-error" aria-invalid="true"' in page
        ), field
    assert _canvas_count(db, admin.provider_id) == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("canvas_url", "canvas", "such as https://canvas.example.org."),
        (
            "canvas_url",
            "ftp://canvas.example.org",
            "such as https://canvas.example.org.",
        ),
        ("canvas_course", "course-565", "Enter the course's number"),
        ("canvas_course", "https://canvas.example.org/users/565", "Enter the course's"),
        ("canvas_course", "1" * 21, "Enter the course's number"),
    ],
)
def test_canvas_connect_invalid_values(client, db, admin, field, value, message):
    """An invalid address or course number is reported beside its field."""
    data = _form("https://canvas.example.org", "t")
    data[field] = value

    response, page = _post(client, data)

    assert response.status_code == 400
    assert f'id="{field}-error"' in page
    assert message in page
    assert _canvas_count(db, admin.provider_id) == 0


def test_canvas_connect_rejected_token(client, db, admin, canvas):
    """A token Canvas rejects is reported beside the token field, nothing stored."""
    response, page = _post(client, _form(canvas.url, "mistyped-token"))

    assert response.status_code == 400
    assert 'id="canvas_token-error"' in page
    assert "Canvas rejected this token" in page
    assert "Approved integrations" in page
    assert "mistyped-token" not in page
    assert _canvas_count(db, admin.provider_id) == 0
    created = db.scalar(
        select(func.count(AuditEvent.id)).where(
            AuditEvent.action == "lms_connection.created"
        )
    )
    assert created == 0


def test_canvas_connect_unreachable(client, db, admin):
    """A site that does not respond is reported beside the address, nothing stored."""
    # Nothing listens on the discard port of loopback, so the connection is refused.
    response, page = _post(client, _form("http://127.0.0.1:9", "t"))

    assert response.status_code == 400
    assert 'id="canvas_url-error"' in page
    assert (
        'The bridge could not reach Canvas at <bdi dir="ltr">http://127.0.0.1:9</bdi>.'
    ) in page
    assert "Nothing was saved" in page
    # The client's error, with its retries, is in the log only, as for Moodle.
    assert "attempt" not in page
    assert 'class="error-detail"' not in page
    assert _canvas_count(db, admin.provider_id) == 0


def _field_error(page: str, name: str) -> str:
    return page.split(f'id="{name}-error">')[1].split("</p>")[0]


def test_canvas_connect_course_forbidden(client, db, admin, canvas):
    """A course Canvas denies is explained in words, with Canvas's error below."""
    canvas.forbidden_courses.add(CANVAS_COURSE_ID)

    response = client.post(
        "/admin/connect/canvas", data=_form(canvas.url, canvas.issue_token())
    )
    raw = response.get_data(as_text=True)
    error = html.unescape(_field_error(raw, "canvas_url"))
    summary = html.unescape(raw.split('id="error-summary"')[1].split("</div>")[0])

    assert response.status_code == 400
    assert error.startswith(
        f'Canvas at <bdi dir="ltr">{canvas.url}</bdi> failed the connection test, '
        "so nothing was saved. The bridge could not read course "
        f'<bdi dir="ltr">{CANVAS_COURSE_ID}</bdi> with this token.'
    )
    assert '<span class="error-detail">Details: <span lang="en" dir="ltr">' in error
    assert "HTTP 401" in error
    assert "lacks a permission" in error
    # Canvas's JSON body is quoted in the detail, escaped.
    assert "&#34;unauthorized&#34;" in _field_error(raw, "canvas_url")
    assert '"unauthorized"' not in _field_error(raw, "canvas_url")
    assert "failed the connection test, so nothing was saved." in summary
    assert "HTTP 401" not in summary
    assert _canvas_count(db, admin.provider_id) == 0


def test_canvas_course_forbidden_in_french(client, admin, canvas):
    """The message is in French, and Canvas's English error stays marked as English."""
    canvas.forbidden_courses.add(CANVAS_COURSE_ID)

    response, page = _post(client, _form(canvas.url, canvas.issue_token()), "fr")
    error = _field_error(page, "canvas_url")

    assert response.status_code == 400
    assert error.startswith(
        f'Canvas à l’adresse <bdi dir="ltr">{canvas.url}</bdi> a échoué au test '
        "de connexion"
    )
    assert 'Détails : <span lang="en" dir="ltr">' in error
    assert "HTTP 401" in error


def test_canvas_connect_missing_scopes(client, db, admin, canvas):
    """A token without every scope connects, and the page names what is missing."""
    scopes = list(REQUIRED_SCOPES)
    token = canvas.issue_token(scopes=frozenset(scopes[1:]))

    response, page = _post(client, _form(canvas.url, token))

    assert response.status_code == 200
    assert "Canvas did not grant the bridge these scopes yet" in page
    assert scopes[0] in page
    assert _canvas_count(db, admin.provider_id) == 1


def test_canvas_connect_same_site_twice(client, db, admin, canvas):
    """A second connection to the provider's Canvas site is refused beside the field."""
    _post(client, _form(canvas.url, canvas.issue_token()))

    response, page = _post(
        client,
        _form(
            canvas.url.replace("http://", "HTTP://") + "/",
            canvas.issue_token(),
            canvas_name="Again",
        ),
    )

    assert response.status_code == 400
    assert 'id="canvas_url-error"' in page
    assert "already connected to this Canvas site as “<bdi>Campus Canvas</bdi>”" in page
    assert _canvas_count(db, admin.provider_id) == 1


def test_canvas_connect_needs_csrf(client, db, admin, canvas):
    """A post without the form token changes nothing."""
    data = _form(canvas.url, canvas.issue_token())
    data["csrf"] = "wrong"

    response, _page = _post(client, data)

    assert response.status_code in (400, 403)
    assert _canvas_count(db, admin.provider_id) == 0


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("fr", "Canvas a refusé ce jeton"),
        ("es", "Canvas rechazó este token"),
        ("ar", "رفض Canvas هذا الرمز"),
    ],
)
def test_canvas_rejected_token_translated(client, admin, canvas, language, words):
    """The rejected-token message and the form are in the page language."""
    response, page = _post(client, _form(canvas.url, "mistyped-token"), language)

    assert response.status_code == 400
    assert words in page
    assert "Approved integrations" in page


def test_canvas_connect_course_address(client, db, admin, canvas):
    """A pasted course address is accepted whole, and the test uses its id."""
    data = _form(canvas.url, canvas.issue_token())
    data["canvas_course"] = f"{canvas.url}/courses/{CANVAS_COURSE_ID}/modules"

    response, page = _post(client, data)

    assert response.status_code == 200, page
    assert _canvas_count(db, admin.provider_id) == 1
    assert "did not grant the bridge these scopes" not in page


def test_canvas_course_field_not_cut(client, admin):
    """The course field is long enough for a course address."""
    page = client.get("/admin/connect").get_data(as_text=True)
    field = re.search(r'<input id="canvas_course"[^>]*>', page).group(0)

    assert 'maxlength="500"' in field


def test_webhook_token_parameter_left_to_right(client, admin, canvas):
    """On the Arabic page, "?token=" is code set left to right, so it reads as typed."""
    _post(client, _form(canvas.url, canvas.issue_token()))

    page = client.get("/admin/connect", headers={"Accept-Language": "ar"}).get_data(
        as_text=True
    )

    assert 'dir="rtl"' in page
    assert '<code dir="ltr">?token=</code>' in page
