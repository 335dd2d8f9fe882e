"""Serialisation of Open Badges 3.0 credentials (OpenBadgeCredential) to plain JSON.

The builders take plain values and small dataclasses and return unsigned JSON-LD
dictionaries that `badge_engine.data_integrity` can sign. Collections are always
arrays, as the OB 3.0 JSON schema requires. Timestamps are UTC, to the second, in the
form `YYYY-MM-DDTHH:MM:SSZ`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from badge_engine.alignments import ob3_alignments
from badge_engine.errors import InvalidCredential

VC2_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB3_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
# Defines the 1EdTech types that credentialSchema and credentialStatus use. Without
# it those types are relative IRIs, which JSON-LD processors drop or reject.
OB3_EXTENSIONS_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/extensions.json"
ACHIEVEMENT_CREDENTIAL_SCHEMA_ID = (
    "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/"
    "ob_v3p0_achievementcredential-jsonschema1.json"
)
# The credentialSchema type that OB 3.0 names for its JSON schemas.
JSON_SCHEMA_VALIDATOR_TYPE = "1EdTechJsonSchemaValidator2019"

_SHA256_IDENTITY_HASH = re.compile(r"^sha256\$[0-9a-f]{64}$")


@dataclass(frozen=True)
class IssuerProfile:
    """The issuer's OB 3.0 Profile, where `image` is the URL or data URI of its logo."""

    id: str
    name: str
    url: str
    email: str | None = None
    description: str | None = None
    image: str | None = None


@dataclass(frozen=True)
class AchievementData:
    """An OB 3.0 Achievement (a BadgeClass in OB 2.0).

    `criteria_narrative` is the human-readable criteria text, not the award rule.
    `language` is a BCP 47 code written as `inLanguage`. `image` is a URL or data URI.
    """

    id: str
    name: str
    description: str
    criteria_narrative: str
    image: str | None = None
    tags: Sequence[str] = ()
    achievement_type: str = "Badge"
    language: str | None = None
    # Stored alignments (see badge_engine.alignments), written as `alignment`.
    alignments: Sequence[dict[str, str]] = ()


@dataclass(frozen=True)
class RecipientIdentity:
    """A recipient's email address, hashed and salted as an OB IdentityObject.

    `hashed_email` has the form `sha256$<64 lowercase hex digits>`, as `hash_email`
    returns. Raises InvalidCredential for any other form.
    """

    hashed_email: str
    salt: str | None
    # OB 3.0 IdentifierTypeEnum value; "systemId" hashes an LMS account instead of
    # an email address, for learners whose LMS did not share their email.
    identity_type: str = "emailAddress"

    def __post_init__(self) -> None:
        if not _SHA256_IDENTITY_HASH.match(self.hashed_email):
            raise InvalidCredential(
                "hashed_email must be 'sha256$' followed by 64 lowercase hex digits. "
                "Build it with hash_email(email, salt)."
            )

    @classmethod
    def from_email(cls, email: str, salt: str) -> RecipientIdentity:
        """Hash `email` with `salt` and keep only the hash and the salt."""
        return cls(hashed_email=hash_email(email, salt), salt=salt)

    @classmethod
    def from_system_id(cls, system_id: str, salt: str) -> RecipientIdentity:
        """Hash an LMS account id (kept case-sensitive) as a `systemId` identity."""
        digest = hashlib.sha256((system_id + salt).encode("utf-8")).hexdigest()
        return cls(hashed_email=f"sha256${digest}", salt=salt, identity_type="systemId")


@dataclass(frozen=True)
class EvidenceData:
    """An OB 3.0 Evidence item: a link to, or a description of, the learner's work."""

    id: str | None = None
    name: str | None = None
    description: str | None = None
    narrative: str | None = None
    genre: str | None = None
    audience: str | None = None


def hash_email(email: str, salt: str) -> str:
    """Return the OB identity hash `sha256$<hex>` of an email address and salt.

    The address is trimmed and lowercased first, so that the hash does not depend on
    how the LMS capitalised it. The hash covers the UTF-8 bytes of address + salt.
    """
    normalised = email.strip().lower()
    digest = hashlib.sha256((normalised + salt).encode("utf-8")).hexdigest()
    return f"sha256${digest}"


def format_timestamp(moment: datetime) -> str:
    """Format a timezone-aware datetime as `YYYY-MM-DDTHH:MM:SSZ` in UTC.

    Raises InvalidCredential for a naive datetime, whose timezone is unknown.
    """
    if moment.tzinfo is None:
        raise InvalidCredential(
            f"Expected a timezone-aware datetime, received the naive {moment!r}. "
            "Attach a timezone, for example datetime.now(UTC)."
        )

    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_open_badge_credential(
    credential_id: str,
    issuer: IssuerProfile,
    achievement: AchievementData,
    recipient_identifiers: Sequence[RecipientIdentity],
    valid_from: datetime,
    name: str | None = None,
    valid_until: datetime | None = None,
    awarded_date: datetime | None = None,
    credential_status: Mapping[str, Any] | None = None,
    evidence: Sequence[EvidenceData] = (),
) -> dict[str, Any]:
    """Build an unsigned OpenBadgeCredential for one recipient and one achievement.

    `name` defaults to the achievement's name. `credential_status` (a status list
    entry or revocation list reference) is copied as given. Raises InvalidCredential
    when there is no recipient identifier, a datetime is naive, or `valid_until` is
    not after `valid_from`.
    """
    if not recipient_identifiers:
        raise InvalidCredential(
            "An OpenBadgeCredential needs at least one recipient identifier, "
            "otherwise nobody can show that the badge is theirs.",
            credential_id=credential_id,
        )
    # Formatting first rejects naive datetimes before they are compared.
    valid_from_text = format_timestamp(valid_from)
    if valid_until is not None and format_timestamp(valid_until) <= valid_from_text:
        raise InvalidCredential(
            f"validUntil ({valid_until.isoformat()}) must be after validFrom "
            f"({valid_from.isoformat()}).",
            credential_id=credential_id,
        )

    credential: dict[str, Any] = {
        "@context": [VC2_CONTEXT, OB3_CONTEXT, OB3_EXTENSIONS_CONTEXT],
        "id": credential_id,
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": name or achievement.name,
        "issuer": serialize_profile(issuer),
        "validFrom": valid_from_text,
    }
    if valid_until is not None:
        credential["validUntil"] = format_timestamp(valid_until)
    if awarded_date is not None:
        credential["awardedDate"] = format_timestamp(awarded_date)

    credential["credentialSubject"] = {
        "type": ["AchievementSubject"],
        "identifier": [serialize_identity(item) for item in recipient_identifiers],
        "achievement": serialize_achievement(achievement),
    }
    if evidence:
        credential["evidence"] = [serialize_evidence(item) for item in evidence]
    if credential_status is not None:
        credential["credentialStatus"] = dict(credential_status)

    credential["credentialSchema"] = [
        {"id": ACHIEVEMENT_CREDENTIAL_SCHEMA_ID, "type": JSON_SCHEMA_VALIDATOR_TYPE}
    ]
    return credential


def serialize_profile(issuer: IssuerProfile) -> dict[str, Any]:
    """Serialise an issuer as an OB 3.0 Profile."""
    profile: dict[str, Any] = {
        "id": issuer.id,
        "type": ["Profile"],
        "name": issuer.name,
        "url": issuer.url,
    }
    _set_if_present(profile, "email", issuer.email)
    _set_if_present(profile, "description", issuer.description)
    if issuer.image is not None:
        profile["image"] = _image(issuer.image)

    return profile


def serialize_achievement(achievement: AchievementData) -> dict[str, Any]:
    """Serialise an achievement as an OB 3.0 Achievement."""
    serialized: dict[str, Any] = {
        "id": achievement.id,
        "type": ["Achievement"],
        "achievementType": achievement.achievement_type,
        "name": achievement.name,
        "description": achievement.description,
        "criteria": {"narrative": achievement.criteria_narrative},
    }
    if achievement.image is not None:
        serialized["image"] = _image(achievement.image)
    if achievement.tags:
        serialized["tag"] = list(achievement.tags)
    if achievement.alignments:
        serialized["alignment"] = ob3_alignments(list(achievement.alignments))
    _set_if_present(serialized, "inLanguage", achievement.language)

    return serialized


def serialize_identity(identity: RecipientIdentity) -> dict[str, Any]:
    """Serialise a hashed email address as an OB 3.0 IdentityObject."""
    serialized: dict[str, Any] = {
        "type": "IdentityObject",
        "identityHash": identity.hashed_email,
        "identityType": identity.identity_type,
        "hashed": True,
    }
    _set_if_present(serialized, "salt", identity.salt)

    return serialized


def serialize_evidence(evidence: EvidenceData) -> dict[str, Any]:
    """Serialise an evidence item as an OB 3.0 Evidence."""
    serialized: dict[str, Any] = {"type": ["Evidence"]}
    for key in ("id", "name", "description", "narrative", "genre", "audience"):
        _set_if_present(serialized, key, getattr(evidence, key))

    return serialized


def _image(url: str) -> dict[str, str]:
    return {"id": url, "type": "Image"}


def _set_if_present(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value
