"""Latest contacts of each LMS connection

Revision ID: 0122_lms_contacts
Revises: 0121_lms_disconnect
Create Date: 2026-12-05

The admin page showed "Connected" for a site whose LMS no longer answered,
because a failed poll or re-read was only logged. lms_contacts keeps, per
connection, when the latest successful and the latest failed contact happened,
what made them (poll, AGS poll, re-read, connection test), the failure's reason
and when the newest processed webhook event arrived. Existing connections get no
row, which the page shows as "no contact recorded yet" until their next poll.
"""

import sqlalchemy as sa
from alembic import op

import badge_engine.db

revision = "0122_lms_contacts"
down_revision = "0121_lms_disconnect"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lms_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("lms_connection_id", sa.Integer(), nullable=False),
        sa.Column(
            "last_success_at", badge_engine.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("last_success_source", sa.String(20), nullable=True),
        sa.Column(
            "last_failure_at", badge_engine.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("last_failure_source", sa.String(20), nullable=True),
        sa.Column("last_failure_detail", sa.Text(), nullable=True),
        sa.Column(
            "last_event_at", badge_engine.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(["provider_id"], ["providers.id"]),
        sa.ForeignKeyConstraint(["lms_connection_id"], ["lms_connections.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("lms_connection_id"),
    )
    op.create_index(
        "ix_lms_contacts_provider_id", "lms_contacts", ["provider_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_lms_contacts_provider_id", table_name="lms_contacts")
    op.drop_table("lms_contacts")
