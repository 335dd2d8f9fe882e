"""Issuing a new webhook secret for an LMS connection.

Covers the action, the webhook's response to the old and new secrets, the admin
page, the API route and the `connection new-webhook-secret` command, on SQLite and
PostgreSQL. Foreign, unknown and disconnected connections and posts without the
form token change nothing."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from connectors.canvas.connection import connect_canvas
from connectors.models import LmsConnection
from lti_tool.accounts import AccountRole, AuditEvent
from lti_tool.api.tokens import create_api_token
from lti_tool.cli import main
from lti_tool.operations import ActionError
from lti_tool.operations.lms import disconnect_connection, issue_webhook_secret
from lti_tool.views.webhooks import secret_digest
from tests.lti_tool.pages.conftest import add_account, sign_in
from tests.support.databases import reset_postgres
from tests.support.seed import add_moodle_connection, add_provider

OLD_SECRET = "webhook-secret-alpha"
ADMIN_EMAIL = "admin@alpha.org"
CSRF = {"csrf": "test-csrf"}
ACTION = "lms_connection.webhook_secret_issued"
# An event the bridge accepts and ignores, so only the secret decides the status.
IGNORED_EVENT = {"eventname": "\\core\\event\\user_loggedin"}


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request, settings):
    """The shared settings, on SQLite or on the local PostgreSQL."""
    if request.param == "postgres":
        settings.database_url = reset_postgres()
    return settings


@pytest.fixture
def seeded(app, db):
    """Providers "alpha" (a Moodle and a Canvas connection, an admin account and an
    API token) and "beta" (one Moodle connection)."""
    vault = app.extensions["hpass"].vault
    alpha = add_provider(db, slug="alpha", name="Alpha")
    beta = add_provider(db, slug="beta", name="Beta")
    own = add_moodle_connection(db, vault, alpha, "http://127.0.0.1:9", "t")
    foreign = add_moodle_connection(db, vault, beta, "http://127.0.0.1:9", "t")
    canvas = connect_canvas(
        db,
        vault,
        provider_id=alpha.id,
        name="Alpha Canvas",
        base_url="http://127.0.0.1:8",
        access_token="canvas-token",
    )
    canvas.webhook_secret_sha256 = secret_digest(OLD_SECRET)
    _, token = create_api_token(db, provider_id=alpha.id, name="t", created_by="test")
    db.commit()
    add_account(db, ADMIN_EMAIL, AccountRole.PROVIDER_ADMIN, alpha.id)
    return {
        "own": own.public_id,
        "foreign": foreign.public_id,
        "canvas": canvas.public_id,
        "token": token,
    }


def _connection(db, public_id: str) -> LmsConnection:
    db.expire_all()
    return db.scalar(select(LmsConnection).where(LmsConnection.public_id == public_id))


def _issued_count(db) -> int:
    return db.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == ACTION)
    )


def _post_event(client, public_id: str, secret: str):
    return client.post(
        f"/webhooks/moodle/{public_id}", json={**IGNORED_EVENT, "token": secret}
    )


def test_issue_replaces_digest_and_audits(app, db, seeded):
    """The new secret's digest replaces the old one, and the event names the actor."""
    connection = _connection(db, seeded["own"])

    issued = issue_webhook_secret(db, app.extensions["hpass"], "os:tester", connection)
    db.commit()

    stored = _connection(db, seeded["own"])
    assert stored.webhook_secret_sha256 == secret_digest(issued.webhook_secret)
    assert issued.webhook_secret not in (stored.webhook_secret_sha256, OLD_SECRET)
    assert issued.webhook_url.endswith(f"/webhooks/moodle/{seeded['own']}")
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == ACTION))
    assert event.actor == "os:tester"
    assert event.target == f"lms_connection:{seeded['own']}"
    assert issued.webhook_secret not in str(event.detail)


def test_issue_canvas_url_carries_secret(app, db, seeded):
    """A Canvas connection's new Live Events URL ends with the new secret."""
    connection = _connection(db, seeded["canvas"])

    issued = issue_webhook_secret(db, app.extensions["hpass"], "os:tester", connection)

    assert issued.webhook_url.endswith(
        f"/webhooks/canvas/{seeded['canvas']}?token={issued.webhook_secret}"
    )


def test_issue_disconnected_rejected(app, db, seeded):
    """A disconnected connection gets no secret, and nothing is recorded."""
    connection = _connection(db, seeded["own"])
    disconnect_connection(db, "os:tester", connection)
    db.commit()

    with pytest.raises(ActionError) as raised:
        issue_webhook_secret(db, app.extensions["hpass"], "os:tester", connection)

    assert raised.value.code == "connection_disconnected"
    db.rollback()
    assert _connection(db, seeded["own"]).webhook_secret_sha256 is None
    assert _issued_count(db) == 0


def test_old_secret_rejected_at_once(app, client, db, seeded):
    """Right after the commit the webhook rejects the old secret with 401 and
    accepts the new one, although the old one was just read into the cache."""
    before = _post_event(client, seeded["own"], OLD_SECRET)
    connection = _connection(db, seeded["own"])
    issued = issue_webhook_secret(db, app.extensions["hpass"], "os:tester", connection)
    db.commit()

    old = _post_event(client, seeded["own"], OLD_SECRET)
    new = _post_event(client, seeded["own"], issued.webhook_secret)

    assert before.status_code == 202
    assert old.status_code == 401
    assert new.status_code == 202


def test_webhook_errors_name_the_fix(client, seeded):
    """The 401 names the page and command that issue a new secret, and the 404
    names where to copy the webhook URL again."""
    wrong = _post_event(client, seeded["own"], "not-the-secret")
    unknown = _post_event(client, "no-such-id", "not-the-secret")
    canvas = client.post(
        f"/webhooks/canvas/{seeded['canvas']}?token=not-the-secret", json={}
    )

    assert wrong.status_code == 401
    assert "/admin/connect" in wrong.json["message"]
    assert (
        f"hpass-bridge connection new-webhook-secret {seeded['own']}"
        in wrong.json["message"]
    )
    assert unknown.status_code == 404
    assert "Webhook URLs list on the provider admin page" in unknown.json["message"]
    assert canvas.status_code == 401
    assert "connection new-webhook-secret" in canvas.json["message"]


def test_page_lists_webhook_urls(client, seeded):
    """The connect page shows each live site's webhook URL in a labelled field,
    with a link to a new secret, and nothing of the other provider."""
    sign_in(client, ADMIN_EMAIL)

    page = client.get("/admin/connect").get_data(as_text=True)

    own_url = f"http://127.0.0.1:5999/webhooks/moodle/{seeded['own']}"
    assert f'<label for="webhook-{seeded["own"]}">' in page
    assert (
        f'id="webhook-{seeded["own"]}" class="secret" type="text" readonly value="{own_url}"'
        in page
    )
    assert f'data-copy="webhook-{seeded["own"]}"' in page
    assert f"/webhooks/canvas/{seeded['canvas']}" in page
    assert f'href="/admin/connections/{seeded["own"]}/webhook-secret"' in page
    assert seeded["foreign"] not in page
    assert OLD_SECRET not in page


def test_page_issues_secret_after_confirmation(client, db, seeded):
    """The confirmation page's form issues the secret, which the next page shows
    once beside the webhook URL."""
    sign_in(client, ADMIN_EMAIL)
    link = f"/admin/connections/{seeded['own']}/webhook-secret"

    confirm = client.get(link)
    confirm_page = confirm.get_data(as_text=True)
    posted = client.post(link, data=CSRF)
    page = posted.get_data(as_text=True)
    later = client.get("/admin/connect").get_data(as_text=True)

    assert confirm.status_code == 200
    assert f'<form method="post" action="{link}">' in confirm_page
    assert 'name="csrf"' in confirm_page
    assert "stops working at once" in confirm_page
    assert posted.status_code == 200
    secret = re.search(
        r'id="new-webhook-secret" class="secret" type="text" readonly value="([\w-]+)"',
        page,
    ).group(1)
    assert "The old secret no longer works" in page
    assert 'id="new-webhook-url"' in page
    assert _connection(db, seeded["own"]).webhook_secret_sha256 == secret_digest(secret)
    assert secret not in later
    assert _issued_count(db) == 1
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == ACTION))
    assert event.actor.startswith("account:")


def test_page_rejects_bad_requests(client, db, seeded):
    """Another provider's id and an unknown id get the same 404, a post without the
    form token is rejected, and a disconnected site gets a 409. None of them
    changes a secret."""
    sign_in(client, ADMIN_EMAIL)
    foreign = f"/admin/connections/{seeded['foreign']}/webhook-secret"
    unknown = "/admin/connections/no-such-id/webhook-secret"
    own = f"/admin/connections/{seeded['own']}/webhook-secret"
    before_foreign = _connection(db, seeded["foreign"]).webhook_secret_sha256

    answers = {
        "foreign form": client.get(foreign),
        "foreign post": client.post(foreign, data=CSRF),
        "unknown form": client.get(unknown),
        "unknown post": client.post(unknown, data=CSRF),
    }
    no_token = client.post(own)
    wrong_token = client.post(own, data={"csrf": "not-the-token"})
    client.post(f"/admin/connections/{seeded['own']}/disconnect", data=CSRF)
    disconnected_form = client.get(own)
    disconnected_post = client.post(own, data=CSRF)

    for name, answer in answers.items():
        assert answer.status_code == 404, name
        assert "has no LMS site at this address" in answer.get_data(as_text=True), name
    assert no_token.status_code == 400
    assert wrong_token.status_code == 400
    assert disconnected_form.status_code == 303
    assert disconnected_post.status_code == 409
    assert "has no webhook secret" in disconnected_post.get_data(as_text=True)
    assert _connection(db, seeded["foreign"]).webhook_secret_sha256 == before_foreign
    assert _connection(db, seeded["own"]).webhook_secret_sha256 is None
    assert _issued_count(db) == 0


def test_page_translated_arabic(client, seeded):
    """The confirmation page is translated and the connect page is right to left."""
    sign_in(client, ADMIN_EMAIL)

    confirm = client.get(
        f"/admin/connections/{seeded['own']}/webhook-secret?lang=ar"
    ).get_data(as_text=True)
    page = client.get("/admin/connect").get_data(as_text=True)

    assert '<html lang="ar" dir="rtl">' in confirm
    assert "Issue a new secret" not in confirm
    assert "Webhook URLs" not in page
    assert 'dir="ltr"' in page


def _api(client, token: str, public_id: str):
    return client.post(
        f"/api/v1/lms-connections/{public_id}/webhook-secret",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_api_issues_secret(client, db, seeded):
    """The route returns the new secret and URL once and records the actor."""
    response = _api(client, seeded["token"], seeded["own"])

    assert response.status_code == 200
    body = response.json
    assert body["connection"]["id"] == seeded["own"]
    assert body["webhook_url"].endswith(f"/webhooks/moodle/{seeded['own']}")
    assert _connection(db, seeded["own"]).webhook_secret_sha256 == secret_digest(
        body["webhook_secret"]
    )
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == ACTION))
    assert event.actor.startswith("api-token:")


@pytest.mark.parametrize("target", ["foreign", "no-such-id"])
def test_api_bad_id_not_found(client, db, seeded, target):
    """Another provider's id and an unknown id are the same 404, with nothing changed."""
    before = _connection(db, seeded["foreign"]).webhook_secret_sha256

    response = _api(client, seeded["token"], seeded.get(target, target))

    assert response.status_code == 404
    assert response.json["error"] == "connection_not_found"
    assert "GET /api/v1/lms-connections" in response.json["message"]
    assert _connection(db, seeded["foreign"]).webhook_secret_sha256 == before
    assert _issued_count(db) == 0


def test_api_disconnected_conflict(client, db, seeded):
    """A disconnected connection is a 409 naming the disconnect."""
    client.post(
        f"/api/v1/lms-connections/{seeded['own']}/disconnect",
        headers={"Authorization": f"Bearer {seeded['token']}"},
    )

    response = _api(client, seeded["token"], seeded["own"])

    assert response.status_code == 409
    assert response.json["error"] == "connection_disconnected"
    assert _issued_count(db) == 0


@pytest.fixture
def runner(app, settings, monkeypatch):
    """A CLI runner whose commands open the app's instance folder and database."""
    monkeypatch.setenv("HPASS_INSTANCE_PATH", str(settings.instance_path))
    monkeypatch.setenv("HPASS_PUBLIC_BASE_URL", settings.public_base_url)
    monkeypatch.setenv("HPASS_LOOPBACK_DEV", "1")
    # The app's own keys, because the commands create no key files.
    monkeypatch.setenv("HPASS_SECRET_KEY", settings.secret_key.decode())
    monkeypatch.setenv("HPASS_ENCRYPTION_KEYS", settings.encryption_keys[0].decode())
    monkeypatch.setenv("HPASS_DATABASE_URL", settings.database_url)
    return app.test_cli_runner()


def _invoke(runner, *arguments, input=None):
    return runner.invoke(
        main, ["connection", "new-webhook-secret", *arguments], input=input
    )


def test_cli_issues_secret_with_yes(runner, db, seeded):
    """With --yes the command prints the webhook URL and the new secret once."""
    result = _invoke(runner, seeded["own"], "--provider", "alpha", "--yes")

    assert result.exit_code == 0, result.output
    secret = re.search(r"Webhook secret \(shown once.*\): (\S+)", result.output).group(
        1
    )
    assert (
        f"Webhook URL: http://127.0.0.1:5999/webhooks/moodle/{seeded['own']}"
        in result.output
    )
    assert "The old secret no longer works" in result.output
    assert _connection(db, seeded["own"]).webhook_secret_sha256 == secret_digest(secret)
    assert _issued_count(db) == 1


def test_cli_json_output(runner, db, seeded):
    """--json prints one document with the secret and the connection."""
    import json

    result = _invoke(runner, seeded["canvas"], "--provider", "alpha", "--yes", "--json")

    document = json.loads(result.output)
    assert result.exit_code == 0
    assert document["status"] == "issued"
    assert document["connection"]["id"] == seeded["canvas"]
    assert document["webhook_url"].endswith(f"?token={document['webhook_secret']}")


def test_cli_asks_first(runner, db, seeded):
    """Without --yes the command prompts first, and "n" or no input changes nothing."""
    declined = _invoke(runner, seeded["own"], "--provider", "alpha", input="n\n")
    no_answer = _invoke(runner, seeded["own"], "--provider", "alpha", input="")
    count_after_declines = _issued_count(db)
    accepted = _invoke(runner, seeded["own"], "--provider", "alpha", input="y\n")

    assert declined.exit_code == 1
    assert "stops working at once" in declined.output
    assert (
        "not_confirmed" in declined.output
        or "confirmation was not given" in declined.output
    )
    assert no_answer.exit_code == 1
    assert count_after_declines == 0
    assert accepted.exit_code == 0
    assert _issued_count(db) == 1


@pytest.mark.parametrize(
    ("target", "provider", "exit_code", "error"),
    [
        ("foreign", "alpha", 2, "connection_not_found"),
        ("no-such-id", "alpha", 2, "connection_not_found"),
        ("own", "no-such-provider", 2, "provider_not_found"),
    ],
    ids=["other-provider", "unknown-id", "unknown-provider"],
)
def test_cli_bad_input(runner, db, seeded, target, provider, exit_code, error):
    """Another provider's connection is reported like an unknown id, and nothing changes."""
    import json

    before = _connection(db, seeded["foreign"]).webhook_secret_sha256

    result = _invoke(
        runner, seeded.get(target, target), "--provider", provider, "--yes", "--json"
    )

    assert result.exit_code == exit_code
    assert json.loads(result.stdout)["error"] == error
    assert _connection(db, seeded["foreign"]).webhook_secret_sha256 == before
    assert _issued_count(db) == 0


def test_cli_disconnected_fails(runner, db, seeded):
    """A disconnected connection exits 1 and gets no secret."""
    connection = _connection(db, seeded["own"])
    disconnect_connection(db, "os:tester", connection)
    db.commit()

    result = _invoke(runner, seeded["own"], "--provider", "alpha", "--yes")

    assert result.exit_code == 1
    assert "was disconnected" in result.output
    assert _connection(db, seeded["own"]).webhook_secret_sha256 is None
