"""Matching an update without a known id to the patients it may be: scores that explain.

Candidates share the date of birth. Each field that agrees adds its weight (below); the
parts are kept with the total, so a person deciding a possible duplicate sees why. The
weights follow OpenEMR's duplicate score (date of birth 6, first name 5, last name 3,
phone 4, email 7), with sound-alike names (Soundex) worth less than exact ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import jellyfish

__all__ = [
    "CERTAIN",
    "POSSIBLE",
    "WEIGHTS",
    "Grade",
    "Match",
    "Score",
    "grade",
    "score",
]

WEIGHTS: Final[dict[str, int]] = {
    "date_of_birth": 6,
    "first_name": 5,
    "first_name_sounds_like": 3,
    "last_name": 3,
    "last_name_sounds_like": 2,
    "phone": 4,
    "email": 7,
}
# Date of birth, both names and a phone or email: the same person. Date of birth and one
# name, or a phone or email besides: maybe the same person; a person decides.
CERTAIN: Final = 18
POSSIBLE: Final = 11


class Grade(StrEnum):
    CERTAIN = "certain"
    POSSIBLE = "possible"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Score:
    """One candidate's score: the total and the points each agreeing field gave."""

    patient_id: int
    total: int
    parts: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"patient_id": self.patient_id, "total": self.total, "parts": dict(self.parts)}


@dataclass(frozen=True, slots=True)
class Match:
    """The verdict over all candidates: one certain patient, possible ones, or none."""

    grade: Grade
    patient_id: int | None
    scores: tuple[Score, ...]


def score(wanted: Mapping[str, Any], candidate: Mapping[str, Any], patient_id: int) -> Score:
    """Score a candidate (stored values) against the update's values (normalized)."""
    parts: dict[str, int] = {}
    if wanted.get("date_of_birth") is not None and (
        wanted["date_of_birth"] == candidate.get("date_of_birth")
    ):
        parts["date_of_birth"] = WEIGHTS["date_of_birth"]
    for name in ("first_name", "last_name"):
        mine, theirs = _fold(wanted.get(name)), _fold(candidate.get(name))
        if not mine or not theirs:
            continue
        if mine == theirs:
            parts[name] = WEIGHTS[name]
        elif _sound(mine) == _sound(theirs):
            parts[f"{name}_sounds_like"] = WEIGHTS[f"{name}_sounds_like"]
    for name in ("phone", "email"):
        mine, theirs = _fold(wanted.get(name)), _fold(candidate.get(name))
        if mine and mine == theirs:
            parts[name] = WEIGHTS[name]
    return Score(patient_id, sum(parts.values()), parts)


def grade(scores: Sequence[Score], distinct: frozenset[tuple[int, int]] = frozenset()) -> Match:
    """One certain candidate is the patient; several, or only possible ones, are for a person.

    Candidates a person already called distinct from each other do not make one another
    ambiguous: of those, the best score is the patient (ties stay for a person).
    """
    ranked = tuple(sorted(scores, key=lambda s: (-s.total, s.patient_id)))
    certain = [s for s in ranked if s.total >= CERTAIN]
    if len(certain) == 1:
        return Match(Grade.CERTAIN, certain[0].patient_id, ranked)
    if certain:
        best, rest = certain[0], certain[1:]
        known = all(_pair(best.patient_id, other.patient_id) in distinct for other in rest)
        if known and best.total > rest[0].total:
            return Match(Grade.CERTAIN, best.patient_id, ranked)
        return Match(Grade.POSSIBLE, best.patient_id, ranked)
    possible = [s for s in ranked if s.total >= POSSIBLE]
    if possible:
        return Match(Grade.POSSIBLE, possible[0].patient_id, ranked)
    return Match(Grade.NONE, None, ranked)


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def _fold(value: Any) -> str:
    return str(value).casefold().strip() if value is not None else ""


def _sound(name: str) -> str:
    return str(jellyfish.soundex(name))
