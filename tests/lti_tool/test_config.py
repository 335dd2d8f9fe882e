"""Settings from the environment and the key files created on first start."""

from __future__ import annotations

import logging
import stat

import pytest

from lti_tool.app import create_app
from lti_tool.config import (
    ConfigError,
    ensure_secret_files,
    load_settings,
    remember_run_url,
)


def test_defaults_need_no_server(tmp_path):
    """With no variables set, SQLite and the embedded broker live in the instance folder."""
    settings = load_settings(environ={"HPASS_INSTANCE_PATH": str(tmp_path)})

    assert settings.database_url == f"sqlite:///{tmp_path}/hpass.db"
    assert settings.broker_url == f"sqla+sqlite:///{tmp_path}/broker.db"
    assert settings.loopback_dev


def test_lms_check_timeout_setting(tmp_path):
    """The LMS check's time budget is 5 s unless HPASS_LMS_CHECK_TIMEOUT_SECONDS is set."""
    default = load_settings(environ={"HPASS_INSTANCE_PATH": str(tmp_path)})
    configured = load_settings(
        environ={
            "HPASS_INSTANCE_PATH": str(tmp_path),
            "HPASS_LMS_CHECK_TIMEOUT_SECONDS": "2.5",
        }
    )

    assert default.lms_check_timeout_seconds == 5.0
    assert configured.lms_check_timeout_seconds == 2.5


def test_key_files_private_and_stable(tmp_path):
    """The secret and encryption key files are 0600 and reused on the next start."""
    environ = {"HPASS_INSTANCE_PATH": str(tmp_path)}
    first = load_settings(environ=environ)
    ensure_secret_files(first, environ)
    second = load_settings(environ=environ)
    ensure_secret_files(second, environ)

    for name in ("secret_key", "encryption_key"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, name
    assert first.encryption_keys == second.encryption_keys
    assert first.secret_key == second.secret_key


def test_keys_never_logged(tmp_path, caplog):
    """Starting the app logs neither the secret key nor the encryption key."""
    caplog.set_level(logging.DEBUG)
    settings = load_settings(environ={"HPASS_INSTANCE_PATH": str(tmp_path)})

    create_app(settings)

    key = (tmp_path / "encryption_key").read_text().strip()
    secret = (tmp_path / "secret_key").read_text().strip()
    assert key not in caplog.text
    assert secret not in caplog.text


def test_invalid_encryption_key_rejected(tmp_path):
    """A malformed HPASS_ENCRYPTION_KEYS entry raises naming how to make one."""
    environ = {"HPASS_INSTANCE_PATH": str(tmp_path), "HPASS_ENCRYPTION_KEYS": "short"}
    settings = load_settings(environ=environ)

    with pytest.raises(ConfigError, match="not a valid Fernet key"):
        ensure_secret_files(settings, environ)


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("LOOPBACK_DEV", "maybe", "true or false"),
        ("OUTBOX_SWEEP_SECONDS", "soon", "must be a number"),
        ("OUTBOX_SWEEP_SECONDS", "-1", "greater than 0"),
        ("LMS_CHECK_TIMEOUT_SECONDS", "soon", "must be a number"),
        ("LMS_CHECK_TIMEOUT_SECONDS", "0", "greater than 0"),
        ("LMS_CHECK_TIMEOUT_SECONDS", "61", "at most 60 seconds"),
        ("LMS_CHECK_TIMEOUT_SECONDS", "inf", "finite number"),
        ("LOG_FORMAT", "xml", "json or console"),
        ("PUBLIC_BASE_URL", "ftp://x", "absolute http(s) URL"),
    ],
)
def test_invalid_values_name_variable(tmp_path, name, value, fragment):
    """Each invalid value raises ConfigError naming the variable and what is expected."""
    environ = {"HPASS_INSTANCE_PATH": str(tmp_path), f"HPASS_{name}": value}

    with pytest.raises(ConfigError) as caught:
        load_settings(environ=environ)

    assert fragment in str(caught.value)
    assert "HPASS_" in str(caught.value)


def test_run_url_remembered_for_other_commands(tmp_path):
    """A URL that run recorded in the instance folder is the default for later commands."""
    instance = tmp_path / "instance"
    instance.mkdir()
    remember_run_url(instance, "http://127.0.0.1:5077")

    settings = load_settings(environ={"HPASS_INSTANCE_PATH": str(instance)})
    explicit = load_settings(
        environ={
            "HPASS_INSTANCE_PATH": str(instance),
            "HPASS_PUBLIC_BASE_URL": "http://127.0.0.1:6000",
            "HPASS_LOOPBACK_DEV": "1",
        }
    )

    assert settings.public_base_url == "http://127.0.0.1:5077"
    assert explicit.public_base_url == "http://127.0.0.1:6000"


def test_remembered_url_must_be_loopback(tmp_path):
    """A recorded URL that is not plain HTTP on loopback is ignored."""
    instance = tmp_path / "instance"
    instance.mkdir()
    remember_run_url(instance, "https://bridge.example.org")

    settings = load_settings(environ={"HPASS_INSTANCE_PATH": str(instance)})

    assert settings.public_base_url == "http://127.0.0.1:5000"
