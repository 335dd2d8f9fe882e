"""Baking credentials into PNG and SVG badge images, and extracting them again.

PNG: an `iTXt` chunk, placed before `IEND`, whose keyword is `openbadges` for an
Open Badges 2.0 assertion (JSON, a compact JWS or the assertion's URL) and
`openbadgecredential` for an Open Badges 3.0 credential (JSON or a compact JWT).
A baked image contains at most one such chunk per keyword, as both specifications say.
Baking writes the text uncompressed. Extraction also reads compressed text, with a
limit on the inflated size, so a decompression bomb is rejected.

SVG: the root `svg` element declares the namespace `http://openbadges.org` (OB 2.0)
or `https://purl.imsglobal.org/ob/v3p0` (OB 3.0) and contains one `assertion` (OB 2.0)
or `credential` (OB 3.0) element in it. JSON goes in the element's CDATA text, and a
compact JWS or JWT goes in its `verify` attribute.

SVG is parsed with defusedxml, which rejects DTDs and entity declarations, because
the standard library parser expands internal entities ("billion laughs").
"""

from __future__ import annotations

import codecs
import re
import struct
import zlib
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError, tostring
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from badge_engine.errors import InvalidCredential

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
OB2_PNG_KEYWORD = "openbadges"
OB3_PNG_KEYWORD = "openbadgecredential"
OB2_SVG_NAMESPACE = "http://openbadges.org"
OB3_SVG_NAMESPACE = "https://purl.imsglobal.org/ob/v3p0"
SVG_NAMESPACE = "http://www.w3.org/2000/svg"
# An `<svg>` start tag, bare or with the prefix the file binds to the SVG namespace.
_SVG_ROOT_START = re.compile(rb"<(?:[a-z_][\w.-]*:)?svg[\s/>]")

# Limits for images the verifier receives from anyone. A baked credential is a few
# kilobytes, so 1 MiB of text leaves plenty of room.
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_PAYLOAD_BYTES = 1024 * 1024

_KEYWORDS = {"2.0": OB2_PNG_KEYWORD, "3.0": OB3_PNG_KEYWORD}
_SVG_ELEMENTS = {
    "2.0": (OB2_SVG_NAMESPACE, "assertion"),
    "3.0": (OB3_SVG_NAMESPACE, "credential"),
}


class BakingError(InvalidCredential):
    """An image cannot be baked or contains no readable credential; `code` names why."""

    def __init__(self, message: str, *, code: str, path: str = "$") -> None:
        self.code = code
        super().__init__(message, path=path)


@dataclass(frozen=True)
class BakedPayload:
    """The text baked into an image, with its OB version and image format."""

    text: str
    version: str
    image_format: str


def is_png(data: bytes) -> bool:
    return data.startswith(PNG_SIGNATURE)


def looks_like_svg(data: bytes) -> bool:
    """Return whether the data starts like an SVG file, with or without a prefix."""
    # A UTF-8 byte order mark may come first, as some editors on Windows write it.
    head = data[:4096].removeprefix(codecs.BOM_UTF8).lstrip().lower()
    if head.startswith(b"<?xml"):
        return _SVG_ROOT_START.search(head) is not None
    return _SVG_ROOT_START.match(head) is not None


def bake_png(image: bytes, payload: str, version: str = "3.0") -> bytes:
    """Return the PNG with `payload` in an uncompressed iTXt chunk for `version`.

    An existing chunk with the same keyword is replaced, so baking twice leaves one.
    Raises BakingError for data that is not a well-formed PNG.
    """
    keyword = _keyword(version)
    chunks = _read_png_chunks(image)
    kept = [c for c in chunks if not _is_badge_chunk(c, keyword)]
    text = keyword.encode("latin-1") + b"\x00\x00\x00" + b"\x00" + b"\x00"
    text += payload.encode("utf-8")
    kept.insert(len(kept) - 1, (b"iTXt", text))

    return PNG_SIGNATURE + b"".join(_png_chunk(kind, data) for kind, data in kept)


def extract_png(image: bytes) -> BakedPayload:
    """Return the credential baked into a PNG, OB 3.0 first, then OB 2.0.

    Raises BakingError when the image is not a PNG, is truncated or corrupt, contains
    no badge chunk or more than one with the same keyword, or its text inflates past
    MAX_PAYLOAD_BYTES.
    """
    _check_image_size(image)
    chunks = _read_png_chunks(image)
    for version in ("3.0", "2.0"):
        keyword = _keyword(version)
        found = [
            data for kind, data in chunks if _is_badge_chunk((kind, data), keyword)
        ]
        if len(found) > 1:
            raise BakingError(
                f"The PNG contains {len(found)} iTXt chunks with the keyword "
                f"{keyword!r}, but a baked badge contains exactly one.",
                code="duplicate_baked_credential",
            )
        if found:
            return BakedPayload(_itxt_text(found[0]), version, "png")

    raise BakingError(
        "The PNG contains no iTXt chunk with the keyword 'openbadgecredential' or "
        "'openbadges', so no credential is baked into it.",
        code="not_baked",
    )


def bake_svg(image: bytes, payload: str, version: str = "3.0") -> bytes:
    """Return the SVG with `payload` in its OB `version` element.

    JSON goes into CDATA text; anything else (a compact JWS or JWT, or an OB 2.0
    assertion URL) goes into the `verify` attribute. Raises BakingError for an image
    that is not a safe, well-formed SVG.
    """
    root = _parse_svg(image)
    namespace, name = _svg_element(version)
    for old in root.findall(f"{{{namespace}}}{name}"):
        root.remove(old)

    prefix = "openbadges"
    element = Element(f"{prefix}:{name}")
    marker = f"@@HPASS-CDATA-{id(element)}@@"
    if payload.lstrip().startswith("{"):
        element.text = marker
    else:
        element.set("verify", payload)
    root.insert(0, element)

    serialised = _serialise_svg(root, namespace, prefix)
    if marker in serialised:
        # ElementTree has no CDATA node, so the payload replaces a marker. A JSON
        # text containing "]]>" is split across two CDATA sections.
        cdata = "<![CDATA[" + payload.replace("]]>", "]]]]><![CDATA[>") + "]]>"
        serialised = serialised.replace(marker, cdata)

    return serialised.encode("utf-8")


def extract_svg(image: bytes) -> BakedPayload:
    """Return the credential baked into an SVG, OB 3.0 first, then OB 2.0.

    Raises BakingError for XML that is malformed or uses a DTD or entities, an SVG
    with no badge element or more than one, or a text over MAX_PAYLOAD_BYTES.
    """
    _check_image_size(image)
    root = _parse_svg(image)
    for version in ("3.0", "2.0"):
        namespace, name = _svg_element(version)
        found = root.findall(f".//{{{namespace}}}{name}")
        if len(found) > 1:
            raise BakingError(
                f"The SVG contains {len(found)} openbadges:{name} elements, but a "
                "baked badge contains exactly one.",
                code="duplicate_baked_credential",
            )
        if found:
            text = found[0].get("verify") or (found[0].text or "").strip()
            if not text:
                raise BakingError(
                    f"The openbadges:{name} element is empty.", code="not_baked"
                )
            if len(text.encode("utf-8")) > MAX_PAYLOAD_BYTES:
                raise _payload_too_large()
            return BakedPayload(text, version, "svg")

    raise BakingError(
        "The SVG contains no openbadges:credential or openbadges:assertion element, so "
        "no credential is baked into it.",
        code="not_baked",
    )


def extract(image: bytes) -> BakedPayload:
    """Extract from a PNG or SVG, chosen by its first bytes."""
    if is_png(image):
        return extract_png(image)
    if looks_like_svg(image):
        return extract_svg(image)

    raise BakingError("Expected a PNG or SVG image.", code="unsupported_image_format")


def plain_png(size: int = 64, rgb: tuple[int, int, int] = (0, 94, 184)) -> bytes:
    """Return a square PNG of one colour, a stand-in when a badge has no image."""
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    row = b"\x00" + bytes(rgb) * size
    chunks = [
        (b"IHDR", header),
        (b"IDAT", zlib.compress(row * size)),
        (b"IEND", b""),
    ]
    return PNG_SIGNATURE + b"".join(_png_chunk(kind, data) for kind, data in chunks)


def plain_svg(title: str) -> bytes:
    """Return a round SVG badge showing `title`, a stand-in for a badge image."""
    text = escape(title[:40])
    return (
        f'<svg xmlns="{SVG_NAMESPACE}" width="200" height="200" viewBox="0 0 200 200">'
        f"<title>{text}</title>"
        '<circle cx="100" cy="100" r="96" fill="#005eb8"/>'
        '<text x="100" y="108" font-size="14" text-anchor="middle" fill="#ffffff">'
        f"{text}</text></svg>"
    ).encode("utf-8")


def _keyword(version: str) -> str:
    if version not in _KEYWORDS:
        raise ValueError(
            f"Expected Open Badges version '2.0' or '3.0', got {version!r}"
        )
    return _KEYWORDS[version]


def _svg_element(version: str) -> tuple[str, str]:
    _keyword(version)
    return _SVG_ELEMENTS[version]


def _check_image_size(image: bytes) -> None:
    if len(image) > MAX_IMAGE_BYTES:
        raise BakingError(
            f"The image has {len(image)} bytes, more than the {MAX_IMAGE_BYTES} a "
            "baked badge may have.",
            code="too_large",
        )


def _payload_too_large() -> BakingError:
    return BakingError(
        f"The baked text is larger than {MAX_PAYLOAD_BYTES} bytes.",
        code="too_large",
    )


def _read_png_chunks(image: bytes) -> list[tuple[bytes, bytes]]:
    if not is_png(image):
        raise BakingError("The data is not a PNG image.", code="invalid_image")

    chunks = []
    offset = len(PNG_SIGNATURE)
    while offset < len(image):
        if offset + 8 > len(image):
            raise _truncated()
        length, kind = struct.unpack(">I4s", image[offset : offset + 8])
        end = offset + 8 + length + 4
        if end > len(image):
            raise _truncated()

        data = image[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", image[end - 4 : end])
        if zlib.crc32(kind + data) != crc:
            raise BakingError(
                f"The PNG chunk {kind!r} at byte {offset} fails its CRC check; the "
                "image is corrupt.",
                code="invalid_image",
            )
        chunks.append((kind, data))
        offset = end
        if kind == b"IEND":
            break

    if not chunks or chunks[0][0] != b"IHDR" or chunks[-1][0] != b"IEND":
        raise BakingError(
            "The PNG must start with IHDR and end with IEND.", code="invalid_image"
        )

    return chunks


def _truncated() -> BakingError:
    return BakingError("The PNG is truncated.", code="invalid_image")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _is_badge_chunk(chunk: tuple[bytes, bytes], keyword: str) -> bool:
    kind, data = chunk
    return kind == b"iTXt" and data.split(b"\x00", 1)[0] == keyword.encode("latin-1")


def _itxt_text(data: bytes) -> str:
    # iTXt: keyword NUL, compression flag, compression method, language tag NUL,
    # translated keyword NUL, text (UTF-8, zlib-compressed when the flag is 1).
    try:
        _, rest = data.split(b"\x00", 1)
        flag, method = rest[0], rest[1]
        _, _, rest = rest[2:].split(b"\x00", 2)
    except (ValueError, IndexError) as error:
        raise BakingError(
            "The iTXt chunk is malformed.", code="invalid_image"
        ) from error

    if flag == 1:
        rest = _inflate(rest, method)
    elif len(rest) > MAX_PAYLOAD_BYTES:
        raise _payload_too_large()

    try:
        return rest.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BakingError(
            "The iTXt text is not UTF-8.", code="invalid_image"
        ) from error


def _inflate(data: bytes, method: int) -> bytes:
    if method != 0:
        raise BakingError(
            f"Unknown iTXt compression method {method}; PNG defines only 0 (zlib).",
            code="invalid_image",
        )

    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(data, MAX_PAYLOAD_BYTES + 1)
    except zlib.error as error:
        raise BakingError(
            f"The compressed iTXt text is corrupt: {error}.", code="invalid_image"
        ) from error
    if len(text) > MAX_PAYLOAD_BYTES or inflater.unconsumed_tail:
        raise BakingError(
            f"The compressed iTXt text inflates past {MAX_PAYLOAD_BYTES} bytes; it is "
            "rejected as a decompression bomb.",
            code="decompression_bomb",
        )

    return text


def _parse_svg(image: bytes) -> Element:
    try:
        root = fromstring(image, forbid_dtd=True)
    except DefusedXmlException as error:
        raise BakingError(
            f"The SVG uses a DTD or entities, which are rejected: {error}.",
            code="unsafe_xml",
        ) from error
    except (ParseError, ValueError) as error:
        raise BakingError(
            f"The SVG is not well-formed XML: {error}.", code="invalid_image"
        ) from error

    if root.tag not in (f"{{{SVG_NAMESPACE}}}svg", "svg"):
        raise BakingError(
            f"Expected an <svg> root element, found {root.tag!r}.",
            code="invalid_image",
        )

    return root


def _serialise_svg(root: Element, namespace: str, prefix: str) -> str:
    from xml.etree import ElementTree

    ElementTree.register_namespace("", SVG_NAMESPACE)
    # The new element's tag uses the prefix literally, so its namespace is declared
    # on the root by hand.
    root.set(f"xmlns:{prefix}", namespace)
    return tostring(root, encoding="unicode")
