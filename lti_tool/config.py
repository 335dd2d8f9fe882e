"""Configuration read from environment variables.

Every variable is documented in docs/configuration.md. The defaults run the whole bridge
on one machine with no servers: SQLite in the instance folder and Celery on an embedded
broker kept in its own SQLite file.
"""

from __future__ import annotations

import ipaddress
import math
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

ENV_PREFIX = "HPASS_"
# The longest LMS check time budget accepted. An API client waits for the check, and
# reverse proxies commonly end a request after 60 s.
LMS_CHECK_TIMEOUT_MAX = 60.0


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


def is_loopback_host(host: str | None) -> bool:
    """Return True for localhost and for addresses in 127.0.0.0/8 or ::1."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _env_bool(environ: dict[str, str], name: str, default: bool) -> bool:
    raw = environ.get(ENV_PREFIX + name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(
        f"{ENV_PREFIX}{name} must be true or false, got {raw!r}; "
        "use 1/true/yes/on or 0/false/no/off"
    )


def _env_number(environ: dict[str, str], name: str, default: float) -> float:
    raw = environ.get(ENV_PREFIX + name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{ENV_PREFIX}{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{ENV_PREFIX}{name} must be a finite number, got {raw!r}")
    if value <= 0:
        raise ConfigError(f"{ENV_PREFIX}{name} must be greater than 0, got {raw!r}")
    return value


def _env_networks(environ: dict[str, str], name: str) -> list[str]:
    raw = environ.get(ENV_PREFIX + name) or ""
    networks = [item.strip() for item in raw.split(",") if item.strip()]
    for item in networks:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(
                f"{ENV_PREFIX}{name} must list IP addresses or CIDR networks separated "
                f"by commas, got {item!r}"
            ) from None
    return networks


def _outbound_networks(environ: dict[str, str]) -> list[str]:
    name = "OUTBOUND_ALLOWED_NETWORKS"
    networks = _env_networks(environ, name)
    for item in networks:
        network = ipaddress.ip_network(item, strict=False)
        if _overlaps_any(network, _LOOPBACK):
            raise ConfigError(
                f"{ENV_PREFIX}{name} must not list loopback addresses, got {item!r}; "
                "loopback peers are allowed only by HPASS_LOOPBACK_DEV"
            )
        if _overlaps_any(network, _LINK_LOCAL):
            raise ConfigError(
                f"{ENV_PREFIX}{name} must not list link-local addresses, got "
                f"{item!r}; they hold cloud metadata services, never an LMS or a "
                "portfolio"
            )
    return networks


def _overlaps_any(network, others) -> bool:
    return any(
        network.version == other.version and network.overlaps(other) for other in others
    )


_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
_LINK_LOCAL = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
)


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: `burst` requests at once, refilled at `per_minute`."""

    per_minute: float
    burst: float


# Sized so that a whole class launching at once behind one campus NAT, or an LMS
# sending a burst of completion events, stays under them, while a password-guessing
# script is stopped within its first twenty tries. Each key is one client address;
# `sign_in_account` is keyed by the email address typed into the sign-in form.
DEFAULT_RATE_LIMITS = {
    "sign_in": RateLimit(per_minute=10, burst=20),
    "sign_in_account": RateLimit(per_minute=2, burst=10),
    "lti_launch": RateLimit(per_minute=1200, burst=1200),
    "webhook": RateLimit(per_minute=6000, burst=20000),
    "api": RateLimit(per_minute=300, burst=300),
}


def default_rate_limits() -> dict[str, RateLimit]:
    return dict(DEFAULT_RATE_LIMITS)


def _env_rate_limits(environ: dict[str, str]) -> dict[str, RateLimit]:
    limits = {}
    for name, default in DEFAULT_RATE_LIMITS.items():
        variable = "RATE_LIMIT_" + name.upper()
        limits[name] = RateLimit(
            per_minute=_env_number(
                environ, variable + "_PER_MINUTE", default.per_minute
            ),
            burst=_env_number(environ, variable + "_BURST", default.burst),
        )
        if limits[name].burst < 1:
            raise ConfigError(
                f"{ENV_PREFIX}{variable}_BURST must be at least 1, got "
                f"{limits[name].burst!r}; a smaller bucket rejects every request"
            )
    return limits


def _rate_limit_store(environ: dict[str, str], broker_url: str) -> str:
    """Return the Redis URL for rate-limit buckets, or "" for in-process buckets.

    Unset, the buckets follow the broker: a deployment that runs Redis for Celery
    shares them across web processes, any other keeps them in each process.
    """
    raw = (environ.get(ENV_PREFIX + "RATE_LIMIT_STORE") or "").strip()
    if raw == "memory":
        return ""
    if raw.startswith(("redis://", "rediss://", "unix://")):
        return raw
    if raw:
        raise ConfigError(
            f"{ENV_PREFIX}RATE_LIMIT_STORE must be memory or a redis:// URL, got "
            f"{raw!r}"
        )
    if broker_url.startswith(("redis://", "rediss://")):
        return broker_url
    return ""


@dataclass
class Settings:
    """The bridge's settings, resolved from the environment and the instance folder."""

    instance_path: Path
    public_base_url: str
    database_url: str
    broker_url: str
    loopback_dev: bool = False
    log_format: str = "console"
    log_level: str = "INFO"
    outbox_sweep_seconds: float = 5.0
    outbox_lease_seconds: float = 120.0
    outbox_max_attempts: int = 12
    http_timeout_seconds: float = 10.0
    # Total seconds the LMS check of a new or changed badge rule, and a course's
    # activity listing, may spend on LMS requests, retries included.
    lms_check_timeout_seconds: float = 5.0
    worker_concurrency: int = 2
    # Learners per backfill page, and so per transaction.
    backfill_page_size: int = 100
    demo: bool = False
    # Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-* headers are
    # trusted; from any other client those headers are ignored.
    trusted_proxies: list[str] = field(default_factory=list)
    # Private networks (CIDR) the bridge may call, for an LMS or portfolio on the
    # operator's own network; loopback is allowed only by loopback_dev.
    outbound_allowed_networks: list[str] = field(default_factory=list)
    lti_clock_leeway_seconds: float = 30.0
    # Token-bucket limits per request class (see lti_tool/ratelimit.py), keyed by
    # class name; `rate_limits_enabled` off turns every limit off.
    rate_limits_enabled: bool = True
    rate_limits: dict[str, RateLimit] = field(default_factory=default_rate_limits)
    # Redis URL shared by every web process; empty keeps the buckets in each process.
    rate_limit_redis_url: str = field(default="", repr=False)
    secret_key: bytes = field(default=b"", repr=False)
    encryption_keys: list[bytes] = field(default_factory=list, repr=False)

    @property
    def uses_embedded_broker(self) -> bool:
        return self.broker_url.startswith("sqla+sqlite")

    def validate(self) -> None:
        """Raise ConfigError when settings contradict each other."""
        parts = urlsplit(self.public_base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"HPASS_PUBLIC_BASE_URL must be an absolute http(s) URL, "
                f"got {self.public_base_url!r}"
            )
        if parts.query or parts.fragment:
            raise ConfigError(
                "HPASS_PUBLIC_BASE_URL must not contain a query or fragment, "
                f"got {self.public_base_url!r}"
            )
        loopback = is_loopback_host(parts.hostname)
        if self.loopback_dev and not loopback:
            raise ConfigError(
                "HPASS_LOOPBACK_DEV is on but HPASS_PUBLIC_BASE_URL "
                f"{self.public_base_url!r} is not a loopback address; loopback "
                "development mode allows plain HTTP and loopback peers, so it only "
                "runs on 127.0.0.1, ::1 or localhost. Turn it off for this host."
            )
        if parts.scheme != "https" and not self.loopback_dev:
            raise ConfigError(
                f"HPASS_PUBLIC_BASE_URL {self.public_base_url!r} uses plain HTTP; "
                "use https, or set HPASS_LOOPBACK_DEV=1 for a loopback-only demo"
            )
        if not 0 < self.lms_check_timeout_seconds <= LMS_CHECK_TIMEOUT_MAX:
            raise ConfigError(
                "HPASS_LMS_CHECK_TIMEOUT_SECONDS must be more than 0 and at most "
                f"{LMS_CHECK_TIMEOUT_MAX:g} seconds, got "
                f"{self.lms_check_timeout_seconds:g}; a caller waits this long for "
                "the LMS, so keep it under the reverse proxy's timeout"
            )
        if self.log_format not in ("json", "console"):
            raise ConfigError(
                f"HPASS_LOG_FORMAT must be json or console, got {self.log_format!r}"
            )


# `hpass-bridge run` without HPASS_PUBLIC_BASE_URL serves on the address it listens
# on; it writes that URL here so that other commands on the same instance (which
# print webhook and LTI URLs) use the same port.
RUN_URL_FILE = "run-base-url"


def remember_run_url(instance: Path, url: str) -> None:
    """Record the loopback URL `run` serves on, for later commands on the instance."""
    (instance / RUN_URL_FILE).write_text(url + "\n")


def _remembered_run_url(instance: Path) -> str | None:
    try:
        url = (instance / RUN_URL_FILE).read_text().strip()
    except OSError:
        return None
    parts = urlsplit(url)
    # Only a loopback URL written by `run` is taken; anything else is ignored.
    if parts.scheme != "http" or not is_loopback_host(parts.hostname):
        return None
    return url


def load_settings(
    environ: dict[str, str] | None = None, overrides: dict | None = None
) -> Settings:
    """Build Settings from environment variables, then apply explicit overrides.

    Secret files are created in the instance folder by the commands that set an
    instance up (see `ensure_secret_files`); this function only reads and validates.
    """
    env = dict(os.environ if environ is None else environ)
    overrides = dict(overrides or {})

    instance = Path(
        overrides.pop("instance_path", None)
        or env.get(ENV_PREFIX + "INSTANCE_PATH")
        or Path.cwd() / "instance"
    ).resolve()
    base_url = (
        overrides.pop("public_base_url", None)
        or env.get(ENV_PREFIX + "PUBLIC_BASE_URL")
        or _remembered_run_url(instance)
        or "http://127.0.0.1:5000"
    ).rstrip("/")
    database_url = (
        overrides.pop("database_url", None)
        or env.get(ENV_PREFIX + "DATABASE_URL")
        or f"sqlite:///{instance / 'hpass.db'}"
    )
    broker_url = (
        overrides.pop("broker_url", None)
        or env.get(ENV_PREFIX + "BROKER_URL")
        or f"sqla+sqlite:///{instance / 'broker.db'}"
    )
    default_loopback = is_loopback_host(urlsplit(base_url).hostname) and not env.get(
        ENV_PREFIX + "PUBLIC_BASE_URL"
    )
    settings = Settings(
        instance_path=instance,
        public_base_url=base_url,
        database_url=database_url,
        broker_url=broker_url,
        loopback_dev=_env_bool(env, "LOOPBACK_DEV", default_loopback),
        log_format=env.get(ENV_PREFIX + "LOG_FORMAT", "console"),
        log_level=env.get(ENV_PREFIX + "LOG_LEVEL", "INFO").upper(),
        outbox_sweep_seconds=_env_number(env, "OUTBOX_SWEEP_SECONDS", 5.0),
        outbox_lease_seconds=_env_number(env, "OUTBOX_LEASE_SECONDS", 120.0),
        outbox_max_attempts=int(_env_number(env, "OUTBOX_MAX_ATTEMPTS", 12)),
        http_timeout_seconds=_env_number(env, "HTTP_TIMEOUT_SECONDS", 10.0),
        lms_check_timeout_seconds=_env_number(env, "LMS_CHECK_TIMEOUT_SECONDS", 5.0),
        worker_concurrency=int(_env_number(env, "WORKER_CONCURRENCY", 2)),
        backfill_page_size=int(_env_number(env, "BACKFILL_PAGE_SIZE", 100)),
        demo=_env_bool(env, "DEMO", False),
        trusted_proxies=_env_networks(env, "TRUSTED_PROXIES"),
        outbound_allowed_networks=_outbound_networks(env),
        lti_clock_leeway_seconds=_env_number(env, "LTI_CLOCK_LEEWAY_SECONDS", 30.0),
        rate_limits_enabled=_env_bool(env, "RATE_LIMITS", True),
        rate_limits=_env_rate_limits(env),
        rate_limit_redis_url=_rate_limit_store(env, broker_url),
    )
    for key, value in overrides.items():
        if not hasattr(settings, key):
            raise ConfigError(f"unknown setting {key!r}")
        setattr(settings, key, value)
    settings.validate()

    return settings


def _write_private_file(path: Path, content: bytes) -> None:
    """Create `path` readable and writable by its owner only, failing if it exists."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)


def _read_or_create(path: Path, make: callable) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    try:
        _write_private_file(path, make())
    except FileExistsError:
        # Another process (the worker started beside the web server) won the race.
        pass

    return path.read_bytes().strip()


def ensure_secret_files(
    settings: Settings, environ: dict[str, str] | None = None
) -> None:
    """Load the session secret and the at-rest encryption keys, creating them once.

    `HPASS_ENCRYPTION_KEYS` (comma-separated Fernet keys, newest first) overrides the
    file, which is how a key is rotated: put the new key first and keep the old one
    until every secret has been re-encrypted. Only the commands that set up an
    instance call this; the others call `load_secret_files`.
    """
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    _load_secrets(settings, environ, _read_or_create)


def load_secret_files(
    settings: Settings, environ: dict[str, str] | None = None
) -> None:
    """Load the secrets as `ensure_secret_files` does, but never create a file.

    Raises ConfigError naming a missing file, because a new encryption key could not
    read the secrets stored with the instance's own key.
    """
    _load_secrets(settings, environ, _read_existing)


def _read_existing(path: Path, _make: callable) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        raise ConfigError(
            f"the instance folder {path.parent} has no {path.name} file. Set "
            f"{ENV_PREFIX}INSTANCE_PATH to the folder the bridge runs with, or run "
            "`hpass-bridge db upgrade` to set up a new instance there"
        ) from None


def _load_secrets(settings: Settings, environ: dict[str, str] | None, read) -> None:
    env = os.environ if environ is None else environ
    secret = env.get(ENV_PREFIX + "SECRET_KEY")
    if secret:
        settings.secret_key = secret.encode()
    else:
        settings.secret_key = read(
            settings.instance_path / "secret_key",
            lambda: secrets.token_urlsafe(48).encode(),
        )

    keys = env.get(ENV_PREFIX + "ENCRYPTION_KEYS")
    if keys:
        settings.encryption_keys = [k.strip().encode() for k in keys.split(",") if k]
    else:
        settings.encryption_keys = [
            read(settings.instance_path / "encryption_key", Fernet.generate_key)
        ]
    for index, key in enumerate(settings.encryption_keys):
        try:
            Fernet(key)
        except ValueError:
            raise ConfigError(
                f"encryption key number {index + 1} is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes); generate one with "
                "`hpass-bridge keys new-encryption-key`"
            ) from None
