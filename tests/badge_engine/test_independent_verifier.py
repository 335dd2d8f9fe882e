"""Agreement between the engine and the independent eddsa-rdfc-2022 checker."""

import copy
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from badge_engine import ob3
from badge_engine.data_integrity import sign_eddsa_rdfc_2022
from badge_engine.did import build_did_document, did_web
from badge_engine.verify import verify_open_badge_credential

CHECKER = (
    Path(__file__).resolve().parents[1] / "independent" / "verify_eddsa_rdfc_2022.py"
)
VECTOR = json.loads(
    (Path(__file__).parent / "vectors/eddsa-rdfc-2022.json").read_text()
)
ISSUER_DID = did_web("https://bridge.example.org", ["issuers", "acme"])
METHOD = f"{ISSUER_DID}#key-1"
NOW = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def key():
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def did_document(key):
    return build_did_document(ISSUER_DID, [key.public_key()])


@pytest.fixture(scope="module")
def signed(key):
    unsigned = ob3.build_open_badge_credential(
        credential_id="https://bridge.example.org/credentials/7",
        issuer=ob3.IssuerProfile(id=ISSUER_DID, name="Acme", url="https://acme.org"),
        achievement=ob3.AchievementData(
            id="https://bridge.example.org/achievements/42",
            name="Field Security Basics",
            description="Recognises completion of the field security course.",
            criteria_narrative="Complete every module.",
            tags=("security",),
        ),
        recipient_identifiers=[
            ob3.RecipientIdentity.from_email("learner@example.org", "pepper")
        ],
        valid_from=datetime(2024, 5, 1, tzinfo=UTC),
        credential_status={
            "id": "https://bridge.example.org/status/1#7",
            "type": "1EdTechRevocationList",
        },
    )
    return sign_eddsa_rdfc_2022(unsigned, key, METHOD, "2024-05-01T00:00:00Z")


def _run_checker(tmp_path, credential, did_document):
    credential_path = tmp_path / "credential.json"
    did_path = tmp_path / "did.json"
    credential_path.write_text(json.dumps(credential), encoding="utf-8")
    did_path.write_text(json.dumps(did_document), encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(CHECKER), str(credential_path), str(did_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_checker_accepts_engine_credential(tmp_path, signed, did_document):
    """Both the engine and the independent checker accept the signed credential."""
    engine = verify_open_badge_credential(signed, lambda did: did_document, now=NOW)

    checker = _run_checker(tmp_path, signed, did_document)

    assert engine.verified, engine.errors
    assert checker.returncode == 0, checker.stdout + checker.stderr
    assert checker.stdout.strip() == "VERIFIED"


def test_checker_rejects_tampered_file(tmp_path, signed, did_document):
    """Both reject a credential whose achievement name was changed after signing."""
    tampered = copy.deepcopy(signed)
    tampered["credentialSubject"]["achievement"]["name"] = "Leadership"
    engine = verify_open_badge_credential(tampered, lambda did: did_document, now=NOW)

    checker = _run_checker(tmp_path, tampered, did_document)

    assert not engine.verified
    assert checker.returncode == 1
    assert checker.stdout.startswith("NOT VERIFIED")


def test_checker_rejects_wrong_key(tmp_path, signed):
    """The checker rejects a DID document that publishes another key."""
    other = build_did_document(ISSUER_DID, [Ed25519PrivateKey.generate().public_key()])

    checker = _run_checker(tmp_path, signed, other)

    assert checker.returncode == 1


def test_checker_accepts_official_vector(tmp_path):
    """The checker accepts the official vector with its expected proofValue."""
    options = VECTOR["proofOptions"]
    secured = copy.deepcopy(VECTOR["unsecuredCredential"])
    secured["proof"] = {**options, "proofValue": VECTOR["expected"]["proofValue"]}
    controller = VECTOR["keyPair"]["controller"]
    did_document = {
        "id": controller,
        "verificationMethod": [
            {
                "id": options["verificationMethod"],
                "type": "Multikey",
                "controller": controller,
                "publicKeyMultibase": VECTOR["keyPair"]["publicKeyMultibase"],
            }
        ],
        "assertionMethod": [options["verificationMethod"]],
    }

    checker = _run_checker(tmp_path, secured, did_document)

    assert checker.returncode == 0, checker.stdout + checker.stderr


def test_checker_usage_error(tmp_path):
    """Without two file arguments the checker exits with status 2."""
    checker = subprocess.run(
        [sys.executable, str(CHECKER)], capture_output=True, text=True, check=False
    )

    assert checker.returncode == 2
