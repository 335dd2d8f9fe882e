"""The rule builder's activity rule: choosing the course's real activities."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func, select

from badge_engine.models import Achievement, CompletionFactRecord, Learner

from lti_tool.demo.peers.moodle_ws import DEMO_LEARNER_ID

from .conftest import MOODLE_COURSE_ID, add_credential, launch_as
from .test_course_pages import badge_form

QUIZ = "4001"
PAGE = "4002"


def activity_form(*activity_ids: str, match: str = "all") -> list[tuple[str, str]]:
    fields = list(badge_form(rule_kind="activities_completed").items())
    fields += [("activity_ids", activity_id) for activity_id in activity_ids]
    fields.append(("match", match))
    return fields


def post_form(client, url: str, fields: list[tuple[str, str]]):
    from werkzeug.datastructures import MultiDict

    return client.post(url, data=MultiDict(fields))


def test_builder_lists_course_activities(client, tenants):
    """The instructor page lists the LMS course's activities as checkboxes."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)

    assert f'id="activity-{QUIZ}"' in page
    assert "Final quiz" in page
    assert "Code of conduct" in page


def test_activity_rule_saved(client, tenants, db):
    """Choosing activities stores an activities_completed rule with their ids."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    response = post_form(
        client, f"/course/{alpha.course_id}/achievements", activity_form(QUIZ, PAGE)
    )

    assert response.status_code == 303
    created = db.scalar(
        select(Achievement).where(Achievement.name == "First aid basics")
    )
    assert created.award_rule == {
        "version": 1,
        "rule": {
            "kind": "activities_completed",
            "activity_ids": [QUIZ, PAGE],
            "match": "all",
        },
    }
    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    assert "the learner completes all of: Final quiz, Code of conduct." in page


def test_deleted_activity_refused(client, tenants, db):
    """A rule naming an activity the course no longer has is refused beside the list."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    before = db.scalar(select(func.count(Achievement.id)))

    response = post_form(
        client, f"/course/{alpha.course_id}/achievements", activity_form(QUIZ, "9999")
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert 'id="activity_ids-error"' in page
    assert "no longer exist in the course: 9999" in page
    assert db.scalar(select(func.count(Achievement.id))) == before


def test_no_activity_chosen_refused(client, tenants):
    """An activity rule without any activity is refused."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    response = post_form(
        client, f"/course/{alpha.course_id}/achievements", activity_form()
    )

    assert response.status_code == 400
    assert "Choose at least one activity." in response.get_data(as_text=True)


def test_learner_sees_missing_activity(client, tenants, db):
    """The learner page names the activities still missing, not the completed one."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    post_form(
        client, f"/course/{alpha.course_id}/achievements", activity_form(QUIZ, PAGE)
    )
    achievement = db.scalar(
        select(Achievement).where(Achievement.name == "First aid basics")
    )
    db.add(
        CompletionFactRecord(
            provider_id=alpha.provider_id,
            lms_connection_id=achievement.lms_connection_id,
            lms_course_id=MOODLE_COURSE_ID,
            lms_user_id="42",
            activity_id=PAGE,
            state="complete",
            occurred_at=datetime(2026, 3, 1, tzinfo=timezone.utc),
            source="event",
            dedupe_key="page-done",
        )
    )
    db.commit()
    launch_as(client, alpha, "learner")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    start = page.rindex('<ul class="missing-list">')
    missing = page[start : page.index("</ul>", start)]

    assert "Complete “<bdi>Final quiz</bdi>”." in missing
    assert "Code of conduct" not in missing


def test_learner_any_rule_nests_steps(client, tenants, db):
    """An any-match rule lists its activities as one item with a nested list."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    post_form(
        client,
        f"/course/{alpha.course_id}/achievements",
        activity_form(QUIZ, PAGE, match="any"),
    )
    launch_as(client, alpha, "learner")

    page = client.get(f"/course/{alpha.course_id}").get_data(as_text=True)
    start = page.rindex('<ul class="missing-list">')
    missing = page[start : page.index("</ul></li></ul>", start)]

    assert missing.count("<li>") == 3
    assert '<li>Complete one of these activities:<ul class="rule-parts">' in missing
    assert "<li>Complete “<bdi>Final quiz</bdi>”.</li>" in missing
    assert "<li>Complete “<bdi>Code of conduct</bdi>”.</li>" in missing


def test_rule_preview_lists_learners(client, tenants, db):
    """Previewing an unsaved rule lists each learner with what is missing, saving nothing."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    before = db.scalar(select(func.count(Achievement.id)))

    response = post_form(
        client,
        f"/course/{alpha.course_id}/achievements/preview",
        activity_form(QUIZ, match="any"),
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 200
    assert 'id="rule-preview"' in page
    assert "0 learners would earn this badge now." in page
    assert "Learner One" in page
    assert "Complete “<bdi>Final quiz</bdi>”." in page
    assert "Complete one of these activities" not in page
    assert 'value="First aid basics"' in page
    assert db.scalar(select(func.count(Achievement.id))) == before


def test_rule_preview_of_saved_badge(client, tenants):
    """Previewing from a badge's edit form keeps the form in edit mode."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    response = post_form(
        client,
        f"/course/{alpha.course_id}/achievements/{alpha.achievement_public_id}/preview",
        list(badge_form().items()),
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 200
    assert "Complete the course" in page
    assert f"/achievements/{alpha.achievement_public_id}/preview" in page
    assert "Save changes" in page


def test_rule_preview_lists_holders_apart(client, tenants, db):
    """A learner who has the saved badge is shown as a holder, not a new earner."""
    alpha, _ = tenants
    stand_in_learner = Learner(
        provider_id=alpha.provider_id,
        lms_connection_id=alpha.connection_id,
        lms_user_id=str(DEMO_LEARNER_ID),
        name="Learner One",
    )
    db.add(stand_in_learner)
    db.flush()
    alpha.learner_id = stand_in_learner.id
    add_credential(db, alpha)
    launch_as(client, alpha, "instructor")

    response = post_form(
        client,
        f"/course/{alpha.course_id}/achievements/{alpha.achievement_public_id}/preview",
        list(badge_form().items()),
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 200
    assert "0 learners would earn this badge now." in page
    assert "1 learner already holds it." in page
    assert 'data-holds="yes"' in page
    assert "Already holds it" in page


def test_rule_preview_needs_valid_rule(client, tenants):
    """A preview of a rule with no activity chosen names the field, like saving does."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    response = post_form(
        client, f"/course/{alpha.course_id}/achievements/preview", activity_form()
    )

    assert response.status_code == 400
    assert "Choose at least one activity." in response.get_data(as_text=True)
    assert 'id="rule-preview"' not in response.get_data(as_text=True)


def test_rule_preview_other_course_refused(client, tenants):
    """An instructor of one provider cannot preview rules in another's course."""
    alpha, beta = tenants
    launch_as(client, alpha, "instructor")

    response = post_form(
        client, f"/course/{beta.course_id}/achievements/preview", activity_form(QUIZ)
    )

    assert response.status_code in (403, 404)


def test_rule_preview_shows_skill_error(client, tenants):
    """A skill with a name but no link is marked, and its message is on the page,
    next to the preview."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    fields = activity_form(QUIZ, match="any") + [
        ("skill_name", "First aid"),
        ("skill_url", ""),
        ("skill_framework", ""),
    ]

    response = post_form(
        client, f"/course/{alpha.course_id}/achievements/preview", fields
    )
    page = response.get_data(as_text=True)

    assert 'aria-describedby="skill_url-1-error"' in page
    assert '<p class="field-error" id="skill_url-1-error">Skill 1 needs a link' in page
    assert 'id="error-summary"' in page
    assert 'id="rule-preview"' in page
    assert 'value="First aid"' in page


def test_rule_preview_takes_focus(client, tenants):
    """The preview result can take the focus that the page reload leaves on the body."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    response = post_form(
        client,
        f"/course/{alpha.course_id}/achievements/preview",
        activity_form(QUIZ, match="any"),
    )
    page = response.get_data(as_text=True)

    assert 'id="rule-preview" class="rule-preview" tabindex="-1"' in page
