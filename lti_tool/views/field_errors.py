"""A form field's error message with a secondary detail that is not translated."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup


@dataclass(frozen=True)
class FieldError:
    """A translated error message beside a field, with the LMS's own error text.

    `detail` is the English text of the error an LMS or its client raised. The
    field shows it after the message, and `str()` returns the message alone, so the
    error summary at the top of the form lists only the translated text.
    """

    message: str
    detail: str

    def __str__(self) -> str:
        return self.message

    def __html__(self) -> Markup:
        """Return the message as HTML, keeping Markup from `gettext_html`, such as
        an isolated URL, and escaping plain text."""
        return Markup.escape(self.message)
