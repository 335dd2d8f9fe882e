"""Email language of accounts

Revision ID: 0129_account_locale
Revises: 0128_registration_links
Create Date: 2026-12-06

Password reset emails and invitation notices are sent in the account's language,
which the bridge stores when its holder signs in, accepts an invitation or picks
a language on the admin pages. The column is null for every existing account,
which gets English emails until then.
"""

import sqlalchemy as sa
from alembic import op

revision = "0129_account_locale"
down_revision = "0128_registration_links"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("locale", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("locale")
