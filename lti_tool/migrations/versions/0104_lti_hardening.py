"""LTI nonces, deployment policy, platform family and tool key rotation

Revision ID: 0104
Revises: 0103
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa
import badge_engine.db


revision = "0104"
down_revision = "0103"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lti_nonces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("uses_platform_storage", sa.Boolean(), nullable=False),
        sa.Column("storage_binding_sha256", sa.String(length=64), nullable=True),
        sa.Column(
            "expires_at", badge_engine.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_lti_nonces_provider_id_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["lti_registrations.id"],
            name=op.f("fk_lti_nonces_registration_id_lti_registrations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_nonces")),
        sa.UniqueConstraint("state", name=op.f("uq_lti_nonces_state")),
    )
    with op.batch_alter_table("lti_nonces", schema=None) as batch_op:
        batch_op.create_index("ix_lti_nonces_expires_at", ["expires_at"], unique=False)

    with op.batch_alter_table("lti_registrations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "new_deployment_policy",
                sa.String(length=10),
                server_default="accept",
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column("platform_family", sa.String(length=20), nullable=True)
        )
        batch_op.add_column(
            sa.Column("previous_tool_key_id", sa.String(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "previous_tool_public_key_pem", sa.String(length=2000), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("lti_registrations", schema=None) as batch_op:
        batch_op.drop_column("previous_tool_public_key_pem")
        batch_op.drop_column("previous_tool_key_id")
        batch_op.drop_column("platform_family")
        batch_op.drop_column("new_deployment_policy")

    with op.batch_alter_table("lti_nonces", schema=None) as batch_op:
        batch_op.drop_index("ix_lti_nonces_expires_at")

    op.drop_table("lti_nonces")
