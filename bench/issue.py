"""Issue and verify eddsa-rdfc-2022 credentials in memory: the engine against pyld.

Each credential is built from an achievement and a learner (OpenBadgeCredential,
hashed and salted email), canonicalised, hashed and signed with Ed25519, then
verified. Both signers run in this process on one core with the same credentials:

- engine: `badge_engine.data_integrity`, which canonicalises with
  `badge_engine.canonical` (a template per credential shape, pyld as fallback);
- pyld: a straightforward signer that canonicalises every document with pyld.

The figures are credentials per CPU second of this process, which is the rate of one
core even when other work shares the machine, and the wall-clock rate beside them.
The engine's run includes building its templates, one per achievement shape. Before timing, the script checks that both
signers produce the same proofValue for the same credential.

Usage: python bench/issue.py [-n N] [--baseline-n N]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from badge_engine import canonical, jsonld, ob3
from badge_engine.data_integrity import sign_eddsa_rdfc_2022, verify_eddsa_rdfc_2022
from badge_engine.multikey import multibase_decode, multibase_encode

BASE = "https://bridge.example.org"
ISSUER = ob3.IssuerProfile(
    id="did:web:bridge.example.org:issuers:acme-relief",
    name="Acme Relief Academy",
    url="https://academy.acme-relief.org",
    description="Training for humanitarian field staff.",
    image=f"{BASE}/issuers/acme-relief/logo.png",
)
METHOD = f"{ISSUER.id}#key-1"
CREATED = "2024-05-01T12:00:00Z"
ACHIEVEMENT_COUNT = 20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-n", type=int, default=5000, help="credentials for the engine (default 5000)"
    )
    parser.add_argument(
        "--baseline-n",
        type=int,
        default=300,
        help="credentials for the pyld signer, which is slower (default 300)",
    )
    args = parser.parse_args()

    key = Ed25519PrivateKey.generate()
    public_key = key.public_key()
    achievements = [_achievement(number) for number in range(ACHIEVEMENT_COUNT)]

    sample = _build(achievements, 0)
    engine_proof = sign_eddsa_rdfc_2022(sample, key, METHOD, CREATED)["proof"][0]
    baseline_proof = sign_with_pyld(sample, key, METHOD, CREATED)["proof"][0]
    if engine_proof["proofValue"] != baseline_proof["proofValue"]:
        print("The engine and pyld signers disagree on the same credential.")
        return 1

    canonical.clear_templates()
    fallbacks_before = canonical.fallback_count()
    engine = _run(
        args.n,
        achievements,
        lambda document: sign_eddsa_rdfc_2022(document, key, METHOD, CREATED),
        lambda signed: verify_eddsa_rdfc_2022(signed, lambda _: public_key).verified,
    )
    baseline = _run(
        args.baseline_n,
        achievements,
        lambda document: sign_with_pyld(document, key, METHOD, CREATED),
        lambda signed: verify_with_pyld(signed, public_key),
    )

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"Python {sys.version.split()[0]}, one process, one thread")
    print(f"load average (1, 5, 15 min) at the end: {load} on {os.cpu_count()} cores")
    print("credentials per CPU second (per core); wall-clock rates in brackets")
    print(f"{'signer':<8} {'credentials':>11} {'issue/s':>16} {'verify/s':>16}")
    for name, figures in (("engine", engine), ("pyld", baseline)):
        issue = f"{figures['issue']:.0f} ({figures['issue_wall']:.0f})"
        verify = f"{figures['verify']:.0f} ({figures['verify_wall']:.0f})"
        print(f"{name:<8} {figures['count']:>11} {issue:>16} {verify:>16}")
    print(
        f"ratio engine/pyld: issue {engine['issue'] / baseline['issue']:.1f}x, "
        f"verify {engine['verify'] / baseline['verify']:.1f}x"
    )
    print(
        "engine fallbacks to pyld: "
        f"{canonical.fallback_count() - fallbacks_before} "
        f"of {2 * 2 * args.n} canonicalisations"
    )
    return 0


def sign_with_pyld(
    document: dict[str, Any], key: Ed25519PrivateKey, method: str, created: str
) -> dict[str, Any]:
    """Sign with eddsa-rdfc-2022, canonicalising both parts with pyld."""
    options = _proof_options(method, created)
    signature = key.sign(_hash_data(document, options))
    return {
        **document,
        "proof": [{**options, "proofValue": multibase_encode(signature)}],
    }


def verify_with_pyld(signed: dict[str, Any], public_key: Ed25519PublicKey) -> bool:
    """Verify the one eddsa-rdfc-2022 proof of `signed`, canonicalising with pyld."""
    proof = signed["proof"][0]
    document = {key: value for key, value in signed.items() if key != "proof"}
    options = {key: value for key, value in proof.items() if key != "proofValue"}
    try:
        public_key.verify(
            multibase_decode(proof["proofValue"]), _hash_data(document, options)
        )
    except InvalidSignature:
        return False
    return True


def _hash_data(document: dict[str, Any], options: dict[str, Any]) -> bytes:
    proof_config = {**options, "@context": document["@context"]}
    config_hash = hashlib.sha256(jsonld.canonize(proof_config).encode()).digest()
    document_hash = hashlib.sha256(jsonld.canonize(document).encode()).digest()
    return config_hash + document_hash


def _proof_options(method: str, created: str) -> dict[str, Any]:
    return {
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-rdfc-2022",
        "created": created,
        "verificationMethod": method,
        "proofPurpose": "assertionMethod",
    }


def _run(
    count: int,
    achievements: list[ob3.AchievementData],
    sign: Callable[[dict[str, Any]], dict[str, Any]],
    verify: Callable[[dict[str, Any]], bool],
) -> dict[str, float]:
    signed = []
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    for number in range(count):
        signed.append(sign(_build(achievements, number)))
    issue_cpu = time.process_time() - cpu_started
    issue_wall = time.perf_counter() - wall_started

    cpu_started, wall_started = time.process_time(), time.perf_counter()
    verified = sum(1 for document in signed if verify(document))
    verify_cpu = time.process_time() - cpu_started
    verify_wall = time.perf_counter() - wall_started
    if verified != count:
        raise SystemExit(f"Only {verified} of {count} credentials verified.")

    return {
        "count": count,
        "issue": count / issue_cpu,
        "verify": count / verify_cpu,
        "issue_wall": count / issue_wall,
        "verify_wall": count / verify_wall,
    }


def _build(achievements: list[ob3.AchievementData], number: int) -> dict[str, Any]:
    awarded = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=number)
    return ob3.build_open_badge_credential(
        credential_id=f"{BASE}/credentials/{number:08d}",
        issuer=ISSUER,
        achievement=achievements[number % len(achievements)],
        recipient_identifiers=[
            ob3.RecipientIdentity.from_email(
                f"learner{number}@example.org", f"{number:032x}"
            )
        ],
        valid_from=awarded,
        awarded_date=awarded,
        credential_status={
            "id": f"{BASE}/status/acme-relief#{number}",
            "type": "1EdTechRevocationList",
        },
    )


def _achievement(number: int) -> ob3.AchievementData:
    return ob3.AchievementData(
        id=f"{BASE}/achievements/{number}",
        name=f"Field Skills {number}: Safety, Security and Care",
        description=(
            "Recognises completion of a course on working safely in the field, "
            f"module set {number}, with every assessment passed."
        ),
        criteria_narrative="Complete every module and pass the final assessment.",
        image=f"{BASE}/achievements/{number}/image.png",
        tags=tuple(f"skill-{number}-{tag}" for tag in range(number % 5)),
        language="en",
    )


if __name__ == "__main__":
    sys.exit(main())
