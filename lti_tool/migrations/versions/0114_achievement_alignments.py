"""Alignments (skills, standards) of each achievement

Revision ID: 0114_lead_alignments
Revises: 0113_ags
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0114_lead_alignments"
down_revision = "0113_ags"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("achievements") as batch:
        batch.add_column(sa.Column("alignments", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("achievements") as batch:
        batch.drop_column("alignments")
