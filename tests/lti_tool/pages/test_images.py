"""Badge image checks: type, size in bytes, dimensions and hostile SVG content."""

from __future__ import annotations

import pytest

from lti_tool.images import ImageRejected, check_image

from .test_course_pages import png_bytes


def svg(body: str = "", attributes: str = 'width="120" height="120"') -> bytes:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" '
        f'xmlns:xlink="http://www.w3.org/1999/xlink" {attributes}>{body}</svg>'
    ).encode()


def test_png_accepted_with_size():
    """A PNG reports its media type and pixel size."""
    checked = check_image(png_bytes(300, 200))

    assert checked.media_type == "image/png"
    assert (checked.width, checked.height) == (300, 200)


def test_svg_viewbox_gives_size():
    """An SVG without width and height takes its size from the viewBox."""
    checked = check_image(svg(attributes='viewBox="0 0 256 256"'))

    assert checked.media_type == "image/svg+xml"
    assert (checked.width, checked.height) == (256, 256)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"GIF89a" + b"\0" * 100, "not a PNG or SVG"),
        (png_bytes(40, 40), "between 90 and 2048"),
        (png_bytes(5000, 100), "between 90 and 2048"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 30, "damaged"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 600 * 1024, "at most 512 KB"),
        (svg("<script>alert(1)</script>"), "<script> element"),
        (svg('<rect onclick="alert(1)" width="1" height="1"/>'), "event handler"),
        (svg('<image xlink:href="https://evil.example/x.png"/>'), "outside resource"),
        (svg("<foreignObject><p>x</p></foreignObject>"), "<foreignObject>"),
        (
            b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x "y">]><svg/>',
            "DOCTYPE",
        ),
        (b"<svg><unclosed></svg>", "not valid XML"),
        (svg(attributes=""), "no pixel width"),
        (b'<?xml version="1.0"?><html/>', "not <svg>"),
    ],
)
def test_image_rejected(content, fragment):
    """Each unacceptable image is rejected with a message naming the problem."""
    with pytest.raises(ImageRejected) as raised:
        check_image(content)

    assert fragment in str(raised.value)


def test_svg_internal_reference_allowed():
    """A link to an element inside the same SVG is allowed."""
    body = '<defs><circle id="c" r="5"/></defs><use xlink:href="#c"/>'

    assert check_image(svg(body)).width == 120
