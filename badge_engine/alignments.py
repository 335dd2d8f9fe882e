"""Alignments: the skills or standards frameworks an achievement points to.

HPass employers search portfolios by skill, so an achievement can name the skills it
shows, each as a link into a framework (ESCO, the Core Humanitarian Competency
Framework, a provider's own list). Stored with the Open Badges 3.0 field names; the
OB 2.0 BadgeClass uses the same names without `targetType`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from badge_engine.errors import BadgeEngineError

MAX_ALIGNMENTS = 10
# Maximum length of each field, in characters.
FIELD_LIMITS = {
    "targetName": 200,
    "targetUrl": 500,
    "targetDescription": 1000,
    "targetFramework": 200,
    "targetCode": 100,
    "targetType": 50,
}
REQUIRED_FIELDS = ("targetName", "targetUrl")
# OB 3.0 AlignmentTargetType values; an extension starts with "ext:".
TARGET_TYPES = frozenset(
    {
        "ceasn:Competency",
        "ceterms:Credential",
        "CFItem",
        "CFRubric",
        "CFRubricCriterion",
        "CFRubricCriterionLevel",
        "CTDL",
    }
)


_EXTENSION_TYPE = re.compile(r"ext:[A-Za-z0-9._-]+")


class InvalidAlignment(BadgeEngineError):
    """An alignment with a missing, too long or malformed field.

    `position` (1-based) and `field` name the alignment and field at fault when the
    error is about one of them, else they are None.
    """

    def __init__(
        self, message: str, *, position: int | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.position = position
        self.field = field


def validate_alignments(items: Any) -> list[dict[str, str]]:
    """Return the alignments cleaned (values stripped, empty fields dropped).

    Raises InvalidAlignment naming the alignment (1-based) and the field at fault.
    When several are invalid, the error is the first that list_alignment_errors
    returns.
    """
    errors = list_alignment_errors(items)
    if errors:
        raise errors[0]
    if items is None:
        return []
    return [_check(position, item)[0] for position, item in enumerate(items, start=1)]


def list_alignment_errors(items: Any) -> list[InvalidAlignment]:
    """Return every error of the alignments, in alignment and field order.

    A form shows all of them at once, so the user fixes them in one round.
    """
    if items is None:
        return []
    if not isinstance(items, list):
        return [
            InvalidAlignment(
                f"alignments must be a list of objects, got {type(items).__name__}"
            )
        ]
    errors = []
    if len(items) > MAX_ALIGNMENTS:
        errors.append(
            InvalidAlignment(
                f"an achievement takes at most {MAX_ALIGNMENTS} alignments, "
                f"got {len(items)}"
            )
        )
    for position, item in enumerate(items, start=1):
        errors.extend(_check(position, item)[1])
    return errors


def _check(position: int, item: Any) -> tuple[dict[str, str], list[InvalidAlignment]]:
    """Return the alignment cleaned and the errors of each of its fields."""
    if not isinstance(item, dict):
        return {}, [
            InvalidAlignment(
                f"alignment {position} must be an object", position=position
            )
        ]
    errors = []
    unknown = sorted(set(item) - set(FIELD_LIMITS))
    if unknown:
        errors.append(
            InvalidAlignment(
                f"alignment {position} has unknown fields {', '.join(unknown)}; the "
                f"fields are {', '.join(FIELD_LIMITS)}",
                position=position,
            )
        )
    cleaned: dict[str, str] = {}
    invalid_fields = set()
    for field, limit in FIELD_LIMITS.items():
        value = item.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            errors.append(
                InvalidAlignment(
                    f"alignment {position}: {field} must be text",
                    position=position,
                    field=field,
                )
            )
            invalid_fields.add(field)
            continue
        value = value.strip()
        if len(value) > limit:
            errors.append(
                InvalidAlignment(
                    f"alignment {position}: {field} is {len(value)} characters long; "
                    f"the limit is {limit}",
                    position=position,
                    field=field,
                )
            )
            invalid_fields.add(field)
        if value:
            cleaned[field] = value
    for field in REQUIRED_FIELDS:
        if field not in cleaned and field not in invalid_fields:
            errors.append(
                InvalidAlignment(
                    f"alignment {position}: {field} is missing",
                    position=position,
                    field=field,
                )
            )
    url = cleaned.get("targetUrl")
    parts = urlsplit(url or "")
    if (
        url
        and "targetUrl" not in invalid_fields
        and (parts.scheme not in ("http", "https") or not parts.netloc)
    ):
        errors.append(
            InvalidAlignment(
                f"alignment {position}: targetUrl must be an absolute http or https "
                f"URL, got {url!r}",
                position=position,
                field="targetUrl",
            )
        )
    target_type = cleaned.get("targetType")
    if (
        target_type
        and "targetType" not in invalid_fields
        and target_type not in TARGET_TYPES
        and not _EXTENSION_TYPE.fullmatch(target_type)
    ):
        errors.append(
            InvalidAlignment(
                f"alignment {position}: targetType {target_type!r} is not an OB 3.0 "
                "alignment target type; use one of "
                f"{', '.join(sorted(TARGET_TYPES))} or an ext: value",
                position=position,
                field="targetType",
            )
        )
    return cleaned, errors


def ob3_alignments(alignments: list[dict[str, str]] | None) -> list[dict[str, Any]]:
    """Return stored alignments as OB 3.0 Alignment objects."""
    return [{"type": ["Alignment"], **item} for item in alignments or ()]


def ob2_alignments(alignments: list[dict[str, str]] | None) -> list[dict[str, str]]:
    """Return stored alignments as OB 2.0 AlignmentObjects (no targetType there)."""
    return [
        {field: value for field, value in item.items() if field != "targetType"}
        for item in alignments or ()
    ]
