"""Badge image checks: type, size in bytes, dimensions and hostile SVG content."""

from __future__ import annotations

import codecs

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


JS = "javascript:alert(document.domain)"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (f'<a href="#x"><animate attributeName="href" to="{JS}"/></a>', "<a> element"),
        (f'<animate attributeName="href" values="{JS}"/>', "<animate> element"),
        (f'<animate href="{JS}"/>', "<animate> element"),
        (f'<set attributeName="href" to="{JS}"/>', "<set> element"),
        (f'<set attributeName="xlink:href" to="{JS}"/>', "<set> element"),
        ('<animateTransform attributeName="transform"/>', "<animateTransform> element"),
        (f'<a xlink:href="{JS}"><rect/></a>', "<a> element"),
        (f'<use xlink:href="{JS}"/>', "outside resource"),
        (f'<use href="  {JS}"/>', "outside resource"),
        ('<use href="https://evil.example/sprite.svg#x"/>', "outside resource"),
        (
            '<image href="data:image/svg+xml;base64,PHN2Zy8+"/>',
            "outside resource",
        ),
        ('<feImage href="https://evil.example/x.png"/>', "<feImage> element"),
        ('<rect onload="alert(1)"/>', "event handler"),
        ('<rect ONCLICK="alert(1)"/>', "event handler"),
        ('<svg onbegin="alert(1)"/>', "event handler"),
        ('<rect fill="url(https://evil.example/p.svg#g)"/>', "outside resource"),
        ("<rect fill=\"url( 'http://evil.example/p#g')\"/>", "outside resource"),
        ('<rect style="fill: url(//evil.example/p#g)"/>', "outside resource"),
        ("<rect style=\"background: image-set('x.png' 1x)\"/>", "outside resource"),
        ('<rect style="fill: \\75 rl(http://evil.example/)"/>', "CSS escapes"),
        ("<style>@import 'https://evil.example/x.css';</style>", "outside resource"),
        (
            "<style>rect { fill: url(http://evil.example/x) }</style>",
            "outside resource",
        ),
        ("<style>@font-face { font-family: x }</style>", "outside resource"),
        (f'<rect filter="{JS}"/>', "javascript: URL"),
        ('<rect cursor="&#x9;javascript:alert(1)"/>', "javascript: URL"),
        ('<rect mask="data:text/html,x"/>', "data: URL"),
        (
            '<html:iframe xmlns:html="http://www.w3.org/1999/xhtml" src="x"/>',
            "HTML or MathML <iframe>",
        ),
        (
            '<m:math xmlns:m="http://www.w3.org/1998/Math/MathML"/>',
            "HTML or MathML <math>",
        ),
        ("<handler>alert(1)</handler>", "<handler> element"),
        ("<iframe/>", "<iframe> element"),
        ("<embed/>", "<embed> element"),
    ],
)
def test_svg_trick_rejected(body, fragment):
    """Each way to run code or load a resource from an SVG is rejected by name."""
    with pytest.raises(ImageRejected) as raised:
        check_image(svg(body))

    assert fragment in str(raised.value)


@pytest.mark.parametrize(
    "body",
    [
        "<style><desc/>@import url(http://evil.example/x.css); "
        "rect { fill: url(http://evil.example/p#g) }</style>",
        "<style>rect { fill: #fff }<title/>@import 'https://evil.example/x.css';</style>",
        "<style><desc>@import url(http://evil.example/x.css);</desc></style>",
        "<style><desc><title/>rect { fill: url(http://evil.example/p) }</desc></style>",
        "<style><![CDATA[@import url(http://evil.example/x.css);]]></style>",
        "<style><![CDATA[rect { fill: #fff }]]><desc/>"
        "<![CDATA[rect { fill: url(http://evil.example/p) }]]></style>",
        "<style>@imp<!-- split -->ort 'https://evil.example/x.css';</style>",
        "<style>rect { fill: u<!-- split -->rl(http://evil.example/p) }</style>",
        '<g><metadata><x:data xmlns:x="urn:example:editor">'
        "<style>@import url(http://evil.example/x.css);</style></x:data></metadata></g>",
        '<s:style xmlns:s="http://www.w3.org/2000/svg"><s:desc/>'
        "@import url(http://evil.example/x.css);</s:style>",
    ],
    ids=[
        "after-child",
        "after-child-with-css-before",
        "inside-child",
        "inside-nested-child",
        "cdata",
        "cdata-after-child",
        "comment-in-at-rule",
        "comment-in-url",
        "under-foreign-element",
        "prefixed-after-child",
    ],
)
def test_svg_style_all_text_checked(body):
    """Every text node inside `<style>` is checked, not only the text before a child."""
    with pytest.raises(ImageRejected) as raised:
        check_image(svg(body))

    assert raised.value.code == "svg_css_outside_resource"
    assert "<style> element" in str(raised.value)


@pytest.mark.parametrize(
    ("body", "element"),
    [
        (
            "<foreignObject><style>@import url(http://evil.example/x.css);</style>"
            "</foreignObject>",
            "foreignObject",
        ),
        (
            '<foreignObject><h:style xmlns:h="http://www.w3.org/1999/xhtml">'
            "@import url(http://evil.example/x.css);</h:style></foreignObject>",
            "foreignObject",
        ),
        (
            '<h:style xmlns:h="http://www.w3.org/1999/xhtml">'
            "@import url(http://evil.example/x.css);</h:style>",
            "style",
        ),
    ],
    ids=["svg-style-in-foreign-object", "html-style-in-foreign-object", "html-style"],
)
def test_svg_style_in_html_rejected(body, element):
    """A stylesheet inside `<foreignObject>` or in the HTML namespace is rejected."""
    with pytest.raises(ImageRejected) as raised:
        check_image(svg(body))

    assert raised.value.code in ("svg_element", "svg_foreign_element")
    assert f"<{element}>" in str(raised.value)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ('<rect fill="\\75 rl(http://evil.example/p#g)"/>', "svg_css_escape"),
        ('<rect cursor="\\75 rl(http://evil.example/c.png), auto"/>', "svg_css_escape"),
        (
            '<rect s:fill="\\75 rl(http://evil.example/p#g)" '
            'xmlns:s="http://www.w3.org/2000/svg"/>',
            "svg_css_escape",
        ),
        (
            "<rect cursor=\"image-set('https://evil.example/c.png' 1x), auto\"/>",
            "svg_css_outside_resource",
        ),
        (
            '<rect style="fill: #fff; cursor: url(http://evil.example/c.png)"/>',
            "svg_css_outside_resource",
        ),
        (
            '<rect STYLE="fill: url(http://evil.example/p#g)"/>',
            "svg_css_outside_resource",
        ),
        (
            '<rect filter="URL(http://evil.example/f.svg#f)"/>',
            "svg_css_outside_resource",
        ),
        (
            '<rect style="fill:&#x75;rl(http://evil.example/p#g)"/>',
            "svg_css_outside_resource",
        ),
    ],
    ids=[
        "escaped-fill",
        "escaped-cursor",
        "escaped-prefixed-fill",
        "image-set-cursor",
        "style-second-declaration",
        "style-upper-case-name",
        "upper-case-url",
        "character-reference",
    ],
)
def test_svg_attribute_css_checked(body, code):
    """Presentation and style attributes are checked as CSS, escapes included."""
    with pytest.raises(ImageRejected) as raised:
        check_image(svg(body))

    assert raised.value.code == code


def test_svg_foreign_attribute_backslash_accepted():
    """An editor attribute with a Windows path, which no browser reads, passes."""
    body = (
        '<rect width="10" height="10" xmlns:inkscape="http://www.inkscape.org/'
        'namespaces/inkscape" inkscape:export-filename="C:\\badges\\ring.png"/>'
    )

    assert check_image(svg(body)).media_type == "image/svg+xml"


@pytest.mark.parametrize(
    "content",
    [
        b'<?xml version="1.0"?><?xml-stylesheet href="https://evil.example/x.css"?>'
        + svg("<rect/>"),
        svg('<?xml-stylesheet href="https://evil.example/x.css"?><rect/>'),
    ],
    ids=["before-root", "inside-root"],
)
def test_svg_stylesheet_instruction_rejected(content):
    """An `<?xml-stylesheet?>` instruction, which loads CSS, is rejected."""
    with pytest.raises(ImageRejected) as raised:
        check_image(content)

    assert "processing instruction" in str(raised.value)


def test_svg_doctype_without_entities_rejected():
    """A DOCTYPE is rejected even when it declares no entity."""
    content = b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x.dtd">' + svg()

    with pytest.raises(ImageRejected) as raised:
        check_image(content)

    assert "DOCTYPE" in str(raised.value)


def test_svg_editor_export_accepted():
    """An editor's export with gradients, styles, metadata and a PNG passes."""
    body = (
        '<sodipodi:namedview xmlns:sodipodi="http://sodipodi.sourceforge.net/DTD/'
        'sodipodi-0.dtd" pagecolor="#ffffff"/>'
        '<metadata><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>'
        "</metadata>"
        "<style>.ring { stroke: #123456; fill: url(#shine) }</style>"
        '<defs><linearGradient id="shine"><stop offset="0" stop-color="#fff"/>'
        '</linearGradient><filter id="f"><feGaussianBlur stdDeviation="2"/></filter>'
        "</defs>"
        '<circle class="ring" cx="60" cy="60" r="50" filter="url(#f)"/>'
        '<image width="10" height="10" xlink:href="data:image/png;base64,iVBORw0KGgo="/>'
        '<text x="10" y="60" style="font-family: sans-serif">Badge</text>'
    )

    checked = check_image(svg(body))

    assert checked.media_type == "image/svg+xml"
    assert checked.width == 120


def prefixed_svg(body: str = "", attributes: str = 'width="120" height="120"') -> bytes:
    """An SVG whose elements carry the prefix `s:` bound to the SVG namespace."""
    return (
        f'<s:svg xmlns:s="http://www.w3.org/2000/svg" '
        f'xmlns:xlink="http://www.w3.org/1999/xlink" {attributes}>{body}</s:svg>'
    ).encode()


@pytest.mark.parametrize(
    "content",
    [
        prefixed_svg('<s:circle cx="60" cy="60" r="50" fill="url(#g)"/>'),
        b'<?xml version="1.0"?>\n' + prefixed_svg('<s:rect width="10" height="10"/>'),
        prefixed_svg(
            '<s:defs><s:radialGradient id="g"/></s:defs><s:use xlink:href="#g"/>'
        ),
    ],
    ids=["bare", "xml-declaration", "internal-reference"],
)
def test_prefixed_svg_accepted(content):
    """A root element with a prefix bound to the SVG namespace is an SVG image."""
    checked = check_image(content)

    assert checked.media_type == "image/svg+xml"
    assert (checked.width, checked.height) == (120, 120)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("<s:script>alert(1)</s:script>", "<script> element"),
        ('<s:rect s:onclick="alert(1)"/>', "event handler"),
        ('<s:rect onload="alert(1)"/>', "event handler"),
        ("<s:foreignObject><p>x</p></s:foreignObject>", "<foreignObject>"),
        (f'<s:a xlink:href="{JS}"><s:rect/></s:a>', "<a> element"),
        ('<s:image xlink:href="https://evil.example/x.png"/>', "outside resource"),
        ('<s:image s:href="https://evil.example/x.png"/>', "outside resource"),
        (
            '<s:use x:href="https://evil.example/s.svg#a" '
            'xmlns:x="http://www.w3.org/1999/xlink"/>',
            "outside resource",
        ),
        (
            "<s:style>@import 'https://evil.example/x.css';</s:style>",
            "outside resource",
        ),
        ('<s:rect fill="url(https://evil.example/p.svg#g)"/>', "outside resource"),
        (f'<s:set attributeName="href" to="{JS}"/>', "<set> element"),
        (
            '<svg:script xmlns:svg="http://www.w3.org/2000/svg">alert(1)</svg:script>',
            "<script> element",
        ),
        (
            '<h:iframe xmlns:h="http://www.w3.org/1999/xhtml" src="x"/>',
            "HTML or MathML <iframe>",
        ),
    ],
)
def test_prefixed_svg_trick_rejected(body, fragment):
    """Scripts, handlers, foreign objects and outside references fail under a prefix."""
    with pytest.raises(ImageRejected) as raised:
        check_image(prefixed_svg(body))

    assert fragment in str(raised.value)


def test_prefixed_non_svg_root_rejected():
    """A prefixed root outside the SVG namespace is not an SVG image."""
    content = (
        b'<s:svg xmlns:s="http://www.w3.org/1999/xhtml" width="120" height="120"/>'
    )

    with pytest.raises(ImageRejected) as raised:
        check_image(content)

    assert "not <svg>" in str(raised.value)


@pytest.mark.parametrize(
    "content",
    [
        codecs.BOM_UTF8 + prefixed_svg(),
        codecs.BOM_UTF8 + b'<?xml version="1.0" encoding="UTF-8"?>\n' + prefixed_svg(),
    ],
    ids=["bare", "xml-declaration"],
)
def test_svg_with_byte_order_mark_accepted(content):
    """An SVG that starts with a UTF-8 byte order mark is an SVG image."""
    checked = check_image(content)

    assert checked.media_type == "image/svg+xml"
    assert (checked.width, checked.height) == (120, 120)
