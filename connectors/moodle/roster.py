"""A Moodle course's enrolled learners and their progress, for a backfill.

Moodle has no "who completed what" listing, so a backfill pages through the enrolled
users (`core_enrol_get_enrolled_users`) and re-reads each learner's progress, as an
event would. Only users with a learner role count: teachers are enrolled too.
"""

from __future__ import annotations

from dataclasses import dataclass

from badge_engine.rules import LearnerProgress
from connectors.moodle.client import MoodleClient
from connectors.moodle.progress import read_learner_progress

# Moodle's default learner role; sites may add their own, which a provider names
# in LEARNER_ROLES.
LEARNER_ROLES = frozenset({"student"})


@dataclass(frozen=True)
class EnrolledLearner:
    lms_user_id: str
    name: str | None
    email: str | None


@dataclass(frozen=True)
class RosterPage:
    learners: list[EnrolledLearner]
    # How many enrolled users the page covered, learners or not: the next offset step.
    users_read: int
    is_last: bool


class MoodleRoster:
    def __init__(self, client: MoodleClient, learner_roles=LEARNER_ROLES) -> None:
        self.client = client
        self.learner_roles = frozenset(learner_roles)

    def enrolled_learners(
        self, lms_course_id: str, offset: int, limit: int
    ) -> RosterPage:
        users = self.client.get_enrolled_users(
            int(lms_course_id), offset=offset, limit=limit
        )
        learners = [
            EnrolledLearner(str(user.user_id), user.fullname or None, user.email)
            for user in users
            if self.learner_roles.intersection(user.roles)
        ]
        return RosterPage(learners, users_read=len(users), is_last=len(users) < limit)

    def read_progress(self, lms_course_id: str, lms_user_id: str) -> LearnerProgress:
        return read_learner_progress(self.client, lms_course_id, lms_user_id)
