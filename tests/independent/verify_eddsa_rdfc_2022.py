"""Check one eddsa-rdfc-2022 proof without any code from badge_engine.

Usage: python verify_eddsa_rdfc_2022.py CREDENTIAL_JSON DID_JSON

Exits 0 when the credential's proof verifies with a key that DID_JSON lists under
assertionMethod, 1 when it does not, and 2 when the arguments or files are unusable.
The steps follow the verification algorithm of the W3C vc-di-eddsa specification.
Only pyld and cryptography are used, and JSON-LD contexts are read from the files in
badge_engine/contexts/ by path, never from the network.
"""

import hashlib
import json
import sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pyld import jsonld

CONTEXTS = Path(__file__).resolve().parents[2] / "badge_engine" / "contexts"
CONTEXT_PATHS = {
    "https://www.w3.org/ns/credentials/v2": "credentials-v2.jsonld",
    "https://w3id.org/security/data-integrity/v2": "data-integrity-v2.jsonld",
    "https://w3id.org/security/multikey/v1": "multikey-v1.jsonld",
    "https://www.w3.org/ns/did/v1": "did-v1.jsonld",
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json": (
        "ob-v3p0-context-3.0.3.json"
    ),
    "https://purl.imsglobal.org/spec/ob/v3p0/extensions.json": (
        "ob-v3p0-extensions.json"
    ),
}
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class NotVerified(Exception):
    """The proof does not verify, for the reason given in the message."""


def load_context_offline(url, options=None):
    if url not in CONTEXT_PATHS:
        raise NotVerified(f"no local copy of the context {url}")
    text = (CONTEXTS / CONTEXT_PATHS[url]).read_text(encoding="utf-8")
    return {"contextUrl": None, "documentUrl": url, "document": json.loads(text)}


def rdfc_sha256(document):
    # No base IRI, as the JSON-LD API defines for an in-memory document.
    nquads = jsonld.normalize(
        document,
        {
            "algorithm": "URDNA2015",
            "format": "application/n-quads",
            "documentLoader": load_context_offline,
            "base": None,
        },
    )
    return hashlib.sha256(nquads.encode("utf-8")).digest()


def decode_base58btc(text):
    # Byte-array long multiplication, least significant byte first.
    value = bytearray()
    for char in text:
        carry = BASE58.index(char)
        for position, byte in enumerate(value):
            carry += byte * 58
            value[position] = carry & 0xFF
            carry >>= 8
        while carry:
            value.append(carry & 0xFF)
            carry >>= 8
    leading_ones = len(text) - len(text.lstrip("1"))
    return bytes(leading_ones) + bytes(reversed(value))


def authorised_key(did_document, method_url):
    def absolute(method_id):
        return (
            did_document["id"] + method_id if method_id.startswith("#") else method_id
        )

    listed = [
        absolute(entry if isinstance(entry, str) else entry["id"])
        for entry in did_document.get("assertionMethod", [])
    ]
    if method_url not in listed:
        raise NotVerified(f"{method_url} is not listed under assertionMethod")

    for method in did_document.get("verificationMethod", []):
        if absolute(method["id"]) == method_url:
            encoded = method["publicKeyMultibase"]
            raw = decode_base58btc(encoded[1:]) if encoded[0] == "z" else b""
            if len(raw) != 34 or raw[:2] != b"\xed\x01":
                raise NotVerified(f"{method_url} is not an Ed25519 Multikey")
            return Ed25519PublicKey.from_public_bytes(raw[2:])
    raise NotVerified(f"{method_url} is not described under verificationMethod")


def verify(credential, did_document):
    proofs = credential.get("proof")
    proofs = proofs if isinstance(proofs, list) else [proofs]
    if len(proofs) != 1 or not isinstance(proofs[0], dict):
        raise NotVerified("expected exactly one proof object")
    proof = proofs[0]
    if proof.get("type") != "DataIntegrityProof":
        raise NotVerified(f"proof type is {proof.get('type')!r}")
    if proof.get("cryptosuite") != "eddsa-rdfc-2022":
        raise NotVerified(f"cryptosuite is {proof.get('cryptosuite')!r}")

    unsecured = {key: value for key, value in credential.items() if key != "proof"}
    options = {key: value for key, value in proof.items() if key != "proofValue"}
    options["@context"] = credential["@context"]

    signed_bytes = rdfc_sha256(options) + rdfc_sha256(unsecured)
    value = proof.get("proofValue", "")
    signature = decode_base58btc(value[1:]) if value.startswith("z") else b""
    key = authorised_key(did_document, proof.get("verificationMethod"))
    try:
        key.verify(signature, signed_bytes)
    except InvalidSignature:
        raise NotVerified("the signature does not match the credential") from None


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        credential = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
        did_document = json.loads(Path(argv[2]).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(f"cannot read the input: {error}", file=sys.stderr)
        return 2

    try:
        verify(credential, did_document)
    except jsonld.JsonLdError as error:
        # pyld nests the real reason, such as a missing context, several levels deep.
        while error.__cause__ is not None:
            error = error.__cause__
        print(f"NOT VERIFIED: JSON-LD processing failed: {error.args[0]}")
        return 1
    except (NotVerified, KeyError, TypeError, ValueError) as error:
        print(f"NOT VERIFIED: {error}")
        return 1
    print("VERIFIED")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
