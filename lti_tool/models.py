"""LTI 1.3 tables: platform registrations, deployments and course links."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from badge_engine.db import Base, utcnow


class Registration(Base):
    """A tool registration on one platform, keyed by (provider_id, issuer, client_id).

    Canvas uses one issuer for every customer, so the issuer alone identifies nothing.
    Launches find their registration by `public_id`, which is in the tool URLs, so
    two providers may each register the same issuer and client id.
    The tool's RSA private key for this registration is encrypted with the vault key.
    """

    __tablename__ = "lti_registrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    public_id: Mapped[str] = mapped_column(
        String(36), unique=True, default=lambda: str(uuid.uuid4())
    )
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(200))
    auth_login_url: Mapped[str] = mapped_column(String(500))
    auth_token_url: Mapped[str | None] = mapped_column(String(500))
    key_set_url: Mapped[str] = mapped_column(String(500))
    tool_key_id: Mapped[str] = mapped_column(String(64))
    tool_private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    tool_public_key_pem: Mapped[str] = mapped_column(String(2000))
    # Links launches to the LMS connection whose API and webhooks serve the same site.
    lms_connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("lms_connections.id")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # What a launch from a deployment id never seen before does: "accept" adds it,
    # "hold" records it as held until an admin approves it.
    new_deployment_policy: Mapped[str] = mapped_column(
        String(10), default="accept", server_default="accept"
    )
    # "moodle", "canvas" or "other": where platforms differ, the tool follows this.
    platform_family: Mapped[str | None] = mapped_column(String(20))
    # The key signed with before the last rotation stays in the JWKS, so a platform
    # that cached the old key set still verifies messages signed just before it.
    previous_tool_key_id: Mapped[str | None] = mapped_column(String(64))
    previous_tool_public_key_pem: Mapped[str | None] = mapped_column(String(2000))

    deployments: Mapped[list["Deployment"]] = relationship(
        back_populates="registration"
    )

    __table_args__ = (UniqueConstraint("provider_id", "issuer", "client_id"),)


class RegistrationLink(Base):
    """A single-use LTI Dynamic Registration URL of one provider.

    Only the SHA-256 digest of the URL's random token is stored, so the table alone
    cannot be used to register a platform. A link is open while `used_at` and
    `revoked_at` are null and `expires_at` is in the future.
    """

    __tablename__ = "lti_registration_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    # The audit actor: "account:<id>" for an admin page, "os:<user>" for the CLI.
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class DeploymentStatus(str, enum.Enum):
    ACTIVE = "active"
    HELD = "held"


class Deployment(Base):
    __tablename__ = "lti_deployments"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("lti_registrations.id"))
    deployment_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(
        String(10), default=DeploymentStatus.ACTIVE.value
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    registration: Mapped[Registration] = relationship(back_populates="deployments")

    __table_args__ = (UniqueConstraint("registration_id", "deployment_id"),)


class LtiCourse(Base):
    """A platform course (the LTI context) and the LMS course it corresponds to."""

    __tablename__ = "lti_courses"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    registration_id: Mapped[int] = mapped_column(ForeignKey("lti_registrations.id"))
    lti_context_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(500))
    lms_course_id: Mapped[str | None] = mapped_column(String(64))
    # The AGS endpoint claim of the latest launch that carried one; a launch without
    # it keeps these. `ags_lineitem_url` is the launching resource link's own item.
    ags_lineitems_url: Mapped[str | None] = mapped_column(Text)
    ags_lineitem_url: Mapped[str | None] = mapped_column(Text)
    ags_scopes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("registration_id", "lti_context_id"),)


class AgsLineItem(Base):
    """A line item of a course's AGS line item container, as the last poll read it.

    Award rules name it by `activity_id` ("ags-" and this row's id), because its URL
    is longer than an activity id column holds.
    """

    __tablename__ = "ags_line_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    lti_course_id: Mapped[int] = mapped_column(ForeignKey("lti_courses.id"))
    lms_connection_id: Mapped[int] = mapped_column(ForeignKey("lms_connections.id"))
    lms_course_id: Mapped[str] = mapped_column(String(64))
    lineitem_url: Mapped[str] = mapped_column(Text)
    lineitem_url_sha256: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(500))
    score_maximum: Mapped[float] = mapped_column(Float)
    resource_link_id: Mapped[str | None] = mapped_column(String(255))
    tag: Mapped[str | None] = mapped_column(String(255))
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint(
            "lti_course_id", "lineitem_url_sha256", name="uq_ags_line_items_url"
        ),
        Index("ix_ags_line_items_course", "lms_connection_id", "lms_course_id"),
    )

    @property
    def activity_id(self) -> str:
        return f"{AGS_ACTIVITY_PREFIX}{self.id}"


# Activity ids of AGS line items start with this; no Moodle or Canvas id does.
AGS_ACTIVITY_PREFIX = "ags-"


class LtiUsedNonce(Base):
    """The random id of a login state whose launch was accepted.

    The unique `state_id` makes each login's nonce single-use (see
    `lti_tool.lti.nonces`). A row is deleted once its state has expired, when the
    state's expiry alone rejects a replay.
    """

    __tablename__ = "lti_used_nonces"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"))
    registration_id: Mapped[int] = mapped_column(ForeignKey("lti_registrations.id"))
    state_id: Mapped[str] = mapped_column(String(32), unique=True)
    expires_at: Mapped[datetime] = mapped_column()

    __table_args__ = (Index("ix_lti_used_nonces_expires_at", "expires_at"),)
