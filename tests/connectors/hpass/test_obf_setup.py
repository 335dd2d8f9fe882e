"""Connecting a provider's OBF client and mapping achievements to OBF badges."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from badge_engine.outbound import OutboundPolicy
from connectors.hpass.models import ObfBadgeMapping, ObfConnection
from connectors.hpass.obf import ObfSetupError, connect_obf, map_obf_badge

LOOPBACK = OutboundPolicy(allow_loopback=True)


def _connect(app, db, seeded, obf, secret="obf-secret", url=None):
    return connect_obf(
        db,
        app.extensions["hpass"].vault,
        LOOPBACK,
        provider_id=seeded.provider_id,
        api_base_url=url or obf.url,
        client_id=obf.client_id,
        client_secret=secret,
    )


def test_connect_stores_encrypted_secret(app, db, seeded, obf):
    """A working OBF client is stored with its secret and token encrypted."""
    connection = _connect(app, db, seeded, obf)
    db.commit()

    assert connection.client_id == "ACME01"
    assert b"obf-secret" not in connection.client_secret_encrypted
    assert connection.access_token_encrypted is not None
    assert obf.token_requests == 1


def test_connect_wrong_secret_writes_nothing(app, db, seeded, obf):
    """A client OBF rejects raises with OBF's reason and stores nothing."""
    with pytest.raises(ObfSetupError, match="invalid_client"):
        _connect(app, db, seeded, obf, secret="wrong")

    assert db.scalar(select(func.count()).select_from(ObfConnection)) == 0


def test_connect_private_address_rejected(app, db, seeded, obf):
    """An OBF address on a private network is rejected before any request."""
    with pytest.raises(ObfSetupError, match="private"):
        _connect(app, db, seeded, obf, url="http://10.9.8.7")

    assert obf.token_requests == 0


def test_map_known_badge(app, db, seeded, obf):
    """Mapping checks that OBF has the badge and stores the mapping once."""
    badge_id = obf.add_badge("Safe travel")
    _connect(app, db, seeded, obf)
    vault = app.extensions["hpass"].vault

    for _ in range(2):
        map_obf_badge(
            db,
            vault,
            LOOPBACK,
            provider_id=seeded.provider_id,
            achievement_id=seeded.achievement_id,
            obf_badge_id=badge_id,
        )
    db.commit()

    [mapping] = db.scalars(select(ObfBadgeMapping)).all()
    assert mapping.obf_badge_id == badge_id


def test_map_unknown_badge_rejected(app, db, seeded, obf):
    """Mapping to a badge OBF does not have raises with OBF's 404 reason."""
    _connect(app, db, seeded, obf)

    with pytest.raises(ObfSetupError, match="not found"):
        map_obf_badge(
            db,
            app.extensions["hpass"].vault,
            LOOPBACK,
            provider_id=seeded.provider_id,
            achievement_id=seeded.achievement_id,
            obf_badge_id="B9999",
        )
