"""`hpass-bridge verify` on every format the bridge issues, and on tampered copies.

The bridge runs on a real loopback HTTP server, so the verifier resolves did:web
documents, status lists and OB 2.0 documents over HTTP exactly as an outside
verifier would.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from werkzeug.serving import make_server

from badge_engine import ob3
from badge_engine.archive import build_archive
from badge_engine.baking import bake_png, bake_svg, plain_png, plain_svg
from badge_engine.data_integrity import sign_eddsa_rdfc_2022
from badge_engine.endorsement import endorse
from badge_engine.issuers import (
    active_signing_key,
    issuer_profile,
    load_private_key,
    verification_method_id,
)
from badge_engine.issuing import issue_credential
from badge_engine.models import Achievement, Credential, Learner, Provider
from badge_engine.rules import COURSE_COMPLETED_RULE
from badge_engine.status import revocation_list_entry, revoke_credential
from badge_engine.urls import achievement_url, credential_url
from lti_tool.app import create_app
from lti_tool.cli import main
from lti_tool.config import load_settings
from lti_tool.schema import upgrade
from tests.support.seed import add_moodle_connection, add_provider

EMAIL = "learner@example.org"
AWARDED = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass
class Live:
    base: str
    app: object
    env: dict
    folder: Path

    @property
    def bridge(self):
        return self.app.extensions["hpass"]

    def get(self, path: str, accept: str = "application/json"):
        return self.app.test_client().get(path, headers={"Accept": accept})


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The bridge on a loopback HTTP server with one provider, learner and badge."""
    folder = tmp_path_factory.mktemp("verify")
    holder = {}
    server = make_server(
        "127.0.0.1",
        0,
        lambda environ, start: holder["app"](environ, start),
        threaded=True,
    )
    base = f"http://127.0.0.1:{server.port}"
    settings = load_settings(
        environ={},
        overrides={"instance_path": folder / "instance", "public_base_url": base},
    )
    settings.loopback_dev = True
    settings.secret_key = b"verify-test-secret"
    settings.encryption_keys = [Fernet.generate_key()]
    settings.instance_path.mkdir(parents=True)
    upgrade(settings.database_url)
    holder["app"] = create_app(settings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    env = {
        "HPASS_LOOPBACK_DEV": "1",
        "HPASS_PUBLIC_BASE_URL": base,
        "HPASS_INSTANCE_PATH": str(folder / "cli-instance"),
    }
    yield Live(base, holder["app"], env, folder)

    server.shutdown()
    holder["app"].extensions["hpass"].engine.dispose()


@pytest.fixture(scope="module")
def seeded(live):
    """Ids of the provider, achievement and the first learner."""
    bridge = live.bridge
    with bridge.session() as session:
        provider = add_provider(session)
        connection = add_moodle_connection(
            session, bridge.vault, provider, "http://127.0.0.1:1", "token"
        )
        achievement = Achievement(
            provider_id=provider.id,
            lms_connection_id=connection.id,
            lms_course_id="101",
            name="Safe travel",
            description="Plans and checks safe travel in the field.",
            criteria_narrative="Complete the Safe travel course.",
            award_rule=COURSE_COMPLETED_RULE,
        )
        session.add(achievement)
        session.commit()
        return {
            "provider": provider.id,
            "achievement": achievement.id,
            "connection": connection.id,
        }


def _issue(live, seeded, user_id: str, base_url: str | None = None) -> Credential:
    bridge = live.bridge
    with bridge.session() as session:
        learner = Learner(
            provider_id=seeded["provider"],
            lms_connection_id=seeded["connection"],
            lms_user_id=user_id,
            email=EMAIL,
        )
        session.add(learner)
        session.flush()
        result = issue_credential(
            session,
            vault=bridge.vault,
            base_url=base_url or live.base,
            achievement=session.get(Achievement, seeded["achievement"]),
            learner=learner,
            awarded_at=AWARDED,
        )
        session.commit()
        session.refresh(result.credential)
        session.expunge(result.credential)
        return result.credential


def _write(live, name: str, content) -> str:
    path = live.folder / name
    if isinstance(content, dict):
        path.write_text(json.dumps(content))
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(content)
    return str(path)


def _verify(live, target: str, *extra: str):
    result = CliRunner().invoke(
        main, ["verify", "--json", *extra, target], env=live.env
    )
    report = json.loads(result.stdout)
    return result.exit_code, report


def _codes(report) -> list[str]:
    return [error["code"] for error in report["errors"]]


def _sign_as_provider(live, seeded, unsigned, private_key=None):
    bridge = live.bridge
    with bridge.session() as session:
        provider = session.get(Provider, seeded["provider"])
        key = active_signing_key(session, bridge.vault, provider)
        return sign_eddsa_rdfc_2022(
            unsigned,
            private_key or load_private_key(bridge.vault, key),
            verification_method_id(live.base, provider, key),
            created=AWARDED,
        )


def _unsigned(live, seeded, **changes):
    with live.bridge.session() as session:
        provider = session.get(Provider, seeded["provider"])
        achievement = session.get(Achievement, seeded["achievement"])
        arguments = {
            "credential_id": credential_url(
                live.base, "f0f0f0f0-0000-4000-8000-000000000001"
            ),
            "issuer": issuer_profile(live.base, provider),
            "achievement": ob3.AchievementData(
                id=achievement_url(live.base, achievement.public_id),
                name=achievement.name,
                description=achievement.description,
                criteria_narrative=achievement.criteria_narrative,
            ),
            "recipient_identifiers": [ob3.RecipientIdentity.from_email(EMAIL, "salt1")],
            "valid_from": AWARDED,
        }
        arguments.update(changes)
        return ob3.build_open_badge_credential(**arguments)


def test_verify_issued_credential(live, seeded):
    """A credential as issued verifies: version 3.0, eddsa-rdfc-2022, exit 0."""
    credential = _issue(live, seeded, "u-valid")

    code, report = _verify(live, _write(live, "valid.json", credential.document))

    assert code == 0, report
    assert report["valid"] is True
    assert report["version"] == "3.0"
    assert report["format"] == "eddsa-rdfc-2022"
    assert report["errors"] == []


def test_verify_credential_url(live, seeded):
    """A credential URL is fetched and verified like a file."""
    credential = _issue(live, seeded, "u-url")

    code, report = _verify(live, credential_url(live.base, credential.public_id))

    assert code == 0, report
    assert report["version"] == "3.0"


def test_verify_changed_name(live, seeded):
    """A copy whose name was changed fails its signature."""
    document = copy.deepcopy(_issue(live, seeded, "u-name").document)
    document["credentialSubject"]["achievement"]["name"] = "Advanced security"

    code, report = _verify(live, _write(live, "name.json", document))

    assert code == 1
    assert report["valid"] is False
    assert _codes(report) == ["invalid_signature"]


def test_verify_changed_date(live, seeded):
    """A copy whose validFrom was changed fails its signature."""
    document = copy.deepcopy(_issue(live, seeded, "u-date").document)
    document["validFrom"] = "2020-01-01T00:00:00Z"

    code, report = _verify(live, _write(live, "date.json", document))

    assert code == 1
    assert _codes(report) == ["invalid_signature"]


def test_verify_revoked_bitstring(live, seeded):
    """A revoked credential fails through its BitstringStatusList bit."""
    credential = _issue(live, seeded, "u-revoked")
    with live.bridge.session() as session:
        stored = session.get(Credential, credential.id)
        revoke_credential(session, stored, "Issued in error", actor="test")
        session.commit()

    code, report = _verify(live, _write(live, "revoked.json", credential.document))

    assert code == 1
    assert _codes(report) == ["revoked"]
    assert report["errors"][0]["path"] == "$.credentialStatus"


def test_verify_revoked_shows_stored_reason(live, seeded):
    """On the bridge's host, a revoked credential's message gives the stored reason."""
    credential = _issue(live, seeded, "u-revoked-reason")
    with live.bridge.session() as session:
        stored = session.get(Credential, credential.id)
        revoke_credential(session, stored, "Issued in error", actor="test")
        session.commit()
    bridge_env = {**live.env, "HPASS_INSTANCE_PATH": str(live.folder / "instance")}

    result = CliRunner().invoke(
        main,
        ["verify", _write(live, "revoked-reason.json", credential.document)],
        env=bridge_env,
    )

    assert result.exit_code == 1
    assert "The issuer revoked this credential: Issued in error" in result.stdout


def test_verify_revoked_without_database(live, seeded):
    """Without the bridge's database the reason is absent and no database is made."""
    credential = _issue(live, seeded, "u-revoked-elsewhere")
    with live.bridge.session() as session:
        stored = session.get(Credential, credential.id)
        revoke_credential(session, stored, "Issued in error", actor="test")
        session.commit()

    code, report = _verify(live, _write(live, "elsewhere.json", credential.document))

    assert code == 1
    assert report["errors"][0]["message"] == "The issuer revoked this credential."
    assert not (live.folder / "cli-instance" / "hpass.db").exists()


def test_verify_live_status_checked(live, seeded):
    """A live credential's status bit is read and reported as a passed check."""
    credential = _issue(live, seeded, "u-status")

    code, report = _verify(live, _write(live, "status.json", credential.document))

    assert code == 0, report
    assert any(check.startswith("status: bit") for check in report["checks"])


def test_verify_revoked_1edtech_list(live, seeded):
    """A credential listed in the 1EdTechRevocationList fails as revoked."""
    credential = _issue(live, seeded, "u-1edtech")
    with live.bridge.session() as session:
        provider = session.get(Provider, seeded["provider"])
        status = revocation_list_entry(live.base, provider.slug)
        revoke_credential(
            session, session.get(Credential, credential.id), "Duplicate", actor="test"
        )
        session.commit()
    unsigned = _unsigned(
        live,
        seeded,
        credential_id=credential.document["id"],
        credential_status=status,
    )
    signed = _sign_as_provider(live, seeded, unsigned)

    code, report = _verify(live, _write(live, "1edtech.json", signed))

    assert code == 1
    assert _codes(report) == ["revoked"]
    assert "Duplicate" in report["errors"][0]["message"]


def test_verify_expired(live, seeded):
    """A credential past its validUntil fails as expired."""
    unsigned = _unsigned(
        live,
        seeded,
        valid_until=datetime.now(UTC) - timedelta(days=1),
        valid_from=datetime.now(UTC) - timedelta(days=30),
    )
    signed = _sign_as_provider(live, seeded, unsigned)

    code, report = _verify(live, _write(live, "expired.json", signed))

    assert code == 1
    assert _codes(report) == ["expired"]
    assert report["errors"][0]["path"] == "$.validUntil"


def test_verify_wrong_key(live, seeded):
    """A credential signed with another key than its verificationMethod names fails."""
    signed = _sign_as_provider(
        live, seeded, _unsigned(live, seeded), Ed25519PrivateKey.generate()
    )

    code, report = _verify(live, _write(live, "wrong-key.json", signed))

    assert code == 1
    assert _codes(report) == ["invalid_signature"]


def test_verify_recipient_match(live, seeded):
    """--recipient accepts the learner's email address, in any letter case."""
    credential = _issue(live, seeded, "u-recipient")
    target = _write(live, "recipient.json", credential.document)

    code, report = _verify(live, target, "--recipient", "Learner@Example.org")

    assert code == 0, report
    assert "recipient: matches the expected recipient." in report["checks"]


def test_verify_recipient_mismatch(live, seeded):
    """--recipient with another address fails as recipient_mismatch."""
    credential = _issue(live, seeded, "u-other")
    target = _write(live, "other.json", credential.document)

    code, report = _verify(live, target, "--recipient", "someone@example.org")

    assert code == 1
    assert _codes(report) == ["recipient_mismatch"]


@pytest.mark.parametrize("image", ["png", "svg"])
def test_verify_baked_download(live, seeded, image):
    """The baked PNG and SVG the credential page offers verify as OB 3.0."""
    credential = _issue(live, seeded, f"u-baked-{image}")
    response = live.get(f"/credentials/{credential.public_id}/badge.{image}")

    code, report = _verify(live, _write(live, f"baked.{image}", response.data))

    assert response.status_code == 200
    assert code == 0, report
    assert report["format"] == f"{image}:eddsa-rdfc-2022"


def test_verify_baked_tampered(live, seeded):
    """A baked PNG holding a changed credential fails its signature."""
    document = copy.deepcopy(_issue(live, seeded, "u-baked-bad").document)
    document["name"] = "Forged"
    image = bake_png(plain_png(), json.dumps(document))

    code, report = _verify(live, _write(live, "forged.png", image))

    assert code == 1
    assert report["format"] == "png:eddsa-rdfc-2022"
    assert _codes(report) == ["invalid_signature"]


def test_verify_ob2_hosted_url(live, seeded):
    """The OB 2.0 hosted assertion URL verifies as version 2.0, ob2-hosted."""
    credential = _issue(live, seeded, "u-ob2")

    code, report = _verify(live, f"{live.base}/ob2/assertions/{credential.public_id}")

    assert code == 0, report
    assert report["version"] == "2.0"
    assert report["format"] == "ob2-hosted"


def test_verify_ob2_hosted_changed_date(live, seeded):
    """A copy of a hosted assertion with another issuedOn differs from the host."""
    credential = _issue(live, seeded, "u-ob2-date")
    assertion = live.get(f"/ob2/assertions/{credential.public_id}").get_json()
    assertion["issuedOn"] = "2019-01-01T00:00:00Z"

    code, report = _verify(live, _write(live, "ob2-date.json", assertion))

    assert code == 1
    assert _codes(report) == ["hosted_mismatch"]
    assert report["errors"][0]["path"] == "$.issuedOn"


def test_verify_ob2_hosted_revoked(live, seeded):
    """A revoked hosted assertion returns 410, which the verifier reports as revoked."""
    credential = _issue(live, seeded, "u-ob2-revoked")
    with live.bridge.session() as session:
        revoke_credential(
            session, session.get(Credential, credential.id), "Fraud", actor="test"
        )
        session.commit()

    code, report = _verify(live, f"{live.base}/ob2/assertions/{credential.public_id}")

    assert code == 1
    assert _codes(report) == ["revoked"]


def test_verify_ob2_signed(live, seeded):
    """The signed OB 2.0 assertion (JWS) verifies against the issuer's key."""
    credential = _issue(live, seeded, "u-jws")
    token = live.get(f"/ob2/assertions/{credential.public_id}/signed").data.decode()

    code, report = _verify(live, _write(live, "signed.jws", token))

    assert code == 0, report
    assert report["version"] == "2.0"
    assert report["format"] == "ob2-signed"


def test_verify_ob2_signed_tampered(live, seeded):
    """A JWS whose payload was swapped for another fails its signature."""
    first = _issue(live, seeded, "u-jws-a")
    second = _issue(live, seeded, "u-jws-b")
    token_a = live.get(f"/ob2/assertions/{first.public_id}/signed").data.decode()
    token_b = live.get(f"/ob2/assertions/{second.public_id}/signed").data.decode()
    header, _, signature = token_a.split(".")
    forged = ".".join([header, token_b.split(".")[1], signature])

    code, report = _verify(live, _write(live, "forged.jws", forged))

    assert code == 1
    assert _codes(report) == ["invalid_signature"]


def test_verify_ob2_signed_baked_svg(live, seeded):
    """A signed OB 2.0 assertion baked into an SVG verifies as svg:ob2-signed."""
    credential = _issue(live, seeded, "u-jws-svg")
    token = live.get(f"/ob2/assertions/{credential.public_id}/signed").data.decode()
    image = bake_svg(plain_svg("Safe travel"), token, "2.0")

    code, report = _verify(live, _write(live, "signed.svg", image))

    assert code == 0, report
    assert report["format"] == "svg:ob2-signed"


def test_verify_ob2_signed_revoked(live, seeded):
    """A revoked signed assertion fails through the issuer's RevocationList."""
    credential = _issue(live, seeded, "u-jws-revoked")
    token = live.get(f"/ob2/assertions/{credential.public_id}/signed").data.decode()
    with live.bridge.session() as session:
        revoke_credential(
            session, session.get(Credential, credential.id), "Withdrawn", actor="test"
        )
        session.commit()

    code, report = _verify(live, _write(live, "signed-revoked.jws", token))

    assert code == 1
    assert "revoked" in _codes(report)


def test_verify_vc_jwt(live, seeded):
    """An OB 3.0 credential issued as a VC-JWT verifies, and a tampered one fails."""
    vc_jwt = pytest.importorskip("badge_engine.vc_jwt")
    credential = _issue(live, seeded, "u-vcjwt")
    unsigned = {k: v for k, v in credential.document.items() if k != "proof"}
    with live.bridge.session() as session:
        provider = session.get(Provider, seeded["provider"])
        key = active_signing_key(session, live.bridge.vault, provider)
        kid = verification_method_id(live.base, provider, key)
        token = vc_jwt.sign_vc_jwt(
            unsigned, load_private_key(live.bridge.vault, key), kid
        )
    forged_key = Ed25519PrivateKey.generate()
    forged = vc_jwt.sign_vc_jwt(unsigned, forged_key, kid)

    code, report = _verify(live, _write(live, "credential.jwt", token))
    forged_code, forged_report = _verify(live, _write(live, "forged.jwt", forged))

    assert code == 0, report
    assert report["format"] == "vc-jwt"
    assert forged_code == 1
    assert _codes(forged_report) == ["invalid_signature"]


def test_verify_endorsement(live, seeded):
    """An HPass endorsement of the provider verifies like any credential."""
    with live.bridge.session() as session:
        hpass = add_provider(session, slug="hpass", name="HPass network")
        record = endorse(
            session,
            vault=live.bridge.vault,
            base_url=live.base,
            endorser=hpass,
            provider=session.get(Provider, seeded["provider"]),
            comment="Quality-reviewed and certified by HPass.",
        )
        session.commit()
        document = record.document

    code, report = _verify(live, _write(live, "endorsement.json", document))

    assert code == 0, report
    assert report["version"] == "3.0"


def test_verify_missing_file(live):
    """A TARGET that is neither a file nor a URL is a usage error, exit 2."""
    result = CliRunner().invoke(
        main, ["verify", "--json", str(live.folder / "absent.json")], env=live.env
    )

    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"] == "usage"


def test_verify_text_output(live, seeded):
    """Without --json the verdict and each error are printed as lines."""
    document = copy.deepcopy(_issue(live, seeded, "u-text").document)
    document["name"] = "Changed"
    target = _write(live, "text.json", document)

    result = CliRunner().invoke(main, ["verify", target], env=live.env)

    assert result.exit_code == 1
    assert result.output.startswith("INVALID: Open Badges 3.0, format eddsa-rdfc-2022")
    assert "error invalid_signature" in result.output


def _vc_jwt(live, seeded, unsigned, private_key=None):
    from badge_engine.vc_jwt import sign_vc_jwt

    with live.bridge.session() as session:
        provider = session.get(Provider, seeded["provider"])
        key = active_signing_key(session, live.bridge.vault, provider)
        kid = verification_method_id(live.base, provider, key)
        signing_key = private_key or load_private_key(live.bridge.vault, key)
        return sign_vc_jwt(unsigned, signing_key, kid)


def test_verify_vc_jwt_expired(live, seeded):
    """A VC-JWT past its validUntil fails as expired."""
    unsigned = _unsigned(
        live,
        seeded,
        valid_until=datetime.now(UTC) - timedelta(days=1),
        valid_from=datetime.now(UTC) - timedelta(days=30),
    )

    code, report = _verify(
        live, _write(live, "expired.jwt", _vc_jwt(live, seeded, unsigned))
    )

    assert code == 1
    assert _codes(report) == ["expired"]


def test_verify_vc_jwt_changed_name(live, seeded):
    """A VC-JWT whose payload was re-encoded with another name fails its signature."""
    import base64

    token = _vc_jwt(live, seeded, _unsigned(live, seeded))
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["name"] = "Forged"
    forged_payload = (
        base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    )
    forged = ".".join([header, forged_payload, signature])

    code, report = _verify(live, _write(live, "name.jwt", forged))

    assert code == 1
    assert _codes(report) == ["invalid_signature"]


def test_verify_vc_jwt_revoked_baked(live, seeded):
    """A revoked credential issued as a VC-JWT and baked into a PNG fails as revoked."""
    credential = _issue(live, seeded, "u-vcjwt-revoked")
    unsigned = {k: v for k, v in credential.document.items() if k != "proof"}
    token = _vc_jwt(live, seeded, unsigned)
    with live.bridge.session() as session:
        revoke_credential(
            session, session.get(Credential, credential.id), "Withdrawn", actor="test"
        )
        session.commit()

    image = bake_png(plain_png(), token)
    code, report = _verify(live, _write(live, "vcjwt-revoked.png", image))

    assert code == 1
    assert report["format"] == "png:vc-jwt"
    assert _codes(report) == ["revoked"]


def test_verify_real_process(live, seeded):
    """The installed command, run as a process, prints one JSON report per call."""
    import os
    import subprocess
    import sys

    document = _issue(live, seeded, "u-process").document
    tampered = {**document, "name": "Changed"}
    command = [sys.executable, "-m", "lti_tool", "verify", "--json"]
    environment = {**os.environ, **live.env}

    valid = subprocess.run(
        [*command, _write(live, "process.json", document)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    invalid = subprocess.run(
        [*command, _write(live, "process-bad.json", tampered)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )

    assert valid.returncode == 0, valid.stderr
    assert json.loads(valid.stdout)["valid"] is True
    assert invalid.returncode == 1
    assert _codes(json.loads(invalid.stdout)) == ["invalid_signature"]
    assert "Traceback" not in invalid.stderr


def test_verify_unreachable_issuer_not_checked(live, seeded):
    """A credential whose issuer server is gone is not checked (exit 3), not INVALID."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        stopped_server = f"http://127.0.0.1:{listener.getsockname()[1]}"
    credential = _issue(live, seeded, "u-gone", base_url=stopped_server)
    target = _write(live, "gone.json", credential.document)

    result = CliRunner().invoke(main, ["verify", target], env=live.env)

    assert result.exit_code == 3, result.output
    assert result.output.startswith("NOT CHECKED: Open Badges 3.0")
    assert "error key_unreachable" in result.output
    assert "archive.json" in result.output
    # The stopped server is not this bridge's, so starting a bridge would not help.
    assert "hpass-bridge run" not in result.output
    assert "INVALID" not in result.output


def _stopped_server() -> str:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_verify_unreachable_names_archive_beside(live, seeded):
    """Beside a saved archive, the hint gives the command that verifies it offline."""
    stopped_server = _stopped_server()
    credential = _issue(live, seeded, "u-archived", base_url=stopped_server)
    folder = live.folder / "archived"
    folder.mkdir()
    target = folder / "credential.json"
    target.write_text(json.dumps(credential.document))
    with live.bridge.session() as session:
        archive = build_archive(
            session,
            vault=live.bridge.vault,
            base_url=stopped_server,
            credential=session.get(Credential, credential.id),
        )
    (folder / "archive.json").write_text(json.dumps(archive))

    result = CliRunner().invoke(main, ["verify", str(target)], env=live.env)
    offline = CliRunner().invoke(
        main, ["verify", str(folder / "archive.json")], env=live.env
    )

    assert result.exit_code == 3, result.output
    assert f"hpass-bridge verify {folder / 'archive.json'}" in result.output
    assert "hpass-bridge run" not in result.output
    assert offline.exit_code == 0, offline.output


def test_verify_unreachable_own_bridge_run(live, seeded):
    """A credential of the bridge configured here, which is down, advises starting it."""
    stopped_server = _stopped_server()
    credential = _issue(live, seeded, "u-own-bridge", base_url=stopped_server)
    target = _write(live, "own-bridge.json", credential.document)
    env = {**live.env, "HPASS_PUBLIC_BASE_URL": stopped_server}

    result = CliRunner().invoke(main, ["verify", target], env=env)

    assert result.exit_code == 3, result.output
    assert f"This bridge ({stopped_server}) issued the credential" in result.output
    assert "`hpass-bridge run`" in result.output
    assert "archive.json" in result.output


def test_verify_unreachable_issuer_json(live, seeded):
    """With --json the outcome is not_checked and the exit code 3."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        stopped_server = f"http://127.0.0.1:{listener.getsockname()[1]}"
    credential = _issue(live, seeded, "u-gone-json", base_url=stopped_server)

    code, report = _verify(live, _write(live, "gone-json.json", credential.document))

    assert code == 3
    assert report["outcome"] == "not_checked"
    assert report["valid"] is False
    assert _codes(report) == ["key_unreachable"]


def test_verify_unreachable_credential_url(live):
    """A credential URL whose server is down is not checked, exit 3, not INVALID."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        stopped_server = f"http://127.0.0.1:{listener.getsockname()[1]}"
    target = credential_url(stopped_server, "00000000-0000-4000-8000-00000000cafe")

    code, report = _verify(live, target)

    assert code == 3, report
    assert report["outcome"] == "not_checked"
    assert _codes(report) == ["credential_unreachable"]
    assert "cannot be reached" in report["errors"][0]["message"]


def test_verify_unknown_credential_url(live):
    """A credential URL that returns 404 is reported as no credential, exit 4."""
    target = credential_url(live.base, "00000000-0000-4000-8000-00000000dead")

    result = CliRunner().invoke(main, ["verify", target], env=live.env)

    assert result.exit_code == 4, result.output
    assert result.output.startswith("NO CREDENTIAL: nothing to verify at this address")
    assert "serves no credential" in result.output
    assert "HTTP 404" in result.output
    assert "INVALID" not in result.output


def test_verify_unknown_credential_json(live):
    """With --json a 404 has the outcome no_credential and the exit code 4."""
    target = credential_url(live.base, "00000000-0000-4000-8000-00000000beef")

    code, report = _verify(live, target)

    assert code == 4
    assert report["outcome"] == "no_credential"
    assert report["valid"] is False
    assert _codes(report) == ["no_credential"]


def test_verify_non_credential_page(live):
    """A URL that returns some other JSON document serves no credential, exit 4."""
    code, report = _verify(live, f"{live.base}/health")

    assert code == 4, report
    assert _codes(report) == ["no_credential"]
    assert "is not a JSON credential" in report["errors"][0]["message"]
