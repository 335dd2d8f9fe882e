"""Course rosters for previews, explanations and backfills, for Moodle and Canvas.

A roster lists a course's enrolled learners page by page and reads one learner's
progress (see `lti_tool.backfill.CourseRoster`). A preview or explanation reads the
LMS while an admin waits, so `request_roster` builds clients with short timeouts
and at most one retry. Importing this module registers the Canvas roster for
backfill jobs, which the workers run with the normal timeouts.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from badge_engine.rules import LearnerProgress
from connectors.canvas.client import CanvasClient
from connectors.canvas.connection import client_for_connection
from connectors.canvas.progress import read_learner_progress as read_canvas_progress
from connectors.models import LmsConnection, LmsKind
from connectors.moodle.client import MoodleClient
from connectors.moodle.roster import EnrolledLearner, MoodleRoster, RosterPage
from lti_tool.backfill import register_roster
from lti_tool.bridge import Bridge
from lti_tool.operations import InvalidInput
from lti_tool.operations.time_budget import BudgetSession

# Connect and read timeouts in seconds for LMS calls made while an admin waits.
REQUEST_TIMEOUT = (3.05, 10.0)
# Maximum wait in seconds before the one retry of a throttled Canvas request.
REQUEST_MAX_BACKOFF = 5.0


def check_canvas_id(value: str, what: str) -> None:
    """Reject an id that is not a Canvas numeric id, because it goes into URL paths."""
    if not (value.isascii() and value.isdigit()):
        raise InvalidInput(
            f"Canvas {what} must be digits, as Canvas shows it in its URLs, got "
            f"{value[:40]!r}",
            code="invalid_canvas_id",
        )


class CanvasRoster:
    """A Canvas course's students (StudentEnrollment, active or completed).

    Canvas pages enrollments with opaque bookmarks rather than offsets, so the
    roster reads the whole enrollment list once and slices it. A student enrolled
    in two sections has two enrollments and is listed once.
    """

    def __init__(self, client: CanvasClient, session: Session | None = None) -> None:
        self.client = client
        # The session that contains the connection's credential row. An OAuth2 token
        # refresh writes the new tokens to it, and the roster commits them when it
        # owns the session.
        self.session = session
        self._students: dict[str, list[EnrolledLearner]] = {}

    def _course_students(self, lms_course_id: str) -> list[EnrolledLearner]:
        check_canvas_id(lms_course_id, "course id")
        if lms_course_id not in self._students:
            seen: dict[str, EnrolledLearner] = {}
            for enrollment in self.client.list_student_enrollments(lms_course_id):
                user_id = str(enrollment.get("user_id") or "")
                if not user_id or user_id in seen:
                    continue
                user = enrollment.get("user") or {}
                seen[user_id] = EnrolledLearner(user_id, user.get("name") or None, None)
            self._students[lms_course_id] = list(seen.values())
            self._save_refreshed_tokens()

        return self._students[lms_course_id]

    def enrolled_learners(
        self, lms_course_id: str, offset: int, limit: int
    ) -> RosterPage:
        students = self._course_students(lms_course_id)
        page = students[offset : offset + limit]
        return RosterPage(
            page, users_read=len(page), is_last=offset + len(page) >= len(students)
        )

    def read_progress(self, lms_course_id: str, lms_user_id: str) -> LearnerProgress:
        check_canvas_id(lms_course_id, "course id")
        check_canvas_id(lms_user_id, "user id")
        progress = read_canvas_progress(self.client, lms_course_id, lms_user_id)
        self._save_refreshed_tokens()
        return progress

    def _save_refreshed_tokens(self) -> None:
        if self.session is not None:
            self.session.commit()


def _canvas_job_roster(bridge: Bridge, connection: LmsConnection) -> CanvasRoster:
    """Build the roster a backfill job uses, with its own session for token refreshes."""
    session = bridge.session_factory()
    stored = session.get(LmsConnection, connection.id)
    timeout = bridge.settings.http_timeout_seconds
    client = client_for_connection(
        session,
        bridge.vault,
        stored,
        policy=bridge.outbound_policy,
        timeout=(3.05, timeout),
        max_retries=3,
    )
    return CanvasRoster(client, session)


register_roster(LmsKind.CANVAS.value, _canvas_job_roster)


def request_roster(bridge: Bridge, session: Session, connection: LmsConnection):
    """Return a roster for reads an admin waits for, or None for an unknown LMS kind.

    For Canvas, a token refresh writes to `session`, which the caller commits.
    Raises `ActionError` for a disconnected connection, which has no token left.
    """
    from lti_tool.operations.lms import check_connected

    check_connected(connection)
    if connection.kind == LmsKind.MOODLE.value:
        return MoodleRoster(request_moodle_client(bridge, connection))
    if connection.kind == LmsKind.CANVAS.value:
        return CanvasRoster(request_canvas_client(bridge, session, connection))

    return None


def _moodle_token(bridge: Bridge, connection: LmsConnection) -> str:
    return bridge.vault.decrypt(
        connection.api_token_encrypted,
        what=f"API token of LMS connection {connection.id}",
    ).decode()


def request_moodle_client(bridge: Bridge, connection: LmsConnection) -> MoodleClient:
    """Build a Moodle client for calls an admin waits for."""
    return MoodleClient(
        connection.base_url,
        _moodle_token(bridge, connection),
        timeout=REQUEST_TIMEOUT,
        max_retries=1,
        policy=bridge.outbound_policy,
    )


def budget_moodle_client(
    bridge: Bridge, connection: LmsConnection, http: BudgetSession
) -> MoodleClient:
    """Build a Moodle client that sends no retry and stops when `http`'s budget ends.

    The caller closes `http`, which the client does not own.
    """
    budget = http.budget_seconds
    return MoodleClient(
        connection.base_url,
        _moodle_token(bridge, connection),
        timeout=(budget, budget),
        max_retries=0,
        session=http,
    )


def request_canvas_client(
    bridge: Bridge, session: Session, connection: LmsConnection
) -> CanvasClient:
    """Build a Canvas client for calls an admin waits for.

    Raises CanvasTokenInvalid when the connection has no REST API credentials.
    """
    return client_for_connection(
        session,
        bridge.vault,
        connection,
        policy=bridge.outbound_policy,
        timeout=REQUEST_TIMEOUT,
        max_retries=1,
        max_backoff=REQUEST_MAX_BACKOFF,
    )


def budget_canvas_client(
    bridge: Bridge, session: Session, connection: LmsConnection, http: BudgetSession
) -> CanvasClient:
    """Build a Canvas client that stops when `http`'s budget ends.

    It sends no retry and does not wait when Canvas reports a low rate limit quota,
    because a wait would outlast the budget. A token refresh goes through `http` too.
    Raises CanvasTokenInvalid when the connection has no REST API credentials.
    """
    budget = http.budget_seconds
    return client_for_connection(
        session,
        bridge.vault,
        connection,
        http=http,
        policy=bridge.outbound_policy,
        timeout=(budget, budget),
        max_retries=0,
        max_backoff=0.0,
    )
