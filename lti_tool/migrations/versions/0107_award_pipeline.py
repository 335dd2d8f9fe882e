"""Award locks, dead-letter actions and backfill jobs

Revision ID: 0107
Revises: 0106
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

import badge_engine.db

revision = "0107"
down_revision = "0106"
branch_labels = None
depends_on = None


def _utc(name: str, nullable: bool) -> sa.Column:
    return sa.Column(
        name, badge_engine.db.UTCDateTime(timezone=True), nullable=nullable
    )


def upgrade() -> None:
    op.create_table(
        "award_locks",
        sa.Column("lock_key", sa.String(length=80), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        _utc("locked_at", False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_award_locks_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("lock_key", name=op.f("pk_award_locks")),
    )

    op.create_table(
        "dead_letter_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("outbox_message_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("error_at_action", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        _utc("created_at", False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_dead_letter_actions_provider_id_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["outbox_message_id"],
            ["outbox.id"],
            name=op.f("fk_dead_letter_actions_outbox_message_id_outbox"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letter_actions")),
    )
    op.create_index(
        "ix_dead_letter_actions_provider_id", "dead_letter_actions", ["provider_id"]
    )
    op.create_index(
        "ix_dead_letter_actions_outbox_message_id",
        "dead_letter_actions",
        ["outbox_message_id"],
    )

    op.create_table(
        "backfill_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("lms_connection_id", sa.Integer(), nullable=False),
        sa.Column("lms_course_id", sa.String(length=64), nullable=False),
        sa.Column("achievement_ids", sa.JSON(), nullable=False),
        sa.Column("trigger", sa.String(length=30), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("next_offset", sa.Integer(), nullable=False),
        sa.Column("learners_seen", sa.Integer(), nullable=False),
        sa.Column("issued", sa.Integer(), nullable=False),
        sa.Column("already_held", sa.Integer(), nullable=False),
        sa.Column("not_met", sa.Integer(), nullable=False),
        sa.Column("failed_reads", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=36), nullable=True),
        _utc("lease_until", True),
        _utc("created_at", False),
        _utc("started_at", True),
        _utc("finished_at", True),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_backfill_jobs_provider_id_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["lms_connection_id"],
            ["lms_connections.id"],
            name=op.f("fk_backfill_jobs_lms_connection_id_lms_connections"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backfill_jobs")),
        sa.UniqueConstraint("public_id", name=op.f("uq_backfill_jobs_public_id")),
    )
    op.create_index("ix_backfill_jobs_provider_id", "backfill_jobs", ["provider_id"])
    op.create_index(
        "ix_backfill_jobs_status_lease", "backfill_jobs", ["status", "lease_until"]
    )


def downgrade() -> None:
    op.drop_index("ix_backfill_jobs_status_lease", table_name="backfill_jobs")
    op.drop_index("ix_backfill_jobs_provider_id", table_name="backfill_jobs")
    op.drop_table("backfill_jobs")
    op.drop_index(
        "ix_dead_letter_actions_outbox_message_id", table_name="dead_letter_actions"
    )
    op.drop_index(
        "ix_dead_letter_actions_provider_id", table_name="dead_letter_actions"
    )
    op.drop_table("dead_letter_actions")
    op.drop_table("award_locks")
