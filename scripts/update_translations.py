"""Bring messages.pot and each language's messages.po up to date with the page texts.

`pybabel update` writes a catalogue in the template's order and wraps every entry
again, so each run rewrote entries that had not changed. This script edits the files
as text instead. An entry whose message is still in the source keeps its place and
its exact text. A new message is appended at the end, in the order the extractor
finds it, with an empty translation. An entry whose message left the source is
deleted (git history keeps its translation), as are a second entry with the same
message and an obsolete `#~` entry. A file none of whose entries changed is not
written at all.

Usage: python scripts/update_translations.py (from any directory).
"""

from __future__ import annotations

import io
import os
import re
import sys
import tempfile
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = Path("lti_tool/translations")
TEMPLATE = TRANSLATIONS / "messages.pot"
LOCALES = ("fr", "es", "ar")
# pybabel's default line width, so appended entries look like the ones it wrote.
WIDTH = 76
_CREATION_DATE = re.compile(r'"POT-Creation-Date: [^"\\]*\\n"')

MessageKey = tuple[str, str | None]


def main() -> int:
    os.chdir(ROOT)
    template = extract_template()
    changed = update_catalogue(TEMPLATE, template, locale=None)
    print(f"{TEMPLATE}: {'updated' if changed else 'unchanged'}")
    for locale in LOCALES:
        path = TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"
        if path.exists():
            changed = update_catalogue(path, template, locale=locale)
            print(f"{path}: {'updated' if changed else 'unchanged'}")
        else:
            status = run_pybabel(
                ["init", "-i", str(TEMPLATE), "-d", str(TRANSLATIONS), "-l", locale]
            )
            if status:
                return status
    return 0


def run_pybabel(arguments: list[str]) -> int:
    return CommandLineInterface().run(["pybabel", "--quiet", *arguments]) or 0


def extract_template() -> Catalog:
    """Extract the page texts with the mapping in babel.cfg, in source order."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "messages.pot"
        arguments = ["extract", "--no-location", "-F", str(TRANSLATIONS / "babel.cfg")]
        arguments += ["-k", "_", "-k", "gettext", "-k", "gettext_html"]
        arguments += ["-o", str(output), "."]
        status = run_pybabel(arguments)
        if status:
            raise SystemExit(f"pybabel extract failed with exit status {status}")
        with output.open("rb") as file:
            return read_po(file)


def message_key(message: Message) -> MessageKey:
    singular = message.id[0] if isinstance(message.id, (list, tuple)) else message.id
    return singular, message.context


def update_catalogue(path: Path, template: Catalog, locale: str | None) -> bool:
    """Rewrite `path` against the extracted `template`, and return whether it changed.

    `locale` is None for messages.pot, whose entries have empty translations.
    """
    blocks = split_blocks(path.read_text(encoding="utf-8"))
    header = blocks[0]
    if parse_entry(header, "") is not None:
        raise SystemExit(
            f'{path}: the first entry is not the msgid "" header; restore the '
            "header from git and run this script again"
        )
    template_messages = {
        message_key(message): message for message in template if message.id
    }

    entries: list[str] = []
    seen: set[MessageKey] = set()
    changed = False
    for block in blocks[1:]:
        message = parse_entry(header, block)
        key = None if message is None else message_key(message)
        if key is None or key not in template_messages or key in seen:
            changed = True
            continue
        seen.add(key)
        template_message = template_messages[key]
        if message.id == template_message.id:
            entries.append(block)
            continue
        # The same singular with its plural added, removed or reworded.
        string = _carried_string(message, template_message, locale)
        entries.append(render_entry(header, locale, template_message, string))
        changed = True

    for key, template_message in template_messages.items():
        if key not in seen:
            string = _empty_string(template_message)
            entries.append(render_entry(header, locale, template_message, string))
            changed = True

    if changed:
        creation_date = dict(template.mime_headers)["POT-Creation-Date"]
        header = _CREATION_DATE.sub(
            lambda _match: f'"POT-Creation-Date: {creation_date}\\n"', header, count=1
        )
        path.write_text("\n\n".join([header, *entries]) + "\n", encoding="utf-8")
    return changed


def split_blocks(text: str) -> list[str]:
    """Split a PO file into its entries, which blank lines separate.

    A blank line cannot occur inside an entry, because every line of a PO string is
    quoted.
    """
    return [block.strip("\n") for block in re.split(r"\n\s*\n", text) if block.strip()]


def parse_entry(header: str, block: str) -> Message | None:
    """Return the message of one entry, or None for the header or a `#~` entry.

    The entry is read after the file's header, whose Plural-Forms sets how many
    msgstr[n] lines a plural entry has.
    """
    catalog = read_po(io.StringIO(f"{header}\n\n{block}\n"))
    messages = [message for message in catalog if message.id]
    return messages[0] if messages else None


def render_entry(
    header: str, locale: str | None, template_message: Message, string
) -> str:
    """Format one entry as pybabel writes it, with the file header's plural forms."""
    catalog = Catalog(locale=locale)
    catalog.mime_headers = read_po(io.StringIO(header), locale=locale).mime_headers
    catalog.add(
        template_message.id,
        string,
        flags=template_message.flags,
        auto_comments=template_message.auto_comments,
        context=template_message.context,
    )
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=WIDTH, omit_header=True)
    return buffer.getvalue().decode("utf-8").strip("\n")


def _empty_string(template_message: Message) -> str | tuple[str, ...]:
    return ("",) if template_message.pluralizable else ""


def _carried_string(old: Message, template_message: Message, locale: str | None):
    """Keep the translation of a message whose plural text alone changed."""
    if locale is None or old.pluralizable != template_message.pluralizable:
        return _empty_string(template_message)
    return old.string


if __name__ == "__main__":
    sys.exit(main())
