"""A Moodle stand-in: the web service calls the bridge makes, and outbound events.

`POST` or `GET /webservice/rest/server.php` with `wstoken`, `wsfunction` and
`moodlewsrestformat=json` runs the functions in `moodle_ws.SERVED_FUNCTIONS` on
in-memory state. Each token has its own list of functions (its external service),
so a token can lack some; calling one of those raises `accessexception`, and site
info lists only the token's functions. Errors come back as Moodle sends them: HTTP
200 with `exception`, `errorcode` and `message`.

The control page at `/` marks the demo course, or one of its activities, complete for
the demo learner. When a webhook URL is configured, that posts a `course_completed` or
`course_module_completion_updated` event the way a Moodle outbound webhook plugin
does, with the connection's shared secret in `token`.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
import typing as t
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

import requests
from flask import (
    Flask,
    Response,
    has_request_context,
    jsonify,
    redirect,
    render_template_string,
    request,
    url_for,
)

from lti_tool.demo.peers import moodle_ws
from lti_tool.demo.peers.page_policy import add_page_policy
from lti_tool.demo.peers.moodle_ws import (
    COMPLETE_STATES,
    COMPLETION_COMPLETE,
    DEMO_COURSE_ID,
    DEMO_INSTRUCTOR_ID,
    DEMO_LEARNER_ID,
    MoodleCourse,
    MoodleError,
)
from lti_tool.demo.peers.serving import (
    RunningServer,
    peer_app,
    require_loopback_url,
    serve_in_thread,
)

logger = logging.getLogger(__name__)

WS_PATH = "/webservice/rest/server.php"

MAINTENANCE_HTML = (
    "<!doctype html><html><head><title>Site maintenance</title></head>"
    "<body><p>This site is undergoing maintenance.</p></body></html>"
)


@dataclass(frozen=True)
class WebhookDelivery:
    """The outcome of posting one event to the bridge's webhook URL."""

    eventname: str
    status_code: int | None
    error: str | None


class MoodleStandIn:
    """In-memory Moodle with web service token `token` and one demo course.

    `webhook_url` and `webhook_secret` configure outbound events: the secret goes
    in each event's `token` field. `site_url` is this stand-in's own base URL, used
    in site info and in the events' `host`; `start()` sets it when unset.
    """

    def __init__(
        self,
        token: str = "demo-moodle-token",  # noqa: S107 - the demo's stand-in only
        *,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        site_url: str | None = None,
        webhook_timeout_seconds: float = 5.0,
        page_links: t.Sequence[tuple[str, str]] = (),
    ) -> None:
        if webhook_url is not None:
            require_loopback_url(webhook_url, "webhook_url")
            if not webhook_secret:
                raise ValueError(
                    "webhook_secret is required with webhook_url; use the shared "
                    "secret of the bridge's Moodle connection"
                )

        self.token = token
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.site_url = site_url.rstrip("/") if site_url else None
        self.webhook_timeout_seconds = webhook_timeout_seconds
        # (label, URL) pairs that the index page links to, such as the demo page.
        self.page_links = tuple(page_links)
        self.users: dict[int, str] = {
            DEMO_LEARNER_ID: "Learner One",
            DEMO_INSTRUCTOR_ID: "Ines Instructor",
        }
        self.courses: dict[int, MoodleCourse] = {}
        self.deliveries: list[WebhookDelivery] = []
        # The functions of each token's external service.
        self.token_functions: dict[str, tuple[str, ...]] = {
            token: moodle_ws.SERVED_FUNCTIONS
        }
        # Web service calls made, as (wsfunction, params), for tests to inspect.
        self.calls: list[tuple[str, dict[str, t.Any]]] = []

        self._lock = threading.Lock()
        self._course_completions: dict[tuple[int, int], int] = {}
        self._activity_states: dict[tuple[int, int, int], tuple[int, int]] = {}
        self._overrides: dict[tuple[int, int, int], int] = {}
        self._grades: dict[tuple[int, int, int], tuple[float, int]] = {}
        self._instructors: set[int] = {DEMO_INSTRUCTOR_ID}
        # Answers that replace the next web service responses: (delay in seconds,
        # HTML body or None).
        self._scripted: list[tuple[float, str | None]] = []
        self._row_ids: dict[tuple[str, int, int], int] = {}
        self._next_row_ids = {
            "course_completions": 90001,
            "course_modules_completion": 70001,
        }

        self.add_course(moodle_ws.demo_course())

    def add_token(self, token: str, functions: t.Iterable[str]) -> None:
        """Add a token whose external service lists only `functions`."""
        with self._lock:
            self.token_functions[token] = tuple(functions)

    def slow_next(self, count: int, seconds: float) -> None:
        """Delay the next `count` web service responses by `seconds`."""
        with self._lock:
            self._scripted += [(seconds, None)] * count

    def html_next(self, count: int, html: str = MAINTENANCE_HTML) -> None:
        """Answer the next `count` web service calls with an HTML page, as a site
        behind a login or maintenance proxy does."""
        with self._lock:
            self._scripted += [(0.0, html)] * count

    def revoke_token(self, token: str) -> None:
        """Delete a token, so its next call fails with `invalidtoken`."""
        with self._lock:
            self.token_functions.pop(token, None)

    def enrol_learner(self, course_id: int, user_id: int, fullname: str) -> None:
        """Enrol a learner whose completion the course tracks."""
        course = self._require_course(course_id)
        with self._lock:
            self.users[user_id] = fullname
            course.tracked_user_ids.add(user_id)

    def enrolled_user_ids(self, course_id: int) -> list[int]:
        """Return the course's enrolled users in Moodle's order (by user id).

        The instructor is enrolled in every course but not tracked by completion.
        """
        course = self._require_course(course_id)
        with self._lock:
            return sorted(course.tracked_user_ids | self._instructors)

    def set_grade(
        self, course_id: int, user_id: int, cmid: int, grade: float, time: int
    ) -> None:
        """Set a learner's raw grade (out of 100) in one activity."""
        with self._lock:
            self._grades[(course_id, user_id, cmid)] = (grade, time)

    def override_activity_state(
        self,
        course_id: int,
        user_id: int,
        cmid: int,
        state: int,
        time: int,
        *,
        teacher_id: int = DEMO_INSTRUCTOR_ID,
        send_event: bool = True,
    ) -> dict[str, t.Any]:
        """Override an activity's completion as a teacher, and send the event.

        Like Moodle, the course completion already recorded stays as it is. Returns
        the `course_module_completion_updated` event, which is posted when a
        webhook URL is configured and `send_event` is True.
        """
        self.set_activity_state(course_id, user_id, cmid, state, time)
        with self._lock:
            self._overrides[(course_id, user_id, cmid)] = teacher_id

        event = self.build_module_completion_event(
            course_id,
            user_id,
            cmid,
            state,
            time,
            actor_id=teacher_id,
            overrideby=teacher_id,
        )
        if send_event and self.webhook_url is not None:
            self._deliver(event)
        return event

    def add_course(self, course: MoodleCourse) -> None:
        """Add or replace a course."""
        with self._lock:
            self.courses[course.course_id] = course

    def set_course_completed(
        self, course_id: int, user_id: int, completed: bool, time: int
    ) -> None:
        """Set or clear the course completion; `time` is the Unix completion time."""
        self._require_course(course_id)
        with self._lock:
            if completed:
                self._course_completions[(course_id, user_id)] = time
            else:
                self._course_completions.pop((course_id, user_id), None)

    def set_activity_state(
        self, course_id: int, user_id: int, cmid: int, state: int, time: int = 0
    ) -> None:
        """Set one activity's completion state (0-3) and Unix completion time."""
        if state not in (0, 1, 2, 3):
            raise ValueError(f"completion state must be 0, 1, 2 or 3, got {state!r}")
        course = self._require_course(course_id)
        if course.find_activity(cmid) is None:
            raise ValueError(f"course {course_id} has no course module {cmid}")

        with self._lock:
            self._activity_states[(course_id, user_id, cmid)] = (state, time)
            self._overrides.pop((course_id, user_id, cmid), None)

    def course_completion_time(self, course_id: int, user_id: int) -> int | None:
        """Return the Unix time the user completed the course, or None."""
        with self._lock:
            return self._course_completions.get((course_id, user_id))

    def activity_states(
        self, course_id: int, user_id: int
    ) -> dict[int, tuple[int, int]]:
        """Return {cmid: (state, timecompleted)} for the course's activities."""
        course = self._require_course(course_id)
        with self._lock:
            return {
                activity.cmid: self._activity_states.get(
                    (course_id, user_id, activity.cmid), (0, 0)
                )
                for activity in course.activities
            }

    def _ws_activity_states(
        self, course_id: int, user_id: int
    ) -> dict[int, tuple[int, int, int | None]]:
        states = self.activity_states(course_id, user_id)
        with self._lock:
            return {
                cmid: (state, time, self._overrides.get((course_id, user_id, cmid)))
                for cmid, (state, time) in states.items()
            }

    def reset_progress(self, course_id: int, user_id: int) -> None:
        """Set the course and its activities back to not completed for a user."""
        course = self._require_course(course_id)
        with self._lock:
            self._course_completions.pop((course_id, user_id), None)
            for activity in course.activities:
                self._activity_states.pop((course_id, user_id, activity.cmid), None)

    def complete_course(
        self,
        course_id: int,
        user_id: int,
        time: int | None = None,
        *,
        send_event: bool = True,
    ) -> dict[str, t.Any] | None:
        """Complete every activity and the course, then send `course_completed`.

        Returns the event, or None when the course was already complete, because
        Moodle sends the event once. The event is posted only when a webhook URL is
        configured and `send_event` is True; False stands for a completion whose
        event Moodle skipped or the webhook lost. The outcome goes to
        `deliveries`, and a failed delivery is logged there instead of raised.
        """
        if time is None:
            time = _unix_now()
        if self.course_completion_time(course_id, user_id) is not None:
            return None

        for cmid, (state, _) in self.activity_states(course_id, user_id).items():
            if state not in COMPLETE_STATES:
                self.set_activity_state(
                    course_id, user_id, cmid, COMPLETION_COMPLETE, time
                )
        self.set_course_completed(course_id, user_id, True, time)
        logger.info("course %s completed for user %s", course_id, user_id)

        event = self.build_course_completed_event(course_id, user_id, time)
        if send_event and self.webhook_url is not None:
            self._deliver(event)

        return event

    def complete_activity(
        self,
        course_id: int,
        user_id: int,
        cmid: int,
        time: int | None = None,
        *,
        send_event: bool = True,
    ) -> dict[str, t.Any] | None:
        """Complete one activity as the learner, then send its completion event.

        Returns the `course_module_completion_updated` event, or None when the
        activity was already complete, because Moodle sends an event only when the
        state changes. Raises ValueError for a course module the course lacks.
        Delivery works as in `complete_course`.

        NOTE: the course completion stays as it is, even after the last activity.
        Moodle's cron would then complete the course, but the stand-in has no cron,
        so call `complete_course` (the page's course button) for that.
        """
        if time is None:
            time = _unix_now()
        states = self.activity_states(course_id, user_id)
        if cmid not in states:
            raise ValueError(f"course {course_id} has no course module {cmid}")
        state, _ = states[cmid]
        if state in COMPLETE_STATES:
            return None

        self.set_activity_state(course_id, user_id, cmid, COMPLETION_COMPLETE, time)
        logger.info(
            "course module %s of course %s completed for user %s",
            cmid,
            course_id,
            user_id,
        )

        event = self.build_module_completion_event(
            course_id, user_id, cmid, COMPLETION_COMPLETE, time
        )
        if send_event and self.webhook_url is not None:
            self._deliver(event)

        return event

    def build_course_completed_event(
        self,
        course_id: int,
        user_id: int,
        time: int,
        *,
        actor_id: int = DEMO_INSTRUCTOR_ID,
    ) -> dict[str, t.Any]:
        """Build a `\\core\\event\\course_completed` event as the webhook sends it.

        `time` becomes `timecreated`. `actor_id` is the event's `userid`, the user
        whose action or cron run completed the course; `relateduserid` is the
        learner.
        """
        course = self._require_course(course_id)

        return {
            "eventname": "\\core\\event\\course_completed",
            "component": "core",
            "action": "completed",
            "target": "course",
            "objecttable": "course_completions",
            "objectid": self._row_id("course_completions", course_id, user_id),
            "crud": "u",
            "edulevel": 2,
            "contextid": course.context_id,
            "contextlevel": 50,
            "contextinstanceid": course_id,
            "userid": actor_id,
            "courseid": course_id,
            "relateduserid": user_id,
            "anonymous": 0,
            "other": {"relateduserid": user_id},
            "timecreated": time,
            "host": self._event_host(),
            "token": self.webhook_secret or "",
            "extra": "",
        }

    def build_module_completion_event(
        self,
        course_id: int,
        user_id: int,
        cmid: int,
        completionstate: int,
        time: int,
        *,
        actor_id: int | None = None,
        overrideby: int | None = None,
    ) -> dict[str, t.Any]:
        """Build a `\\core\\event\\course_module_completion_updated` event.

        `actor_id` defaults to the learner, who completes most activities
        themselves; `overrideby` is the teacher who overrode the state, if any.
        """
        course = self._require_course(course_id)
        activity = course.find_activity(cmid)
        if activity is None:
            raise ValueError(f"course {course_id} has no course module {cmid}")

        return {
            "eventname": "\\core\\event\\course_module_completion_updated",
            "component": "core",
            "action": "updated",
            "target": "course_module_completion",
            "objecttable": "course_modules_completion",
            "objectid": self._row_id("course_modules_completion", cmid, user_id),
            "crud": "u",
            "edulevel": 2,
            "contextid": activity.context_id,
            "contextlevel": 70,
            "contextinstanceid": cmid,
            "userid": user_id if actor_id is None else actor_id,
            "courseid": course_id,
            "relateduserid": user_id,
            "anonymous": 0,
            "other": {
                "relateduserid": user_id,
                "overrideby": overrideby,
                "completionstate": completionstate,
            },
            "timecreated": time,
            "host": self._event_host(),
            "token": self.webhook_secret or "",
            "extra": "",
        }

    def post_event(self, event: dict[str, t.Any]) -> int:
        """POST one event as JSON to the webhook URL and return the HTTP status.

        Raises RuntimeError when no webhook URL is configured and
        requests.RequestException when the bridge cannot be reached.
        """
        if self.webhook_url is None:
            raise RuntimeError(
                "no webhook_url configured; pass webhook_url and webhook_secret "
                "to MoodleStandIn"
            )

        response = requests.post(
            self.webhook_url, json=event, timeout=self.webhook_timeout_seconds
        )

        return response.status_code

    def call(
        self,
        wsfunction: str,
        params: t.Mapping[str, t.Any],
        functions: t.Sequence[str] = moodle_ws.SERVED_FUNCTIONS,
    ) -> t.Any:
        """Run one web service function and return its result, or raise MoodleError.

        The caller checks the token first; `functions` are the token's functions.
        Outside a request, site info needs `site_url` to be set.
        """
        if wsfunction not in functions:
            raise moodle_ws.access_error()

        if wsfunction == "core_webservice_get_site_info":
            return moodle_ws.site_info(self._site_url(), functions)

        if wsfunction == "core_course_get_contents":
            course = self._course_param(params)
            return moodle_ws.course_contents(course, self._site_url())

        if wsfunction == "core_enrol_get_enrolled_users":
            course = self._course_param(params)
            offset, limit = moodle_ws.enrolment_options(params)
            user_ids = self.enrolled_user_ids(course.course_id)
            page = user_ids[offset : offset + limit] if limit else user_ids[offset:]
            return [
                moodle_ws.enrolled_user(
                    user_id,
                    self.users.get(user_id, f"User {user_id}"),
                    "editingteacher" if user_id in self._instructors else "student",
                )
                for user_id in page
            ]

        if wsfunction == "gradereport_user_get_grade_items":
            course, user_id = self._tracked_course_and_user(params)
            with self._lock:
                grades = {
                    cmid: grade
                    for (course_id, user, cmid), grade in self._grades.items()
                    if course_id == course.course_id and user == user_id
                }
            return moodle_ws.grade_items(course, user_id, self.users[user_id], grades)

        if wsfunction == "core_completion_get_course_completion_status":
            course, user_id = self._tracked_course_and_user(params)
            completed = self.course_completion_time(course.course_id, user_id)
            return moodle_ws.course_completion_status(
                course,
                completed is not None,
                self._ws_activity_states(course.course_id, user_id),
            )

        if wsfunction == "core_completion_get_activities_completion_status":
            course, user_id = self._tracked_course_and_user(params)
            return moodle_ws.activities_completion_status(
                course, self._ws_activity_states(course.course_id, user_id)
            )

        raise moodle_ws.access_error()

    def _site_url(self) -> str:
        site_url = self.site_url
        if site_url is None and has_request_context():
            site_url = request.url_root.rstrip("/")
        if site_url is None:
            raise ValueError("site_url is not set; call start() or pass site_url")
        return site_url

    def _course_param(self, params: t.Mapping[str, t.Any]) -> MoodleCourse:
        course = self.courses.get(moodle_ws.int_param(params, "courseid"))
        if course is None:
            raise moodle_ws.missing_record_error("course")
        return course

    def snapshot(self) -> dict[str, t.Any]:
        """Return the learners' progress as JSON-ready data, for `restore` later."""
        with self._lock:
            return {
                "users": [[user_id, name] for user_id, name in self.users.items()],
                "tracked": [
                    [course_id, sorted(course.tracked_user_ids)]
                    for course_id, course in self.courses.items()
                ],
                "course_completions": [
                    [*key, time] for key, time in self._course_completions.items()
                ],
                "activity_states": [
                    [*key, *value] for key, value in self._activity_states.items()
                ],
                "overrides": [
                    [*key, teacher] for key, teacher in self._overrides.items()
                ],
                "grades": [[*key, *value] for key, value in self._grades.items()],
                "row_ids": [[*key, row_id] for key, row_id in self._row_ids.items()],
                "next_row_ids": dict(self._next_row_ids),
            }

    def restore(self, state: dict[str, t.Any]) -> None:
        """Take back the progress a `snapshot` returned; unknown courses are skipped."""
        with self._lock:
            self.users.update({int(user_id): name for user_id, name in state["users"]})
            for course_id, user_ids in state["tracked"]:
                if course_id in self.courses:
                    self.courses[course_id].tracked_user_ids.update(user_ids)
            self._course_completions.update(
                {(c, u): time for c, u, time in state["course_completions"]}
            )
            self._activity_states.update(
                {
                    (c, u, m): (st, time)
                    for c, u, m, st, time in state["activity_states"]
                }
            )
            self._overrides.update(
                {(c, u, m): teacher for c, u, m, teacher in state["overrides"]}
            )
            self._grades.update(
                {(c, u, m): (grade, time) for c, u, m, grade, time in state["grades"]}
            )
            self._row_ids.update(
                {(table, r, u): row_id for table, r, u, row_id in state["row_ids"]}
            )
            self._next_row_ids.update(state["next_row_ids"])

    def create_app(self) -> Flask:
        """Build the stand-in's Flask app; it reads this object's state per request."""
        app = peer_app(__name__, "moodle")
        app.add_url_rule(
            WS_PATH, "webservice", self._webservice_view, methods=["GET", "POST"]
        )
        app.add_url_rule("/", "index", self._index_view)
        app.add_url_rule("/complete", "complete", self._complete_view, methods=["POST"])
        app.add_url_rule(
            "/complete-activity",
            "complete_activity",
            self._complete_activity_view,
            methods=["POST"],
        )
        app.add_url_rule("/reset", "reset", self._reset_view, methods=["POST"])
        app.add_template_filter(format_unix_time, "unix_time")
        add_page_policy(app)

        return app

    def start(self, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
        """Serve the stand-in in a background thread; sets `site_url` if unset."""
        server = serve_in_thread(self.create_app(), host=host, port=port)
        if self.site_url is None:
            self.site_url = server.url

        return server

    def _webservice_view(self):
        # Moodle's optional_param() reads the POST body first, then the query string.
        def param(name: str) -> str | None:
            return request.form.get(name, request.args.get(name))

        restformat = param("moodlewsrestformat")
        if restformat != "json":
            # NOTE: real Moodle returns XML when moodlewsrestformat is absent. The
            # stand-in supports JSON only and rejects other formats.
            message = (
                "moodlewsrestformat must be 'json' on this Moodle stand-in, "
                f"got {restformat!r}"
            )
            logger.info("web service request rejected: %s", message)
            return message, 400, {"Content-Type": "text/plain; charset=utf-8"}

        with self._lock:
            delay, html = self._scripted.pop(0) if self._scripted else (0.0, None)
        if delay:
            time.sleep(delay)
        if html is not None:
            return html, 200, {"Content-Type": "text/html; charset=utf-8"}

        wsfunction = param("wsfunction") or ""
        params = {
            name: value
            for name, value in {**request.args, **request.form}.items()
            if name not in ("wstoken", "wsfunction", "moodlewsrestformat")
        }
        with self._lock:
            self.calls.append((wsfunction, dict(params)))
        try:
            functions = self._functions_of(param("wstoken") or "")
            result = self.call(wsfunction, params, functions)
        except MoodleError as error:
            logger.info(
                "web service call %r failed: %s", wsfunction, error.body["errorcode"]
            )
            result = error.body

        return jsonify(result)

    def _functions_of(self, wstoken: str) -> tuple[str, ...]:
        # Compare with every token in constant time, so timing reveals no token.
        found = None
        with self._lock:
            tokens = list(self.token_functions.items())
        for token, functions in tokens:
            if hmac.compare_digest(wstoken.encode(), token.encode()):
                found = functions
        if found is None:
            raise moodle_ws.invalid_token_error()
        return found

    def _tracked_course_and_user(
        self, params: t.Mapping[str, t.Any]
    ) -> tuple[MoodleCourse, int]:
        course_id = moodle_ws.int_param(params, "courseid")
        user_id = moodle_ws.int_param(params, "userid")

        course = self.courses.get(course_id)
        if course is None:
            raise moodle_ws.missing_record_error("course")
        if user_id not in self.users:
            raise moodle_ws.missing_record_error("user")
        if user_id not in course.tracked_user_ids:
            raise moodle_ws.not_tracked_error()

        return course, user_id

    def _index_view(self) -> str:
        course = self.courses[DEMO_COURSE_ID]
        states = self.activity_states(DEMO_COURSE_ID, DEMO_LEARNER_ID)
        activities = []
        for activity in course.activities:
            state, timecompleted = states[activity.cmid]
            state_name = STATE_NAMES.get(state, f"state {state}")
            activities.append((activity, state_name, timecompleted))

        return render_template_string(
            INDEX_TEMPLATE,
            page_links=self.page_links,
            course=course,
            learner_name=self.users[DEMO_LEARNER_ID],
            learner_id=DEMO_LEARNER_ID,
            completed_at=self.course_completion_time(DEMO_COURSE_ID, DEMO_LEARNER_ID),
            activities=activities,
            webhook_url=self.webhook_url,
            deliveries=list(reversed(self.deliveries[-5:])),
        )

    def _complete_view(self):
        self.complete_course(DEMO_COURSE_ID, DEMO_LEARNER_ID)

        return redirect(url_for("index"), code=303)

    def _complete_activity_view(self):
        course = self.courses[DEMO_COURSE_ID]
        known = [activity.cmid for activity in course.activities]
        value = request.form.get("cmid", "")
        try:
            cmid = int(value)
        except ValueError:
            cmid = None
        if cmid not in known:
            message = (
                f"cmid must be the course module id of an activity of course "
                f"{course.course_id} ({', '.join(map(str, known))}), got {value!r}"
            )
            logger.info("activity completion rejected: %s", message)
            return Response(message, 400, content_type="text/plain; charset=utf-8")

        self.complete_activity(DEMO_COURSE_ID, DEMO_LEARNER_ID, cmid)

        return redirect(url_for("index"), code=303)

    def _reset_view(self):
        self.reset_progress(DEMO_COURSE_ID, DEMO_LEARNER_ID)

        return redirect(url_for("index"), code=303)

    def _deliver(self, event: dict[str, t.Any]) -> None:
        eventname = event["eventname"]
        try:
            status = self.post_event(event)
        except requests.RequestException as error:
            logger.warning(
                "webhook delivery of %s for user %s failed: %s",
                eventname,
                event["relateduserid"],
                error,
            )
            delivery = WebhookDelivery(eventname, None, str(error))
        else:
            logger.info(
                "webhook delivered %s for user %s: HTTP %s",
                eventname,
                event["relateduserid"],
                status,
            )
            delivery = WebhookDelivery(eventname, status, None)

        with self._lock:
            self.deliveries.append(delivery)

    def _require_course(self, course_id: int) -> MoodleCourse:
        course = self.courses.get(course_id)
        if course is None:
            raise ValueError(
                f"unknown course {course_id}; known courses: {sorted(self.courses)}"
            )

        return course

    def _row_id(self, table: str, record_id: int, user_id: int) -> int:
        # Moodle keeps one completion row per (course or module, user), so the
        # objectid stays the same in every event about that row.
        key = (table, record_id, user_id)
        with self._lock:
            if key not in self._row_ids:
                self._row_ids[key] = self._next_row_ids[table]
                self._next_row_ids[table] += 1

            return self._row_ids[key]

    def _event_host(self) -> str:
        if self.site_url is None:
            raise ValueError(
                "site_url is not set; call start() or pass site_url to MoodleStandIn"
            )

        return urlsplit(self.site_url).netloc


def _unix_now() -> int:
    # A helper, because complete_course's `time` parameter hides the module.
    return int(time.time())


def format_unix_time(seconds: int) -> str:
    """Format a Unix time as UTC to the minute, such as `2026-12-06 06:02 UTC`."""
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


# Readable names of Moodle's activity completion states (its COMPLETION_* values).
STATE_NAMES = {
    moodle_ws.COMPLETION_INCOMPLETE: "not completed",
    moodle_ws.COMPLETION_COMPLETE: "completed",
    moodle_ws.COMPLETION_COMPLETE_PASS: "completed with a pass grade",
    moodle_ws.COMPLETION_COMPLETE_FAIL: "completed with a fail grade",
}

# The control page stays in English under any ?lang=, like the demo platform and
# portfolio pages, because each imitates an outside system whose language the bridge
# does not choose. The bridge's own pages, /demo among them, are translated.
INDEX_TEMPLATE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo Moodle</title></head>
<body>
{% if page_links %}<nav aria-label="Demo"><ul>
{% for label, url in page_links %}<li><a href="{{ url }}">{{ label }}</a></li>{% endfor %}
</ul></nav>{% endif %}
<h1>Demo Moodle: {{ course.fullname }}</h1>
<p>Course id {{ course.course_id }}.
   Learner: {{ learner_name }} (user id {{ learner_id }}).</p>
<h2>Completion</h2>
<p>Course:
{% if completed_at %}completed at {{ completed_at | unix_time }}
{% else %}not completed{% endif %}</p>
<ul>
{% for activity, state_name, timecompleted in activities %}
  <li>{{ activity.name }} ({{ activity.modname }}, course module {{ activity.cmid }}):
      {{ state_name }}{% if timecompleted %} at {{ timecompleted | unix_time }}{% endif %}
    <form method="post" action="{{ url_for('complete_activity') }}">
      <input type="hidden" name="cmid" value="{{ activity.cmid }}">
      <button type="submit">Mark {{ activity.name }} complete for {{ learner_name }}</button>
    </form></li>
{% endfor %}
</ul>
<form method="post" action="{{ url_for('complete') }}">
  <button type="submit">Mark the course complete for {{ learner_name }}</button>
</form>
<form method="post" action="{{ url_for('reset') }}">
  <button type="submit">Reset {{ learner_name }}'s progress</button>
</form>
<h2>Webhook</h2>
{% if webhook_url %}
<p>Events are posted to {{ webhook_url }}.</p>
<ul>
{% for delivery in deliveries %}
  <li>{{ delivery.eventname }}:
  {% if delivery.error %}failed: {{ delivery.error }}
  {% else %}HTTP {{ delivery.status_code }}{% endif %}</li>
{% endfor %}
</ul>
{% else %}
<p>No webhook URL is configured, so completing the course or an activity sends
no event.</p>
{% endif %}
</body>
</html>
"""
