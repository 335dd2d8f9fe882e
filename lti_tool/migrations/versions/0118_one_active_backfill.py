"""One active backfill job per achievement

Revision ID: 0118_active_backfill
Revises: 0117_used_nonces
Create Date: 2026-12-04

backfill_jobs.active_achievement_id holds the achievement of a single-achievement
job until someone asks the job to stop. A unique index over the pending and running
jobs keeps concurrent requests for one badge from adding a second job. Jobs from
before the upgrade keep NULL and are not covered.
"""

import sqlalchemy as sa
from alembic import op

revision = "0118_active_backfill"
down_revision = "0117_used_nonces"
branch_labels = None
depends_on = None

ACTIVE = sa.text("status IN ('pending', 'running')")


def upgrade() -> None:
    with op.batch_alter_table("backfill_jobs") as batch:
        batch.add_column(
            sa.Column("active_achievement_id", sa.Integer(), nullable=True)
        )
    op.create_index(
        "uq_backfill_jobs_active_achievement",
        "backfill_jobs",
        ["active_achievement_id"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )


def downgrade() -> None:
    op.drop_index("uq_backfill_jobs_active_achievement", table_name="backfill_jobs")
    with op.batch_alter_table("backfill_jobs") as batch:
        batch.drop_column("active_achievement_id")
