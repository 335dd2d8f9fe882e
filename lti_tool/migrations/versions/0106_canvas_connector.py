"""Canvas connector: REST API credentials and reconciliation cursors

Revision ID: 0106
Revises: 0105
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa
import badge_engine.db


revision = "0106"
down_revision = "0105"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "canvas_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("lms_connection_id", sa.Integer(), nullable=False),
        sa.Column("auth_kind", sa.String(length=20), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=True),
        sa.Column("client_secret_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("access_token_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("refresh_token_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column(
            "access_token_expires_at",
            badge_engine.db.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("home_shard", sa.Integer(), nullable=True),
        sa.Column("jwks_url", sa.String(length=500), nullable=True),
        sa.Column(
            "updated_at", badge_engine.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["lms_connection_id"],
            ["lms_connections.id"],
            name=op.f("fk_canvas_credentials_lms_connection_id_lms_connections"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_canvas_credentials_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canvas_credentials")),
        sa.UniqueConstraint(
            "lms_connection_id", name=op.f("uq_canvas_credentials_lms_connection_id")
        ),
    )
    op.create_index(
        op.f("ix_canvas_credentials_provider_id"),
        "canvas_credentials",
        ["provider_id"],
        unique=False,
    )
    op.create_table(
        "canvas_poll_cursors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("lms_connection_id", sa.Integer(), nullable=False),
        sa.Column("lms_course_id", sa.String(length=64), nullable=False),
        sa.Column("next_page_url", sa.Text(), nullable=True),
        sa.Column("pages_read", sa.Integer(), nullable=False),
        sa.Column("learners_read", sa.Integer(), nullable=False),
        sa.Column(
            "run_started_at", badge_engine.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "last_finished_at",
            badge_engine.db.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["lms_connection_id"],
            ["lms_connections.id"],
            name=op.f("fk_canvas_poll_cursors_lms_connection_id_lms_connections"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_canvas_poll_cursors_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canvas_poll_cursors")),
        sa.UniqueConstraint(
            "lms_connection_id",
            "lms_course_id",
            name=op.f("uq_canvas_poll_cursors_lms_connection_id_lms_course_id"),
        ),
    )
    op.create_index(
        op.f("ix_canvas_poll_cursors_provider_id"),
        "canvas_poll_cursors",
        ["provider_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_canvas_poll_cursors_provider_id"), table_name="canvas_poll_cursors"
    )
    op.drop_table("canvas_poll_cursors")
    op.drop_index(
        op.f("ix_canvas_credentials_provider_id"), table_name="canvas_credentials"
    )
    op.drop_table("canvas_credentials")
