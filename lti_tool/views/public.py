"""Public documents: issuer profiles, DID documents, achievements and credentials.

These pages reveal no more than the credential itself does: the recipient appears only
as a salted hash.
"""

from __future__ import annotations

import json

from flask import (
    Blueprint,
    Response,
    jsonify,
    make_response,
    render_template,
    request,
)
from sqlalchemy import select

from badge_engine import ob2, status
from badge_engine.alignments import ob3_alignments
from badge_engine.baking import bake_png, bake_svg, plain_png, plain_svg
from badge_engine.data_integrity import sign_eddsa_rdfc_2022
from badge_engine.db import utcnow
from badge_engine.endorsement import endorsements_for
from badge_engine.issuers import (
    active_signing_key,
    did_document,
    issuer_profile,
    load_private_key,
    verification_method_id,
)
from badge_engine.models import (
    Achievement,
    Credential,
    CredentialStatus,
    EndorsementRecord,
    Provider,
    SigningKey,
)
from badge_engine.ob3 import serialize_profile
from badge_engine.urls import achievement_url, issuer_did
from badge_engine.verify import check_ob3_recipient, verify_open_badge_credential
from badge_engine.verify_context import VerifyContext
from badge_engine.verify_report import VerificationReport
from lti_tool.accounts import InvalidEmail, check_email_address
from lti_tool.bridge import current_bridge, db_session
from lti_tool.errors import NotFound
from lti_tool.i18n import gettext as _
from lti_tool.urls_for import base_url
from lti_tool.views.headers import image_response

bp = Blueprint("public", __name__)


def _provider_or_404(slug: str) -> Provider:
    provider = db_session().scalar(select(Provider).where(Provider.slug == slug))
    if provider is None:
        raise NotFound(f"no issuer {slug!r} exists on this bridge")
    return provider


def _wants_html() -> bool:
    # ?format=json lets a plain link in a browser fetch the JSON document.
    if request.args.get("format") == "json":
        return False
    best = request.accept_mimetypes.best_match(
        ["application/ld+json", "application/json", "text/html"]
    )
    return best == "text/html"


def _vary_by_negotiation(response: Response) -> Response:
    """Add Accept and Accept-Language to the Vary header of a negotiated response.

    Without them, a shared cache could hand the JSON document to a browser, the
    page to a verifier, or the page in one language to a reader of another.
    """
    response.vary.add("Accept")
    response.vary.add("Accept-Language")
    return response


@bp.get("/providers/<slug>/did.json")
def provider_did(slug: str):
    provider = _provider_or_404(slug)
    response = jsonify(did_document(db_session(), base_url(), provider))
    response.mimetype = "application/did+json"
    return response


@bp.get("/providers/<slug>")
def provider_profile(slug: str):
    provider = _provider_or_404(slug)
    profile = {
        "@context": [
            "https://www.w3.org/ns/credentials/v2",
            "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
        ],
        **serialize_profile(issuer_profile(base_url(), provider)),
    }
    # The live endorsements of the provider, each a signed EndorsementCredential a
    # verifier can check on its own.
    endorsements = [
        record.document
        for record in endorsements_for(db_session(), provider)
        if record.subject_type == "Profile"
    ]
    if endorsements:
        profile["endorsement"] = endorsements
    return jsonify(profile)


@bp.get("/achievements/<public_id>")
def achievement(public_id: str):
    found = db_session().scalar(
        select(Achievement).where(Achievement.public_id == public_id)
    )
    if found is None:
        raise NotFound(f"no achievement {public_id!r} exists on this bridge")
    document = {
        "@context": [
            "https://www.w3.org/ns/credentials/v2",
            "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
        ],
        "id": achievement_url(base_url(), found.public_id),
        "type": ["Achievement"],
        "name": found.name,
        "description": found.description,
        "criteria": {"narrative": found.criteria_narrative},
        "creator": {
            "id": issuer_did(base_url(), found.provider.slug),
            "type": ["Profile"],
        },
    }
    if found.image_url:
        document["image"] = {"id": found.image_url, "type": "Image"}
    if found.alignments:
        document["alignment"] = ob3_alignments(found.alignments)
    endorsements = [
        record.document
        for record in endorsements_for(db_session(), found.provider, found)
        if record.achievement_id == found.id
    ]
    if endorsements:
        document["endorsement"] = endorsements
    return jsonify(document)


def resolve_local_did(did: str) -> dict:
    """Resolve a did:web of this bridge from the database, without HTTP."""
    db = db_session()
    slug = did.rsplit(":", 1)[-1]
    provider = db.scalar(select(Provider).where(Provider.slug == slug))
    if provider is None or issuer_did(base_url(), provider.slug) != did:
        raise LookupError(f"{did} is not an issuer of this bridge")
    return did_document(db, base_url(), provider)


def _credential_or_404(public_id: str) -> Credential:
    found = db_session().scalar(
        select(Credential).where(Credential.public_id == public_id)
    )
    if found is None:
        raise NotFound(f"no credential {public_id!r} exists on this bridge")
    return found


@bp.get("/credentials/<public_id>")
def credential(public_id: str):
    found = _credential_or_404(public_id)
    if not _wants_html():
        response = jsonify(found.document)
        response.mimetype = "application/vc+ld+json"
        return _vary_by_negotiation(response)

    return _vary_by_negotiation(make_response(_credential_page(found)))


def _credential_page(found: Credential):
    """Render the page people see: who, what, when, by whom, endorsed by, status."""
    result = verify_open_badge_credential(found.document, resolve_local_did)
    recipient_check = None
    errors = {}
    email = request.args.get("recipient", "").strip()
    if email:
        try:
            check_email_address(email)
        except InvalidEmail:
            errors["recipient"] = _(
                "This is not a valid email address. Enter an address with a name, "
                "an @ and a domain that contains a dot, such as name@example.org."
            )
    if email and not errors:
        # The recipient is only a salted hash, so the page checks an address the
        # visitor enters rather than showing one.
        report = VerificationReport()
        check_ob3_recipient(found.document, VerifyContext(recipient=email), report)
        recipient_check = not report.errors
    provider = db_session().get(Provider, found.provider_id)
    return render_template(
        "credential.html",
        credential=found,
        document=found.document,
        result=result,
        revoked=found.status == CredentialStatus.REVOKED.value,
        endorsements=endorsements_for(db_session(), provider, found.achievement),
        recipient_email=email,
        recipient_check=recipient_check,
        errors=errors,
        ob2_url=ob2.assertion_url(base_url(), found.public_id),
    )


@bp.get("/credentials/<public_id>/badge.svg")
def credential_baked_svg(public_id: str):
    """Return an SVG badge with the signed OB 3.0 credential baked into it."""
    found = _credential_or_404(public_id)
    image = bake_svg(plain_svg(found.achievement.name), _json_text(found.document))
    return image_response(image, "image/svg+xml")


@bp.get("/credentials/<public_id>/badge.png")
def credential_baked_png(public_id: str):
    """Return a PNG badge with the signed OB 3.0 credential baked into it."""
    found = _credential_or_404(public_id)
    image = bake_png(plain_png(), _json_text(found.document))
    return image_response(image, "image/png")


@bp.get("/providers/<slug>/status/<int:list_number>")
def status_list(slug: str, list_number: int):
    """Return a signed BitstringStatusListCredential of the provider's revocations."""
    provider = _provider_or_404(slug)
    session = db_session()
    if not status.status_list_exists(session, provider.id, list_number):
        raise NotFound(
            f"provider {slug!r} has no status list {list_number}; a credential's "
            "credentialStatus names the list that holds its entry"
        )
    unsigned = status.build_status_list_credential(
        session, base_url(), provider, issuer_did(base_url(), slug), list_number
    )
    signed = _sign_for(provider, unsigned)
    response = jsonify(signed)
    response.mimetype = "application/vc+ld+json"
    response.cache_control.max_age = 300
    return response


@bp.get("/providers/<slug>/revocations")
def revocation_list(slug: str):
    """Return the provider's 1EdTechRevocationList."""
    provider = _provider_or_404(slug)
    return jsonify(
        status.build_revocation_list(
            db_session(), base_url(), provider, issuer_did(base_url(), slug)
        )
    )


@bp.get("/endorsements/<public_id>")
def endorsement(public_id: str):
    found = db_session().scalar(
        select(EndorsementRecord).where(EndorsementRecord.public_id == public_id)
    )
    if found is None:
        raise NotFound(f"no endorsement {public_id!r} exists on this bridge")
    response = jsonify(found.document)
    response.mimetype = "application/vc+ld+json"
    return response


@bp.get("/ob2/assertions/<public_id>")
def ob2_assertion(public_id: str):
    """Return the OB 2.0 hosted Assertion; 410 Gone once it is revoked."""
    found = _credential_or_404(public_id)
    if _wants_html():
        return _vary_by_negotiation(make_response(_credential_page(found)))

    document = ob2.build_assertion(base_url(), found)
    response = jsonify(document)
    response.mimetype = "application/ld+json"
    if found.status == CredentialStatus.REVOKED.value:
        # OB 2.0 hosted verification treats 410 Gone as revoked. The body still
        # carries revoked and revocationReason for verifiers that read it.
        response.status_code = 410
    return _vary_by_negotiation(response)


@bp.get("/ob2/assertions/<public_id>/signed")
def ob2_signed_assertion(public_id: str):
    """Return the OB 2.0 Assertion as a compact JWS signed by the provider's key."""
    found = _credential_or_404(public_id)
    provider = db_session().get(Provider, found.provider_id)
    key = active_signing_key(db_session(), current_bridge().vault, provider)
    assertion = ob2.build_assertion(
        base_url(),
        found,
        signing_key_url=ob2.key_url(base_url(), provider.slug, key.key_name),
    )
    token = ob2.sign_assertion(assertion, load_private_key(current_bridge().vault, key))
    db_session().commit()
    return Response(token, mimetype="application/jose")


@bp.get("/ob2/badges/<public_id>")
def ob2_badge_class(public_id: str):
    found = db_session().scalar(
        select(Achievement).where(Achievement.public_id == public_id)
    )
    if found is None:
        raise NotFound(f"no achievement {public_id!r} exists on this bridge")
    return _ld_json(ob2.build_badge_class(base_url(), found))


@bp.get("/ob2/issuers/<slug>")
def ob2_issuer(slug: str):
    provider = _provider_or_404(slug)
    return _ld_json(ob2.build_issuer(base_url(), provider, _keys_of(provider)))


@bp.get("/ob2/issuers/<slug>/keys/<key_name>")
def ob2_key(slug: str, key_name: str):
    provider = _provider_or_404(slug)
    key = db_session().scalar(
        select(SigningKey).where(
            SigningKey.provider_id == provider.id, SigningKey.key_name == key_name
        )
    )
    if key is None:
        raise NotFound(f"issuer {slug!r} has no key {key_name!r}")
    return _ld_json(ob2.build_crypto_key(base_url(), provider, key))


@bp.get("/ob2/issuers/<slug>/revocations")
def ob2_revocation_list(slug: str):
    provider = _provider_or_404(slug)
    revoked = status.revoked_credentials(db_session(), provider)
    return _ld_json(ob2.build_revocation_list(base_url(), provider, revoked))


def _keys_of(provider: Provider) -> list[SigningKey]:
    return list(
        db_session().scalars(
            select(SigningKey)
            .where(SigningKey.provider_id == provider.id)
            .order_by(SigningKey.id)
        )
    )


def _sign_for(provider: Provider, unsigned: dict) -> dict:
    session = db_session()
    vault = current_bridge().vault
    key = active_signing_key(session, vault, provider)
    signed = sign_eddsa_rdfc_2022(
        unsigned,
        load_private_key(vault, key),
        verification_method_id(base_url(), provider, key),
        created=utcnow(),
    )
    # active_signing_key creates the provider's first key when it has none yet.
    session.commit()
    return signed


def _ld_json(document: dict):
    response = jsonify(document)
    response.mimetype = "application/ld+json"
    return response


def _json_text(document: dict) -> str:
    return json.dumps(document, ensure_ascii=False)
