"""credential versions, validity periods and learner identities

Revision ID: 0112
Revises: 0111
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

import badge_engine.db

revision = "0112"
down_revision = "0111"
branch_labels = None
depends_on = None


def _timestamp(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(
        name, badge_engine.db.UTCDateTime(timezone=True), nullable=nullable
    )


def upgrade() -> None:
    with op.batch_alter_table("achievements") as batch:
        batch.add_column(sa.Column("valid_for_days", sa.Integer(), nullable=True))

    with op.batch_alter_table("credentials") as batch:
        batch.add_column(_timestamp("valid_until"))
        batch.add_column(
            sa.Column("previous_credential_id", sa.Integer(), nullable=True)
        )
        batch.add_column(sa.Column("superseded_by_id", sa.Integer(), nullable=True))
        batch.add_column(_timestamp("superseded_at"))
        batch.add_column(
            sa.Column("supersede_reason", sa.String(length=20), nullable=True)
        )
        batch.create_foreign_key(
            "fk_credentials_previous_credential_id_credentials",
            "credentials",
            ["previous_credential_id"],
            ["id"],
        )
        batch.create_foreign_key(
            "fk_credentials_superseded_by_id_credentials",
            "credentials",
            ["superseded_by_id"],
            ["id"],
        )

    op.create_table(
        "learner_identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("learner_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("normalised", sa.String(length=320), nullable=False),
        _timestamp("verified_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_learner_identities_provider_id_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["learner_id"],
            ["learners.id"],
            name=op.f("fk_learner_identities_learner_id_learners"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_learner_identities")),
        sa.UniqueConstraint(
            "provider_id",
            "kind",
            "normalised",
            name=op.f("uq_learner_identities_provider_id_kind_normalised"),
        ),
    )
    op.create_index(
        op.f("ix_learner_identities_provider_id"),
        "learner_identities",
        ["provider_id"],
    )
    op.create_index(
        op.f("ix_learner_identities_learner_id"), "learner_identities", ["learner_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_learner_identities_learner_id"), "learner_identities")
    op.drop_index(op.f("ix_learner_identities_provider_id"), "learner_identities")
    op.drop_table("learner_identities")
    with op.batch_alter_table("credentials") as batch:
        batch.drop_constraint(
            "fk_credentials_superseded_by_id_credentials", type_="foreignkey"
        )
        batch.drop_constraint(
            "fk_credentials_previous_credential_id_credentials", type_="foreignkey"
        )
        for column in (
            "supersede_reason",
            "superseded_at",
            "superseded_by_id",
            "previous_credential_id",
            "valid_until",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("achievements") as batch:
        batch.drop_column("valid_for_days")
