"""The review policy: which fields wait for a person, by who sent the change.

Read from `templates/records-review.yaml`, which staff edit; a field name the file gets
wrong stops the load with the name, so a typo never silently lets changes through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Final

import yaml

from office.records.updates import PATIENT_FIELDS, Submitter
from office.render import TEMPLATES_DIR

__all__ = ["COVERAGE", "POLICY_FILE", "PolicyError", "ReviewPolicy", "load_policy"]

POLICY_FILE: Final = TEMPLATES_DIR / "records-review.yaml"
COVERAGE: Final = "coverage"  # any change to the patient's insurance
_KNOWN: Final = frozenset(PATIENT_FIELDS) | {COVERAGE}


class PolicyError(ValueError):
    """The review policy file cannot be read; the message says where."""


@dataclass(frozen=True, slots=True)
class ReviewPolicy:
    """Per submitter, the fields whose changes become review items."""

    review: dict[Submitter, frozenset[str]] = field(default_factory=dict)

    def held(self, submitter: Submitter) -> frozenset[str]:
        """The fields a change from `submitter` may not apply by itself."""
        return self.review.get(submitter, frozenset())


def load_policy(path: Path | None = None) -> ReviewPolicy:
    """The policy in `path` (the repository's templates/records-review.yaml by default)."""
    if path is None:
        return _default()
    return _read(path)


@cache
def _default() -> ReviewPolicy:
    return _read(POLICY_FILE)


def _read(path: Path) -> ReviewPolicy:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"{path}: cannot be read ({type(exc).__name__})") from None
    if not isinstance(document, dict):
        raise PolicyError(f"{path}: expected a mapping of submitters")
    review: dict[Submitter, frozenset[str]] = {}
    for name, entry in document.items():
        try:
            submitter = Submitter(name)
        except ValueError:
            raise PolicyError(f"{path}: unknown submitter {name!r}") from None
        fields = (entry or {}).get("review", []) if isinstance(entry, dict) else None
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            raise PolicyError(f"{path}: {name}.review must be a list of field names")
        unknown = sorted(set(fields) - _KNOWN)
        if unknown:
            raise PolicyError(f"{path}: {name}.review names unknown fields: {', '.join(unknown)}")
        review[submitter] = frozenset(fields)
    return ReviewPolicy(review)
