"""Disabled accounts

Revision ID: 0125_account_disabled_at
Revises: 0124_achievement_name_key
Create Date: 2026-12-05

A provider admin or an operator can disable an account, which then cannot sign in
and sends no password reset email. The column is null for an enabled account, so
every existing account stays enabled.
"""

import sqlalchemy as sa
from alembic import op

import badge_engine.db

revision = "0125_account_disabled_at"
down_revision = "0124_achievement_name_key"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(
            sa.Column(
                "disabled_at",
                badge_engine.db.UTCDateTime(timezone=True),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("disabled_at")
