"""Migrations: one chain, a schema that matches the models, and no data lost."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from badge_engine.db import Base
from lti_tool.schema import alembic_config, import_all_models, upgrade
from tests.support.databases import reset_postgres


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    if request.param == "postgres":
        return reset_postgres()
    return f"sqlite:///{tmp_path / 'migrations.db'}"


def test_single_head():
    """The migrations form one chain, so every install ends at the same revision."""
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()

    assert len(heads) == 1, heads


def test_schema_matches_models(database_url):
    """After upgrading, the database has exactly the tables and columns of the models."""
    import_all_models()
    upgrade(database_url)
    engine = create_engine(database_url)

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()

    tables_and_columns = [
        diff
        for diff in differences
        if isinstance(diff, tuple)
        and diff[0] in ("add_table", "remove_table", "add_column", "remove_column")
    ]
    assert tables_and_columns == []


def test_upgrade_keeps_first_release_data(database_url):
    """A provider written under the first schema is still there after every upgrade."""
    config = alembic_config(database_url)
    command.upgrade(config, "0001")
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO providers (slug, name, url, slug_frozen, created_at) "
                "VALUES ('kept', 'Kept Academy', 'https://kept.example.invalid', "
                "false, CURRENT_TIMESTAMP)"
            )
        )

    command.upgrade(config, "heads")

    with engine.connect() as connection:
        names = connection.execute(text("SELECT name FROM providers")).scalars().all()
    engine.dispose()
    assert names == ["Kept Academy"]


def test_downgrade_then_upgrade(database_url):
    """Every migration can be undone and redone without errors."""
    config = alembic_config(database_url)
    command.upgrade(config, "heads")

    command.downgrade(config, "0001")
    command.upgrade(config, "heads")


def _insert_achievement(connection, achievement_id: int, course: str, name: str):
    connection.execute(
        text(
            "INSERT INTO achievements (id, provider_id, public_id, lms_connection_id, "
            "lms_course_id, name, description, criteria_narrative, award_rule, "
            "created_at) VALUES (:id, 1, :public_id, 1, :course, :name, 'd', 'c', "
            "'{}', CURRENT_TIMESTAMP)"
        ),
        {
            "id": achievement_id,
            "public_id": f"badge-{achievement_id}",
            "course": course,
            "name": name,
        },
    )


def test_name_key_upgrade_keeps_duplicates(database_url):
    """Badges already named alike in one course survive the upgrade.

    The later ones get no name key, so a new badge of that name is then rejected.
    """
    config = alembic_config(database_url)
    command.upgrade(config, "0123_session_generation")
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO providers (id, slug, name, url, slug_frozen, created_at) "
                "VALUES (1, 'kept', 'Kept Academy', 'https://kept.example.invalid', "
                "false, CURRENT_TIMESTAMP)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO lms_connections (id, provider_id, public_id, kind, name, "
                "base_url, state, created_at) VALUES (1, 1, 'connection-1', 'moodle', "
                "'Moodle', 'https://lms.example.invalid', 'ok', CURRENT_TIMESTAMP)"
            )
        )
        _insert_achievement(connection, 1, "7", "Code of conduct")
        _insert_achievement(connection, 2, "7", " code  of CONDUCT")
        _insert_achievement(connection, 3, "8", "Code of conduct")

    command.upgrade(config, "heads")

    with engine.connect() as connection:
        keys = dict(
            connection.execute(text("SELECT id, name_key FROM achievements")).all()
        )
    assert keys[1] == "code of conduct"
    assert keys[2] is None
    assert keys[3] == "code of conduct"
    with pytest.raises(IntegrityError), engine.begin() as connection:
        _insert_achievement(connection, 4, "7", "CODE OF CONDUCT")
        connection.execute(
            text("UPDATE achievements SET name_key = 'code of conduct' WHERE id = 4")
        )
    engine.dispose()


def _insert_registration(connection, registration_id: int, provider_id: int):
    connection.execute(
        text(
            "INSERT INTO lti_registrations (id, provider_id, public_id, issuer, "
            "client_id, auth_login_url, key_set_url, tool_key_id, "
            "tool_private_key_encrypted, tool_public_key_pem, created_at) VALUES "
            "(:id, :provider_id, :public_id, 'https://lms.example.invalid', 'abc', "
            "'https://lms.example.invalid/auth', 'https://lms.example.invalid/jwks', "
            ":kid, :key, 'pem', CURRENT_TIMESTAMP)"
        ),
        {
            "id": registration_id,
            "provider_id": provider_id,
            "public_id": f"registration-{registration_id}",
            "kid": f"kid-{registration_id}",
            "key": b"encrypted",
        },
    )


def _insert_providers(connection, *slugs: str):
    for provider_id, slug in enumerate(slugs, start=1):
        connection.execute(
            text(
                "INSERT INTO providers (id, slug, name, url, slug_frozen, created_at) "
                "VALUES (:id, :slug, :slug, 'https://lms.example.invalid', false, "
                "CURRENT_TIMESTAMP)"
            ),
            {"id": provider_id, "slug": slug},
        )


def test_registration_pair_unique_per_provider(database_url):
    """After the upgrade a second provider can register an existing issuer and
    client id, and the first provider still cannot register it twice."""
    config = alembic_config(database_url)
    command.upgrade(config, "0125_account_disabled_at")
    engine = create_engine(database_url)
    with engine.begin() as connection:
        _insert_providers(connection, "academy", "college")
        _insert_registration(connection, 1, provider_id=1)
    with pytest.raises(IntegrityError), engine.begin() as connection:
        _insert_registration(connection, 2, provider_id=2)

    command.upgrade(config, "heads")

    with engine.begin() as connection:
        _insert_registration(connection, 2, provider_id=2)
    with pytest.raises(IntegrityError), engine.begin() as connection:
        _insert_registration(connection, 3, provider_id=1)
    with engine.connect() as connection:
        registrations = connection.execute(
            text("SELECT id, provider_id FROM lti_registrations ORDER BY id")
        ).all()
    engine.dispose()
    assert [tuple(row) for row in registrations] == [(1, 1), (2, 2)]


def test_registration_pair_downgrade_rejects_shared(database_url):
    """The downgrade stops, naming the pair, while two providers have it, and
    succeeds once one of them is removed."""
    config = alembic_config(database_url)
    command.upgrade(config, "heads")
    engine = create_engine(database_url)
    with engine.begin() as connection:
        _insert_providers(connection, "academy", "college")
        _insert_registration(connection, 1, provider_id=1)
        _insert_registration(connection, 2, provider_id=2)

    with pytest.raises(RuntimeError, match="client id 'abc'"):
        command.downgrade(config, "0125_account_disabled_at")
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM lti_registrations WHERE id = 2"))
    command.downgrade(config, "0125_account_disabled_at")

    with pytest.raises(IntegrityError), engine.begin() as connection:
        _insert_registration(connection, 2, provider_id=2)
    engine.dispose()


def _insert_registration_link(connection, link_id: int, digest: str):
    connection.execute(
        text(
            "INSERT INTO lti_registration_links (id, provider_id, token_sha256, "
            "created_by, created_at, expires_at) VALUES (:id, 1, :digest, "
            "'os:test', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        ),
        {"id": link_id, "digest": digest},
    )


def test_registration_links_upgrade_and_downgrade(database_url):
    """The upgrade adds the link table with one row per token digest, and the
    downgrade removes it while the providers stay."""
    config = alembic_config(database_url)
    command.upgrade(config, "0127_delivery_revocation_sent")
    engine = create_engine(database_url)
    with engine.begin() as connection:
        _insert_providers(connection, "academy")

    command.upgrade(config, "0128_registration_links")

    with engine.begin() as connection:
        _insert_registration_link(connection, 1, "a" * 64)
    with pytest.raises(IntegrityError), engine.begin() as connection:
        _insert_registration_link(connection, 2, "a" * 64)
    with engine.connect() as connection:
        links = connection.execute(
            text("SELECT id, used_at, revoked_at FROM lti_registration_links")
        ).all()
    assert [tuple(row) for row in links] == [(1, None, None)]

    command.downgrade(config, "0127_delivery_revocation_sent")

    tables = inspect(engine).get_table_names()
    with engine.connect() as connection:
        providers = connection.execute(text("SELECT slug FROM providers")).scalars()
        assert list(providers) == ["academy"]
    engine.dispose()
    assert "lti_registration_links" not in tables


def test_account_locale_upgrade_and_downgrade(database_url):
    """The upgrade adds an empty language to existing accounts, and the downgrade
    removes the column while the accounts stay."""
    config = alembic_config(database_url)
    command.upgrade(config, "0128_registration_links")
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO accounts (id, email, role, password_hash, "
                "failed_sign_ins, session_generation, created_at) VALUES (1, "
                "'op@hpass.org', 'operator', 'hash', 0, 0, CURRENT_TIMESTAMP)"
            )
        )

    command.upgrade(config, "0129_account_locale")

    with engine.begin() as connection:
        before = connection.execute(text("SELECT locale FROM accounts")).scalar_one()
        connection.execute(text("UPDATE accounts SET locale = 'fr' WHERE id = 1"))
        after = connection.execute(text("SELECT locale FROM accounts")).scalar_one()
    assert before is None
    assert after == "fr"

    command.downgrade(config, "0128_registration_links")

    columns = [column["name"] for column in inspect(engine).get_columns("accounts")]
    with engine.connect() as connection:
        emails = connection.execute(text("SELECT email FROM accounts")).scalars()
        assert list(emails) == ["op@hpass.org"]
    engine.dispose()
    assert "locale" not in columns
