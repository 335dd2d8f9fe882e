"""Baking credentials into PNG and SVG images, and hostile images."""

import codecs
import struct
import zlib

import pytest

from badge_engine.baking import (
    MAX_IMAGE_BYTES,
    PNG_SIGNATURE,
    BakingError,
    bake_png,
    bake_svg,
    extract,
    looks_like_svg,
    plain_png,
    plain_svg,
)

CREDENTIAL_JSON = '{"id": "urn:uuid:1", "name": "Caf\u00e9 ]]> safety"}'
JWS = "eyJhbGciOiJFZERTQSJ9.eyJhIjoxfQ.c2lnbmF0dXJl"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data))
    )


def _png_with(*chunks: bytes) -> bytes:
    header = _chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    return PNG_SIGNATURE + header + b"".join(chunks) + _chunk(b"IEND", b"")


@pytest.mark.parametrize("version", ["2.0", "3.0"])
@pytest.mark.parametrize("payload", [CREDENTIAL_JSON, JWS])
def test_png_round_trip(version, payload):
    """A payload baked into a PNG comes back unchanged with its version."""
    baked = extract(bake_png(plain_png(), payload, version))

    assert baked.text == payload
    assert baked.version == version
    assert baked.image_format == "png"


@pytest.mark.parametrize("version", ["2.0", "3.0"])
@pytest.mark.parametrize("payload", [CREDENTIAL_JSON, JWS])
def test_svg_round_trip(version, payload):
    """A payload baked into an SVG comes back unchanged, even with ']]>' inside."""
    baked = extract(bake_svg(plain_svg("Safe travel"), payload, version))

    assert baked.text == payload
    assert baked.version == version
    assert baked.image_format == "svg"


@pytest.mark.parametrize(
    "image",
    [
        b'<s:svg xmlns:s="http://www.w3.org/2000/svg" width="9" height="9"/>',
        b'<?xml version="1.0"?>\n<s:svg xmlns:s="http://www.w3.org/2000/svg"/>',
    ],
    ids=["bare", "xml-declaration"],
)
def test_prefixed_svg_round_trip(image):
    """An SVG whose root has a prefix bound to the SVG namespace is baked too."""
    baked = extract(bake_svg(image, JWS, "3.0"))

    assert baked.text == JWS
    assert baked.image_format == "svg"


def test_svg_with_byte_order_mark_round_trip():
    """An SVG that starts with a UTF-8 byte order mark is baked and read back."""
    image = codecs.BOM_UTF8 + b'<svg xmlns="http://www.w3.org/2000/svg" width="9"/>'

    baked = extract(bake_svg(image, JWS, "3.0"))

    assert looks_like_svg(image)
    assert baked.text == JWS
    assert baked.image_format == "svg"


def test_png_itxt_keyword_ob3():
    """OB 3.0 credentials go into an iTXt chunk with the keyword openbadgecredential."""
    image = bake_png(plain_png(), CREDENTIAL_JSON, "3.0")

    assert b"iTXtopenbadgecredential\x00\x00\x00" in image


def test_svg_namespace_ob3():
    """OB 3.0 credentials go into openbadges:credential of the 3.0 namespace."""
    image = bake_svg(plain_svg("x"), JWS, "3.0").decode()

    assert 'xmlns:openbadges="https://purl.imsglobal.org/ob/v3p0"' in image
    assert f'<openbadges:credential verify="{JWS}"' in image


def test_png_rebake_keeps_one_chunk():
    """Baking twice replaces the first credential rather than adding a second."""
    image = bake_png(bake_png(plain_png(), "{}"), CREDENTIAL_JSON)

    assert image.count(b"openbadgecredential") == 1
    assert extract(image).text == CREDENTIAL_JSON


def test_png_compressed_text_read():
    """A compressed iTXt text written by another tool is inflated."""
    text = b"openbadgecredential\x00\x01\x00\x00\x00" + zlib.compress(b'{"a": 1}')

    assert extract(_png_with(_chunk(b"iTXt", text))).text == '{"a": 1}'


def test_png_decompression_bomb():
    """A compressed iTXt text that inflates past the limit is rejected as a bomb."""
    bomb = zlib.compress(b"\x00" * (64 * 1024 * 1024), 9)
    text = b"openbadgecredential\x00\x01\x00\x00\x00" + bomb

    with pytest.raises(BakingError) as caught:
        extract(_png_with(_chunk(b"iTXt", text)))

    assert caught.value.code == "decompression_bomb"


def test_png_truncated():
    """A PNG cut short is reported as an invalid image."""
    image = bake_png(plain_png(), CREDENTIAL_JSON)

    with pytest.raises(BakingError) as caught:
        extract(image[: len(image) - 20])

    assert caught.value.code == "invalid_image"


def test_png_bad_crc():
    """A chunk whose CRC does not match is reported as corrupt."""
    image = bytearray(bake_png(plain_png(), CREDENTIAL_JSON))
    image[-30] ^= 0xFF

    with pytest.raises(BakingError) as caught:
        extract(bytes(image))

    assert caught.value.code == "invalid_image"


def test_png_two_chunks_rejected():
    """Two openbadgecredential chunks make the image ambiguous, so it is rejected."""
    text = b"openbadgecredential\x00\x00\x00\x00\x00{}"
    image = _png_with(_chunk(b"iTXt", text), _chunk(b"iTXt", text))

    with pytest.raises(BakingError) as caught:
        extract(image)

    assert caught.value.code == "duplicate_baked_credential"


def test_png_not_baked():
    """A plain PNG is reported as holding no credential."""
    with pytest.raises(BakingError) as caught:
        extract(plain_png())

    assert caught.value.code == "not_baked"


def test_png_huge_image():
    """An image over the size limit is rejected before it is parsed."""
    with pytest.raises(BakingError) as caught:
        extract(PNG_SIGNATURE + b"\x00" * MAX_IMAGE_BYTES)

    assert caught.value.code == "too_large"


@pytest.mark.parametrize(
    "svg",
    [
        # Billion laughs: nested internal entities.
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg">&b;</svg>',
        # External entity reading a local file.
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg">&x;</svg>',
        # A DTD alone.
        b'<?xml version="1.0"?><!DOCTYPE svg SYSTEM "http://127.0.0.1:1/x.dtd">'
        b'<svg xmlns="http://www.w3.org/2000/svg"/>',
    ],
)
def test_svg_entity_tricks(svg):
    """SVGs with a DTD or entities are rejected without expanding or fetching them."""
    with pytest.raises(BakingError) as caught:
        extract(svg)

    assert caught.value.code == "unsafe_xml"


def test_svg_malformed():
    """XML that is not well formed is reported as an invalid image."""
    with pytest.raises(BakingError) as caught:
        extract(b'<svg xmlns="http://www.w3.org/2000/svg"><g></svg>')

    assert caught.value.code == "invalid_image"


def test_svg_not_baked():
    """A plain SVG is reported as holding no credential."""
    with pytest.raises(BakingError) as caught:
        extract(plain_svg("plain"))

    assert caught.value.code == "not_baked"


def test_extract_other_format():
    """Bytes that are neither PNG nor SVG are rejected with a clear code."""
    with pytest.raises(BakingError) as caught:
        extract(b"GIF89a....")

    assert caught.value.code == "unsupported_image_format"
