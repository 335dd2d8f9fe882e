"""Single-use LTI Dynamic Registration links

Revision ID: 0128_registration_links
Revises: 0127_delivery_revocation_sent
Create Date: 2026-12-06

Each Dynamic Registration URL is now a row of its provider, keyed by the SHA-256
digest of its random token, so a link works once and an admin can revoke it.
URLs issued before this revision carried a signed provider id and have no row;
the bridge rejects them and tells the admin to create a new link.
"""

import sqlalchemy as sa
from alembic import op

import badge_engine.db

revision = "0128_registration_links"
down_revision = "0127_delivery_revocation_sent"
branch_labels = None
depends_on = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(
        name, badge_engine.db.UTCDateTime(timezone=True), nullable=nullable
    )


def upgrade() -> None:
    op.create_table(
        "lti_registration_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        _timestamp("created_at"),
        _timestamp("expires_at"),
        _timestamp("used_at", nullable=True),
        _timestamp("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_lti_registration_links_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_registration_links")),
        sa.UniqueConstraint(
            "token_sha256", name=op.f("uq_lti_registration_links_token_sha256")
        ),
    )
    op.create_index(
        op.f("ix_lti_registration_links_provider_id"),
        "lti_registration_links",
        ["provider_id"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_lti_registration_links_provider_id"),
        table_name="lti_registration_links",
    )
    op.drop_table("lti_registration_links")
