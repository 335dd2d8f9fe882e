"""Translated texts for the badge image rejections of `lti_tool.images`.

`ImageRejected` keeps its English message for logs and the command line. The
instructor's badge form shows the text below for the rejection's `code`, filled in
with the values of its `details`.
"""

from __future__ import annotations

from lti_tool import i18n
from lti_tool.i18n import gettext as _
from lti_tool.images import ImageRejected


def image_rejection_text(error: ImageRejected) -> str:
    """Return the translated text for a rejected badge image."""
    details = error.details
    code = error.code
    if code == "too_large":
        return _(
            "The image is %(size)s KB. Upload a file of at most %(limit)s KB.",
            size=i18n.localized_number(details["size_kb"]),
            limit=i18n.localized_number(details["limit_kb"]),
        )
    if code == "not_png_or_svg":
        return _("The file is not a PNG or SVG image. Upload a PNG or SVG file.")
    if code == "bad_dimensions":
        return _(
            "The image is %(width)s × %(height)s pixels. Each side must be between "
            "%(min)s and %(max)s pixels, so resize it and upload it again.",
            width=i18n.localized_number(details["width"]),
            height=i18n.localized_number(details["height"]),
            min=i18n.localized_number(details["min_side"]),
            max=i18n.localized_number(details["max_side"]),
        )
    if code == "png_damaged":
        return _("The PNG file is damaged. Export it again and upload the new file.")
    if code == "svg_root":
        return _("The file's root element is not <svg>. Upload an SVG image.")
    if code == "svg_invalid_xml":
        return _("The SVG file is not valid XML. Export it again and upload it.")
    if code == "svg_no_size":
        return _(
            "The SVG has no width and height in pixels and no viewBox. Set its "
            "width and height in pixels and upload it again."
        )
    if code == "svg_doctype":
        return _(
            "The SVG declares a DOCTYPE or entities, which are not allowed. Save it "
            "as plain SVG and upload it again."
        )
    if code == "svg_instruction":
        return _(
            "The SVG contains the processing instruction <?%(instruction)s?>, which "
            "could load a stylesheet. Remove it and upload the image again.",
            instruction=details["instruction"],
        )
    if code in ("svg_element", "svg_foreign_element"):
        return _(
            "The SVG contains a <%(element)s> element, which is not allowed in a "
            "badge image because it could run code, animate or link elsewhere. "
            "Remove it and upload the image again.",
            element=details["element"],
        )
    if code == "svg_event_handler":
        return _(
            "The SVG has the event handler attribute %(attribute)s, which could run "
            "code. Remove it and upload the image again.",
            attribute=details["attribute"],
        )
    if code == "svg_script_url":
        return _(
            "The SVG's %(attribute)s attribute contains a %(scheme)s: address, "
            "which could run code. Remove it and upload the image again.",
            attribute=details["attribute"],
            scheme=details["scheme"],
        )
    if code == "svg_css_script_url":
        return _(
            "The SVG's styles contain a javascript: address, which could run code. "
            "Remove it and upload the image again."
        )
    if code in ("svg_outside_resource", "svg_css_outside_resource"):
        return _(
            "The SVG loads a resource from outside the file. Embed everything in "
            "the file and upload it again."
        )
    if code == "svg_css_escape":
        return _(
            "The SVG's styles use CSS escapes (backslashes). Write the styles "
            "without them and upload the image again."
        )
    # NOTE: a code added to lti_tool/images.py or svg_safety.py without a text here
    # shows this general text; the English message is still logged.
    return _("The image was not accepted. Upload a different PNG or SVG file.")
