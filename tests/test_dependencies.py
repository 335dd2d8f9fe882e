"""Declared dependencies: each installed extra must be enough for the code it runs.

The test environment installs every extra, so an import that works here can still
fail on a server installed with `pip install -e '.[server]'`. These tests import
modules in a subprocess that can see only the distributions that pyproject.toml's
requirements pull in, followed through each package's own declared requirements.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"

# Run in the subprocess: block each top-level module whose distributions are all
# outside the allowed names (argv[1]), then import the module named in argv[2].
_RESTRICTED_IMPORT = """
import importlib.abc, importlib.metadata, json, re, sys
allowed, module = set(json.loads(sys.argv[1])), sys.argv[2]
owners = importlib.metadata.packages_distributions()

def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()

class BlockUndeclared(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        names = {canonical(name) for name in owners.get(top, [])}
        if names and not names & allowed:
            raise ModuleNotFoundError(f"No module named {top!r}", name=top)
        return None

sys.meta_path.insert(0, BlockUndeclared())
importlib.import_module(module)
"""


def declared_closure(extras: tuple[str, ...]) -> set[str]:
    """Return the canonical names of every distribution `hpass-bridge[extras]` pulls in."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    texts = list(project["dependencies"])
    for extra in extras:
        texts.extend(project["optional-dependencies"][extra])

    found: set[str] = set()
    pending = [(Requirement(text), "") for text in texts]
    while pending:
        requirement, parent_extra = pending.pop()
        marker = requirement.marker
        if marker and not marker.evaluate({"extra": parent_extra}):
            continue
        name = canonicalize_name(requirement.name)
        key = name + "[" + ",".join(sorted(requirement.extras)) + "]"
        if key in found:
            continue
        found.add(key)
        found.add(name)
        try:
            child_texts = distribution(requirement.name).requires or []
        except PackageNotFoundError:
            continue
        for text in child_texts:
            child = Requirement(text)
            if child.marker is None or child.marker.evaluate({"extra": ""}):
                pending.append((child, ""))
            for extra in requirement.extras:
                if child.marker and child.marker.evaluate({"extra": extra}):
                    pending.append((child, extra))

    # The bridge's own packages, installed editable under the project's name.
    return {name for name in found if "[" not in name} | {"hpass-bridge"}


def import_with_only(allowed: set[str], module: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _RESTRICTED_IMPORT, json.dumps(sorted(allowed)), module],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_server_extra_imports_kombu_redis():
    allowed = declared_closure(("server",))
    result = import_with_only(allowed, "kombu.transport.redis")
    assert result.returncode == 0, result.stderr


def test_restricted_import_blocks_undeclared():
    """The check itself: without `packaging`, kombu's Redis transport must not load."""
    allowed = declared_closure(("server",)) - {"packaging"}
    result = import_with_only(allowed, "kombu.transport.redis")
    assert result.returncode != 0
    assert "packaging" in result.stderr


def test_server_extra_imports_cli():
    allowed = declared_closure(("server",))
    result = import_with_only(allowed, "lti_tool.cli")
    assert result.returncode == 0, result.stderr
