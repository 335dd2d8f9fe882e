"""The Canvas setup guide names commands and options that the CLI has."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from lti_tool.cli import main

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "canvas-setup.md"


def _command(words: list[str]) -> click.Command:
    command = main
    for word in words:
        command = command.commands[word]
    return command


def _guide_lines(prefix: str) -> list[str]:
    """Return the guide's command lines that start with `prefix`, joined over "\\"."""
    text = GUIDE.read_text(encoding="utf-8").replace("\\\n", " ")
    return [
        line.strip() for line in text.splitlines() if line.strip().startswith(prefix)
    ]


@pytest.mark.parametrize(
    "words",
    [["lms", "connect", "canvas"], ["lms", "test"], ["lms", "list"]],
)
def test_guide_options_exist(words):
    """Every option the guide gives a command is an option of that command."""
    command = _command(words)
    options = {name for param in command.params for name in param.opts}
    prefix = "hpass-bridge " + " ".join(words)
    # Fences are removed first, because their three backticks would pair up the
    # inline spans wrongly.
    prose = GUIDE.read_text(encoding="utf-8").replace("```", "")
    mentioned = _guide_lines(prefix) + [
        span for span in re.findall(r"`([^`]+)`", prose) if span.startswith(prefix)
    ]

    assert mentioned, f"the guide does not name {prefix}"
    for line in mentioned:
        for option in re.findall(r"(?<!\S)(--[a-z-]+)", line):
            assert option in options, f"{prefix} has no {option}"


def test_guide_connect_options_in_prose():
    """The options named in the connect step's prose are connect canvas options."""
    command = _command(["lms", "connect", "canvas"])
    options = {name for param in command.params for name in param.opts}
    text = GUIDE.read_text(encoding="utf-8")
    step = text[text.index("## 2.") : text.index("hpass-bridge lms test")]

    for option in set(re.findall(r"`(--[a-z-]+)`", step)):
        assert option in options, option


def test_guide_names_no_python_function():
    """The guide gives commands to run, not Python functions to call."""
    text = GUIDE.read_text(encoding="utf-8")

    assert "connectors.canvas.connection" not in text
    assert "hpass-bridge lms connect canvas" in text
