"""The route that needs no portfolio: files and a link the learner takes by hand.

Every credential can be downloaded as a baked PNG or SVG (the signed OB 3.0
credential embedded in the image, served by the public credential pages) or
imported into any wallet from its public URL. Nothing is pushed, so this route
has no delivery status; the status pages list these links beside the others.
"""

from __future__ import annotations

from dataclasses import dataclass

from badge_engine.urls import credential_url


@dataclass(frozen=True)
class DownloadLinks:
    """The URLs a learner uses to keep a credential without a linked portfolio."""

    public_url: str
    baked_png_url: str
    baked_svg_url: str


def download_links(base_url: str, credential_public_id: str) -> DownloadLinks:
    public_url = credential_url(base_url, credential_public_id)

    return DownloadLinks(
        public_url=public_url,
        baked_png_url=f"{public_url}/badge.png",
        baked_svg_url=f"{public_url}/badge.svg",
    )
