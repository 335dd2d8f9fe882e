"""`hpass-bridge platform`: register LTI 1.3 platforms by hand, list and remove them.

For platforms without LTI Dynamic Registration, and for operators who script their
setup. `add` prints the tool's login, launch and JWKS URLs to paste into the platform.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import click
from sqlalchemy import select

from badge_engine.models import Provider
from badge_engine.outbound import OutboundBlocked, OutboundError
from lti_tool.cli import _instance_or_fail, emit, fail, json_option
from lti_tool.cli_support import report_error, table
from lti_tool.lti import tool_keys
from lti_tool.lti.registrations import create_registration, provider_registration
from lti_tool.models import (
    Deployment,
    Registration,
)
from lti_tool.operations import (
    ActionError,
    InvalidInput,
    NotFound,
    audit,
    iso,
    operating_system_actor,
    provider_by_slug,
)
from lti_tool.operations.deployments import (
    approve_deployment,
    find_registration,
    remove_registration,
)
from lti_tool.urls_for import lti_jwks_url, lti_launch_url, lti_login_url


@contextmanager
def _bridge(as_json: bool):
    from lti_tool.bridge import Bridge

    settings = _instance_or_fail(as_json)
    bridge = Bridge.from_settings(settings)
    try:
        with bridge.session() as session:
            yield bridge, session
    finally:
        bridge.engine.dispose()


def _tool_urls(base: str, registration: Registration) -> dict:
    return {
        "login_url": lti_login_url(base, registration.public_id),
        "launch_url": lti_launch_url(base, registration.public_id),
        "jwks_url": lti_jwks_url(base, registration.public_id),
    }


def _find(
    session, issuer: str, client_id: str, provider_slug: str | None, as_json: bool
) -> Registration:
    """Return the registration, or exit 2 as a usage error when it is unknown, or
    when several providers have it and `provider_slug` is None."""
    try:
        provider_id = None
        if provider_slug is not None:
            provider_id = provider_by_slug(session, provider_slug).id
        return find_registration(session, issuer, client_id, provider_id)
    except ActionError as error:
        report_error(error, as_json)


# Each provider may register the same issuer and client id, so the commands that
# name a registration by them take the provider as well.
provider_choice_option = click.option(
    "--provider",
    "provider_slug",
    help="Slug of the provider whose registration to use; required when several "
    "providers registered ISSUER and CLIENT_ID.",
)


@click.group()
def platform() -> None:
    """Register LTI 1.3 platforms (Moodle, Canvas) by hand, list and remove them."""


@platform.command("add")
@click.option("--provider", "provider_slug", required=True, help="Provider slug.")
@click.option("--issuer", required=True, help="Platform issuer URL (iss claim).")
@click.option("--client-id", required=True, help="Client id the platform assigned.")
@click.option(
    "--deployment-id",
    "deployment_ids",
    multiple=True,
    help="Deployment id; repeat for several. Optional when the platform reveals it "
    "at the first launch.",
)
@click.option("--jwks-url", required=True, help="Platform's public key set URL.")
@click.option("--auth-url", required=True, help="Platform's OIDC authorization URL.")
@click.option("--token-url", required=True, help="Platform's OAuth 2.0 token URL.")
@click.option(
    "--family",
    type=click.Choice(["moodle", "canvas", "other"]),
    default="other",
    show_default=True,
    help="Platform product, where the tool must follow its quirks.",
)
@click.option(
    "--hold-new-deployments",
    is_flag=True,
    help="Hold deployment ids first seen at a launch until an admin approves them "
    "(default: accept them).",
)
@json_option
def add(
    provider_slug,
    issuer,
    client_id,
    deployment_ids,
    jwks_url,
    auth_url,
    token_url,
    family,
    hold_new_deployments,
    as_json,
) -> None:
    """Add a registration and print the tool URLs to paste into the platform."""
    with _bridge(as_json) as (bridge, session):
        # The slug is checked first, so a mistyped slug is reported as such and not
        # hidden behind an error about a URL.
        try:
            provider = provider_by_slug(session, provider_slug)
        except NotFound as error:
            report_error(error, as_json)

        policy = bridge.outbound_policy
        issuer = issuer.rstrip("/")
        for name, url in (
            ("--issuer", issuer),
            ("--jwks-url", jwks_url),
            ("--auth-url", auth_url),
            ("--token-url", token_url),
        ):
            try:
                policy.check_url_now(url)
            except OutboundBlocked as error:
                # A malformed or forbidden URL is a value to correct (exit 2).
                report_error(
                    InvalidInput(
                        f"{name}: {error}; give the platform's public https URL",
                        code="invalid_url",
                    ),
                    as_json,
                )
            except OutboundError as error:
                fail(
                    f"{name}: {error}; give the platform's public https URL",
                    as_json,
                    code="invalid_url",
                )
        existing = provider_registration(session, provider.id, issuer, client_id)
        if existing is not None:
            requested = {
                "--jwks-url": jwks_url,
                "--auth-url": auth_url,
                "--token-url": token_url,
                "--family": family,
                "--hold-new-deployments": "hold" if hold_new_deployments else "accept",
            }
            differing = _differing_options(session, existing, requested, deployment_ids)
            if differing:
                fail(
                    f"issuer {issuer!r} with client id {client_id!r} is already "
                    f"registered for provider {provider.slug!r} with other values "
                    f"for {', '.join(differing)}; see it with `hpass-bridge platform "
                    f"list --provider {provider.slug}`, and remove it first or use "
                    "another client id",
                    as_json,
                    code="already_registered",
                )
            # The same command run again, as a setup script run twice does.
            urls = _tool_urls(bridge.settings.public_base_url, existing)
            emit(
                {"status": "unchanged", "registration": existing.public_id, **urls},
                as_json,
                "already registered with these values; nothing was added. The "
                "tool URLs to paste into the platform's tool settings:\n"
                + _urls_text(urls),
            )
            return

        registration = create_registration(
            session,
            bridge.vault,
            provider,
            issuer=issuer,
            client_id=client_id,
            auth_login_url=auth_url,
            key_set_url=jwks_url,
            auth_token_url=token_url,
            deployment_ids=tuple(dict.fromkeys(deployment_ids)),
        )
        registration.platform_family = family
        registration.new_deployment_policy = (
            "hold" if hold_new_deployments else "accept"
        )
        audit(
            session,
            operating_system_actor(),
            "lti_registration.created",
            provider_id=provider.id,
            target=f"lti_registration:{registration.public_id}",
            detail={"issuer": issuer, "client_id": client_id},
        )
        session.commit()

        urls = _tool_urls(bridge.settings.public_base_url, registration)
        emit(
            {"status": "ok", "registration": registration.public_id, **urls},
            as_json,
            "registered; paste these into the platform's tool settings:\n"
            + _urls_text(urls),
        )


def _urls_text(urls: dict) -> str:
    return (
        f"  login URL (OpenID Connect initiation): {urls['login_url']}\n"
        f"  launch URL (redirect URI, target link): {urls['launch_url']}\n"
        f"  public keyset URL (JWKS): {urls['jwks_url']}"
    )


def _differing_options(
    session, existing: Registration, requested: dict, deployment_ids: tuple[str, ...]
) -> list[str]:
    """Return the options of `platform add` whose values differ from `existing`.

    Each requested deployment id must be one of the registration's. The
    registration may also have deployment ids that launches added.
    """
    stored = {
        "--jwks-url": existing.key_set_url,
        "--auth-url": existing.auth_login_url,
        "--token-url": existing.auth_token_url,
        "--family": existing.platform_family,
        "--hold-new-deployments": existing.new_deployment_policy,
    }
    differing = [option for option in requested if requested[option] != stored[option]]
    known = set(
        session.scalars(
            select(Deployment.deployment_id).where(
                Deployment.registration_id == existing.id
            )
        )
    )
    if not set(deployment_ids) <= known:
        differing.append("--deployment-id")

    return differing


@platform.command("list")
@click.option("--provider", "provider_slug", help="Only this provider's registrations.")
@json_option
def list_(provider_slug, as_json) -> None:
    """List registrations with their deployments and tool URLs."""
    with _bridge(as_json) as (bridge, session):
        query = select(Registration, Provider.slug).join(
            Provider, Provider.id == Registration.provider_id
        )
        if provider_slug:
            try:
                provider_by_slug(session, provider_slug)
            except NotFound as error:
                report_error(error, as_json)
            query = query.where(Provider.slug == provider_slug)
        rows = []
        for registration, slug in session.execute(query.order_by(Registration.id)):
            deployments = session.scalars(
                select(Deployment).where(
                    Deployment.provider_id == registration.provider_id,
                    Deployment.registration_id == registration.id,
                )
            )
            rows.append(
                {
                    "provider": slug,
                    "issuer": registration.issuer,
                    "client_id": registration.client_id,
                    "family": registration.platform_family,
                    "new_deployment_policy": registration.new_deployment_policy,
                    "deployments": {d.deployment_id: d.status for d in deployments},
                    **_tool_urls(bridge.settings.public_base_url, registration),
                }
            )
        lines = [
            f"{row['provider']}  {row['issuer']}  {row['client_id']}  "
            + _deployment_ids_text(row["deployments"])
            for row in rows
        ]
        emit({"registrations": rows}, as_json, "\n".join(lines) or "no registrations")


def _deployment_ids_text(deployments: dict[str, str]) -> str:
    """Write deployment ids quoted, so an id such as 7 does not read as a count."""
    if not deployments:
        return "no deployment id yet"
    label = "deployment id" if len(deployments) == 1 else "deployment ids"
    ids = ", ".join(
        f"{json.dumps(deployment_id)} ({status})"
        for deployment_id, status in deployments.items()
    )
    return f"{label} {ids}"


@platform.command("remove")
@click.argument("issuer")
@click.argument("client_id")
@provider_choice_option
@json_option
def remove(issuer, client_id, provider_slug, as_json) -> None:
    """Remove the registration of ISSUER and CLIENT_ID (only when it has no courses)."""
    with _bridge(as_json) as (_, session):
        registration = _find(session, issuer, client_id, provider_slug, as_json)
        try:
            remove_registration(session, operating_system_actor(), registration)
        except ActionError as error:
            fail(str(error), as_json, code=error.code)
        session.commit()
        emit({"status": "ok"}, as_json, f"removed {issuer} / {client_id}")


@platform.command("approve")
@click.argument("issuer")
@click.argument("client_id")
@click.argument("deployment_id")
@provider_choice_option
@json_option
def approve(issuer, client_id, deployment_id, provider_slug, as_json) -> None:
    """Approve a held DEPLOYMENT_ID so launches from it work."""
    with _bridge(as_json) as (_, session):
        registration = _find(session, issuer, client_id, provider_slug, as_json)
        try:
            approve_deployment(
                session, operating_system_actor(), registration, deployment_id
            )
        except ActionError as error:
            report_error(error, as_json)
        session.commit()
        emit({"status": "ok"}, as_json, f"deployment {deployment_id} is active")


@platform.command("rotate-key")
@click.argument("issuer")
@click.argument("client_id")
@provider_choice_option
@json_option
def rotate_key(issuer, client_id, provider_slug, as_json) -> None:
    """Give the registration a new tool key. The old key stays in its JWKS."""
    with _bridge(as_json) as (bridge, session):
        registration = _find(session, issuer, client_id, provider_slug, as_json)
        kid = tool_keys.rotate(registration, bridge.vault)
        audit(
            session,
            operating_system_actor(),
            "key.rotated",
            provider_id=registration.provider_id,
            target=f"lti_registration:{registration.public_id}",
            detail={"kind": "lti", "new_key": kid},
        )
        session.commit()
        emit({"status": "ok", "kid": kid}, as_json, f"new tool key {kid} is active")


@platform.command("registration-url")
@click.option("--provider", "provider_slug", required=True, help="Provider slug.")
@json_option
def registration_url(provider_slug, as_json) -> None:
    """Create a single-use Dynamic Registration URL for the provider.

    The URL registers one platform and works for 7 days. It is printed once,
    because the bridge stores only its digest. See the open URLs with
    `registration-urls` and revoke one with `revoke-registration-url`.
    """
    from lti_tool.lti.registration_links import (
        issue_registration_link,
        registration_url,
    )

    with _bridge(as_json) as (bridge, session):
        provider = _provider_or_exit(session, provider_slug, as_json)
        link, token = issue_registration_link(
            session, provider_id=provider.id, actor=operating_system_actor()
        )
        session.commit()
        url = registration_url(bridge.settings.public_base_url, token)
        emit(
            {
                "status": "ok",
                "id": link.id,
                "url": url,
                "expires_at": iso(link.expires_at),
            },
            as_json,
            url,
        )
        if not as_json:
            # On stderr, so that stdout stays the URL alone for scripts.
            click.echo(
                f"registration URL {link.id} works once, until "
                f"{iso(link.expires_at)}; it is not shown again",
                err=True,
            )


@platform.command("registration-urls")
@click.option("--provider", "provider_slug", required=True, help="Provider slug.")
@json_option
def registration_urls(provider_slug, as_json) -> None:
    """List the provider's open Dynamic Registration URLs (never the URLs themselves).

    Open means not used, not revoked and not expired.
    """
    from lti_tool.lti.registration_links import open_registration_links

    with _bridge(as_json) as (_, session):
        provider = _provider_or_exit(session, provider_slug, as_json)
        rows = [
            {
                "id": link.id,
                "created_at": iso(link.created_at),
                "created_by": link.created_by,
                "expires_at": iso(link.expires_at),
            }
            for link in open_registration_links(session, provider.id)
        ]
    emit(
        {"registration_urls": rows},
        as_json,
        table(
            rows,
            ["id", "created_at", "created_by", "expires_at"],
            f"no open registration URLs for provider {provider_slug}",
        ),
    )


@platform.command("revoke-registration-url")
@click.option("--provider", "provider_slug", required=True, help="Provider slug.")
@click.argument("link_id", metavar="ID", type=int)
@json_option
def revoke_registration_url(provider_slug, link_id, as_json) -> None:
    """Revoke the provider's open Dynamic Registration URL ID, so it no longer works.

    ID is the number that `registration-urls` lists.
    """
    from lti_tool.lti.registration_links import revoke_registration_link

    with _bridge(as_json) as (_, session):
        provider = _provider_or_exit(session, provider_slug, as_json)
        link = revoke_registration_link(
            session,
            provider_id=provider.id,
            link_id=link_id,
            actor=operating_system_actor(),
        )
        if link is None:
            report_error(
                NotFound(
                    f"provider {provider_slug!r} has no open registration URL {link_id}; "
                    "it may be used, revoked or expired already. See the open ones "
                    f"with `hpass-bridge platform registration-urls --provider "
                    f"{provider_slug}`",
                    code="registration_url_not_found",
                ),
                as_json,
            )
        session.commit()
    emit(
        {"status": "revoked", "id": link_id},
        as_json,
        f"registration URL {link_id} revoked",
    )


def _provider_or_exit(session, provider_slug: str, as_json: bool) -> Provider:
    try:
        return provider_by_slug(session, provider_slug)
    except NotFound as error:
        report_error(error, as_json)
