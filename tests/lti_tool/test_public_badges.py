"""Public badge documents: OB 2.0 hosting, status lists, credential page, revoke CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from badge_engine.data_integrity import verify_eddsa_rdfc_2022
from badge_engine.did import public_key_from_did_document
from badge_engine.endorsement import endorse
from badge_engine.issuing import issue_credential
from badge_engine.models import Achievement, Credential, Learner
from badge_engine.rules import COURSE_COMPLETED_RULE
from badge_engine.status import revoke_credential, status_bit
from lti_tool.cli import main
from lti_tool.images import AchievementImage
from lti_tool.views.headers import IMAGE_POLICY
from tests.support.seed import add_moodle_connection, add_provider

BASE = "http://127.0.0.1:5999"
HTML = {"Accept": "text/html"}
JSON_LD = {"Accept": "application/ld+json"}


@pytest.fixture
def issued(app, db):
    """A provider with one issued credential, committed."""
    vault = app.extensions["hpass"].vault
    provider = add_provider(db)
    connection = add_moodle_connection(db, vault, provider, "http://127.0.0.1:1", "t")
    achievement = Achievement(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_course_id="101",
        name="Safe travel",
        description="Plans and checks safe travel in the field.",
        criteria_narrative="Complete the Safe travel course.",
        award_rule=COURSE_COMPLETED_RULE,
    )
    learner = Learner(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_user_id="3001",
        email="learner@example.org",
    )
    db.add_all([achievement, learner])
    db.flush()
    credential = issue_credential(
        db,
        vault=vault,
        base_url=BASE,
        achievement=achievement,
        learner=learner,
        awarded_at=datetime(2025, 1, 1, tzinfo=UTC),
    ).credential
    db.commit()
    return credential


def _revoke(db, credential, reason="Issued in error"):
    revoke_credential(db, credential, reason, actor="test")
    db.commit()


def test_ob2_assertion_json(client, issued):
    """The hosted OB 2.0 assertion carries the OB 3.0 recipient hash and salt."""
    response = client.get(f"/ob2/assertions/{issued.public_id}", headers=JSON_LD)
    assertion = response.get_json(force=True)
    identity = issued.document["credentialSubject"]["identifier"][0]

    assert response.status_code == 200
    assert response.mimetype == "application/ld+json"
    assert assertion["@context"] == "https://w3id.org/openbadges/v2"
    assert assertion["type"] == "Assertion"
    assert assertion["verification"] == {"type": "hosted"}
    assert assertion["recipient"]["identity"] == identity["identityHash"]
    assert assertion["recipient"]["salt"] == identity["salt"]
    assert assertion["issuedOn"] == "2025-01-01T00:00:00Z"


def test_ob2_assertion_html(client, issued):
    """A browser asking for the assertion gets the credential page."""
    response = client.get(f"/ob2/assertions/{issued.public_id}", headers=HTML)

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert b"Safe travel" in response.data


def test_ob2_revoked_gone(client, db, issued):
    """A revoked OB 2.0 assertion returns 410 with its reason."""
    _revoke(db, issued, "Fraud")

    response = client.get(f"/ob2/assertions/{issued.public_id}", headers=JSON_LD)

    assert response.status_code == 410
    assert response.get_json(force=True)["revocationReason"] == "Fraud"


def test_ob2_badge_class_and_issuer(client, issued):
    """The BadgeClass links to an Issuer that lists its key and revocation list."""
    badge_url = client.get(
        f"/ob2/assertions/{issued.public_id}", headers=JSON_LD
    ).get_json(force=True)["badge"]
    badge = client.get(badge_url.removeprefix(BASE)).get_json(force=True)
    issuer = client.get(badge["issuer"].removeprefix(BASE)).get_json(force=True)
    key = client.get(issuer["publicKey"][0].removeprefix(BASE)).get_json(force=True)

    assert badge["type"] == "BadgeClass"
    assert badge["criteria"]["narrative"] == "Complete the Safe travel course."
    assert issuer["type"] == "Issuer"
    assert issuer["revocationList"].endswith("/ob2/issuers/academy/revocations")
    assert key["owner"] == issuer["id"]
    assert key["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----")


def test_ob2_revocation_list(client, db, issued):
    """The OB 2.0 RevocationList names revoked assertions with their reasons."""
    _revoke(db, issued)

    document = client.get("/ob2/issuers/academy/revocations").get_json(force=True)

    assert document["type"] == "RevocationList"
    assert document["revokedAssertions"] == [
        {
            "id": f"{BASE}/ob2/assertions/{issued.public_id}",
            "revocationReason": "Issued in error",
        }
    ]


def test_status_list_signed(client, db, issued):
    """The status list is signed by the issuer's key and sets the revoked bit."""
    _revoke(db, issued)

    status_list = client.get("/providers/academy/status/0").get_json(force=True)
    did_document = client.get("/providers/academy/did.json").get_json(force=True)
    result = verify_eddsa_rdfc_2022(
        status_list,
        lambda method: public_key_from_did_document(did_document, method),
    )
    index = int(issued.document["credentialStatus"]["statusListIndex"])

    assert result.verified, result.errors
    assert status_list["issuer"] == issued.document["issuer"]["id"]
    assert status_bit(status_list["credentialSubject"]["encodedList"], index)


def test_1edtech_revocation_list(client, db, issued):
    """The 1EdTechRevocationList names the revoked credential by its id."""
    _revoke(db, issued, "Duplicate")

    document = client.get("/providers/academy/revocations").get_json(force=True)

    assert document["revokedCredentials"] == [
        {"id": issued.document["id"], "revocationReason": "Duplicate"}
    ]


def test_credential_page_valid(client, issued):
    """The page shows the badge, date and issuer, and reports it valid."""
    page = client.get(f"/credentials/{issued.public_id}", headers=HTML).data.decode()

    assert "Safe travel" in page
    assert "2025-01-01" in page
    assert "Academy" in page
    assert "Valid:" in page
    assert "No endorsements." in page


def test_credential_page_lists_skills(app, client, db, issued):
    """The page lists the badge's skills, each linked, with its framework."""
    achievement = issued.achievement
    achievement.alignments = [
        {
            "targetName": "Route planning",
            "targetUrl": "https://skills.example.org/route",
            "targetFramework": "Field skills",
        },
        {"targetName": "First aid", "targetUrl": "https://skills.example.org/aid"},
    ]
    learner = issued.learner
    _revoke(db, issued, reason="Reissued with skills")
    aligned = issue_credential(
        db,
        vault=app.extensions["hpass"].vault,
        base_url=BASE,
        achievement=achievement,
        learner=learner,
        awarded_at=datetime(2025, 2, 1, tzinfo=UTC),
    ).credential
    db.commit()

    page = client.get(f"/credentials/{aligned.public_id}", headers=HTML).data.decode()
    plain = client.get(f"/credentials/{issued.public_id}", headers=HTML).data.decode()

    assert "<dt>Skills</dt>" in page
    assert (
        '<a href="https://skills.example.org/route" dir="auto">Route planning</a> '
        '(<span dir="auto">Field skills</span>)'
    ) in page
    assert (
        '<a href="https://skills.example.org/aid" dir="auto">First aid</a></li>' in page
    )
    assert "<dt>Skills</dt>" not in plain


@pytest.mark.parametrize(("language", "separator"), [("en", ", "), ("ar", "\u060c ")])
def test_credential_page_image_links_separated(client, issued, language, separator):
    """The PNG and SVG links are separated by the page language's comma."""
    page = client.get(
        f"/credentials/{issued.public_id}?lang={language}", headers=HTML
    ).data.decode()

    png_end = page.index("</a>", page.index("/badge.png"))
    assert page[png_end + len("</a>") :].startswith(separator + "<a ")


def test_credential_page_isolates_badge_texts(client, issued):
    """Badge texts take their own direction; the page's labels keep the page's."""
    page = client.get(
        f"/credentials/{issued.public_id}?lang=ar", headers=HTML
    ).data.decode()

    assert '<dd><span dir="auto">Safe travel</span>:' in page
    assert '<span dir="auto">Plans and checks safe travel in the field.</span>' in page
    assert '<span dir="auto">Complete the Safe travel course.</span>' in page
    assert '<dd dir="auto">' not in page


def test_credential_page_revoked(client, db, issued):
    """A revoked badge's page reports the revocation and its reason."""
    _revoke(db, issued, "Issued in error")

    page = client.get(f"/credentials/{issued.public_id}", headers=HTML).data.decode()

    assert "Revoked by its issuer" in page
    assert "Issued in error" in page


def test_credential_page_recipient_check(client, issued):
    """The page confirms or denies an email address without publishing it."""
    url = f"/credentials/{issued.public_id}"

    yes = client.get(
        url, query_string={"recipient": "learner@example.org"}, headers=HTML
    )
    no = client.get(url, query_string={"recipient": "x@example.org"}, headers=HTML)

    assert b"Yes, this badge was issued to" in yes.data
    assert b"No, this badge was not issued to" in no.data


@pytest.mark.parametrize("lang", ["en", "fr", "es", "ar"])
def test_recipient_check_rejects_invalid_email(client, issued, monkeypatch, lang):
    """An invalid address is reported beside the field and never compared."""
    compared = []
    monkeypatch.setattr(
        "lti_tool.views.public.check_ob3_recipient",
        lambda *args: compared.append(args),
    )

    page = client.get(
        f"/credentials/{issued.public_id}",
        query_string={"recipient": "notanemail", "lang": lang},
        headers=HTML,
    ).data.decode()

    assert compared == []
    assert 'id="recipient-error"' in page
    assert 'aria-describedby="recipient-error"' in page
    assert 'aria-invalid="true"' in page
    assert "this badge was not issued" not in page
    if lang == "en":
        assert "This is not a valid email address." in page
    else:
        assert "This is not a valid email address." not in page


def test_recipient_check_isolates_email(client, issued):
    """The checked email address is isolated left to right in an Arabic sentence."""
    page = client.get(
        f"/credentials/{issued.public_id}",
        query_string={"lang": "ar", "recipient": "x@example.org"},
        headers=HTML,
    ).data.decode()

    assert '<bdi dir="ltr">x@example.org</bdi>' in page


def test_credential_title_isolates_badge_name(client, issued):
    """The page title of an Arabic page wraps the badge name in FSI and PDI."""
    page = client.get(
        f"/credentials/{issued.public_id}?lang=ar", headers=HTML
    ).data.decode()
    title = page[page.index("<title>") : page.index("</title>")]

    assert "\u2068Safe travel\u2069 · " in title


def test_credential_page_endorsed(app, client, db, issued):
    """An HPass endorsement of the provider appears on the page."""
    hpass = add_provider(db, slug="hpass", name="HPass network")
    record = endorse(
        db,
        vault=app.extensions["hpass"].vault,
        base_url=BASE,
        endorser=hpass,
        provider=issued.achievement.provider,
        comment="Certified after quality review.",
    )
    db.commit()

    page = client.get(f"/credentials/{issued.public_id}", headers=HTML).data.decode()
    endorsement = client.get(f"/endorsements/{record.public_id}").get_json(force=True)

    assert "HPass network" in page
    assert "Certified after quality review." in page
    assert endorsement["type"] == ["VerifiableCredential", "EndorsementCredential"]


def test_hosted_documents_embed_endorsements(app, client, db, issued):
    """The hosted profile and achievement carry their endorsements, each verifiable."""
    hpass = add_provider(db, slug="hpass", name="HPass network")
    provider = issued.achievement.provider
    for achievement in (None, issued.achievement):
        endorse(
            db,
            vault=app.extensions["hpass"].vault,
            base_url=BASE,
            endorser=hpass,
            provider=provider,
            achievement=achievement,
            comment="Certified after quality review.",
        )
    db.commit()

    profile = client.get(f"/providers/{provider.slug}").get_json()
    achievement = client.get(f"/achievements/{issued.achievement.public_id}").get_json()
    endorser_did = client.get("/providers/hpass/did.json").get_json(force=True)

    assert len(profile["endorsement"]) == 1
    assert len(achievement["endorsement"]) == 1
    for embedded in (profile["endorsement"][0], achievement["endorsement"][0]):
        assert "EndorsementCredential" in embedded["type"]
        result = verify_eddsa_rdfc_2022(
            embedded,
            lambda method: public_key_from_did_document(endorser_did, method),
        )
        assert result.verified, result.errors


@pytest.mark.parametrize(
    "path",
    [
        "/ob2/assertions/nope",
        "/ob2/badges/nope",
        "/ob2/issuers/nope",
        "/ob2/issuers/academy/keys/key-99",
        "/providers/nope/status/0",
        "/providers/nope/revocations",
        "/endorsements/nope",
        "/credentials/nope/badge.png",
    ],
)
def test_unknown_ids_not_found(client, issued, path):
    """Unknown ids return 404 with a message, never a server error."""
    response = client.get(path, headers=JSON_LD)

    assert response.status_code == 404


@pytest.fixture
def cli(settings):
    """Run `hpass-bridge` against the test database."""
    env = {
        "HPASS_DATABASE_URL": settings.database_url,
        "HPASS_INSTANCE_PATH": str(settings.instance_path),
        "HPASS_PUBLIC_BASE_URL": settings.public_base_url,
        "HPASS_ENCRYPTION_KEYS": settings.encryption_keys[0].decode(),
        "HPASS_SECRET_KEY": settings.secret_key.decode(),
        "HPASS_LOOPBACK_DEV": "1",
    }
    return lambda *args: CliRunner().invoke(main, list(args), env=env)


def test_cli_revoke(cli, db, issued):
    """`credential revoke` revokes once with a reason and reports it as JSON."""
    result = cli(
        "credential", "revoke", issued.public_id, "--reason", "Fraud", "--json"
    )
    again = cli("credential", "revoke", issued.public_id, "--reason", "Other", "--json")
    db.expire_all()
    stored = db.get(Credential, issued.id)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "revoked"
    assert again.exit_code == 1
    assert json.loads(again.stdout)["error"] == "already_revoked"
    assert stored.revocation_reason == "Fraud"


def test_cli_revoke_unknown(cli, issued):
    """Revoking an unknown id fails with not_found."""
    result = cli("credential", "revoke", "nope", "--reason", "x", "--json")

    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"] == "not_found"


def test_cli_revoke_needs_reason(cli, issued):
    """A revoke without --reason is a usage error."""
    result = cli("credential", "revoke", issued.public_id)

    assert result.exit_code == 2


def test_credential_json_link_in_browser(client, issued):
    """?format=json returns the credential JSON even when the browser asks for HTML."""
    response = client.get(
        f"/credentials/{issued.public_id}?format=json",
        headers={"Accept": "text/html,application/xhtml+xml"},
    )

    assert response.status_code == 200
    assert response.mimetype == "application/vc+ld+json"
    assert response.json["id"].endswith(issued.public_id)


@pytest.mark.parametrize(
    ("language", "direction", "valid_text"),
    [
        ("fr", "ltr", "Valide\u00a0: la signature est vérifiée"),
        ("ar", "rtl", "صالحة: يتحقق التوقيع"),
    ],
)
def test_credential_page_translated(client, issued, language, direction, valid_text):
    """The verification page follows Accept-Language, right to left in Arabic."""
    page = client.get(
        f"/credentials/{issued.public_id}",
        headers={**HTML, "Accept-Language": language},
    ).data.decode()

    assert f'lang="{language}"' in page
    assert f'dir="{direction}"' in page
    assert valid_text in page
    assert "Safe travel" in page


@pytest.mark.parametrize(
    "path",
    [
        "/providers/academy/status/9223372036854775808",
        "/providers/academy/status/1",
    ],
    ids=["beyond-64-bit", "not-allocated"],
)
def test_unknown_status_list_404(client, issued, path):
    """A status list number no credential uses is a 404, never a 500 or a new list."""
    response = client.get(path)

    assert response.status_code == 404


def test_huge_delivery_id_404(client):
    """An id past the database's integer range matches no route: a 404, not a 500."""
    response = client.post("/portfolio/deliveries/999999999999999999999999999999/retry")

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("path", "media_type"),
    [("badge.svg", "image/svg+xml"), ("badge.png", "image/png")],
)
def test_baked_badge_image_policy(client, db, issued, path, media_type):
    """A baked badge is served under the same inert policy as an uploaded image."""
    uploaded = AchievementImage(
        provider_id=issued.provider_id,
        media_type="image/svg+xml",
        content=b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>',
        width=1,
        height=1,
    )
    db.add(uploaded)
    db.commit()

    baked = client.get(f"/credentials/{issued.public_id}/{path}")
    image = client.get(f"/images/{uploaded.public_id}")

    assert baked.status_code == 200
    assert baked.mimetype == media_type
    assert baked.headers["Content-Security-Policy"] == IMAGE_POLICY
    assert IMAGE_POLICY.startswith("default-src 'none'")
    assert image.headers["Content-Security-Policy"] == IMAGE_POLICY
    assert baked.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["/credentials/{id}", "/ob2/assertions/{id}"])
@pytest.mark.parametrize("headers", [HTML, JSON_LD], ids=["html", "json"])
def test_negotiated_documents_vary(client, issued, path, headers):
    """Both forms of a negotiated URL name the headers a shared cache must key on."""
    response = client.get(path.format(id=issued.public_id), headers=headers)

    assert response.status_code == 200
    assert "Accept" in response.vary
    assert "Accept-Language" in response.vary
