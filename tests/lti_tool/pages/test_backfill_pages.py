"""Backfills from the instructor page: start one, follow its progress, cancel it."""

from __future__ import annotations

from sqlalchemy import select

from lti_tool.backfill import BackfillJob, BackfillStatus

from .conftest import launch_as


def start(client, tenant, csrf: str = "test-csrf"):
    return client.post(
        f"/course/{tenant.course_id}/achievements/{tenant.achievement_public_id}/backfill",
        data={"csrf": csrf},
    )


def jobs_of(db, tenant) -> list[BackfillJob]:
    db.expire_all()
    return list(
        db.scalars(
            select(BackfillJob)
            .where(BackfillJob.provider_id == tenant.provider_id)
            .order_by(BackfillJob.id)
        )
    )


def test_backfill_start_queues_job(db, client, tenants):
    """Starting a backfill adds a job for the badge and shows it with its progress."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    response = start(client, alpha)

    assert response.status_code == 303
    assert response.headers["Location"].endswith("#course-notice")
    [job] = jobs_of(db, alpha)
    assert job.achievement_ids == [alpha.achievement_id]
    assert job.requested_by == "lti:9"
    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    assert f'data-backfill="{job.public_id}"' in page
    assert "<progress" in page
    assert "Learners checked:" in page


def test_backfill_start_confirms_with_notice(db, client, tenants):
    """Starting a backfill shows a notice that takes the focus, once."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    start(client, alpha)
    [job] = jobs_of(db, alpha)
    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    again = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert 'tabindex="-1" id="course-notice" data-confirmation>' in page
    assert (
        "Awarding “<bdi>Badge of alpha</bdi>” to learners who already qualify has "
        "started "
        f"(job {job.public_id})"
    ) in page
    assert 'id="course-notice"' not in again


def test_backfill_joined_notice(db, client, tenants):
    """A second start while the first job is pending says no second job started."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    start(client, alpha)
    client.get(f"/course/{alpha.course_id}")

    start(client, alpha)
    page = client.get(f"/course/{alpha.course_id}?lang=fr").get_data(as_text=True)
    english_page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert "déjà en cours" in page
    assert 'id="course-notice"' not in english_page


def test_backfill_rows_say_why_and_when(db, client, tenants):
    """Two finished jobs of one badge differ by their reason and queue time."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    start(client, alpha)
    [first] = jobs_of(db, alpha)
    first.status = BackfillStatus.DONE.value
    db.commit()
    start(client, alpha)

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    french = client.get(f"/course/{alpha.course_id}?lang=fr").get_data(as_text=True)

    assert page.count("Started on request. Queued on ") == 2
    assert "UTC" in page
    assert french.count("Lancé à la demande. Mis en file") == 2


def test_backfill_three_clicks_one_job(db, client, tenants):
    """Clicking "award" three times while the job is pending shows one job."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    responses = [start(client, alpha) for _ in range(3)]

    assert [response.status_code for response in responses] == [303, 303, 303]
    [job] = jobs_of(db, alpha)
    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    assert page.count(f'data-backfill="{job.public_id}"') == 1


def test_backfill_progress_json(db, client, tenants):
    """The progress endpoint lists the course's jobs with their counts."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    start(client, alpha)

    body = client.get(f"/course/{alpha.course_id}/backfills.json").get_json()

    [job] = jobs_of(db, alpha)
    [row] = body["backfills"]
    assert row["id"] == job.public_id
    assert row["badges"] == ["Badge of alpha"]
    assert row["status"] == job.status
    assert "Learners checked:" in row["counts_text"]


def test_backfill_cancel_pending_job(db, client, tenants):
    """Cancelling a job that no worker has claimed stops it at once."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    start(client, alpha)
    [job] = jobs_of(db, alpha)
    # The test app has no worker, so the job waits unclaimed.
    assert job.status == BackfillStatus.PENDING.value

    response = client.post(
        f"/course/{alpha.course_id}/backfills/{job.public_id}/cancel",
        data={"csrf": "test-csrf"},
    )

    assert response.status_code == 303
    assert response.headers["Location"].endswith("#backfills")
    [job] = jobs_of(db, alpha)
    assert job.cancel_requested
    assert job.status == BackfillStatus.CANCELLED.value


def test_backfill_of_other_provider_hidden(db, client, tenants):
    """A job of provider B cannot be cancelled from provider A's course."""
    alpha, beta = tenants
    launch_as(client, beta, "instructor")
    start(client, beta)
    [beta_job] = jobs_of(db, beta)
    launch_as(client, alpha, "instructor")

    response = client.post(
        f"/course/{alpha.course_id}/backfills/{beta_job.public_id}/cancel",
        data={"csrf": "test-csrf"},
    )

    assert response.status_code == 404
    assert client.get(f"/course/{alpha.course_id}/backfills.json").get_json() == {
        "backfills": []
    }


def test_backfill_needs_instructor_and_csrf(db, client, tenants):
    """A learner cannot start a backfill, and a form without its token is rejected."""
    alpha, _ = tenants
    launch_as(client, alpha, "learner")
    assert start(client, alpha).status_code == 403
    assert client.get(f"/course/{alpha.course_id}/backfills.json").status_code == 403

    launch_as(client, alpha, "instructor")
    assert start(client, alpha, csrf="wrong").status_code == 400
    assert jobs_of(db, alpha) == []


def test_backfill_of_disconnected_lms_refused(db, client, tenants):
    """A badge on a disconnected LMS gets 409 saying why, and no job."""
    from connectors.models import LmsConnection
    from lti_tool.operations.lms import disconnect_connection

    alpha, _ = tenants
    achievement_connection = db.scalar(
        select(LmsConnection).where(LmsConnection.provider_id == alpha.provider_id)
    )
    disconnect_connection(db, "admin:test", achievement_connection)
    db.commit()
    launch_as(client, alpha, "instructor")

    response = start(client, alpha)

    assert response.status_code == 409
    assert "was disconnected" in response.get_data(as_text=True)
    assert jobs_of(db, alpha) == []


def test_backfill_row_french_colon(db, client, tenants):
    """A French backfill row has a no-break space before the colon."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor", locale="fr")
    start(client, alpha)

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert '<bdi>Badge of alpha</bdi>\u00a0: <strong class="backfill-status">' in page
