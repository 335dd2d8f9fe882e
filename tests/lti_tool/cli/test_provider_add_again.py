"""`provider add` run again reuses a provider with the same values."""

from __future__ import annotations

ADD = [
    "provider",
    "add",
    "--slug",
    "acme",
    "--name",
    "Acme Academy",
    "--url",
    "https://acme.example.org",
]


def test_add_again_same_values(cli, provider):
    """The same add exits 0 with status unchanged and the stored provider."""
    again = cli(*ADD, "--json")

    assert again.code == 0, again.stderr
    assert again.document["status"] == "unchanged"
    assert again.document["provider"]["slug"] == "acme"
    listed = cli.ok("provider", "list", "--json").document["providers"]
    assert len(listed) == 1


def test_add_again_other_values(cli, provider):
    """Another name or URL for the slug exits 2 naming each differing option."""
    again = cli(
        "provider",
        "add",
        "--slug",
        "acme",
        "--name",
        "Acme School",
        "--url",
        "https://school.example.org",
        "--json",
    )

    assert again.code == 2
    assert again.document["error"] == "provider_exists"
    message = again.document["message"]
    assert "--name is 'Acme Academy', not 'Acme School'" in message
    assert "--url is 'https://acme.example.org', not 'https://school.example.org'" in (
        message
    )
    assert "--email" not in message
