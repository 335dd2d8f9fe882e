"""Public documents: issuer profiles, DID documents, achievements and credentials.

These pages reveal no more than the credential itself does: the recipient appears only
as a salted hash.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request
from sqlalchemy import select

from badge_engine.issuers import did_document, issuer_profile
from badge_engine.ob3 import serialize_profile
from badge_engine.models import Achievement, Credential, CredentialStatus, Provider
from badge_engine.urls import achievement_url, issuer_did
from badge_engine.verify import verify_open_badge_credential
from lti_tool.bridge import db_session
from lti_tool.errors import NotFound
from lti_tool.urls_for import base_url

bp = Blueprint("public", __name__)


def _provider_or_404(slug: str) -> Provider:
    provider = db_session().scalar(select(Provider).where(Provider.slug == slug))
    if provider is None:
        raise NotFound(f"no issuer {slug!r} exists on this bridge")
    return provider


def _wants_html() -> bool:
    best = request.accept_mimetypes.best_match(
        ["application/ld+json", "application/json", "text/html"]
    )
    return best == "text/html"


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
    return jsonify(profile)


@bp.get("/achievements/<public_id>")
def achievement(public_id: str):
    found = db_session().scalar(select(Achievement).where(Achievement.public_id == public_id))
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
        "creator": {"id": issuer_did(base_url(), found.provider.slug), "type": ["Profile"]},
    }
    return jsonify(document)


def resolve_local_did(did: str) -> dict:
    """Resolve a did:web of this bridge from the database, without HTTP."""
    db = db_session()
    slug = did.rsplit(":", 1)[-1]
    provider = db.scalar(select(Provider).where(Provider.slug == slug))
    if provider is None or issuer_did(base_url(), provider.slug) != did:
        raise LookupError(f"{did} is not an issuer of this bridge")
    return did_document(db, base_url(), provider)


@bp.get("/credentials/<public_id>")
def credential(public_id: str):
    found = db_session().scalar(select(Credential).where(Credential.public_id == public_id))
    if found is None:
        raise NotFound(f"no credential {public_id!r} exists on this bridge")
    if not _wants_html():
        response = jsonify(found.document)
        response.mimetype = "application/vc+ld+json"
        return response

    result = verify_open_badge_credential(found.document, resolve_local_did)
    return render_template(
        "credential.html",
        credential=found,
        document=found.document,
        result=result,
        revoked=found.status == CredentialStatus.REVOKED.value,
    )
