"""Used login nonces instead of stored login states

Revision ID: 0117_used_nonces
Revises: 0116_ags
Create Date: 2026-12-04

Logins no longer store their state and nonce: both are signed values checked at
launch, and the launch records each used state in lti_used_nonces. Logins started
before the upgrade cannot launch afterwards and must be started again from the LMS.
"""

import sqlalchemy as sa
from alembic import op

import badge_engine.db

revision = "0117_used_nonces"
down_revision = "0116_ags"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lti_used_nonces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("state_id", sa.String(length=32), nullable=False),
        sa.Column(
            "expires_at", badge_engine.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_lti_used_nonces_provider_id_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["lti_registrations.id"],
            name=op.f("fk_lti_used_nonces_registration_id_lti_registrations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_used_nonces")),
        sa.UniqueConstraint("state_id", name=op.f("uq_lti_used_nonces_state_id")),
    )
    op.create_index("ix_lti_used_nonces_expires_at", "lti_used_nonces", ["expires_at"])

    op.drop_index("ix_lti_nonces_expires_at", "lti_nonces")
    op.drop_table("lti_nonces")


def downgrade() -> None:
    op.create_table(
        "lti_nonces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("uses_platform_storage", sa.Boolean(), nullable=False),
        sa.Column("storage_binding_sha256", sa.String(length=64), nullable=True),
        sa.Column("storage_target", sa.String(length=128), nullable=True),
        sa.Column(
            "expires_at", badge_engine.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_lti_nonces_provider_id_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["lti_registrations.id"],
            name=op.f("fk_lti_nonces_registration_id_lti_registrations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_nonces")),
        sa.UniqueConstraint("state", name=op.f("uq_lti_nonces_state")),
    )
    op.create_index("ix_lti_nonces_expires_at", "lti_nonces", ["expires_at"])

    op.drop_index("ix_lti_used_nonces_expires_at", "lti_used_nonces")
    op.drop_table("lti_used_nonces")
