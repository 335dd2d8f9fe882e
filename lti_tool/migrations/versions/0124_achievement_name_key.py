"""One badge of each name per course

Revision ID: 0124_achievement_name_key
Revises: 0123_session_generation
Create Date: 2026-12-05

achievements.name_key holds the badge name with letter case and runs of whitespace
folded, and a unique constraint over the provider, LMS connection, course and key
keeps a course from getting a second badge of the same name, which the automatic
backfill would issue to every learner a second time. Existing rows get their key
here, except a row whose course already had a badge of the same key, counted by
id: such duplicates keep NULL, which the constraint does not compare, so the
upgrade never fails on existing data. They stay as they are until someone renames
or removes them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0124_achievement_name_key"
down_revision = "0123_session_generation"
branch_labels = None
depends_on = None


def _name_key(name: str) -> str:
    # The same folding as badge_engine.models.achievement_name_key, copied so that
    # this migration keeps working when the model changes.
    return " ".join(name.split()).casefold()


def upgrade() -> None:
    with op.batch_alter_table("achievements") as batch:
        batch.add_column(sa.Column("name_key", sa.String(600), nullable=True))

    achievements = sa.table(
        "achievements",
        sa.column("id", sa.Integer),
        sa.column("provider_id", sa.Integer),
        sa.column("lms_connection_id", sa.Integer),
        sa.column("lms_course_id", sa.String),
        sa.column("name", sa.String),
        sa.column("name_key", sa.String),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(
            achievements.c.id,
            achievements.c.provider_id,
            achievements.c.lms_connection_id,
            achievements.c.lms_course_id,
            achievements.c.name,
        ).order_by(achievements.c.id)
    )
    seen = set()
    for row in rows.all():
        key = _name_key(row.name)
        course_key = (row.provider_id, row.lms_connection_id, row.lms_course_id, key)
        if course_key in seen:
            continue
        seen.add(course_key)
        connection.execute(
            achievements.update()
            .where(achievements.c.id == row.id)
            .values(name_key=key)
        )

    with op.batch_alter_table("achievements") as batch:
        batch.create_unique_constraint(
            "uq_achievements_course_name",
            ["provider_id", "lms_connection_id", "lms_course_id", "name_key"],
        )


def downgrade() -> None:
    with op.batch_alter_table("achievements") as batch:
        batch.drop_constraint("uq_achievements_course_name", type_="unique")
        batch.drop_column("name_key")
