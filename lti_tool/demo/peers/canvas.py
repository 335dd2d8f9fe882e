"""A Canvas stand-in: the REST API calls and Live Events the bridge relies on.

Written from Canvas's documented behaviour, in memory, for loopback tests and
the demo:

- List endpoints page with `per_page` (default 10, at most 100) and a `Link`
  header with `current`, `next`, `first` and `last` relations.
- Each token has a leaky bucket reported in `X-Rate-Limit-Remaining`. A scripted
  throttle returns 403 "403 Forbidden (Rate Limit Exceeded)" or 429 with
  `Retry-After`, as Canvas does when the quota is used up. The bucket's size and
  refill rate are the stand-in's own, because Canvas does not document them.
- An unknown or expired token gets 401 "Invalid access token." with
  `WWW-Authenticate: Bearer realm="canvas-lms"`; a token without the endpoint's
  scope gets 401 "Insufficient scopes on access token." without that header.
- A course in `forbidden_courses` gets Canvas's permission denial: `{"status":
  "unauthorized", "errors": [{"message": "user not authorized to perform that
  action"}]}` without `WWW-Authenticate`, with `permission_denied_status` (401,
  or 403 as on a Canvas with the site admin feature `api_auth_error_updates`).
- `GET users/:id` of a user in `unreadable_users` (one the token's user
  administers in no account) gets 404, as current Canvas returns, or that
  permission denial when `show_user_denial` is "unauthorized", as older
  releases returned.
- `users/:id/progress` returns 400 with an error object for a course without
  module completion requirements or a user who is not a student in it.
- `POST /login/oauth2/token` refreshes developer key tokens (one hour) and grants
  LTI client-credentials tokens; `POST /api/lti/accounts/:id/data_services`
  records a Live Events subscription.
- `GET courses/:id`, `GET courses/:course_id/users/:id` and `GET users/:id`
  accept Canvas's `lti_context_id:` (course) and `lti_1_3_id:` (user) prefixes,
  so a caller can look up the Canvas ids behind an LTI 1.3 launch's `context.id`
  and `sub`. `users/:id` finds the students of every course and the account
  users added with `add_account_user`, who need no course.
- `send_live_event` posts `course_progress` and `course_completed` to a
  subscription URL as JSON or as an RS256 JWT, with local or global ids.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, jsonify, request

from lti_tool.demo.peers.serving import peer_app, require_loopback_url

SHARD_FACTOR = 10**13
DEFAULT_PER_PAGE = 10
MAX_PER_PAGE = 100
BUCKET_CAPACITY = 700.0
BUCKET_LEAK_PER_SECOND = 10.0
REQUIREMENT_TYPES = (
    "must_view",
    "must_submit",
    "min_score",
    "min_percentage",
    "must_mark_done",
    "must_contribute",
)
ALL_SCOPES = frozenset(
    {
        "url:GET|/api/v1/courses/:course_id/modules",
        "url:GET|/api/v1/courses/:course_id/enrollments",
        "url:GET|/api/v1/courses/:course_id/users/:user_id/progress",
        "url:GET|/api/v1/courses/:course_id/bulk_user_progress",
        "url:GET|/api/v1/courses/:course_id/students/submissions",
        "url:GET|/api/v1/courses/:id",
        "url:GET|/api/v1/courses/:course_id/users/:id",
        "url:GET|/api/v1/users/:id",
    }
)


POINTS_POSSIBLE = 10.0


@dataclass
class Student:
    """A student's state: met requirements by module item id, and assignment scores."""

    id: int
    name: str
    # The `sub` of the user's LTI 1.3 launches.
    lti_1_3_id: str = ""
    completed_items: set[int] = field(default_factory=set)
    completed_at: datetime | None = None
    current_score: float | None = None
    # assignment id -> (score out of POINTS_POSSIBLE, graded_at)
    scores: dict[int, tuple[float, datetime]] = field(default_factory=dict)

    @property
    def completed_count(self) -> int:
        return len(self.completed_items)


@dataclass
class Course:
    id: int
    requirement_types: tuple[str, ...]
    # The `context.id` of the course's LTI launches, a 40-digit hex string in Canvas.
    lti_context_id: str = ""
    students: dict[int, Student] = field(default_factory=dict)

    @property
    def requirement_count(self) -> int:
        return len(self.requirement_types)

    def item_id(self, position: int) -> int:
        return self.id * 1000 + position

    def assignment_id(self, position: int) -> int:
        return self.id * 100 + position

    def item_ids(self) -> list[int]:
        return [self.item_id(p) for p in range(1, self.requirement_count + 1)]


@dataclass
class AccessToken:
    user_id: int
    expires_at: datetime | None
    scopes: frozenset[str] | None  # None: a token that is not scope-limited
    client_credentials: bool = False


@dataclass
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    def public_jwk(self) -> dict:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(
            self.private_key.public_key(), as_dict=True
        )
        return {**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeCanvas:
    """The in-memory Canvas site; `app` is its WSGI application."""

    def __init__(
        self,
        *,
        shard: int = 1,
        root_account_id: int = 1,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.shard = shard
        self.root_account_id = root_account_id
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.courses: dict[int, Course] = {}
        # Users of the account outside any course, such as account admins.
        self.account_users: dict[int, Student] = {}
        self.tokens: dict[str, AccessToken] = {}
        self.developer_keys: dict[str, tuple[str, str, int]] = {}
        self.subscriptions: list[dict] = []
        self.requests: list[tuple[str, str, int]] = []
        self.jwks_requests = 0
        self.signing_keys: list[SigningKey] = []
        self.rel_case: Callable[[str], str] = str
        self.bucket_capacity = BUCKET_CAPACITY
        # Courses whose API calls return the permission denial (see _forbidden).
        self.forbidden_courses: set[int] = set()
        # 401, or 403 as on a Canvas with the site admin feature api_auth_error_updates.
        self.permission_denied_status = 401
        # Users whom `GET users/:id` does not show to the token's user.
        self.unreadable_users: set[int] = set()
        # "not_found" as current Canvas returns, or "unauthorized" as older releases did.
        self.show_user_denial = "not_found"
        self._throttles: list[str] = []
        self._throttle_every: int | None = None
        self._throttle_kind = "403"
        self._api_count = 0
        self._bucket_level: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self.rotate_signing_key()
        self.app = self._make_app()

    # Setup -------------------------------------------------------------------

    def add_course(
        self, course_id: int, requirement_types: tuple[str, ...] = REQUIREMENT_TYPES
    ) -> Course:
        context_id = hashlib.sha1(
            f"course-{self.shard}-{course_id}".encode(), usedforsecurity=False
        )
        course = Course(
            course_id, tuple(requirement_types), lti_context_id=context_id.hexdigest()
        )
        self.courses[course_id] = course
        return course

    def add_students(self, course_id: int, user_ids) -> None:
        course = self.courses[course_id]
        for user_id in user_ids:
            course.students[user_id] = Student(
                user_id, f"Learner {user_id}", lti_1_3_id=self.lti_1_3_id(user_id)
            )

    def add_account_user(self, user_id: int) -> None:
        """Add a user of the account who is in no course, such as an account admin."""
        self.account_users[user_id] = Student(
            user_id, f"User {user_id}", lti_1_3_id=self.lti_1_3_id(user_id)
        )

    def lti_1_3_id(self, user_id: int) -> str:
        """Return the user's LTI 1.3 `sub`, a UUID that Canvas keeps per user."""
        digest = hashlib.sha1(
            f"user-{self.shard}-{user_id}".encode(), usedforsecurity=False
        ).hexdigest()
        return str(uuid.UUID(digest[:32]))

    def complete(self, course_id: int, user_id: int, completed_at: datetime) -> None:
        """Mark every requirement done; Canvas keeps the first `completed_at`."""
        course = self.courses[course_id]
        student = course.students[user_id]
        student.completed_items = set(course.item_ids())
        student.completed_at = student.completed_at or completed_at

    def complete_item(self, course_id: int, user_id: int, position: int) -> int:
        """Meet one requirement (1-based position); return the module item id."""
        course = self.courses[course_id]
        item_id = course.item_id(position)
        course.students[user_id].completed_items.add(item_id)
        return item_id

    def grade(
        self, course_id: int, user_id: int, position: int, score: float, at: datetime
    ) -> int:
        """Grade the assignment behind one module item; return the item id."""
        course = self.courses[course_id]
        course.students[user_id].scores[course.assignment_id(position)] = (score, at)
        return course.item_id(position)

    def issue_token(
        self,
        user_id: int = 1,
        *,
        expires_in: float | None = None,
        scopes: frozenset[str] | None = None,
    ) -> str:
        token = secrets.token_urlsafe(24)
        expires_at = (
            self.clock() + timedelta(seconds=expires_in) if expires_in else None
        )
        self.tokens[token] = AccessToken(user_id, expires_at, scopes)
        return token

    def add_developer_key(self, client_id: str, secret: str, user_id: int = 1) -> str:
        """Register a developer key; return a refresh token for the user's grant."""
        refresh_token = secrets.token_urlsafe(24)
        self.developer_keys[refresh_token] = (client_id, secret, user_id)
        return refresh_token

    def revoke_refresh_token(self, refresh_token: str) -> None:
        self.developer_keys.pop(refresh_token, None)

    def expire_all_tokens(self) -> None:
        past = self.clock() - timedelta(seconds=1)
        for token in self.tokens.values():
            token.expires_at = past

    def throttle_next(self, *kinds: str) -> None:
        """Throttle the next API requests with these statuses ("403" or "429")."""
        self._throttles.extend(kinds)

    def throttle_every(self, every: int | None, kind: str = "403") -> None:
        """Throttle every `every`-th API request; "alternate" mixes 403 and 429."""
        self._throttle_every = every
        self._throttle_kind = kind

    def rotate_signing_key(self) -> SigningKey:
        key = SigningKey(
            kid=f"live-events-{len(self.signing_keys) + 1}",
            private_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        )
        self.signing_keys.append(key)
        return key

    def jwks(self) -> dict:
        # Canvas publishes the current and the previous key during a rotation.
        return {"keys": [key.public_jwk() for key in self.signing_keys[-2:]]}

    def global_id(self, local_id: int) -> int:
        return self.shard * SHARD_FACTOR + local_id

    # Live Events -------------------------------------------------------------

    def live_event(
        self, event_name: str, course_id: int, user_id: int, *, global_ids: bool = False
    ) -> dict:
        """Build a Live Event in Canvas's shape for the learner's current progress."""
        course = self.courses[course_id]
        student = course.students[user_id]
        ids = self.global_id if global_ids else (lambda value: value)
        return {
            "metadata": {
                "event_name": event_name,
                "event_time": _iso(self.clock()),
                "job_id": str(next(_job_ids)),
                "job_tag": "ContextModuleProgression#evaluate!",
                "producer": "canvas",
                "root_account_id": str(self.global_id(self.root_account_id)),
            },
            "body": {
                "course": {
                    "account_id": "1",
                    "id": str(ids(course.id)),
                    "name": "Course",
                },
                "progress": self._progress(course, student),
                "user": {"id": str(ids(student.id)), "name": student.name},
            },
        }

    def sign(self, event: dict, key: SigningKey | None = None, **claims) -> str:
        key = key or self.signing_keys[-1]
        now = int(time.time())
        payload = {**event, "iat": now, "exp": now + 300, **claims}
        return jwt.encode(
            payload, key.private_key, algorithm="RS256", headers={"kid": key.kid}
        )

    def send_live_event(
        self,
        url: str,
        event: dict,
        *,
        signed: bool = False,
        key: SigningKey | None = None,
    ) -> requests.Response:
        require_loopback_url(url, "Live Events URL")
        if signed:
            return requests.post(
                url,
                data=self.sign(event, key),
                headers={"Content-Type": "application/jwt"},
                timeout=10,
            )
        return requests.post(url, json=event, timeout=10)

    # HTTP --------------------------------------------------------------------

    def _make_app(self) -> Flask:
        app = peer_app(__name__, "canvas")
        fake = self

        @app.get("/api/v1/courses/<int:course_id>/modules")
        def modules(course_id):
            return fake._api(
                "url:GET|/api/v1/courses/:course_id/modules",
                lambda token: fake._modules(course_id),
            )

        @app.get("/api/v1/courses/<int:course_id>/students/submissions")
        def submissions(course_id):
            return fake._api(
                "url:GET|/api/v1/courses/:course_id/students/submissions",
                lambda token: fake._submissions(course_id),
            )

        @app.get("/api/v1/courses/<int:course_id>/enrollments")
        def enrollments(course_id):
            return fake._api(
                "url:GET|/api/v1/courses/:course_id/enrollments",
                lambda token: fake._enrollments(course_id),
            )

        @app.get("/api/v1/courses/<int:course_id>/users/<user_id>/progress")
        def user_progress(course_id, user_id):
            return fake._api(
                "url:GET|/api/v1/courses/:course_id/users/:user_id/progress",
                lambda token: fake._user_progress(course_id, user_id, token),
            )

        @app.get("/api/v1/courses/<int:course_id>/bulk_user_progress")
        def bulk_user_progress(course_id):
            return fake._api(
                "url:GET|/api/v1/courses/:course_id/bulk_user_progress",
                lambda token: fake._bulk_user_progress(course_id),
            )

        @app.get("/api/v1/courses/<course_id>")
        def course(course_id):
            return fake._api(
                "url:GET|/api/v1/courses/:id",
                lambda token: fake._course(course_id),
            )

        @app.get("/api/v1/courses/<course_id>/users/<user_id>")
        def course_user(course_id, user_id):
            return fake._api(
                "url:GET|/api/v1/courses/:course_id/users/:id",
                lambda token: fake._course_user(course_id, user_id, token),
            )

        @app.get("/api/v1/users/<user_id>")
        def user(user_id):
            return fake._api(
                "url:GET|/api/v1/users/:id",
                lambda token: fake._user(user_id, token),
            )

        @app.post("/login/oauth2/token")
        def token():
            return fake._token_endpoint()

        @app.post("/api/lti/accounts/<context_id>/data_services")
        def data_services(context_id):
            return fake._subscribe(context_id)

        @app.get("/live_events/jwks")
        def live_events_jwks():
            fake.jwks_requests += 1
            return jsonify(fake.jwks())

        return app

    def _api(self, scope: str, handler):
        with self._lock:
            token_value = request.headers.get("Authorization", "").removeprefix(
                "Bearer "
            )
            token = self.tokens.get(token_value)
            failure = self._authenticate(token, scope) or self._throttle(token_value)
            if failure is None and request.view_args.get("course_id") in (
                self.forbidden_courses
            ):
                failure = self._forbidden()
            if failure is not None:
                self.requests.append((request.method, request.path, failure[1]))
                return failure
            response = self.app.make_response(handler(token))
            response.headers["X-Rate-Limit-Remaining"] = (
                f"{self._bucket(token_value, 1.0):.1f}"
            )
            response.headers["X-Request-Cost"] = "1.0"
            self.requests.append((request.method, request.path, response.status_code))
            return response

    def _authenticate(self, token: AccessToken | None, scope: str):
        if (
            token is None
            or token.client_credentials
            or (token.expires_at is not None and token.expires_at <= self.clock())
        ):
            response = jsonify({"errors": [{"message": "Invalid access token."}]})
            response.headers["WWW-Authenticate"] = 'Bearer realm="canvas-lms"'
            return response, 401
        if token.scopes is not None and scope not in token.scopes:
            return jsonify(
                {"errors": [{"message": "Insufficient scopes on access token."}]}
            ), 401
        return None

    def _throttle(self, token_value: str):
        self._api_count += 1
        kind = None
        if self._throttles:
            kind = self._throttles.pop(0)
        elif self._throttle_every and self._api_count % self._throttle_every == 0:
            kind = self._throttle_kind
            if kind == "alternate":
                kind = "429" if (self._api_count // self._throttle_every) % 2 else "403"
        if kind is None:
            return None
        if kind == "429":
            response = jsonify({"errors": [{"message": "Too many requests"}]})
            response.headers["Retry-After"] = "1"
            return response, 429
        response = self.app.response_class(
            "403 Forbidden (Rate Limit Exceeded)\n", 403, mimetype="text/plain"
        )
        response.headers["X-Rate-Limit-Remaining"] = "0.0"
        return response, 403

    def _bucket(self, token_value: str, cost: float) -> float:
        now = time.monotonic()
        level, then = self._bucket_level.get(token_value, (0.0, now))
        level = max(0.0, level - (now - then) * BUCKET_LEAK_PER_SECOND) + cost
        self._bucket_level[token_value] = (level, now)
        return max(0.0, self.bucket_capacity - level)

    def _page(self, items: list):
        try:
            per_page = int(request.args.get("per_page", DEFAULT_PER_PAGE))
            page = int(request.args.get("page", 1))
        except ValueError:
            return jsonify({"errors": [{"message": "invalid page"}]}), 400
        per_page = max(1, min(per_page, MAX_PER_PAGE))
        last = max(1, -(-len(items) // per_page))
        response = jsonify(items[(page - 1) * per_page : page * per_page])
        base = request.base_url
        links = [(page, "current"), (1, "first"), (last, "last")]
        if page < last:
            links.insert(1, (page + 1, "next"))
        if page > 1:
            links.insert(1, (page - 1, "prev"))
        response.headers["Link"] = ",".join(
            f"<{base}?{urlencode({'page': number, 'per_page': per_page})}>; "
            f'rel="{self.rel_case(rel)}"'
            for number, rel in links
        )
        return response

    def _forbidden(self):
        # The body of Canvas's render_json_unauthorized for a valid token whose user
        # lacks the permission. It has no WWW-Authenticate header, because the token
        # is valid.
        message = "user not authorized to perform that action"
        return jsonify(
            {"status": "unauthorized", "errors": [{"message": message}]}
        ), self.permission_denied_status

    def _course_or_404(self, course_id: int) -> Course | None:
        return self.courses.get(course_id)

    def _not_found(self):
        return jsonify(
            {"errors": [{"message": "The specified resource does not exist."}]}
        ), 404

    def _find_course(self, reference: str) -> Course | None:
        """Return the course named by a Canvas id or an `lti_context_id:` id."""
        if reference.startswith("lti_context_id:"):
            context_id = reference.removeprefix("lti_context_id:")
            for course in self.courses.values():
                if course.lti_context_id == context_id:
                    return course
            return None
        return self.courses.get(_int_or_none(reference))

    def _course(self, reference: str):
        course = self._find_course(reference)
        if course is None:
            return self._not_found()
        return jsonify(
            {
                "id": course.id,
                "name": f"Course {course.id}",
                "course_code": f"C{course.id}",
                "workflow_state": "available",
                "account_id": 1,
                "root_account_id": self.root_account_id,
            }
        )

    def _course_user(self, course_reference: str, user_reference: str, token):
        course = self._find_course(course_reference)
        if course is None:
            return self._not_found()
        student = None
        if user_reference.startswith("lti_1_3_id:"):
            sub = user_reference.removeprefix("lti_1_3_id:")
            for candidate in course.students.values():
                if candidate.lti_1_3_id == sub:
                    student = candidate
        elif user_reference == "self":
            student = course.students.get(token.user_id)
        else:
            student = course.students.get(_int_or_none(user_reference))
        if student is None:
            return self._not_found()
        return jsonify(
            {
                "id": student.id,
                "name": student.name,
                "sortable_name": student.name,
                "short_name": student.name,
            }
        )

    def _user(self, reference: str, token):
        users = dict(self.account_users)
        for course in self.courses.values():
            users.update(course.students)
        if reference == "self":
            found = users.get(token.user_id) or Student(
                token.user_id, f"User {token.user_id}"
            )
        elif reference.startswith("lti_1_3_id:"):
            sub = reference.removeprefix("lti_1_3_id:")
            found = next(
                (user for user in users.values() if user.lti_1_3_id == sub), None
            )
        else:
            found = users.get(_int_or_none(reference))
        if found is None:
            return self._not_found()
        if found.id in self.unreadable_users and found.id != token.user_id:
            if self.show_user_denial == "unauthorized":
                return self._forbidden()
            return self._not_found()
        return jsonify(
            {
                "id": found.id,
                "name": found.name,
                "sortable_name": found.name,
                "short_name": found.name,
            }
        )

    def _modules(self, course_id: int):
        course = self._course_or_404(course_id)
        if course is None:
            return self._not_found()
        student = None
        if request.args.get("student_id"):
            student = course.students.get(_int_or_none(request.args["student_id"]))
            if student is None:
                return self._not_found()
        items = [
            self._module_item(course, position, kind, student)
            for position, kind in enumerate(course.requirement_types, start=1)
        ]
        module = {
            "id": course_id * 10,
            "name": "Module 1",
            "position": 1,
            "workflow_state": "active",
            "requirement_type": "all",
            "items_count": len(items),
            "items": items,
            "published": True,
        }
        if student is not None:
            done = student.completed_count >= course.requirement_count
            module["state"] = "completed" if done else "started"
            module["completed_at"] = _iso(student.completed_at) if done else None
        return self._page([module])

    def _module_item(
        self, course: Course, position: int, kind: str, student: Student | None
    ) -> dict:
        requirement: dict = {"type": kind}
        if kind == "min_score":
            requirement["min_score"] = 7
        if kind == "min_percentage":
            requirement["min_percentage"] = 70
        item_id = course.item_id(position)
        if student is not None:
            requirement["completed"] = item_id in student.completed_items
        item = {
            "id": item_id,
            "module_id": course.id * 10,
            "position": position,
            "title": f"Item {position} ({kind})",
            "type": "Page",
            "completion_requirement": requirement,
            "published": True,
        }
        if "score" in kind or "percentage" in kind or kind == "must_submit":
            item["type"] = "Assignment"
            item["content_id"] = course.assignment_id(position)
        return item

    def _submissions(self, course_id: int):
        course = self._course_or_404(course_id)
        if course is None:
            return self._not_found()
        requested_ids = {
            _int_or_none(value) for value in request.args.getlist("student_ids[]")
        }
        submissions = []
        for student in sorted(course.students.values(), key=lambda s: s.id):
            if student.id not in requested_ids:
                continue
            for assignment_id, (score, graded_at) in sorted(student.scores.items()):
                submissions.append(
                    {
                        "assignment_id": assignment_id,
                        "user_id": student.id,
                        "score": score,
                        "graded_at": _iso(graded_at),
                        "workflow_state": "graded",
                        "assignment": {
                            "id": assignment_id,
                            "points_possible": POINTS_POSSIBLE,
                        },
                    }
                )
        return self._page(submissions)

    def _enrollments(self, course_id: int):
        course = self._course_or_404(course_id)
        if course is None:
            return self._not_found()
        enrollments = [
            {
                "id": 9000 + student.id,
                "course_id": course_id,
                "type": "StudentEnrollment",
                "role": "StudentEnrollment",
                "enrollment_state": "active",
                "user_id": student.id,
                "grades": {
                    "current_score": student.current_score,
                    "final_score": student.current_score,
                    "current_grade": None,
                    "final_grade": None,
                },
                "user": {"id": student.id, "name": student.name},
            }
            for student in sorted(course.students.values(), key=lambda s: s.id)
            if not request.args.get("user_id")
            or student.id == _int_or_none(request.args["user_id"])
        ]
        return self._page(enrollments)

    def _progress(self, course: Course, student: Student) -> dict:
        done = student.completed_count >= course.requirement_count
        return {
            "requirement_count": course.requirement_count,
            "requirement_completed_count": student.completed_count,
            "next_requirement_url": (
                None
                if done
                else f"/courses/{course.id}/modules/items/{course.id * 1000 + 1}"
            ),
            "completed_at": _iso(student.completed_at) if done else None,
        }

    def _user_progress(self, course_id: int, user_id: str, token: AccessToken):
        course = self._course_or_404(course_id)
        if course is None:
            return self._not_found()
        uid = (
            token.user_id
            if user_id == "self"
            else int(user_id)
            if user_id.isdigit()
            else -1
        )
        student = course.students.get(uid)
        if course.requirement_count == 0 or student is None:
            return jsonify(
                {
                    "error": {
                        "message": "course is not module based or user is not enrolled as a student"
                    }
                }
            ), 400
        return jsonify(self._progress(course, student))

    def _bulk_user_progress(self, course_id: int):
        course = self._course_or_404(course_id)
        if course is None:
            return self._not_found()
        if course.requirement_count == 0:
            return jsonify({"error": {"message": "course is not module based"}}), 400
        entries = [
            {
                "id": student.id,
                "display_name": student.name,
                "progress": self._progress(course, student),
            }
            for student in sorted(course.students.values(), key=lambda s: s.id)
        ]
        return self._page(entries)

    def _token_endpoint(self):
        grant = request.form.get("grant_type")
        if grant == "refresh_token":
            entry = self.developer_keys.get(request.form.get("refresh_token", ""))
            if entry is None or entry[:2] != (
                request.form.get("client_id"),
                request.form.get("client_secret"),
            ):
                return jsonify(
                    {
                        "error": "invalid_grant",
                        "error_description": "refresh_token not found",
                    }
                ), 400
            token = self.issue_token(entry[2], expires_in=3600)
            return jsonify(
                {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
            )
        if grant == "client_credentials":
            if not request.form.get("client_assertion"):
                return jsonify({"error": "invalid_request"}), 400
            token = secrets.token_urlsafe(24)
            self.tokens[token] = AccessToken(0, None, None, client_credentials=True)
            return jsonify(
                {
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "scope": request.form.get("scope", ""),
                }
            )
        return jsonify({"error": "unsupported_grant_type"}), 400

    def _subscribe(self, context_id: str):
        token = self.tokens.get(
            request.headers.get("Authorization", "").removeprefix("Bearer ")
        )
        if token is None or not token.client_credentials:
            return jsonify({"errors": [{"message": "Invalid access token."}]}), 401
        body = request.get_json(silent=True) or {}
        subscription = body.get("subscription")
        if not isinstance(subscription, dict) or not subscription.get(
            "TransportMetadata", {}
        ).get("Url"):
            return jsonify(
                {
                    "errors": [
                        {
                            "message": "subscription with TransportMetadata.Url is required"
                        }
                    ]
                }
            ), 400
        stored = {
            **subscription,
            "Id": str(len(self.subscriptions) + 1),
            "account": context_id,
        }
        self.subscriptions.append(stored)
        return jsonify(stored), 201


def _int_or_none(value: str) -> int | None:
    return int(value) if value.isdigit() else None


_job_ids = itertools.count(1020020528469291)
