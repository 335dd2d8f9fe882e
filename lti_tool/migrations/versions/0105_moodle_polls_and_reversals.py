"""Moodle poll cursors, and completion reversals flagged on credentials

Revision ID: 0105
Revises: 0104
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa
import badge_engine.db


revision = "0105"
down_revision = "0104"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "moodle_poll_cursors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("lms_connection_id", sa.Integer(), nullable=False),
        sa.Column("lms_course_id", sa.String(length=64), nullable=False),
        sa.Column("next_offset", sa.Integer(), nullable=False),
        sa.Column(
            "last_polled_at", badge_engine.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "last_pass_completed_at",
            badge_engine.db.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("facts_found", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", badge_engine.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["lms_connection_id"],
            ["lms_connections.id"],
            name=op.f("fk_moodle_poll_cursors_lms_connection_id_lms_connections"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_moodle_poll_cursors_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moodle_poll_cursors")),
        sa.UniqueConstraint(
            "provider_id",
            "lms_connection_id",
            "lms_course_id",
            name="uq_moodle_poll_cursors_course",
        ),
    )
    with op.batch_alter_table("moodle_poll_cursors", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_moodle_poll_cursors_provider_id"),
            ["provider_id"],
            unique=False,
        )

    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "completion_reversed_at",
                badge_engine.db.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column("completion_reversal_detail", sa.Text(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("completion_reversal_fact_id", sa.Integer(), nullable=True)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_credentials_completion_reversal_fact_id_completion_facts"),
            "completion_facts",
            ["completion_reversal_fact_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_credentials_completion_reversal_fact_id_completion_facts"),
            type_="foreignkey",
        )
        batch_op.drop_column("completion_reversal_fact_id")
        batch_op.drop_column("completion_reversal_detail")
        batch_op.drop_column("completion_reversed_at")

    with op.batch_alter_table("moodle_poll_cursors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_moodle_poll_cursors_provider_id"))
    op.drop_table("moodle_poll_cursors")
