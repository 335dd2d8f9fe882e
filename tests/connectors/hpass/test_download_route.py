"""The download route: baked badge files and the public URL, with no portfolio."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from badge_engine.baking import extract
from tests.connectors.hpass.conftest import issue_and_queue


def test_download_links_without_portfolio(app, client, db, seeded):
    """A learner with no portfolio gets download links whose files carry the badge."""
    credential, message_ids = issue_and_queue(app, db, seeded)
    with client.session_transaction() as session:
        session.update(
            provider_id=seeded.provider_id, learner_id=seeded.learner_id, role="learner"
        )

    listed = client.get("/portfolio/deliveries").get_json()

    assert message_ids == []
    assert listed["deliveries"] == []
    links = listed["downloads"][credential.public_id]
    assert links["public_url"].endswith(f"/credentials/{credential.public_id}")
    for key in ("baked_png_url", "baked_svg_url"):
        image = client.get(urlsplit(links[key]).path)
        assert image.status_code == 200
        baked = json.loads(extract(image.data).text)
        assert baked["id"] == credential.document["id"]


def test_download_links_scoped_to_learner(app, client, db, seeded):
    """Another learner of the provider gets no links to this learner's badges."""
    issue_and_queue(app, db, seeded)
    with client.session_transaction() as session:
        session.update(
            provider_id=seeded.provider_id,
            learner_id=seeded.learner_id + 1000,
            role="learner",
        )

    listed = client.get("/portfolio/deliveries").get_json()

    assert listed["downloads"] == {}
