"""Checks shared by every way of writing a badge's text (pages, API and CLI)."""

from __future__ import annotations

import unicodedata

# Unicode categories of characters that show nothing on their own: format characters
# (U+200B ZERO WIDTH SPACE, U+200F RIGHT-TO-LEFT MARK), controls and separators.
# str.strip() removes only some of them.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Zs", "Zl", "Zp"})

# The bidirectional embedding, override and isolate controls (U+202A to U+202E and
# U+2066 to U+2069). Each changes the display order of the text after it, so a
# name such as "abc\u202edcba" is shown differently from the characters stored.
# The marks U+200E and U+200F only set the direction at one point and are allowed.
BIDI_CONTROLS = frozenset(
    [chr(code) for code in range(0x202A, 0x202F)]
    + [chr(code) for code in range(0x2066, 0x206A)]
)


def is_invisible(text: str) -> bool:
    return all(
        unicodedata.category(character) in _INVISIBLE_CATEGORIES for character in text
    )


def first_bidi_control(text: str) -> tuple[int, str] | None:
    """Return the zero-based position and the character of the first bidirectional
    control, or None."""
    for position, character in enumerate(text):
        if character in BIDI_CONTROLS:
            return position, character
    return None


def character_label(character: str) -> str:
    """Return the code point and Unicode name, such as `U+202E RIGHT-TO-LEFT OVERRIDE`."""
    return f"U+{ord(character):04X} {unicodedata.name(character, 'UNNAMED')}"
