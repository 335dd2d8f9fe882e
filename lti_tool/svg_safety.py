"""Safety check of an uploaded SVG badge image, by allow-list.

The image is served from the bridge's own origin and baked into credentials that
other sites show, so it must not run code, load anything or navigate anywhere.
Elements are matched by namespace and local name, never by the literal tag, so a
file that binds a prefix to the SVG namespace (`<s:svg xmlns:s=...>`) is checked like
one that uses the default namespace. Elements in the SVG namespace must be drawing
elements from `SVG_ELEMENTS`. So
animation is rejected, because `<animate>` and `<set>` can rewrite an `href` to a
`javascript:` URL, and so are links, scripts and embedded HTML. Elements of other
namespaces that browsers do not act on (Inkscape's and Illustrator's editor data)
pass, while those of HTML and MathML do not. Every attribute value and stylesheet may refer only to
fragments inside the file (`#id`). Event handler attributes, DOCTYPEs and processing
instructions are rejected.

CSS is checked wherever a browser reads it: all text inside `<style>`, CDATA sections
and the text around child elements included, `style` attributes, and every other
attribute without a namespace or in the SVG namespace, because SVG 2 parses
presentation attributes (`fill`, `cursor`, `filter`) as CSS values.
"""

from __future__ import annotations

import re
from xml.etree import ElementTree

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

SVG_NAMESPACE = "http://www.w3.org/2000/svg"
# Namespaces whose elements a browser renders or runs inside an SVG document.
ACTIVE_NAMESPACES = {
    "http://www.w3.org/1999/xhtml",
    "http://www.w3.org/1998/Math/MathML",
}
# Drawing, text, paint-server, clipping and filter elements of SVG 1.1 and SVG 2.
SVG_ELEMENTS = frozenset(
    """
    svg g defs symbol use title desc metadata switch style
    path rect circle ellipse line polyline polygon
    text tspan textPath
    linearGradient radialGradient stop pattern clipPath mask marker image
    filter feBlend feColorMatrix feComponentTransfer feComposite feConvolveMatrix
    feDiffuseLighting feDisplacementMap feDistantLight feDropShadow feFlood feFuncA
    feFuncB feFuncG feFuncR feGaussianBlur feMerge feMergeNode feMorphology feOffset
    fePointLight feSpecularLighting feSpotLight feTile feTurbulence
    """.split()
)
# Raster images embedded as data URLs in `<image>`; an embedded SVG could script.
_EMBEDDED_IMAGE = re.compile(
    r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]*$", re.IGNORECASE
)
# `url(` with anything but a fragment inside, after optional quotes and spaces.
_OUTSIDE_URL = re.compile(r"url\(\s*['\"]?\s*(?!#)", re.IGNORECASE)
# Whitespace and control characters that browsers drop inside a URL scheme.
_IGNORED_IN_SCHEME = re.compile(r"[\x00-\x20]")
_CSS_LOADERS = ("@import", "@font-face", "image-set(", "image(", "src(", "expression(")


class UnsafeSvg(ValueError):
    """The SVG contains something that could run code or load a resource.

    The message is English for logs and the command line. `code` names the cause
    and `details` contains the values it names, so a page can show its own text.
    """

    def __init__(self, message: str, *, code: str, **details: str) -> None:
        super().__init__(message)
        self.code = code
        self.details = details


class _TreeWithInstructions(ElementTree.TreeBuilder):
    """A tree builder that also records processing instructions outside the root."""

    def __init__(self) -> None:
        super().__init__()
        self.instructions: list[str] = []

    def pi(self, target, text=None):
        self.instructions.append(f"{target} {text or ''}".strip())
        return super().pi(target, text)


def parse_svg(content: bytes) -> ElementTree.Element:
    """Parse the SVG with DTDs, entities and external references forbidden.

    A processing instruction is rejected here, because an `<?xml-stylesheet?>` loads
    a stylesheet from anywhere and the element tree does not keep those before the
    root element.
    """
    target = _TreeWithInstructions()
    parser = DefusedXMLParser(
        target=target, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(content)
        root = parser.close()
    except DefusedXmlException:
        raise UnsafeSvg(
            "the SVG declares a DOCTYPE or entities, which are not allowed; "
            "save it as plain SVG",
            code="svg_doctype",
        ) from None
    if target.instructions:
        raise UnsafeSvg(
            f"the SVG contains the processing instruction <?{target.instructions[0]}?>, "
            "which could load a stylesheet; remove it and upload again",
            code="svg_instruction",
            instruction=target.instructions[0],
        )

    return root


def check_svg_tree(root: ElementTree.Element) -> None:
    """Raise UnsafeSvg naming the first element or attribute that is not allowed."""
    for element in root.iter():
        namespace, name = _split(element.tag)
        _check_element(namespace, name)
        for attribute, value in element.attrib.items():
            _check_attribute(name, attribute, value)
        if name == "style" and namespace in (SVG_NAMESPACE, ""):
            # The parser merges CDATA into the text, and itertext() adds the text of
            # child elements and the text after them, so no part of the sheet is
            # skipped whichever text nodes a browser reads.
            _check_css("".join(element.itertext()), "the <style> element")


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag


def _check_element(namespace: str, name: str) -> None:
    if namespace in ACTIVE_NAMESPACES:
        raise UnsafeSvg(
            f"the SVG contains an HTML or MathML <{name}> element, which is not "
            "allowed in a badge image; remove it and upload again",
            code="svg_foreign_element",
            element=name,
        )
    if namespace in (SVG_NAMESPACE, "") and name not in SVG_ELEMENTS:
        raise UnsafeSvg(
            f"the SVG contains a <{name}> element, which is not allowed in a badge "
            "image because it could run code, animate or link elsewhere; remove it "
            "and upload again",
            code="svg_element",
            element=name,
        )


def _check_attribute(element_name: str, attribute: str, value: str) -> None:
    namespace, name = _split(attribute)
    if name.lower().startswith("on"):
        raise UnsafeSvg(
            f"the SVG has an event handler attribute {name!r}, which could run "
            "code; remove it and upload again",
            code="svg_event_handler",
            attribute=name,
        )
    if name == "href":
        # An href in any namespace is checked, not only in none and XLink, so no
        # guess about which prefixes a browser follows is needed.
        _check_reference(element_name, value)
        return
    scheme = _IGNORED_IN_SCHEME.sub("", value).lower()
    if scheme.startswith(("javascript:", "vbscript:", "data:")):
        raise UnsafeSvg(
            f"the SVG's {name!r} attribute contains a {scheme.split(':')[0]}: URL; "
            "remove it and upload again",
            code="svg_script_url",
            attribute=name,
            scheme=scheme.split(":")[0],
        )
    in_svg = namespace in (SVG_NAMESPACE, "")
    if in_svg or name == "style" or "url(" in value.lower():
        _check_css(value, f"the {name!r} attribute")


def _check_reference(element_name: str, value: str) -> None:
    target = value.strip()
    if target.startswith("#"):
        return
    if element_name == "image" and _EMBEDDED_IMAGE.match(target):
        return
    raise UnsafeSvg(
        "the SVG refers to an outside resource "
        f"({target[:60]!r}); embed everything in the file",
        code="svg_outside_resource",
        target=target[:60],
    )


def _check_css(css: str, where: str) -> None:
    lowered = css.lower()
    if "\\" in css:
        # CSS escapes can spell `url(` or `@import` past any text match.
        raise UnsafeSvg(
            f"{where} of the SVG uses CSS escapes (backslashes); write the styles "
            "without them",
            code="svg_css_escape",
        )
    if _OUTSIDE_URL.search(css) or any(loader in lowered for loader in _CSS_LOADERS):
        raise UnsafeSvg(
            f"the SVG refers to an outside resource in {where}; embed everything "
            "in the file",
            code="svg_css_outside_resource",
        )
    if "javascript:" in _IGNORED_IN_SCHEME.sub("", lowered):
        raise UnsafeSvg(
            f"{where} of the SVG contains a javascript: URL; remove it and upload again",
            code="svg_css_script_url",
        )
