"""DIDs for issuers: did:web identifiers and documents, did:key resolution.

An issuer signs with a key published in its did:web document, served by the bridge at
the URL that `did_web_document_url` computes. did:key identifiers carry the public key
in the DID itself and resolve without any lookup. Nothing here touches the network;
fetching a did.json is the caller's job.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from badge_engine.errors import BadgeEngineError, InvalidDid, VerificationError
from badge_engine.multikey import public_key_from_multibase, public_key_to_multibase

DID_CONTEXT = "https://www.w3.org/ns/did/v1"
MULTIKEY_CONTEXT = "https://w3id.org/security/multikey/v1"

# A did:web method-specific id is one or more groups of DID idchars (ALPHA, DIGIT,
# ".", "-", "_" or a percent-encoded byte) separated by ":".
_DID_WEB = re.compile(r"^did:web:([A-Za-z0-9._%-]+(?::[A-Za-z0-9._%-]+)*)$")
_HOST_AND_PORT = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")
_ID_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_"
)
_DEFAULT_PORTS = {"https": 443, "http": 80}

PublicKeyInput = Ed25519PublicKey | str


def did_web(base_url: str, path_segments: list[str]) -> str:
    """Build the did:web identifier for `path_segments` under the public `base_url`.

    The host and port become the first part, with the ":" before the port encoded as
    "%3A". Any path of `base_url` comes next, then `path_segments`, joined by ":". A
    character outside the DID idchar set is percent-encoded. The default port of the
    scheme is dropped. Plain http is accepted only for loopback hosts, for the loopback
    development mode. Raises InvalidDid for any other URL or for an empty segment.
    """
    parts = urlsplit(base_url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise InvalidDid(
            "Expected an https:// base URL with a host (http:// only on loopback), "
            f"received {base_url!r}."
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidDid(
            "The base URL of a did:web must not contain credentials, a query or a "
            f"fragment, received {base_url!r}."
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise InvalidDid(
            "did:web documents are served over https, so plain http is accepted "
            f"only for a loopback host, received {base_url!r}."
        )

    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if parts.port is not None and parts.port != _DEFAULT_PORTS[parts.scheme]:
        host = f"{host}:{parts.port}"

    segments = [unquote(segment) for segment in parts.path.split("/") if segment]
    segments += path_segments
    if any(not segment for segment in segments):
        raise InvalidDid(
            f"did:web path segments must not be empty, received {path_segments!r}."
        )

    encoded = [_percent_encode(host)] + [_percent_encode(s) for s in segments]
    return "did:web:" + ":".join(encoded)


def did_web_document_url(did: str, *, allow_http_loopback: bool = False) -> str:
    """Return the URL of the did.json document of a did:web DID.

    A DID without a path resolves to `/.well-known/did.json`, and one with a path to
    `/<path>/did.json`. The scheme is https, except that `allow_http_loopback` gives
    http for a loopback host (127.0.0.0/8, ::1 or localhost). A fragment, as in a
    verification method id, is ignored. Raises InvalidDid for anything but did:web.
    """
    did = did.partition("#")[0]
    match = _DID_WEB.match(did)
    if match is None:
        raise InvalidDid(
            "Expected a did:web DID such as did:web:example.org:issuers:acme.", did=did
        )

    host_part, *path_parts = match.group(1).split(":")
    host = unquote(host_part)
    if not _HOST_AND_PORT.match(host):
        raise InvalidDid(
            f"The did:web host {host!r} is not a host name or IP address with an "
            "optional port.",
            did=did,
        )
    if any(part in (".", "..") for part in path_parts):
        raise InvalidDid("did:web path segments must not be '.' or '..'.", did=did)

    hostname = urlsplit(f"//{host}").hostname or ""

    scheme = "https"
    if allow_http_loopback and _is_loopback(hostname):
        scheme = "http"

    if not path_parts:
        return f"{scheme}://{host}/.well-known/did.json"

    return f"{scheme}://{host}/{'/'.join(path_parts)}/did.json"


def build_did_document(
    did: str, public_keys: Sequence[PublicKeyInput] | Mapping[str, PublicKeyInput]
) -> dict[str, Any]:
    """Build a DID document that publishes Ed25519 keys as Multikey methods.

    With a sequence, the methods get the ids `<did>#key-1`, `<did>#key-2` and so on,
    so a key must keep its position for as long as credentials name it. A mapping from
    fragment to key fixes the ids explicitly. Every key is listed in assertionMethod
    (signing credentials) and authentication. Keys are Ed25519PublicKey objects or
    publicKeyMultibase strings. Raises InvalidDid for a malformed DID or no key, and
    InvalidKey for a string that is not an Ed25519 Multikey.
    """
    if not did.startswith("did:") or "#" in did or "?" in did:
        raise InvalidDid(
            "Expected a DID without query or fragment, such as "
            "did:web:example.org:issuers:acme.",
            did=did,
        )

    if isinstance(public_keys, Mapping):
        keyed = list(public_keys.items())
    else:
        keyed = [(f"key-{number}", key) for number, key in enumerate(public_keys, 1)]
    if not keyed:
        raise InvalidDid("A DID document needs at least one public key.", did=did)

    methods = []
    for fragment, key in keyed:
        if isinstance(key, str):
            # Decoding validates the string before it is published.
            public_key_from_multibase(key)
            multibase = key
        else:
            multibase = public_key_to_multibase(key)
        methods.append(
            {
                "id": f"{did}#{fragment}",
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": multibase,
            }
        )

    method_ids = [method["id"] for method in methods]
    return {
        "@context": [DID_CONTEXT, MULTIKEY_CONTEXT],
        "id": did,
        "verificationMethod": methods,
        "assertionMethod": list(method_ids),
        "authentication": list(method_ids),
    }


def find_verification_method(
    did_document: dict[str, Any],
    verification_method_id: str,
    relationship: str = "assertionMethod",
) -> dict[str, Any]:
    """Return the verification method with this id, if `relationship` authorises it.

    The document's `id` must be the DID part of `verification_method_id`. Relative ids
    such as "#key-1" are resolved against it. The method may be listed in
    `verificationMethod` or embedded in the relationship itself. Raises
    VerificationError when the document belongs to another DID, or the method is
    missing or not listed under `relationship`.
    """
    did = verification_method_id.partition("#")[0]
    if did_document.get("id") != did:
        raise VerificationError(
            f"The DID document is for {did_document.get('id')!r}, not for {did!r}.",
            verification_method=verification_method_id,
        )

    methods = [
        m for m in _as_list(did_document.get("verificationMethod")) if _is_node(m)
    ]
    authorised = set()
    for entry in _as_list(did_document.get(relationship)):
        if _is_node(entry):
            methods.append(entry)
            entry = entry["id"]
        if isinstance(entry, str):
            authorised.add(_absolute_id(did, entry))

    if verification_method_id not in authorised:
        raise VerificationError(
            f"The DID document does not list the key in {relationship}, so the key "
            f"is not authorised for {relationship}. Add it there or sign with a "
            "listed key.",
            verification_method=verification_method_id,
        )

    for method in methods:
        if _absolute_id(did, method["id"]) == verification_method_id:
            return method

    raise VerificationError(
        "The DID document lists the key but does not describe it in "
        "verificationMethod.",
        verification_method=verification_method_id,
    )


def public_key_from_did_document(
    did_document: dict[str, Any], verification_method_id: str
) -> Ed25519PublicKey:
    """Return the Ed25519 key of a verification method authorised for assertionMethod.

    Accepts Multikey and Ed25519VerificationKey2020 methods (publicKeyMultibase) and
    JsonWebKey2020 or JsonWebKey methods with an OKP Ed25519 publicKeyJwk. Raises
    VerificationError, naming the method, for any other method or a malformed key.
    """
    method = find_verification_method(did_document, verification_method_id)
    try:
        return _public_key_from_method(method)
    except BadgeEngineError as error:
        raise VerificationError(
            f"The verification method's key cannot be read: {error}",
            verification_method=verification_method_id,
        ) from error


def did_key(public_key: Ed25519PublicKey) -> str:
    """Return the did:key DID of an Ed25519 key.

    Its verification method id is the DID, "#" and the DID's own multibase part.
    """
    return "did:key:" + public_key_to_multibase(public_key)


def resolve_did_key(did_or_verification_method: str) -> Ed25519PublicKey:
    """Decode the Ed25519 key of a did:key DID or of its verification method id.

    The fragment of a verification method id must equal the key itself. Raises
    InvalidDid for anything else, and InvalidKey when the key is not Ed25519.
    """
    did, _, fragment = did_or_verification_method.partition("#")
    if not did.startswith("did:key:z"):
        raise InvalidDid(
            "Expected a did:key DID such as did:key:z6Mk….",
            did=did_or_verification_method,
        )

    multibase = did[len("did:key:") :]
    if fragment and fragment != multibase:
        raise InvalidDid(
            "The fragment of a did:key verification method must repeat the key.",
            did=did_or_verification_method,
        )

    return public_key_from_multibase(multibase)


def _public_key_from_method(method: dict[str, Any]) -> Ed25519PublicKey:
    method_type = method.get("type")
    if method_type in ("Multikey", "Ed25519VerificationKey2020"):
        multibase = method.get("publicKeyMultibase")
        if not isinstance(multibase, str):
            raise InvalidDid(f"The {method_type} method has no publicKeyMultibase.")
        return public_key_from_multibase(multibase)

    if method_type in ("JsonWebKey2020", "JsonWebKey"):
        return _public_key_from_jwk(method.get("publicKeyJwk"))

    raise InvalidDid(
        f"Unsupported verification method type {method_type!r}. Expected "
        "Multikey, Ed25519VerificationKey2020, JsonWebKey2020 or JsonWebKey."
    )


def _public_key_from_jwk(jwk: Any) -> Ed25519PublicKey:
    if (
        not isinstance(jwk, dict)
        or jwk.get("kty") != "OKP"
        or jwk.get("crv") != "Ed25519"
    ):
        raise InvalidDid("Expected a publicKeyJwk with kty 'OKP' and crv 'Ed25519'.")

    x = jwk.get("x")
    if not isinstance(x, str):
        raise InvalidDid("The publicKeyJwk has no 'x' member.")

    try:
        raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
    except binascii.Error as error:
        raise InvalidDid(f"The publicKeyJwk 'x' is not base64url: {error}.") from error
    if len(raw) != 32:
        raise InvalidDid(f"An Ed25519 JWK 'x' has 32 bytes, received {len(raw)}.")

    return Ed25519PublicKey.from_public_bytes(raw)


def _percent_encode(text: str) -> str:
    return "".join(
        char if char in _ID_CHARS else "".join(f"%{b:02X}" for b in char.encode())
        for char in text
    )


def _is_loopback(hostname: str) -> bool:
    if hostname.lower() == "localhost":
        return True

    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _absolute_id(did: str, method_id: str) -> str:
    if method_id.startswith("#"):
        return did + method_id

    return method_id


def _is_node(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("id"), str)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value

    return [value]
