"""`hpass-bridge platform` commands against a SQLite file, with their audit events."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import select

from lti_tool.accounts import AuditEvent
from lti_tool.bridge import Bridge
from lti_tool.cli import main
from lti_tool.config import ensure_secret_files, load_settings
from lti_tool.schema import upgrade
from tests.support.seed import add_provider

ISSUER = "http://127.0.0.1:8100/moodle"


@pytest.fixture
def env(tmp_path):
    return _instance(tmp_path, ("academy",))


@pytest.fixture
def two_providers_env(tmp_path):
    """An instance with providers academy and college."""
    return _instance(tmp_path, ("academy", "college"))


def _instance(tmp_path, slugs: tuple[str, ...]) -> dict:
    env = {
        "HPASS_INSTANCE_PATH": str(tmp_path / "instance"),
        "HPASS_PUBLIC_BASE_URL": "",
        "HPASS_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "HPASS_SECRET_KEY": "cli-test-secret",
    }
    settings = load_settings(environ=env)
    settings.instance_path.mkdir(parents=True)
    ensure_secret_files(settings, env)
    upgrade(settings.database_url)
    bridge = Bridge.from_settings(settings)
    with bridge.session() as session:
        for slug in slugs:
            add_provider(session, slug, slug.title())
        session.commit()
    bridge.engine.dispose()
    return env


def _add(env, *extra, provider: str = "academy"):
    arguments = [
        "platform",
        "add",
        "--json",
        "--provider",
        provider,
        "--issuer",
        ISSUER,
        "--client-id",
        "abc",
        "--jwks-url",
        f"{ISSUER}/jwks",
        "--auth-url",
        f"{ISSUER}/auth",
        "--token-url",
        f"{ISSUER}/token",
        *extra,
    ]
    return CliRunner().invoke(main, arguments, env=env)


def test_platform_add_prints_urls(env):
    """platform add prints the login, launch and JWKS URLs of the new registration."""
    result = _add(env, "--deployment-id", "1", "--deployment-id", "2")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["login_url"].endswith("/login")
    assert document["launch_url"].endswith("/launch")
    assert document["jwks_url"].endswith("/jwks")


def test_platform_add_twice_other_values(env):
    """The same issuer and client id with other values is rejected, naming the
    options that differ."""
    _add(env)

    result = _add(env, "--family", "canvas", "--deployment-id", "9")

    assert result.exit_code == 1
    assert (
        "already registered for provider 'academy' with other values for --family, "
        "--deployment-id" in result.stderr
    )


def test_platform_add_twice_same_values(env):
    """The same add run again reports the registration unchanged with its URLs."""
    first = _add(env, "--deployment-id", "1")

    again = _add(env, "--deployment-id", "1")

    assert again.exit_code == 0, again.output
    document = json.loads(again.stdout)
    assert document["status"] == "unchanged"
    assert document["registration"] == json.loads(first.stdout)["registration"]
    assert document["launch_url"] == json.loads(first.stdout)["launch_url"]
    assert len(_audit_events(env)) == 1


def test_platform_add_private_url_rejected(env):
    """A JWKS URL on a private address is rejected, even in loopback mode."""
    arguments = [
        "platform",
        "add",
        "--provider",
        "academy",
        "--issuer",
        ISSUER,
        "--client-id",
        "abc",
        "--jwks-url",
        "http://10.0.0.5/jwks",
        "--auth-url",
        f"{ISSUER}/auth",
        "--token-url",
        f"{ISSUER}/token",
    ]
    result = CliRunner().invoke(main, arguments, env=env)

    assert result.exit_code == 2
    assert "10.0.0.5" in result.stderr


def test_platform_add_malformed_issuer(env):
    """An issuer that is not a URL is a usage error (exit 2) and stores nothing."""
    arguments = [
        "platform",
        "add",
        "--json",
        "--provider",
        "academy",
        "--issuer",
        "lms",
        "--client-id",
        "abc",
        "--jwks-url",
        f"{ISSUER}/jwks",
        "--auth-url",
        f"{ISSUER}/auth",
        "--token-url",
        f"{ISSUER}/token",
    ]
    runner = CliRunner()

    result = runner.invoke(main, arguments, env=env)
    listed = json.loads(
        runner.invoke(main, ["platform", "list", "--json"], env=env).stdout
    )

    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"] == "invalid_url"
    assert "--issuer" in result.stderr
    assert listed["registrations"] == []


def test_platform_add_unknown_provider(env):
    """An unknown slug is named before any URL is checked or resolved."""
    arguments = [
        "platform",
        "add",
        "--provider",
        "nobody",
        "--issuer",
        "https://lms.example.invalid",
        "--client-id",
        "abc",
        "--jwks-url",
        "https://lms.example.invalid/jwks",
        "--auth-url",
        "https://lms.example.invalid/auth",
        "--token-url",
        "https://lms.example.invalid/token",
    ]

    result = CliRunner().invoke(main, arguments, env=env)

    assert result.exit_code == 2
    assert "'nobody'" in result.stderr
    assert "resolved" not in result.stderr


def test_platform_list_and_remove(env):
    """platform list shows the registration and its deployments; remove deletes it."""
    _add(env, "--deployment-id", "7")
    runner = CliRunner()

    listed = json.loads(
        runner.invoke(main, ["platform", "list", "--json"], env=env).stdout
    )
    removed = runner.invoke(main, ["platform", "remove", ISSUER, "abc"], env=env)
    after = json.loads(
        runner.invoke(main, ["platform", "list", "--json"], env=env).stdout
    )

    assert listed["registrations"][0]["deployments"] == {"7": "active"}
    assert removed.exit_code == 0, removed.output
    assert after["registrations"] == []


def test_platform_remove_unknown(env):
    """Removing an unknown registration fails naming it."""
    result = CliRunner().invoke(main, ["platform", "remove", ISSUER, "nope"], env=env)

    # An unknown registration is a value the operator must correct: exit 2.
    assert result.exit_code == 2
    assert "no registration" in result.stderr


def test_platform_approve_and_rotate(env):
    """approve activates a deployment; rotate-key returns a new key id."""
    _add(env, "--hold-new-deployments")
    runner = CliRunner()

    approved = runner.invoke(main, ["platform", "approve", ISSUER, "abc", "9"], env=env)
    rotated = runner.invoke(
        main, ["platform", "rotate-key", "--json", ISSUER, "abc"], env=env
    )
    listed = json.loads(
        runner.invoke(main, ["platform", "list", "--json"], env=env).stdout
    )

    assert approved.exit_code == 0, approved.output
    assert json.loads(rotated.stdout)["kid"]
    assert listed["registrations"][0]["deployments"] == {"9": "active"}


def test_platform_registration_url(env):
    """registration-url prints only a URL under /lti/register/ on stdout, and states
    on stderr that it works once."""
    result = CliRunner().invoke(
        main, ["platform", "registration-url", "--provider", "academy"], env=env
    )

    assert result.exit_code == 0, result.output
    assert "/lti/register/" in result.stdout
    assert len(result.stdout.strip().splitlines()) == 1
    assert "works once" in result.stderr


def _registration_urls(env, provider: str) -> list[dict]:
    result = CliRunner().invoke(
        main,
        ["platform", "registration-urls", "--json", "--provider", provider],
        env=env,
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["registration_urls"]


def test_registration_url_list_and_revoke(env, monkeypatch):
    """An issued URL is listed without its token until it is revoked, and a second
    revocation is rejected as not found."""
    monkeypatch.setattr("getpass.getuser", lambda: "deploy")
    runner = CliRunner()
    issued = runner.invoke(
        main,
        ["platform", "registration-url", "--json", "--provider", "academy"],
        env=env,
    )
    document = json.loads(issued.stdout)
    token = document["url"].rsplit("/", 1)[1]

    listed = _registration_urls(env, "academy")
    revoked = runner.invoke(
        main,
        [
            "platform",
            "revoke-registration-url",
            "--json",
            "--provider",
            "academy",
            str(document["id"]),
        ],
        env=env,
    )
    again = runner.invoke(
        main,
        [
            "platform",
            "revoke-registration-url",
            "--provider",
            "academy",
            str(document["id"]),
        ],
        env=env,
    )

    assert [row["id"] for row in listed] == [document["id"]]
    assert listed[0]["created_by"] == "os:deploy"
    assert listed[0]["expires_at"] == document["expires_at"]
    assert token not in json.dumps(listed)
    assert revoked.exit_code == 0, revoked.output
    assert json.loads(revoked.stdout) == {"status": "revoked", "id": document["id"]}
    assert _registration_urls(env, "academy") == []
    assert again.exit_code == 2
    assert "no open registration URL" in again.stderr
    actions = [event.action for event in _audit_events(env)]
    assert actions == ["lti_registration.url_issued", "lti_registration.url_revoked"]


def test_registration_url_other_provider(two_providers_env):
    """A URL of academy is neither listed nor revoked under --provider college."""
    env = two_providers_env
    runner = CliRunner()
    issued = runner.invoke(
        main,
        ["platform", "registration-url", "--json", "--provider", "academy"],
        env=env,
    )
    link_id = json.loads(issued.stdout)["id"]

    college_list = _registration_urls(env, "college")
    revoked = runner.invoke(
        main,
        ["platform", "revoke-registration-url", "--provider", "college", str(link_id)],
        env=env,
    )

    assert college_list == []
    assert revoked.exit_code == 2
    assert "provider 'college' has no open registration URL" in revoked.stderr
    assert [row["id"] for row in _registration_urls(env, "academy")] == [link_id]


def test_registration_url_unknown_provider(env):
    """Each registration URL command rejects an unknown provider slug."""
    for command in (
        ["registration-url"],
        ["registration-urls"],
        ["revoke-registration-url", "1"],
    ):
        result = CliRunner().invoke(
            main, ["platform", *command, "--provider", "nobody"], env=env
        )

        assert result.exit_code == 2, command
        assert "no provider with slug 'nobody'" in result.stderr


def _audit_events(env) -> list[AuditEvent]:
    settings = load_settings(environ=env)
    ensure_secret_files(settings, env)
    bridge = Bridge.from_settings(settings)
    try:
        with bridge.session() as session:
            return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    finally:
        bridge.engine.dispose()


def test_platform_changes_audited(env, monkeypatch):
    """add, rotate-key, registration-url and remove are each audited as os:<user>."""
    monkeypatch.setattr("getpass.getuser", lambda: "deploy")
    runner = CliRunner()

    added = _add(env)
    rotated = runner.invoke(
        main, ["platform", "rotate-key", "--json", ISSUER, "abc"], env=env
    )
    issued = runner.invoke(
        main, ["platform", "registration-url", "--provider", "academy"], env=env
    )
    removed = runner.invoke(main, ["platform", "remove", ISSUER, "abc"], env=env)

    assert added.exit_code == 0, added.output
    assert rotated.exit_code == 0, rotated.output
    assert issued.exit_code == 0, issued.output
    assert removed.exit_code == 0, removed.output
    events = _audit_events(env)
    assert [event.action for event in events] == [
        "lti_registration.created",
        "key.rotated",
        "lti_registration.url_issued",
        "lti_registration.removed",
    ]
    assert {event.actor for event in events} == {"os:deploy"}
    registration = json.loads(added.stdout)["registration"]
    assert events[0].target == f"lti_registration:{registration}"
    assert events[0].detail == {"issuer": ISSUER, "client_id": "abc"}
    assert events[1].detail["new_key"] == json.loads(rotated.stdout)["kid"]
    assert events[3].target == f"lti_registration:{registration}"
    assert all(event.provider_id is not None for event in events)


def test_platform_list_text_quotes_ids(env):
    """The text list writes deployment ids quoted, so "7" does not read as a count."""
    _add(env, "--deployment-id", "7", "--deployment-id", "12")
    runner = CliRunner()

    listed = runner.invoke(main, ["platform", "list"], env=env)

    assert listed.exit_code == 0, listed.output
    assert 'deployment ids "7" (active), "12" (active)' in listed.stdout
    assert "deployments: 7" not in listed.stdout


def test_platform_list_text_without_ids(env):
    """A registration without deployment ids is listed as having none."""
    _add(env)

    listed = CliRunner().invoke(main, ["platform", "list"], env=env)

    assert "no deployment id yet" in listed.stdout


def test_platform_list_not_audited(env):
    """platform list only reads, so it writes no audit event."""
    _add(env)
    before = len(_audit_events(env))

    listed = CliRunner().invoke(main, ["platform", "list", "--json"], env=env)

    assert listed.exit_code == 0, listed.output
    assert len(_audit_events(env)) == before


def test_platform_rejected_add_not_audited(env):
    """A rejected add writes nothing, audit event included."""
    _add(env)

    again = _add(env, "--family", "canvas")

    assert again.exit_code != 0
    assert len(_audit_events(env)) == 1


def test_platform_add_same_pair_two_providers(two_providers_env):
    """Two providers each register the same issuer and client id, and get
    registrations with their own tool URLs."""
    env = two_providers_env

    academy = _add(env, "--deployment-id", "1")
    college = _add(env, "--deployment-id", "1", provider="college")
    listed = json.loads(
        CliRunner().invoke(main, ["platform", "list", "--json"], env=env).stdout
    )

    assert academy.exit_code == 0, academy.output
    assert college.exit_code == 0, college.output
    assert json.loads(college.stdout)["status"] == "ok"
    academy_urls = json.loads(academy.stdout)
    college_urls = json.loads(college.stdout)
    assert academy_urls["registration"] != college_urls["registration"]
    assert academy_urls["launch_url"] != college_urls["launch_url"]
    assert [row["provider"] for row in listed["registrations"]] == [
        "academy",
        "college",
    ]


def test_platform_add_other_values_names_provider_only(two_providers_env):
    """A second add of the pair in one provider is rejected, and the message names
    only that provider although the other one has the pair too."""
    env = two_providers_env
    _add(env)
    _add(env, provider="college")

    again = _add(env, "--family", "canvas", provider="college")

    assert again.exit_code == 1
    assert json.loads(again.stdout)["error"] == "already_registered"
    assert "already registered for provider 'college'" in again.stderr
    assert "academy" not in again.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["remove", ISSUER, "abc"],
        ["approve", ISSUER, "abc", "9"],
        ["rotate-key", ISSUER, "abc"],
    ],
    ids=["remove", "approve", "rotate-key"],
)
def test_platform_shared_pair_needs_provider(two_providers_env, command):
    """A command naming a pair that two providers have changes nothing and names
    --provider as the fix."""
    env = two_providers_env
    _add(env)
    _add(env, provider="college")
    before = _audit_events(env)

    result = CliRunner().invoke(main, ["platform", *command, "--json"], env=env)

    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"] == "registration_ambiguous"
    assert "--provider SLUG" in result.stderr
    assert "(academy, college)" in result.stderr
    assert len(_audit_events(env)) == len(before)


def test_platform_provider_option_chooses(two_providers_env):
    """With --provider, approve, rotate-key and remove act on that provider's
    registration of a shared pair and leave the other provider's alone."""
    env = two_providers_env
    _add(env, "--hold-new-deployments")
    _add(env, "--hold-new-deployments", provider="college")
    runner = CliRunner()

    approved = runner.invoke(
        main,
        ["platform", "approve", ISSUER, "abc", "9", "--provider", "college"],
        env=env,
    )
    rotated = runner.invoke(
        main,
        ["platform", "rotate-key", ISSUER, "abc", "--provider", "college"],
        env=env,
    )
    listed = json.loads(
        runner.invoke(main, ["platform", "list", "--json"], env=env).stdout
    )
    removed = runner.invoke(
        main, ["platform", "remove", ISSUER, "abc", "--provider", "academy"], env=env
    )
    after = json.loads(
        runner.invoke(main, ["platform", "list", "--json"], env=env).stdout
    )

    assert approved.exit_code == 0, approved.output
    assert rotated.exit_code == 0, rotated.output
    assert removed.exit_code == 0, removed.output
    deployments = {
        row["provider"]: row["deployments"] for row in listed["registrations"]
    }
    assert deployments == {"academy": {}, "college": {"9": "active"}}
    assert [row["provider"] for row in after["registrations"]] == ["college"]
    rotations = [event for event in _audit_events(env) if event.action == "key.rotated"]
    assert len(rotations) == 1
    assert rotations[0].provider_id == 2


def test_platform_provider_option_unknown(two_providers_env):
    """An unknown --provider slug is a usage error naming the slug."""
    env = two_providers_env
    _add(env)

    result = CliRunner().invoke(
        main, ["platform", "remove", ISSUER, "abc", "--provider", "nobody"], env=env
    )

    assert result.exit_code == 2
    assert "'nobody'" in result.stderr


def test_platform_provider_option_without_registration(two_providers_env):
    """--provider naming a provider without the pair reports it not found, even
    when another provider has it."""
    env = two_providers_env
    _add(env)

    result = CliRunner().invoke(
        main,
        ["platform", "rotate-key", ISSUER, "abc", "--provider", "college"],
        env=env,
    )

    assert result.exit_code == 2
    assert "no registration" in result.stderr
