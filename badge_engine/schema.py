"""Validation of OB 3.0 credentials against the official 1EdTech JSON schema.

The schema is the local copy of the AchievementCredential schema
(`schemas/achievementcredential.json`, JSON Schema draft 2019-09). It checks the JSON
shape only. The proof, the dates and the issuer are checked by `badge_engine.verify`.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft201909Validator
from jsonschema.exceptions import ValidationError, best_match

SCHEMAS_DIR = Path(__file__).parent / "schemas"
ACHIEVEMENT_CREDENTIAL_SCHEMA_FILE = "achievementcredential.json"


@functools.cache
def achievement_credential_validator() -> Draft201909Validator:
    """Return the validator for the AchievementCredential schema, built once.

    Formats such as date-time are checked, which needs the rfc3339-validator package
    that jsonschema's format extra installs. Without it, jsonschema skips that format.
    """
    schema_path = SCHEMAS_DIR / ACHIEVEMENT_CREDENTIAL_SCHEMA_FILE
    with open(schema_path, encoding="utf-8") as schema_file:
        schema = json.load(schema_file)

    Draft201909Validator.check_schema(schema)
    return Draft201909Validator(
        schema, format_checker=Draft201909Validator.FORMAT_CHECKER
    )


def validate_open_badge_credential(document: Any) -> list[str]:
    """Return the schema errors of an OpenBadgeCredential, or an empty list.

    Each error starts with the JSON path of the failing node, such as
    `$.credentialSubject.identifier[0].hashed: 'yes' is not of type 'boolean'`.
    Errors come sorted by path.
    """
    validator = achievement_credential_validator()
    errors = sorted(validator.iter_errors(document), key=lambda error: error.json_path)
    return [_describe(error) for error in errors]


def _describe(error: ValidationError) -> str:
    # A failed oneOf or anyOf reports the whole value, so the message of the closest
    # alternative is more useful.
    if error.context:
        closest = _closest_alternative_error(error.context)
        return (
            f"{error.json_path}: matches none of the allowed forms. The closest "
            f"failed at {closest.json_path}: {_short(closest.message)}"
        )

    return f"{error.json_path}: {_short(error.message)}"


def _closest_alternative_error(errors: list[ValidationError]) -> ValidationError:
    # Each sub-error's schema path starts with the index of its alternative. An
    # alternative whose type does not even match the value (a string where an object
    # was given) is the least helpful, so the others are preferred.
    by_alternative: dict[Any, list[ValidationError]] = {}
    for sub_error in errors:
        by_alternative.setdefault(sub_error.schema_path[0], []).append(sub_error)

    candidates = [
        sub_error
        for alternative in by_alternative.values()
        if not any(e.validator == "type" and not e.relative_path for e in alternative)
        for sub_error in alternative
    ]
    return best_match(candidates or errors)


def _short(message: str, limit: int = 300) -> str:
    if len(message) <= limit:
        return message

    return message[: limit - 1] + "…"
