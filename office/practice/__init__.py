"""The practice itself from a file: clinics, providers, payers, appointment types, staff.

`office practice import FILE.yaml` stores the file in the inbox (source "file:<name>",
type application/yaml); its handler validates the whole document (`schema`) and applies
it (`apply`): each entry found by its key (clinic name, NPI, payer code, appointment-type
code, staff email) is created or changed field by field with an audit entry, so importing
the same file again changes nothing. Nothing is deleted: a record left out of the file
stays as it is. Staff who join or leave go to the caller's `StaffHook` in the same
transaction (onboarding starts there). An example is templates/examples/practice.yaml.
"""

from __future__ import annotations

from office.practice.apply import (
    PracticeResult,
    StaffChange,
    StaffChangeKind,
    StaffHook,
    apply_practice,
    apply_practice_file,
)
from office.practice.schema import PracticeFile, npi_is_valid, parse_practice

__all__ = [
    "PracticeFile",
    "PracticeResult",
    "StaffChange",
    "StaffChangeKind",
    "StaffHook",
    "apply_practice",
    "apply_practice_file",
    "npi_is_valid",
    "parse_practice",
]
