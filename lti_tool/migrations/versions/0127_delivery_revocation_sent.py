"""Time a delivery's route passed a revocation on

Revision ID: 0127_delivery_revocation_sent
Revises: 0126_registration_provider_pair
Create Date: 2026-12-05

A revoked credential's delivery records when its route told the destination of
the revocation (OB 3.0 API portfolios get the credential again, OBF revokes its
event). The column is null for a delivery whose destination was never told.
Open Badge Factory deliveries revoked before this column existed did revoke
their OBF event, so they get their last update time. OB 3.0 API deliveries
revoked before then sent nothing and stay null.
"""

import sqlalchemy as sa
from alembic import op

import badge_engine.db

revision = "0127_delivery_revocation_sent"
down_revision = "0126_registration_provider_pair"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(
            sa.Column(
                "revocation_sent_at",
                badge_engine.db.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
    op.execute(
        "UPDATE deliveries SET revocation_sent_at = updated_at "
        "WHERE route = 'obf' AND status = 'revoked' AND remote_id IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("revocation_sent_at")
