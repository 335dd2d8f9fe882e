"""portfolio delivery routes: OAuth clients, tokens, OBF, delivery results

Revision ID: 0108
Revises: 0107
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa
import badge_engine.db


revision = "0108"
down_revision = "0107"
branch_labels = None
depends_on = None

UTC = badge_engine.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "portfolio_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("route", sa.String(length=20), nullable=False),
        sa.Column("portfolio_url", sa.String(length=500), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("api_base_url", sa.String(length=500), nullable=False),
        sa.Column("authorization_url", sa.String(length=500), nullable=False),
        sa.Column("token_url", sa.String(length=500), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("client_id", sa.String(length=500), nullable=False),
        sa.Column("client_secret_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_portfolio_clients_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portfolio_clients")),
        sa.UniqueConstraint(
            "provider_id",
            "route",
            "portfolio_url",
            name=op.f("uq_portfolio_clients_provider_id_route_portfolio_url"),
        ),
    )
    op.create_index(
        op.f("ix_portfolio_clients_provider_id"), "portfolio_clients", ["provider_id"]
    )

    with op.batch_alter_table("portfolio_accounts", schema=None) as batch_op:
        batch_op.alter_column(
            "access_token_encrypted", existing_type=sa.LargeBinary(), nullable=True
        )
        batch_op.add_column(
            sa.Column(
                "route", sa.String(length=20), nullable=False, server_default="ob3_api"
            )
        )
        batch_op.add_column(sa.Column("client_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("refresh_token_encrypted", sa.LargeBinary(), nullable=True)
        )
        batch_op.add_column(sa.Column("access_token_expires_at", UTC, nullable=True))
        batch_op.add_column(
            sa.Column(
                "state", sa.String(length=15), nullable=False, server_default="linked"
            )
        )
        batch_op.add_column(sa.Column("state_detail", sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_portfolio_accounts_client_id_portfolio_clients"),
            "portfolio_clients",
            ["client_id"],
            ["id"],
        )

    op.create_table(
        "portfolio_link_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("learner_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=100), nullable=False),
        sa.Column("code_verifier_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("return_course_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_portfolio_link_requests_provider_id_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["learner_id"],
            ["learners.id"],
            name=op.f("fk_portfolio_link_requests_learner_id_learners"),
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["portfolio_clients.id"],
            name=op.f("fk_portfolio_link_requests_client_id_portfolio_clients"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portfolio_link_requests")),
        sa.UniqueConstraint("state", name=op.f("uq_portfolio_link_requests_state")),
    )
    op.create_index(
        op.f("ix_portfolio_link_requests_provider_id"),
        "portfolio_link_requests",
        ["provider_id"],
    )

    op.create_table(
        "obf_connections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("api_base_url", sa.String(length=500), nullable=False),
        sa.Column("client_id", sa.String(length=200), nullable=False),
        sa.Column("client_secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("access_token_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("access_token_expires_at", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_obf_connections_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_obf_connections")),
        sa.UniqueConstraint("provider_id", name=op.f("uq_obf_connections_provider_id")),
    )

    op.create_table(
        "obf_badge_mappings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("achievement_id", sa.Integer(), nullable=False),
        sa.Column("obf_badge_id", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_obf_badge_mappings_provider_id_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["achievement_id"],
            ["achievements.id"],
            name=op.f("fk_obf_badge_mappings_achievement_id_achievements"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_obf_badge_mappings")),
        sa.UniqueConstraint(
            "achievement_id", name=op.f("uq_obf_badge_mappings_achievement_id")
        ),
    )
    op.create_index(
        op.f("ix_obf_badge_mappings_provider_id"), "obf_badge_mappings", ["provider_id"]
    )

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("remote_id", sa.String(length=200), nullable=True)
        )
        batch_op.add_column(
            sa.Column("remote_url", sa.String(length=500), nullable=True)
        )
        batch_op.add_column(sa.Column("first_failed_at", UTC, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("first_failed_at")
        batch_op.drop_column("remote_url")
        batch_op.drop_column("remote_id")
    op.drop_index(op.f("ix_obf_badge_mappings_provider_id"), "obf_badge_mappings")
    op.drop_table("obf_badge_mappings")
    op.drop_table("obf_connections")
    op.drop_index(
        op.f("ix_portfolio_link_requests_provider_id"), "portfolio_link_requests"
    )
    op.drop_table("portfolio_link_requests")
    with op.batch_alter_table("portfolio_accounts", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_portfolio_accounts_client_id_portfolio_clients"),
            type_="foreignkey",
        )
        batch_op.drop_column("state_detail")
        batch_op.drop_column("state")
        batch_op.drop_column("access_token_expires_at")
        batch_op.drop_column("refresh_token_encrypted")
        batch_op.drop_column("client_id")
        batch_op.drop_column("route")
        batch_op.alter_column(
            "access_token_encrypted", existing_type=sa.LargeBinary(), nullable=False
        )
    op.drop_index(op.f("ix_portfolio_clients_provider_id"), "portfolio_clients")
    op.drop_table("portfolio_clients")
