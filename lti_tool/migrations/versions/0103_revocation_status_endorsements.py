"""Revocation reasons, status list indexes and endorsements

Revision ID: 0103
Revises: 0001
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa
import badge_engine.db


revision = "0103"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.add_column(
            sa.Column(
                "revoked_at", badge_engine.db.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch.add_column(sa.Column("revocation_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("status_list_index", sa.Integer(), nullable=True))

    op.create_table(
        "status_list_allocations",
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("next_index", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_status_list_allocations_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("provider_id", name=op.f("pk_status_list_allocations")),
    )
    op.create_table(
        "endorsements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("subject_type", sa.String(length=20), nullable=False),
        sa.Column("achievement_id", sa.Integer(), nullable=True),
        sa.Column("endorser_name", sa.String(length=200), nullable=False),
        sa.Column("endorsement_comment", sa.Text(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column(
            "issued_at", badge_engine.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "revoked_at", badge_engine.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["achievement_id"],
            ["achievements.id"],
            name=op.f("fk_endorsements_achievement_id_achievements"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_endorsements_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endorsements")),
        sa.UniqueConstraint("public_id", name=op.f("uq_endorsements_public_id")),
    )
    op.create_index(
        op.f("ix_endorsements_provider_id"), "endorsements", ["provider_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_endorsements_provider_id"), table_name="endorsements")
    op.drop_table("endorsements")
    op.drop_table("status_list_allocations")
    with op.batch_alter_table("credentials") as batch:
        batch.drop_column("status_list_index")
        batch.drop_column("revocation_reason")
        batch.drop_column("revoked_at")
