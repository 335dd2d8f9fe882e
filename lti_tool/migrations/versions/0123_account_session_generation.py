"""Session generation of each account

Revision ID: 0123_session_generation
Revises: 0122_lms_contacts
Create Date: 2026-12-05

Account sessions are signed cookies, so signing out or resetting a password could
not end a copy of the cookie kept elsewhere until it expired after 12 hours. Each
session now stores the account's session_generation from sign-in, and sign-out and
password resets raise it, which ends every older session of the account. Sessions
started before this upgrade carry no generation and end at their next request, so
every admin signs in once more.
"""

import sqlalchemy as sa
from alembic import op

revision = "0123_session_generation"
down_revision = "0122_lms_contacts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(
            sa.Column(
                "session_generation",
                sa.Integer(),
                nullable=False,
                server_default="0",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("session_generation")
