"""One LMS connection per provider, kind and site

Revision ID: 0119_lms_site_key
Revises: 0118_active_backfill
Create Date: 2026-12-05

lms_connections.site_key holds the connection's site address in one spelling
(scheme and host in lower case, no default port, no trailing slash). A unique
index on (provider_id, kind, site_key) keeps two concurrent requests from
connecting one site twice for a provider. Existing rows are filled in id order.
When a provider already had two connections of one kind to the same site, the
older keeps the key and the later ones keep NULL, which the index does not
cover, so the upgrade loses no row.
"""

from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

revision = "0119_lms_site_key"
down_revision = "0118_active_backfill"
branch_labels = None
depends_on = None

DEFAULT_PORTS = {"http": 80, "https": 443}


def site_key(url: str) -> str:
    """Return the site address as `connectors.models.normalized_site_url` did when
    this migration was written. It is a copy, so later changes there cannot alter
    it."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def upgrade() -> None:
    with op.batch_alter_table("lms_connections") as batch:
        batch.add_column(sa.Column("site_key", sa.String(500), nullable=True))

    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT id, provider_id, kind, base_url FROM lms_connections ORDER BY id"
        )
    ).all()
    taken: set[tuple[int, str, str]] = set()
    for row_id, provider_id, kind, base_url in rows:
        key = site_key(base_url)
        if (provider_id, kind, key) in taken:
            continue
        taken.add((provider_id, kind, key))
        connection.execute(
            sa.text("UPDATE lms_connections SET site_key = :key WHERE id = :id"),
            {"key": key, "id": row_id},
        )

    op.create_index(
        "uq_lms_connections_provider_kind_site",
        "lms_connections",
        ["provider_id", "kind", "site_key"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_lms_connections_provider_kind_site", table_name="lms_connections")
    with op.batch_alter_table("lms_connections") as batch:
        batch.drop_column("site_key")
