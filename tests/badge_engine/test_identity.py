"""Email normalisation and identity hash matching for learners with several
addresses."""

from __future__ import annotations

import pytest

from badge_engine.identity import identity_hash_matches, normalise_email
from badge_engine.ob3 import hash_email
from badge_engine.verify_context import VerifyContext


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("Ana.Field@Example.ORG", "ana.field@example.org"),
        ("  ana@example.org ", "ana@example.org"),
        ('"Ana Field"@Example.org', '"Ana Field"@example.org'),
        ("no-at-sign", "no-at-sign"),
    ],
)
def test_normalise_email_cases(address, expected):
    """Addresses lowercase except a quoted local part, whose case can matter."""
    assert normalise_email(address) == expected


def test_hash_matches_upper_hex():
    """A recipient hash printed in upper-case hex still matches the address."""
    hashed = hash_email("ana@example.org", "salt")
    algorithm, _, digest = hashed.partition("$")

    assert identity_hash_matches(
        f"{algorithm.upper()}${digest.upper()}", "salt", "Ana@Example.org"
    )
    assert not identity_hash_matches(
        f"sha256${digest.upper()}", "salt", "bob@example.org"
    )
    assert not identity_hash_matches(digest, "salt", "ana@example.org")


def test_verifier_recipient_upper_hex():
    """The verifier compares the hex part of a recipient hash without case."""
    digest = hash_email("ana@example.org", "pepper").partition("$")[2]
    context = VerifyContext(recipient="ANA@example.org")

    assert context.recipient_matches(f"sha256${digest.upper()}", True, "pepper")
    assert not context.recipient_matches(f"sha256${digest.upper()}", True, "salt")
