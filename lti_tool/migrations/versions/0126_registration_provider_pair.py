"""An issuer and client id pair unique per provider

Revision ID: 0126_registration_provider_pair
Revises: 0125_account_disabled_at
Create Date: 2026-12-05

Each registration has its own login, launch and JWKS URLs, so a launch finds its
registration by the URL and never by issuer and client id. A unique constraint
over the whole bridge let one provider register another provider's platform pair
first, which blocked the real owner and told a provider that another one had that
platform. The constraint now covers (provider_id, issuer, client_id).

The downgrade restores the bridge-wide constraint, so it fails while two providers
hold the same pair; remove one of the two registrations first.
"""

import sqlalchemy as sa
from alembic import op

revision = "0126_registration_provider_pair"
down_revision = "0125_account_disabled_at"
branch_labels = None
depends_on = None

BRIDGE_WIDE = "uq_lti_registrations_issuer_client_id"
PER_PROVIDER = "uq_lti_registrations_provider_id_issuer_client_id"


def upgrade() -> None:
    with op.batch_alter_table("lti_registrations") as batch:
        batch.drop_constraint(BRIDGE_WIDE, type_="unique")
        batch.create_unique_constraint(
            PER_PROVIDER, ["provider_id", "issuer", "client_id"]
        )


def downgrade() -> None:
    registrations = sa.table(
        "lti_registrations",
        sa.column("issuer", sa.String),
        sa.column("client_id", sa.String),
    )
    shared = (
        op.get_bind()
        .execute(
            sa.select(registrations.c.issuer, registrations.c.client_id)
            .group_by(registrations.c.issuer, registrations.c.client_id)
            .having(sa.func.count() > 1)
            .limit(1)
        )
        .first()
    )
    if shared is not None:
        raise RuntimeError(
            f"cannot downgrade: more than one provider has a registration with "
            f"issuer {shared.issuer!r} and client id {shared.client_id!r}, and the "
            "older schema allows one; remove all but one of them with "
            "`hpass-bridge platform remove --provider SLUG` and downgrade again"
        )

    with op.batch_alter_table("lti_registrations") as batch:
        batch.drop_constraint(PER_PROVIDER, type_="unique")
        batch.create_unique_constraint(BRIDGE_WIDE, ["issuer", "client_id"])
