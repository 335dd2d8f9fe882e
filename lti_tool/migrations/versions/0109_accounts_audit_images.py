"""accounts, one-time links, audit events, badge images and activity names

Revision ID: 0109
Revises: 0108
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

import badge_engine.db

revision = "0109"
down_revision = "0108"
branch_labels = None
depends_on = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(
        name, badge_engine.db.UTCDateTime(timezone=True), nullable=nullable
    )


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("failed_sign_ins", sa.Integer(), nullable=False),
        _timestamp("locked_until", nullable=True),
        _timestamp("last_sign_in_at", nullable=True),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_accounts_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("email", name=op.f("uq_accounts_email")),
    )
    op.create_index(op.f("ix_accounts_provider_id"), "accounts", ["provider_id"])

    op.create_table(
        "account_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("created_by_account_id", sa.Integer(), nullable=True),
        _timestamp("expires_at"),
        _timestamp("used_at", nullable=True),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_account_tokens_provider_id_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_tokens_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_account_id"],
            ["accounts.id"],
            name=op.f("fk_account_tokens_created_by_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_tokens")),
        sa.UniqueConstraint(
            "token_sha256", name=op.f("uq_account_tokens_token_sha256")
        ),
    )

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_audit_events_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(
        op.f("ix_audit_events_provider_id"), "audit_events", ["provider_id"]
    )
    op.create_index(op.f("ix_audit_events_created_at"), "audit_events", ["created_at"])

    op.create_table(
        "achievement_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("media_type", sa.String(length=40), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_achievement_images_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_achievement_images")),
        sa.UniqueConstraint("public_id", name=op.f("uq_achievement_images_public_id")),
    )
    op.create_index(
        op.f("ix_achievement_images_provider_id"), "achievement_images", ["provider_id"]
    )

    op.create_table(
        "course_activity_names",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("lms_connection_id", sa.Integer(), nullable=False),
        sa.Column("lms_course_id", sa.String(length=64), nullable=False),
        sa.Column("activity_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        _timestamp("updated_at"),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_course_activity_names_provider_id_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["lms_connection_id"],
            ["lms_connections.id"],
            name=op.f("fk_course_activity_names_lms_connection_id_lms_connections"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_course_activity_names")),
        sa.UniqueConstraint(
            "lms_connection_id",
            "lms_course_id",
            "activity_id",
            name="uq_course_activity_names_activity",
        ),
    )
    op.create_index(
        op.f("ix_course_activity_names_provider_id"),
        "course_activity_names",
        ["provider_id"],
    )


def downgrade() -> None:
    op.drop_table("course_activity_names")
    op.drop_table("achievement_images")
    op.drop_table("audit_events")
    op.drop_table("account_tokens")
    op.drop_table("accounts")
