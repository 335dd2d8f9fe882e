"""Check that the installed packages satisfy every requirement in pyproject.toml.

scripts/test.sh installs third-party packages from requirements/lock.txt only, so a
dependency added to pyproject.toml without regenerating the lock would be missing
from the test run. This prints each unmet requirement and exits 1.
"""

from __future__ import annotations

import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement

PROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
# The extras scripts/test.sh needs; `test` names the others.
EXTRAS = ("test",)


def requirements(project: dict) -> list[Requirement]:
    """Return the base requirements and those of `EXTRAS`, self-references expanded."""
    name = project["name"]
    optional = project.get("optional-dependencies", {})
    found = [Requirement(text) for text in project.get("dependencies", [])]
    pending, seen = list(EXTRAS), set()
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in optional.get(extra, []):
            requirement = Requirement(text)
            if requirement.name == name:
                pending.extend(requirement.extras)
            else:
                found.append(requirement)

    return found


def unmet(requirement: Requirement) -> str | None:
    if requirement.marker and not requirement.marker.evaluate():
        return None
    try:
        installed = version(requirement.name)
    except PackageNotFoundError:
        return f"{requirement} is not installed"
    if not requirement.specifier.contains(installed, prereleases=True):
        return f"{requirement} is not met by the installed {installed}"
    return None


def main() -> int:
    project = tomllib.loads(PROJECT.read_text())["project"]
    problems = [problem for problem in map(unmet, requirements(project)) if problem]
    for problem in problems:
        print(f"lock check: {problem}")
    if problems:
        print(
            "lock check FAILED: requirements/lock.txt does not match pyproject.toml; "
            "regenerate it with the pip-compile command written at its top"
        )
        return 1

    return 0


if __name__ == "__main__":
    sys.exit(main())
