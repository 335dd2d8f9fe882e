"""End to end through the pages, the award pipeline and the engine, against the Moodle
stand-in over real HTTP: "why not yet?", corrections, renewal, identities and archives.
"""

from __future__ import annotations

import html
import json
import socket
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from badge_engine.facts import CompletionFact, CompletionState, FactSource
from badge_engine.identity import change_email, find_learner_by_email
from badge_engine.models import (
    Achievement,
    Credential,
    CredentialStatus,
    Learner,
)
from badge_engine.outbox import OutboxMessage
from badge_engine.renewal import SEND_EMAIL, queue_expiry_reminders
from lti_tool.demo.peers.moodle import MoodleStandIn
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID, DEMO_LEARNER_ID
from lti_tool.lti.registrations import create_registration
from lti_tool.models import LtiCourse
from lti_tool.pipeline import HandlerContext, evaluate_fact, record_fact
from tests.support.databases import reset_postgres
from tests.support.seed import add_moodle_connection, add_provider

TOKEN = "explain-test-token"
QUIZ, PAGE = "4001", "4002"
COMPLETED_AT = 1767225600  # 2026-01-01T00:00:00Z
TWO_ACTIVITIES = {
    "version": 1,
    "rule": {
        "kind": "activities_completed",
        "activity_ids": [QUIZ, PAGE],
        "match": "all",
    },
}


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request, settings):
    """The shared settings on SQLite and on PostgreSQL, with a public base URL on a
    free loopback port, because the correction test serves the bridge there."""
    if request.param == "postgresql":
        settings.database_url = reset_postgres()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.public_base_url = f"http://127.0.0.1:{port}"
    return settings


@pytest.fixture
def verifier(settings, tmp_path):
    """A CLI runner for `hpass-bridge verify` in loopback development mode."""
    return CliRunner(
        env={
            "HPASS_LOOPBACK_DEV": "1",
            "HPASS_PUBLIC_BASE_URL": settings.public_base_url,
            "HPASS_INSTANCE_PATH": str(tmp_path / "verifier"),
        }
    )


@pytest.fixture
def moodle():
    stand_in = MoodleStandIn(TOKEN)
    server = stand_in.start()
    yield stand_in
    server.stop()


@pytest.fixture
def course(app, db, moodle):
    """A provider with a Moodle course, an LTI course, a learner and a badge that
    needs both of the course's activities, valid for 365 days."""
    vault = app.extensions["hpass"].vault
    provider = add_provider(db, slug="field", name="Field Academy")
    connection = add_moodle_connection(db, vault, provider, moodle.site_url, TOKEN)
    registration = create_registration(
        db,
        vault,
        provider,
        issuer="https://lms-field.example.org",
        client_id="client-field",
        auth_login_url="https://lms-field.example.org/auth",
        key_set_url="https://lms-field.example.org/jwks",
        deployment_ids=("1",),
        lms_connection_id=connection.id,
    )
    lti_course = LtiCourse(
        provider_id=provider.id,
        registration_id=registration.id,
        lti_context_id="context-field",
        title="Field course",
        lms_course_id=str(DEMO_COURSE_ID),
    )
    learner = Learner(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_user_id=str(DEMO_LEARNER_ID),
        name="Learner One",
        email="Ana.Field@Example.org",
    )
    achievement = Achievement(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_course_id=str(DEMO_COURSE_ID),
        name="Field safety",
        description="Finished the field safety course.",
        criteria_narrative="Pass the quiz and read the code of conduct.",
        award_rule=TWO_ACTIVITIES,
        valid_for_days=365,
    )
    db.add_all([lti_course, learner, achievement])
    db.commit()
    return {
        "provider": provider,
        "connection": connection,
        "registration": registration,
        "course": lti_course,
        "learner": learner,
        "achievement": achievement,
    }


def _launch(client, course, role: str) -> None:
    with client.session_transaction() as session:
        session.clear()
        session.update(
            provider_id=course["provider"].id,
            registration_id=course["registration"].id,
            course_id=course["course"].id,
            lms_user_id=str(DEMO_LEARNER_ID) if role == "learner" else "2",
            learner_id=course["learner"].id if role == "learner" else None,
            role=role,
            csrf="test-csrf",
        )


def _fact(course, activity_id, state, at: int) -> CompletionFact:
    return CompletionFact(
        provider_id=course["provider"].id,
        lms_connection_id=course["connection"].id,
        lms_course_id=str(DEMO_COURSE_ID),
        lms_user_id=str(DEMO_LEARNER_ID),
        activity_id=activity_id,
        state=state,
        occurred_at=datetime.fromtimestamp(at, tz=UTC),
        source=FactSource.EVENT,
    )


def _evaluate(app, db, fact: CompletionFact):
    record, message = record_fact(db, fact)
    db.commit()
    if message is None:
        return record
    context = HandlerContext(
        bridge=app.extensions["hpass"], session=db, message=message
    )
    with app.app_context():
        evaluate_fact(context)
    db.commit()
    return record


def _complete_both(app, db, moodle, course, at: int = COMPLETED_AT):
    for cmid in (4001, 4002):
        moodle.set_activity_state(DEMO_COURSE_ID, DEMO_LEARNER_ID, cmid, 1, at)
    return _evaluate(app, db, _fact(course, PAGE, CompletionState.COMPLETE, at))


def _credentials(db, course) -> list[Credential]:
    return list(
        db.scalars(
            select(Credential)
            .where(Credential.provider_id == course["provider"].id)
            .order_by(Credential.id)
        )
    )


def _verify(runner, path, *extra):
    from lti_tool.cli_verify import verify

    result = runner.invoke(verify, ["--json", *extra, str(path)])
    return result.exit_code, json.loads(result.output.splitlines()[0])


# "Why not yet?"


def test_explain_two_activities_short(client, course):
    """A learner with neither activity done gets both missing by name, with the
    LMS state and the time it was read."""
    _launch(client, course, "learner")

    response = client.get(
        f"/course/{course['course'].id}/achievements/"
        f"{course['achievement'].public_id}/explain"
    )

    assert response.status_code == 200
    body = response.get_json()
    assert body["met"] is False
    assert body["source"] == "lms"
    assert body["read_at"]
    assert "“Final quiz”" in body["missing"]
    assert "“Code of conduct”" in body["missing"]
    assert body["conditions"][0]["lms_data"] == [
        "“Final quiz”: incomplete",
        "“Code of conduct”: incomplete",
    ]
    assert "blockers" not in body


def test_explain_on_learner_page(client, course):
    """The learner page shows the same explanation with both activity names."""
    _launch(client, course, "learner")

    page = client.get(f"/course/{course['course'].id}").get_data(as_text=True)

    assert "Why not yet?" in page
    assert "“<bdi>Final quiz</bdi>”" in page
    assert "“<bdi>Code of conduct</bdi>”" in page


def test_explain_french_page_english_json(client, moodle, course):
    """A French learner reads the conditions and LMS data in French on the page,
    while the JSON route keeps its English text for scripts."""
    moodle.set_activity_state(DEMO_COURSE_ID, DEMO_LEARNER_ID, 4001, 1, COMPLETED_AT)
    _launch(client, course, "learner")
    french = {"Accept-Language": "fr"}

    page = client.get(f"/course/{course['course'].id}", headers=french)
    body = client.get(
        f"/course/{course['course'].id}/achievements/"
        f"{course['achievement'].public_id}/explain",
        headers=french,
    ).get_json()
    text = html.unescape(page.get_data(as_text=True))
    explained = text[text.index('<details class="why-not-yet"') :]
    explained = explained[: explained.index("</details>")]

    assert "«\u00a0<bdi>Final quiz</bdi>\u00a0»\u00a0: terminée le <time" in explained
    assert "«\u00a0<bdi>Code of conduct</bdi>\u00a0»\u00a0: non terminée" in explained
    assert "incomplete" not in explained
    assert "Complete all of" not in explained
    assert body["conditions"][0]["description"] == (
        "Complete all of “Final quiz”, “Code of conduct”"
    )
    assert body["conditions"][0]["lms_data"][1] == "“Code of conduct”: incomplete"
    assert body["missing"] == ["“Code of conduct”"]


def test_explain_one_short(client, moodle, course):
    """With the quiz done, only the code of conduct is missing."""
    moodle.set_activity_state(DEMO_COURSE_ID, DEMO_LEARNER_ID, 4001, 1, COMPLETED_AT)
    _launch(client, course, "learner")

    body = client.get(
        f"/course/{course['course'].id}/achievements/"
        f"{course['achievement'].public_id}/explain"
    ).get_json()

    assert body["missing"] == ["“Code of conduct”"]
    assert body["conditions"][0]["lms_data"][0].startswith("“Final quiz”: complete at")


def test_explain_instructor_blockers(client, moodle, course):
    """An instructor asking about a Moodle user whose completion the course does
    not track sees the inactive enrolment, with progress from stored facts."""
    moodle.users[777] = "Former Learner"
    _launch(client, course, "instructor")

    body = client.get(
        f"/course/{course['course'].id}/achievements/"
        f"{course['achievement'].public_id}/explain?learner=777"
    ).get_json()

    codes = [blocker["code"] for blocker in body["blockers"]]
    assert "enrolment_inactive" in codes
    assert body["source"] == "stored_facts"


def test_explain_reversal_under_review(app, db, client, moodle, course):
    """A teacher's reversal after the award shows as a blocker to instructors."""
    _complete_both(app, db, moodle, course)
    moodle.override_activity_state(
        DEMO_COURSE_ID, DEMO_LEARNER_ID, 4001, 0, COMPLETED_AT + 60, send_event=False
    )
    _evaluate(
        app, db, _fact(course, QUIZ, CompletionState.INCOMPLETE, COMPLETED_AT + 60)
    )
    _launch(client, course, "instructor")

    body = client.get(
        f"/course/{course['course'].id}/achievements/"
        f"{course['achievement'].public_id}/explain?learner={DEMO_LEARNER_ID}"
    ).get_json()
    page = client.get(f"/course/{course['course'].id}").get_data(as_text=True)

    assert "reversal_under_review" in [b["code"] for b in body["blockers"]]
    assert 'data-code="reversal_under_review"' in page


def test_explain_foreign_course_forbidden(client, course):
    """The explanation of a course the session did not launch is refused."""
    _launch(client, course, "learner")

    response = client.get(
        f"/course/{course['course'].id + 99}/achievements/"
        f"{course['achievement'].public_id}/explain"
    )

    assert response.status_code == 403


def test_explain_unknown_achievement(client, course):
    """An achievement id the course does not award is not found."""
    _launch(client, course, "learner")

    response = client.get(
        f"/course/{course['course'].id}/achievements/no-such-badge/explain"
    )

    assert response.status_code == 404


# Corrections


def test_correction_supersedes_and_verifies(
    app, db, client, moodle, course, tmp_path, verifier
):
    """A corrected badge gives the holder a new version; both verify, and the old
    one reports "superseded" while the public history lists both."""
    from lti_tool.demo.peers.serving import serve_in_thread

    _complete_both(app, db, moodle, course)
    [old] = _credentials(db, course)
    _launch(client, course, "instructor")

    response = client.post(
        f"/course/{course['course'].id}/achievements/"
        f"{course['achievement'].public_id}/correct",
        data={"csrf": "test-csrf", "name": "Field safety (corrected)"},
    )

    assert response.status_code == 303
    db.expire_all()
    old, new = _credentials(db, course)
    assert old.status == CredentialStatus.SUPERSEDED.value
    assert old.revoked_at is None
    assert old.superseded_by_id == new.id
    assert new.previous_credential_id == old.id
    assert new.status == CredentialStatus.LIVE.value
    assert new.document["name"] == "Field safety (corrected)"
    assert new.awarded_at == old.awarded_at

    history = client.get(f"/credentials/{old.public_id}/versions").get_json()
    assert history["supersededBy"].endswith(new.public_id)
    assert [v["status"] for v in history["versions"]] == ["superseded", "live"]
    page = client.get(
        f"/credentials/{old.public_id}", headers={"Accept": "text/html"}
    ).get_data(as_text=True)
    assert "replaced by a newer one" in page
    assert f'href="{history["current"]}"' in page

    port = urlsplit(app.extensions["hpass"].settings.public_base_url).port
    server = serve_in_thread(app, port=port)
    try:
        runner = verifier
        old_file = tmp_path / "old.json"
        new_file = tmp_path / "new.json"
        old_file.write_text(json.dumps(old.document))
        new_file.write_text(json.dumps(new.document))
        old_code, old_report = _verify(runner, old_file)
        new_code, new_report = _verify(runner, new_file)
    finally:
        server.stop()

    assert old_code == 0, old_report
    assert new_code == 0, new_report
    assert "superseded" in [w["code"] for w in old_report["warnings"]]
    assert "superseded" not in [w["code"] for w in new_report["warnings"]]


def test_correction_without_change_rejected(app, db, client, moodle, course):
    """A correction that changes nothing is rejected with a 400 and issues nothing."""
    _complete_both(app, db, moodle, course)
    _launch(client, course, "instructor")

    response = client.post(
        f"/course/{course['course'].id}/achievements/"
        f"{course['achievement'].public_id}/correct",
        data={"csrf": "test-csrf", "name": "Field safety"},
    )

    assert response.status_code == 400
    assert "changes nothing" in response.get_data(as_text=True)
    assert len(_credentials(db, course)) == 1


def test_correction_by_learner_forbidden(client, course):
    """A learner cannot correct a badge."""
    _launch(client, course, "learner")

    response = client.post(
        f"/course/{course['course'].id}/achievements/"
        f"{course['achievement'].public_id}/correct",
        data={"csrf": "test-csrf", "name": "Mine now"},
    )

    assert response.status_code == 403


# Renewal


def test_issue_sets_valid_until(app, db, moodle, course):
    """A badge with a validity period is issued with validUntil 365 days later."""
    _complete_both(app, db, moodle, course)
    [credential] = _credentials(db, course)

    assert credential.valid_until == credential.awarded_at + timedelta(days=365)
    assert credential.document["validUntil"] == "2027-01-01T00:00:00Z"


def test_repeated_completion_no_duplicate(app, db, moodle, course):
    """The same completion reported again, by event and by poll, issues nothing new."""
    _complete_both(app, db, moodle, course)
    _evaluate(app, db, _fact(course, QUIZ, CompletionState.COMPLETE, COMPLETED_AT))
    repeat = _fact(course, PAGE, CompletionState.COMPLETE, COMPLETED_AT)
    _evaluate(app, db, CompletionFact(**{**repeat.__dict__, "source": FactSource.POLL}))

    assert len(_credentials(db, course)) == 1


def test_recompletion_after_reset_renews(app, db, moodle, course):
    """A course reset and a later completion yield a second credential linked to
    the first; the first becomes superseded, not revoked."""
    _complete_both(app, db, moodle, course)
    moodle.reset_progress(DEMO_COURSE_ID, DEMO_LEARNER_ID)
    _evaluate(
        app, db, _fact(course, QUIZ, CompletionState.INCOMPLETE, COMPLETED_AT + 86400)
    )
    later = COMPLETED_AT + 400 * 86400

    _complete_both(app, db, moodle, course, at=later)
    _evaluate(app, db, _fact(course, QUIZ, CompletionState.COMPLETE, later))

    db.expire_all()
    first, second = _credentials(db, course)
    assert second.previous_credential_id == first.id
    assert first.superseded_by_id == second.id
    assert first.status == CredentialStatus.SUPERSEDED.value
    assert first.supersede_reason == "renewal"
    assert second.status == CredentialStatus.LIVE.value
    assert second.awarded_at == datetime.fromtimestamp(later, tz=UTC)


def test_reminder_queued_once(app, db, moodle, course):
    """A credential within 30 days of expiry gets one reminder email in the outbox,
    however often the reminder run repeats."""
    _complete_both(app, db, moodle, course)
    [credential] = _credentials(db, course)
    now = credential.valid_until - timedelta(days=20)

    for _ in range(2):
        queue_expiry_reminders(
            db, course["provider"].id, base_url="http://127.0.0.1:5999", now=now
        )
        db.commit()

    messages = db.scalars(
        select(OutboxMessage).where(OutboxMessage.kind == SEND_EMAIL)
    ).all()
    assert len(messages) == 1
    assert messages[0].payload["to"] == ["Ana.Field@Example.org"]
    assert "expires on 2027-01-01" in messages[0].payload["subject"]


# Identities


def test_email_case_change_matches(app, db, moodle, course):
    """A learner whose email changed case still matches, keeps the badge, and the
    badge verifies for the address in either case."""
    from badge_engine.verify import check_ob3_recipient
    from badge_engine.verify_context import VerifyContext
    from badge_engine.verify_report import VerificationReport

    _complete_both(app, db, moodle, course)
    learner = db.get(Learner, course["learner"].id)
    change_email(db, learner, "ana.field@example.org")
    db.commit()

    found_old = find_learner_by_email(
        db, course["provider"].id, "ANA.FIELD@EXAMPLE.ORG"
    )
    found_new = find_learner_by_email(
        db, course["provider"].id, "ana.field@example.org"
    )
    [credential] = _credentials(db, course)
    report = VerificationReport()
    context = VerifyContext(recipient="ana.field@EXAMPLE.org")
    check_ob3_recipient(credential.document, context, report)

    assert found_old.id == learner.id
    assert found_new.id == learner.id
    assert credential.learner_id == learner.id
    assert not report.errors


def test_email_change_keeps_badges(app, db, moodle, course):
    """A learner who moves to a new address is found by both and keeps the badge."""
    _complete_both(app, db, moodle, course)
    learner = db.get(Learner, course["learner"].id)
    change_email(db, learner, "ana@new-home.example")
    db.commit()

    assert (
        find_learner_by_email(db, course["provider"].id, "Ana@New-Home.example").id
        == learner.id
    )
    assert (
        find_learner_by_email(db, course["provider"].id, "ana.field@example.org").id
        == learner.id
    )
    assert (
        find_learner_by_email(db, course["provider"].id, "someone@else.example") is None
    )
    assert [c.learner_id for c in _credentials(db, course)] == [learner.id]


# Archives


def test_archive_verifies_offline(app, db, client, moodle, course, tmp_path, verifier):
    """An archived credential verifies with the issuer's server stopped, and the
    report lists what was checked from the archive and what could not be."""
    _complete_both(app, db, moodle, course)
    [credential] = _credentials(db, course)
    _launch(client, course, "learner")

    response = client.get(
        f"/course/{course['course'].id}/credentials/{credential.public_id}/archive"
    )

    page = client.get(f"/course/{course['course'].id}").get_data(as_text=True)
    assert f"/credentials/{credential.public_id}/archive" in page
    assert response.status_code == 200
    archive = response.get_json()
    assert archive["type"] == "HPassCredentialArchive"
    assert "https://www.w3.org/ns/credentials/v2" in archive["contexts"]
    path = tmp_path / "archive.json"
    path.write_text(json.dumps(archive))

    # Nothing listens on the public base URL: the issuer's server is stopped.
    code, report = _verify(verifier, path)

    assert code == 0, report
    assert report["format"].startswith("archive:")
    warnings = [w["code"] for w in report["warnings"]]
    assert "status_as_of_archive" in warnings
    assert "keys_as_of_issue" in warnings
    assert any(check.startswith("archive:") for check in report["checks"])


def test_archive_tampered_fails(app, db, client, moodle, course, tmp_path, verifier):
    """An archive whose credential was altered fails verification offline."""
    _complete_both(app, db, moodle, course)
    [credential] = _credentials(db, course)
    _launch(client, course, "learner")
    archive = client.get(
        f"/course/{course['course'].id}/credentials/{credential.public_id}/archive"
    ).get_json()
    archive["credential"]["name"] = "Something else"
    path = tmp_path / "archive.json"
    path.write_text(json.dumps(archive))

    code, report = _verify(verifier, path)

    assert code == 1
    assert "invalid_signature" in [e["code"] for e in report["errors"]]


def test_archive_of_other_learner_hidden(app, db, client, moodle, course):
    """A learner cannot download the archive of someone else's credential."""
    _complete_both(app, db, moodle, course)
    [credential] = _credentials(db, course)
    _launch(client, course, "instructor")

    response = client.get(
        f"/course/{course['course'].id}/credentials/{credential.public_id}/archive"
    )

    assert response.status_code == 404
