"""Badge images uploaded by instructors: checked, stored, and served from the bridge.

Only PNG and SVG are accepted, the two formats Open Badges bakes. A PNG is checked by
its signature and IHDR chunk. An SVG is parsed as XML and checked against an
allow-list of elements and references (`lti_tool/svg_safety.py`), because the image is
served from the bridge's own origin.
"""

from __future__ import annotations

import codecs
import re
import struct
import uuid
from dataclasses import dataclass
from datetime import datetime
from xml.etree import ElementTree

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from badge_engine.db import Base, utcnow
from lti_tool.svg_safety import UnsafeSvg, check_svg_tree, parse_svg

MAX_IMAGE_BYTES = 512 * 1024
MIN_SIDE = 90
MAX_SIDE = 2048
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_ROOT_TAG = "{http://www.w3.org/2000/svg}svg"
# The start of an SVG file: an XML declaration, a comment, a DOCTYPE (rejected later
# with its own message) or the root element, whose prefix may be any the file binds
# to the SVG namespace (`<s:svg xmlns:s=...>`).
_SVG_START = re.compile(rb"<\?xml|<!--|<!DOCTYPE|<(?:[A-Za-z_][\w.-]*:)?svg[\s/>]")
_LENGTH = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(px)?\s*$")


class AchievementImage(Base):
    """An uploaded badge image; `Achievement.image_url` points at its public URL."""

    __tablename__ = "achievement_images"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    public_id: Mapped[str] = mapped_column(
        String(36), unique=True, default=lambda: str(uuid.uuid4())
    )
    media_type: Mapped[str] = mapped_column(String(40))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    width: Mapped[int]
    height: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImageRejected(ValueError):
    """An uploaded image is rejected; the message names the cause and the fix.

    The message is English for logs and the command line. `code` names the cause
    and `details` contains the values it names, so a page can show its own text.
    """

    def __init__(self, message: str, *, code: str, **details) -> None:
        super().__init__(message)
        self.code = code
        self.details = details


@dataclass(frozen=True)
class CheckedImage:
    media_type: str
    width: int
    height: int


def check_image(content: bytes) -> CheckedImage:
    """Return the image's type and size in pixels, or raise ImageRejected."""
    if len(content) > MAX_IMAGE_BYTES:
        raise ImageRejected(
            f"the image is {len(content) // 1024} KB; use a file of at most "
            f"{MAX_IMAGE_BYTES // 1024} KB",
            code="too_large",
            size_kb=len(content) // 1024,
            limit_kb=MAX_IMAGE_BYTES // 1024,
        )
    if content.startswith(PNG_SIGNATURE):
        checked = _check_png(content)
    elif _looks_like_svg(content):
        checked = _check_svg(content)
    else:
        raise ImageRejected(
            "the file is not a PNG or SVG image; upload a PNG or SVG",
            code="not_png_or_svg",
        )
    for side in (checked.width, checked.height):
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise ImageRejected(
                f"the image is {checked.width}×{checked.height} pixels; each side must "
                f"be between {MIN_SIDE} and {MAX_SIDE} pixels",
                code="bad_dimensions",
                width=checked.width,
                height=checked.height,
                min_side=MIN_SIDE,
                max_side=MAX_SIDE,
            )

    return checked


def _looks_like_svg(content: bytes) -> bool:
    # Some editors on Windows start a UTF-8 file with a byte order mark, which the
    # XML parser accepts.
    return _SVG_START.match(content.removeprefix(codecs.BOM_UTF8).lstrip()) is not None


def _check_png(content: bytes) -> CheckedImage:
    # The IHDR chunk must come first: 4-byte length, b"IHDR", width, height.
    if len(content) < 24 or content[12:16] != b"IHDR":
        raise ImageRejected(
            "the PNG file is damaged (no IHDR header); export it again",
            code="png_damaged",
        )
    width, height = struct.unpack(">II", content[16:24])

    return CheckedImage("image/png", width, height)


def _check_svg(content: bytes) -> CheckedImage:
    try:
        root = parse_svg(content)
        # ElementTree names elements by namespace, so a prefixed root is found too.
        if root.tag not in (SVG_ROOT_TAG, "svg"):
            raise ImageRejected(
                "the file's root element is not <svg>; upload an SVG image",
                code="svg_root",
            )
        check_svg_tree(root)
    except ElementTree.ParseError as error:
        raise ImageRejected(
            f"the SVG is not valid XML ({error}); export it again",
            code="svg_invalid_xml",
        ) from None
    except UnsafeSvg as error:
        raise ImageRejected(str(error), code=error.code, **error.details) from None

    return CheckedImage("image/svg+xml", *_svg_size(root))


def _svg_size(root: ElementTree.Element) -> tuple[int, int]:
    width, height = root.get("width"), root.get("height")
    if width and height and _LENGTH.match(width) and _LENGTH.match(height):
        return (
            round(float(_LENGTH.match(width).group(1))),
            round(float(_LENGTH.match(height).group(1))),
        )
    view_box = (root.get("viewBox") or "").replace(",", " ").split()
    if len(view_box) == 4:
        try:
            return round(float(view_box[2])), round(float(view_box[3]))
        except ValueError:
            pass
    raise ImageRejected(
        "the SVG has no pixel width and height or viewBox; set width and height "
        "in pixels",
        code="svg_no_size",
    )
