"""AGS line items of each course and the percentage of grade facts

Revision ID: 0116_ags
Revises: 0115_backfill
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

import badge_engine.db

revision = "0116_ags"
down_revision = "0115_backfill"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ags_line_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("lti_course_id", sa.Integer(), nullable=False),
        sa.Column("lms_connection_id", sa.Integer(), nullable=False),
        sa.Column("lms_course_id", sa.String(length=64), nullable=False),
        sa.Column("lineitem_url", sa.Text(), nullable=False),
        sa.Column("lineitem_url_sha256", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=500), nullable=False),
        sa.Column("score_maximum", sa.Float(), nullable=False),
        sa.Column("resource_link_id", sa.String(length=255), nullable=True),
        sa.Column("tag", sa.String(length=255), nullable=True),
        sa.Column(
            "last_seen_at",
            badge_engine.db.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["provider_id"], ["providers.id"]),
        sa.ForeignKeyConstraint(["lti_course_id"], ["lti_courses.id"]),
        sa.ForeignKeyConstraint(["lms_connection_id"], ["lms_connections.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "lti_course_id", "lineitem_url_sha256", name="uq_ags_line_items_url"
        ),
    )
    op.create_index(
        op.f("ix_ags_line_items_provider_id"), "ags_line_items", ["provider_id"]
    )
    op.create_index(
        "ix_ags_line_items_course",
        "ags_line_items",
        ["lms_connection_id", "lms_course_id"],
    )

    with op.batch_alter_table("completion_facts") as batch:
        batch.add_column(sa.Column("grade_percent", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("completion_facts") as batch:
        batch.drop_column("grade_percent")

    op.drop_index("ix_ags_line_items_course", "ags_line_items")
    op.drop_index(op.f("ix_ags_line_items_provider_id"), "ags_line_items")
    op.drop_table("ags_line_items")
