"""count of backfill awards rejected as bad input

Revision ID: 0115_backfill
Revises: 0114_lead_alignments
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0115_backfill"
down_revision = "0114_lead_alignments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("backfill_jobs") as batch:
        batch.add_column(
            sa.Column("rejected", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("backfill_jobs") as batch:
        batch.drop_column("rejected")
