"""Disconnected LMS connections

Revision ID: 0121_lms_disconnect
Revises: 0120_facts_learner_index
Create Date: 2026-12-05

An admin can disconnect an LMS connection. The row stays, because completion
facts, learners, badges and deliveries refer to it, and its state becomes
"disconnected", 12 characters, so the state column grows from 10 to 20
characters. disconnected_at and disconnected_by record when and by whom.

Downgrading turns disconnected rows into broken ones, which the older code also
never polls. Their secrets stay wiped and their site_key stays NULL.
"""

import sqlalchemy as sa
from alembic import op

import badge_engine.db

revision = "0121_lms_disconnect"
down_revision = "0120_facts_learner_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite does not enforce a VARCHAR length, and changing the type there would
    # copy the whole table, so only other databases alter the column.
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "lms_connections",
            "state",
            existing_type=sa.String(10),
            type_=sa.String(20),
            existing_nullable=False,
        )
    with op.batch_alter_table("lms_connections") as batch:
        batch.add_column(
            sa.Column(
                "disconnected_at",
                badge_engine.db.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch.add_column(sa.Column("disconnected_by", sa.String(200), nullable=True))


def downgrade() -> None:
    op.execute(
        "UPDATE lms_connections SET state = 'broken' WHERE state = 'disconnected'"
    )
    with op.batch_alter_table("lms_connections") as batch:
        batch.drop_column("disconnected_by")
        batch.drop_column("disconnected_at")
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "lms_connections",
            "state",
            existing_type=sa.String(20),
            type_=sa.String(10),
            existing_nullable=False,
        )
