"""LTI Platform Storage target kept with the login's nonce

Revision ID: 0111
Revises: 0110
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0111"
down_revision = "0110"
branch_labels = None
# The lti_nonces table comes from 0104, on another branch from 0001.
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lti_nonces") as batch:
        batch.add_column(
            sa.Column("storage_target", sa.String(length=128), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("lti_nonces") as batch:
        batch.drop_column("storage_target")
