"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa
import badge_engine.db


revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "providers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("slug_frozen", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at", badge_engine.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_providers")),
        sa.UniqueConstraint("slug", name=op.f("uq_providers_slug")),
    )
    op.create_table(
        "lms_connections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("base_url", sa.String(length=500), nullable=False),
        sa.Column("api_token_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("webhook_secret_sha256", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("state_detail", sa.Text(), nullable=True),
        sa.Column(
            "created_at", badge_engine.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_lms_connections_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lms_connections")),
        sa.UniqueConstraint("public_id", name=op.f("uq_lms_connections_public_id")),
    )
    with op.batch_alter_table("lms_connections", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lms_connections_provider_id"), ["provider_id"], unique=False
        )

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at",
            badge_engine.db.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.Column(
            "locked_until", badge_engine.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "dispatched_at", badge_engine.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "created_at", badge_engine.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "completed_at", badge_engine.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_outbox_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_outbox_idempotency_key")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_due", ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_outbox_provider_id"), ["provider_id"], unique=False
        )

    op.create_table(
        "signing_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(length=20), nullable=False),
        sa.Column("key_name", sa.String(length=40), nullable=False),
        sa.Column("public_key_multibase", sa.String(length=200), nullable=False),
        sa.Column("private_key_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at", badge_engine.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_signing_keys_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signing_keys")),
        sa.UniqueConstraint(
            "provider_id", "key_name", name=op.f("uq_signing_keys_provider_id_key_name")
        ),
    )
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_signing_keys_provider_id"), ["provider_id"], unique=False
        )

    op.create_table(
        "achievements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("lms_connection_id", sa.Integer(), nullable=False),
        sa.Column("lms_course_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("criteria_narrative", sa.Text(), nullable=False),
        sa.Column("image_url", sa.String(length=500), nullable=True),
        sa.Column("award_rule", sa.JSON(), nullable=False),
        sa.Column(
            "created_at", badge_engine.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["lms_connection_id"],
            ["lms_connections.id"],
            name=op.f("fk_achievements_lms_connection_id_lms_connections"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_achievements_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_achievements")),
        sa.UniqueConstraint("public_id", name=op.f("uq_achievements_public_id")),
    )
    with op.batch_alter_table("achievements", schema=None) as batch_op:
        batch_op.create_index(
            "ix_achievements_course",
            ["provider_id", "lms_connection_id", "lms_course_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_achievements_provider_id"), ["provider_id"], unique=False
        )

    op.create_table(
        "completion_facts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("lms_connection_id", sa.Integer(), nullable=False),
        sa.Column("lms_course_id", sa.String(length=64), nullable=False),
        sa.Column("lms_user_id", sa.String(length=64), nullable=False),
        sa.Column("activity_id", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column(
            "occurred_at", badge_engine.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("source_event_id", sa.String(length=200), nullable=True),
        sa.Column("dedupe_key", sa.String(length=64), nullable=False),
        sa.Column("raw_payload", sa.JSON(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("outcome_detail", sa.Text(), nullable=True),
        sa.Column(
            "received_at", badge_engine.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "processed_at", badge_engine.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["lms_connection_id"],
            ["lms_connections.id"],
            name=op.f("fk_completion_facts_lms_connection_id_lms_connections"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_completion_facts_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_completion_facts")),
        sa.UniqueConstraint(
            "provider_id",
            "dedupe_key",
            name=op.f("uq_completion_facts_provider_id_dedupe_key"),
        ),
    )
    with op.batch_alter_table("completion_facts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_completion_facts_provider_id"), ["provider_id"], unique=False
        )

    op.create_table(
        "learners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("lms_connection_id", sa.Integer(), nullable=False),
        sa.Column("lms_user_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column(
            "created_at", badge_engine.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["lms_connection_id"],
            ["lms_connections.id"],
            name=op.f("fk_learners_lms_connection_id_lms_connections"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_learners_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_learners")),
        sa.UniqueConstraint(
            "provider_id",
            "lms_connection_id",
            "lms_user_id",
            name=op.f("uq_learners_provider_id_lms_connection_id_lms_user_id"),
        ),
    )
    with op.batch_alter_table("learners", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_learners_provider_id"), ["provider_id"], unique=False
        )

    op.create_table(
        "lti_registrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("client_id", sa.String(length=200), nullable=False),
        sa.Column("auth_login_url", sa.String(length=500), nullable=False),
        sa.Column("auth_token_url", sa.String(length=500), nullable=True),
        sa.Column("key_set_url", sa.String(length=500), nullable=False),
        sa.Column("tool_key_id", sa.String(length=64), nullable=False),
        sa.Column("tool_private_key_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("tool_public_key_pem", sa.String(length=2000), nullable=False),
        sa.Column("lms_connection_id", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", badge_engine.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["lms_connection_id"],
            ["lms_connections.id"],
            name=op.f("fk_lti_registrations_lms_connection_id_lms_connections"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_lti_registrations_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_registrations")),
        sa.UniqueConstraint(
            "issuer", "client_id", name=op.f("uq_lti_registrations_issuer_client_id")
        ),
        sa.UniqueConstraint("public_id", name=op.f("uq_lti_registrations_public_id")),
    )
    with op.batch_alter_table("lti_registrations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lti_registrations_provider_id"),
            ["provider_id"],
            unique=False,
        )

    op.create_table(
        "credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=36), nullable=False),
        sa.Column("achievement_id", sa.Integer(), nullable=False),
        sa.Column("learner_id", sa.Integer(), nullable=False),
        sa.Column("live_key", sa.String(length=80), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column(
            "awarded_at", badge_engine.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "issued_at", badge_engine.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("source_fact_id", sa.Integer(), nullable=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["achievement_id"],
            ["achievements.id"],
            name=op.f("fk_credentials_achievement_id_achievements"),
        ),
        sa.ForeignKeyConstraint(
            ["learner_id"],
            ["learners.id"],
            name=op.f("fk_credentials_learner_id_learners"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_credentials_provider_id_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["source_fact_id"],
            ["completion_facts.id"],
            name=op.f("fk_credentials_source_fact_id_completion_facts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
        sa.UniqueConstraint("live_key", name=op.f("uq_credentials_live_key")),
        sa.UniqueConstraint("public_id", name=op.f("uq_credentials_public_id")),
    )
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_credentials_achievement_id"),
            ["achievement_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_credentials_learner_id"), ["learner_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_credentials_provider_id"), ["provider_id"], unique=False
        )

    op.create_table(
        "lti_courses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("lti_context_id", sa.String(length=255), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=True),
        sa.Column("lms_course_id", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at", badge_engine.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_lti_courses_provider_id_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["lti_registrations.id"],
            name=op.f("fk_lti_courses_registration_id_lti_registrations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_courses")),
        sa.UniqueConstraint(
            "registration_id",
            "lti_context_id",
            name=op.f("uq_lti_courses_registration_id_lti_context_id"),
        ),
    )
    with op.batch_alter_table("lti_courses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lti_courses_provider_id"), ["provider_id"], unique=False
        )

    op.create_table(
        "lti_deployments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column(
            "created_at", badge_engine.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_lti_deployments_provider_id_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["lti_registrations.id"],
            name=op.f("fk_lti_deployments_registration_id_lti_registrations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_deployments")),
        sa.UniqueConstraint(
            "registration_id",
            "deployment_id",
            name=op.f("uq_lti_deployments_registration_id_deployment_id"),
        ),
    )
    with op.batch_alter_table("lti_deployments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lti_deployments_provider_id"), ["provider_id"], unique=False
        )

    op.create_table(
        "portfolio_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("learner_id", sa.Integer(), nullable=False),
        sa.Column("api_base_url", sa.String(length=500), nullable=False),
        sa.Column("access_token_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at", badge_engine.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["learner_id"],
            ["learners.id"],
            name=op.f("fk_portfolio_accounts_learner_id_learners"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_portfolio_accounts_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portfolio_accounts")),
        sa.UniqueConstraint(
            "learner_id",
            "api_base_url",
            name=op.f("uq_portfolio_accounts_learner_id_api_base_url"),
        ),
    )
    with op.batch_alter_table("portfolio_accounts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_portfolio_accounts_provider_id"),
            ["provider_id"],
            unique=False,
        )

    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.Integer(), nullable=False),
        sa.Column("route", sa.String(length=20), nullable=False),
        sa.Column("portfolio_account_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=15), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_http_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "delivered_at", badge_engine.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "updated_at", badge_engine.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credentials.id"],
            name=op.f("fk_deliveries_credential_id_credentials"),
        ),
        sa.ForeignKeyConstraint(
            ["portfolio_account_id"],
            ["portfolio_accounts.id"],
            name=op.f("fk_deliveries_portfolio_account_id_portfolio_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_deliveries_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint(
            "credential_id",
            "route",
            "portfolio_account_id",
            name=op.f("uq_deliveries_credential_id_route_portfolio_account_id"),
        ),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deliveries_credential_id"), ["credential_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_deliveries_provider_id"), ["provider_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_provider_id"))
        batch_op.drop_index(batch_op.f("ix_deliveries_credential_id"))

    op.drop_table("deliveries")
    with op.batch_alter_table("portfolio_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_portfolio_accounts_provider_id"))

    op.drop_table("portfolio_accounts")
    with op.batch_alter_table("lti_deployments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lti_deployments_provider_id"))

    op.drop_table("lti_deployments")
    with op.batch_alter_table("lti_courses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lti_courses_provider_id"))

    op.drop_table("lti_courses")
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credentials_provider_id"))
        batch_op.drop_index(batch_op.f("ix_credentials_learner_id"))
        batch_op.drop_index(batch_op.f("ix_credentials_achievement_id"))

    op.drop_table("credentials")
    with op.batch_alter_table("lti_registrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lti_registrations_provider_id"))

    op.drop_table("lti_registrations")
    with op.batch_alter_table("learners", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_learners_provider_id"))

    op.drop_table("learners")
    with op.batch_alter_table("completion_facts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_completion_facts_provider_id"))

    op.drop_table("completion_facts")
    with op.batch_alter_table("achievements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_achievements_provider_id"))
        batch_op.drop_index("ix_achievements_course")

    op.drop_table("achievements")
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signing_keys_provider_id"))

    op.drop_table("signing_keys")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_provider_id"))
        batch_op.drop_index("ix_outbox_due")

    op.drop_table("outbox")
    with op.batch_alter_table("lms_connections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lms_connections_provider_id"))

    op.drop_table("lms_connections")
    op.drop_table("providers")
