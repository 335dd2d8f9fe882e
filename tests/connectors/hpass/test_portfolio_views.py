"""The portfolio blueprint's responses to bad and unexpected requests."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from connectors.hpass.models import (
    PortfolioAccount,
    PortfolioClient,
    PortfolioLinkRequest,
)
from tests.connectors.hpass.conftest import issue_and_queue, link_by_oauth

CSRF = "test-csrf-token"


def _login(client, seeded, role="learner", learner_id=None, locale=None):
    with client.session_transaction() as session:
        session.update(
            provider_id=seeded.provider_id,
            learner_id=learner_id if role == "learner" else None,
            role=role,
            csrf=CSRF,
            launch_locale=locale,
        )


def _start_link(client, portfolio) -> str:
    """Start linking and return the state the consent page would send back."""
    start = client.post(
        "/portfolio/link", data={"csrf": CSRF, "portfolio_url": portfolio.url}
    )
    return start.headers["Location"].split("state=")[1].split("&")[0]


def _count(db, model) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model))


def test_link_needs_learner(client, seeded):
    """Linking without a learner launch is forbidden, with how to launch."""
    _login(client, seeded, role="instructor")

    answer = client.post("/portfolio/link", data={"csrf": CSRF, "portfolio_url": "x"})

    assert answer.status_code == 403
    assert b"only a learner" in answer.data


@pytest.mark.parametrize(
    "url, words",
    [
        ("", b"portfolio_url is missing"),
        ("javascript:alert(1)", b"is not an http(s) address"),
        ("http://10.0.0.7/wallet", b"non-public address 10.0.0.7"),
        ("https://" + "a" * 600 + ".org", b"over the limit of 500"),
    ],
)
def test_link_rejects_bad_url(client, db, seeded, url, words):
    """A missing, odd, private or overlong portfolio URL gets a 400 naming the problem."""
    _login(client, seeded, learner_id=seeded.learner_id)

    answer = client.post("/portfolio/link", data={"csrf": CSRF, "portfolio_url": url})

    assert answer.status_code == 400
    assert words in answer.data
    assert _count(db, PortfolioClient) == 0


def test_link_error_links_back_to_course(client, seeded):
    """The error page of a rejected link offers the way back to the launched course."""
    _login(client, seeded, learner_id=seeded.learner_id)
    with client.session_transaction() as session:
        session["course_id"] = 7

    answer = client.post(
        "/portfolio/link",
        data={"csrf": CSRF, "portfolio_url": "javascript:alert(1)"},
        headers={"Accept": "text/html"},
    )

    assert answer.status_code == 400
    assert b'href="/course/7"' in answer.data
    assert b"Return to the course" in answer.data


def test_link_error_without_course_no_link(client, seeded):
    """Without a launched course the error page has no course link."""
    _login(client, seeded, learner_id=seeded.learner_id)

    answer = client.post(
        "/portfolio/link",
        data={"csrf": CSRF, "portfolio_url": "javascript:alert(1)"},
        headers={"Accept": "text/html"},
    )

    assert answer.status_code == 400
    assert b"Return to the course" not in answer.data


def test_link_without_discovery_stores_nothing(client, db, seeded, portfolio):
    """A URL with no discovery document gets a 400 and leaves nothing behind."""
    _login(client, seeded, learner_id=seeded.learner_id)

    answer = client.post(
        "/portfolio/link",
        data={"csrf": CSRF, "portfolio_url": portfolio.url + "/elsewhere"},
    )

    assert answer.status_code == 400
    assert b"cannot be linked" in answer.data
    assert _count(db, PortfolioClient) == 0
    assert _count(db, PortfolioLinkRequest) == 0


def test_link_without_csrf_rejected(client, seeded):
    """A link form without its CSRF token is rejected."""
    _login(client, seeded, learner_id=seeded.learner_id)

    answer = client.post(
        "/portfolio/link", data={"portfolio_url": "http://127.0.0.1:9"}
    )

    assert answer.status_code == 400


def test_link_redirects_with_pkce(client, db, seeded, portfolio):
    """Starting a link registers once and redirects with an S256 code challenge."""
    _login(client, seeded, learner_id=seeded.learner_id)

    answer = client.post(
        "/portfolio/link", data={"csrf": CSRF, "portfolio_url": portfolio.url}
    )

    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(portfolio.url + "/oauth/authorize?")
    assert "code_challenge_method=S256" in location
    assert _count(db, PortfolioLinkRequest) == 1
    assert len(portfolio.oauth.clients) == 1


def test_callback_unknown_state(client, seeded):
    """A callback whose state matches no request gets a 400 saying to start again."""
    answer = client.get("/portfolio/callback?code=abc&state=forged")

    assert answer.status_code == 400
    assert b"Start linking again from your course." in answer.data


def test_callback_switcher_links_to_course(client, seeded):
    """The callback's page switches language on the course, not on the used callback."""
    _login(client, seeded, learner_id=seeded.learner_id)
    with client.session_transaction() as session:
        session["course_id"] = 7

    page = client.get(
        "/portfolio/callback?code=abc&state=forged", headers={"Accept": "text/html"}
    ).get_data(as_text=True)

    assert 'href="/course/7?lang=ar"' in page
    assert "/portfolio/callback?lang=" not in page


def test_callback_denied_consent(client, db, seeded, portfolio):
    """A denied consent shows the reason, links nothing and deletes the request."""
    _login(client, seeded, learner_id=seeded.learner_id)
    start = client.post(
        "/portfolio/link", data={"csrf": CSRF, "portfolio_url": portfolio.url}
    )
    state = start.headers["Location"].split("state=")[1].split("&")[0]

    answer = client.get(
        f"/portfolio/callback?error=access_denied&error_description=no&state={state}"
    )

    assert answer.status_code == 200
    assert b"did not allow" in answer.data
    assert _count(db, PortfolioAccount) == 0
    assert _count(db, PortfolioLinkRequest) == 0


def test_callback_bad_code(client, db, seeded, portfolio):
    """A code the portfolio refuses ends in a visible failure and no account."""
    _login(client, seeded, learner_id=seeded.learner_id)
    start = client.post(
        "/portfolio/link", data={"csrf": CSRF, "portfolio_url": portfolio.url}
    )
    state = start.headers["Location"].split("state=")[1].split("&")[0]

    answer = client.get(f"/portfolio/callback?code=made-up&state={state}")

    assert answer.status_code == 502
    assert b"your portfolio did not accept the approval" in answer.data
    assert b"invalid_grant" not in answer.data
    assert _count(db, PortfolioAccount) == 0


def test_callback_bad_code_logged(client, seeded, portfolio, caplog):
    """The portfolio's reason for refusing a code goes to the log with the learner."""
    _login(client, seeded, learner_id=seeded.learner_id)
    state = _start_link(client, portfolio)

    client.get(f"/portfolio/callback?code=made-up&state={state}")

    assert "portfolio_code_exchange_failed" in caplog.text
    assert "invalid_grant" in caplog.text or "unknown, used or expired" in caplog.text
    assert str(seeded.learner_id) in caplog.text


def test_callback_without_code_or_error(client, db, seeded, portfolio):
    """A callback with neither a code nor an error gets a 400 and links nothing."""
    _login(client, seeded, learner_id=seeded.learner_id)
    state = _start_link(client, portfolio)

    answer = client.get(
        f"/portfolio/callback?state={state}", headers={"Accept": "text/html"}
    )

    assert answer.status_code == 400
    assert b"neither an approval nor a refusal" in answer.data
    assert _count(db, PortfolioAccount) == 0


def test_callback_of_other_learner(client, db, seeded, portfolio):
    """A learner who opens another learner's callback gets a 403 in plain words."""
    _login(client, seeded, learner_id=seeded.learner_id)
    state = _start_link(client, portfolio)
    _login(client, seeded, learner_id=seeded.learner_id + 1000)

    answer = client.get(
        f"/portfolio/callback?code=abc&state={state}", headers={"Accept": "text/html"}
    )

    assert answer.status_code == 403
    assert b"belongs to another learner&#39;s link request" in answer.data
    assert _count(db, PortfolioLinkRequest) == 1


def test_callback_errors_in_french(client, seeded, portfolio):
    """A French learner reads a denied consent, a refused code and an unknown
    state in French."""
    _login(client, seeded, learner_id=seeded.learner_id, locale="fr")
    denied_state = _start_link(client, portfolio)
    bad_code_state = _start_link(client, portfolio)

    denied = client.get(
        f"/portfolio/callback?error=access_denied&error_description=no&state={denied_state}"
    ).get_data(as_text=True)
    bad_code = client.get(
        f"/portfolio/callback?code=made-up&state={bad_code_state}"
    ).get_data(as_text=True)
    unknown = client.get(
        "/portfolio/callback?code=abc&state=forged", headers={"Accept": "text/html"}
    ).get_data(as_text=True)

    assert '<html lang="fr" dir="ltr">' in denied
    assert "Vous n’avez pas autorisé le pont à ajouter des badges" in denied
    assert "(no)" in denied
    assert "You did not allow" not in denied
    assert "votre portfolio n’a pas accepté l’autorisation" in bad_code
    assert "Linking failed" not in bad_code
    assert "ne correspond à aucune demande de liaison" in unknown
    assert "matches no link request" not in unknown


def test_callback_errors_in_arabic(client, db, seeded, portfolio):
    """An Arabic learner reads an expired consent in Arabic on a right-to-left page."""
    from datetime import datetime, timedelta, timezone

    _login(client, seeded, learner_id=seeded.learner_id, locale="ar")
    with client.session_transaction() as session:
        session["course_id"] = 7
    state = _start_link(client, portfolio)
    stale = db.scalars(select(PortfolioLinkRequest)).one()
    stale.created_at = datetime.now(timezone.utc) - timedelta(hours=2)
    stale.return_course_id = 7
    db.commit()

    answer = client.get(f"/portfolio/callback?code=abc&state={state}")
    page = answer.get_data(as_text=True)

    assert answer.status_code == 400
    assert '<html lang="ar" dir="rtl">' in page
    assert "استغرقت هذه الموافقة أكثر من ساعة" in page
    assert "longer than an hour" not in page
    assert 'href="/course/7">العودة إلى المقرر</a>' in page


def test_unlink_other_learner_not_found(app, client, db, seeded, portfolio):
    """A learner cannot unlink another learner's portfolio."""
    account = link_by_oauth(app, db, seeded, portfolio.url)
    _login(client, seeded, learner_id=seeded.learner_id + 1000)

    answer = client.post(
        f"/portfolio/accounts/{account.id}/unlink", data={"csrf": CSRF}
    )

    assert answer.status_code == 404
    db.expire_all()
    assert db.get(PortfolioAccount, account.id).access_token_encrypted is not None


def test_unlink_deletes_tokens(app, client, db, seeded, portfolio):
    """Unlinking deletes the access and refresh tokens."""
    account = link_by_oauth(app, db, seeded, portfolio.url)
    _login(client, seeded, learner_id=seeded.learner_id)

    answer = client.post(
        f"/portfolio/accounts/{account.id}/unlink", data={"csrf": CSRF}
    )

    assert answer.status_code == 200
    db.expire_all()
    stored = db.get(PortfolioAccount, account.id)
    assert stored.access_token_encrypted is None
    assert stored.refresh_token_encrypted is None
    assert stored.state == "unlinked"


def test_retry_needs_admin(client, seeded):
    """A learner cannot retry deliveries."""
    _login(client, seeded, learner_id=seeded.learner_id)

    answer = client.post("/portfolio/deliveries/1/retry", data={"csrf": CSRF})

    assert answer.status_code == 403


def test_retry_without_course_forbidden(client, seeded):
    """An instructor session without a launched course cannot retry deliveries."""
    _login(client, seeded, role="instructor")

    answer = client.post("/portfolio/deliveries/999/retry", data={"csrf": CSRF})

    assert answer.status_code == 403
    assert b"open the tool from a course you teach" in answer.data


def test_deliveries_listed_for_learner(app, client, db, seeded, portfolio):
    """A learner gets the status of each of their deliveries."""
    link_by_oauth(app, db, seeded, portfolio.url)
    credential, _ids = issue_and_queue(app, db, seeded)
    _login(client, seeded, learner_id=seeded.learner_id)

    listed = client.get("/portfolio/deliveries").get_json()["deliveries"]

    assert [item["credential"] for item in listed] == [credential.public_id]
    assert listed[0]["status"] == "queued"
    assert listed[0]["route"] == "ob3_api"


def test_deliveries_without_course_forbidden(client, seeded):
    """An instructor session without a launched course lists no deliveries."""
    _login(client, seeded, role="instructor")

    answer = client.get("/portfolio/deliveries?status=failed")

    assert answer.status_code == 403


def test_abandoned_consent_expires(client, db, seeded, portfolio):
    """A consent answered after an hour is refused, and a new link clears old requests."""
    from datetime import datetime, timedelta, timezone

    _login(client, seeded, learner_id=seeded.learner_id)
    start = client.post(
        "/portfolio/link", data={"csrf": CSRF, "portfolio_url": portfolio.url}
    )
    state = start.headers["Location"].split("state=")[1].split("&")[0]
    stale = db.scalars(select(PortfolioLinkRequest)).one()
    stale.created_at = datetime.now(timezone.utc) - timedelta(hours=2)
    db.commit()

    answer = client.get(f"/portfolio/callback?code=abc&state={state}")

    assert answer.status_code == 400
    assert b"longer than an hour" in answer.data
    assert _count(db, PortfolioLinkRequest) == 0
    assert _count(db, PortfolioAccount) == 0


def test_new_link_deletes_abandoned_requests(client, db, seeded, portfolio):
    """Starting a link deletes the provider's link requests older than an hour."""
    from datetime import datetime, timedelta, timezone

    _login(client, seeded, learner_id=seeded.learner_id)
    client.post("/portfolio/link", data={"csrf": CSRF, "portfolio_url": portfolio.url})
    stale = db.scalars(select(PortfolioLinkRequest)).one()
    stale.created_at = datetime.now(timezone.utc) - timedelta(hours=2)
    db.commit()

    client.post("/portfolio/link", data={"csrf": CSRF, "portfolio_url": portfolio.url})

    assert _count(db, PortfolioLinkRequest) == 1
