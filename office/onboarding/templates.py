"""Checklist templates: `templates/checklists/*.yaml`, one per role plus the common part.

A role file names its `role`, the files it `includes` (the common part) and its own items;
the loader merges them and checks everything a typo could break, before any checklist is
built from them: an unknown owner, category or evidence kind, an offset out of range, a
dependency on a key that is not there, a dependency cycle, a missing include, a key used
twice. Each problem names the file, the item and the field. Staff edit these files; the
code never trusts them unchecked.

The version stored on a checklist is the file's own `version` and a hash of the bytes of
the file and its includes: an edit changes the version even when nobody bumped it, and a
checklist already built keeps the items it was built with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml

__all__ = [
    "CATEGORIES",
    "CHECKLIST_ROLES",
    "DEFAULT_DIRECTORY",
    "EVIDENCE_KINDS",
    "OWNERS",
    "Template",
    "TemplateError",
    "TemplateItem",
    "load_templates",
    "template_for",
]

DEFAULT_DIRECTORY: Final = Path(__file__).resolve().parents[2] / "templates" / "checklists"

CHECKLIST_ROLES: Final = (
    "front_desk",
    "medical_assistant",
    "nurse",
    "billing",
    "provider",
    "office_manager",
)
# Who can own an item: the person themselves, their manager, or the holders of a role.
OWNERS: Final = frozenset({"new_hire", "manager", "it", "compliance", *CHECKLIST_ROLES})
CATEGORIES: Final = {
    "accounts_access": "Accounts and access",
    "compliance_training": "HIPAA and compliance training",
    "hr_paperwork": "HR paperwork",
    "equipment": "Equipment",
    "shadowing": "Shadowing",
}
EVIDENCE_KINDS: Final = frozenset({"completion_date", "certificate", "course_version", "signature"})
MIN_OFFSET: Final = -30  # business days before day one
MAX_OFFSET: Final = 120
_ITEM_FIELDS: Final = frozenset(
    {
        "key",
        "title",
        "description",
        "owner",
        "due",
        "depends_on",
        "evidence",
        "category",
        "recurrence_months",
        "required_by_law",
        "access",
    }
)


class TemplateError(ValueError):
    """One or more problems in the checklist templates, each naming file, item and field."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True, slots=True)
class TemplateItem:
    """One item as a template declares it; `source` is the file it came from."""

    key: str
    title: str
    description: str
    owner: str
    due: int  # business days from the start date; negative is before day one
    depends_on: tuple[str, ...]
    evidence: tuple[str, ...]
    category: str
    recurrence_months: int | None
    required_by_law: bool
    access: str | None
    source: str


@dataclass(frozen=True, slots=True)
class Template:
    """A role's whole checklist: its includes' items first, then its own."""

    name: str
    role: str
    version: str
    items: tuple[TemplateItem, ...]

    def item(self, key: str) -> TemplateItem:
        for item in self.items:
            if item.key == key:
                return item
        raise KeyError(key)


@dataclass(frozen=True, slots=True)
class _File:
    name: str
    role: str | None
    version: str
    includes: tuple[str, ...]
    items: tuple[TemplateItem, ...]
    raw: bytes


def load_templates(directory: Path = DEFAULT_DIRECTORY) -> dict[str, Template]:
    """Every role's template, by role, merged with its includes and validated.

    Raises:
        TemplateError: listing every problem found, not only the first.
    """
    problems: list[str] = []
    files: dict[str, _File] = {}
    paths = sorted(directory.glob("*.yaml"))
    if not paths:
        raise TemplateError([f"{directory}: no checklist templates (*.yaml) found"])
    for path in paths:
        parsed = _read_file(path, problems)
        if parsed is not None:
            files[parsed.name] = parsed
    templates: dict[str, Template] = {}
    for parsed in files.values():
        if parsed.role is None:
            continue
        if parsed.role in templates:
            problems.append(f"{parsed.name}.yaml: field role: {parsed.role!r} has two templates")
            continue
        merged = _merge(parsed, files, problems)
        if merged is not None:
            templates[parsed.role] = merged
    for role in CHECKLIST_ROLES:
        if role not in templates and not any(f.role == role for f in files.values()):
            problems.append(f"{directory.name}: no template for role {role!r}")
    if problems:
        raise TemplateError(problems)
    return templates


def template_for(templates: Mapping[str, Template], role: str) -> Template:
    """The template of `role`; a `TemplateError` naming the role when there is none."""
    found = templates.get(role)
    if found is None:
        raise TemplateError([f"no checklist template for role {role!r}"])
    return found


def _read_file(path: Path, problems: list[str]) -> _File | None:
    name = path.stem
    where = path.name
    raw = path.read_bytes()
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problems.append(f"{where}:{line} not valid YAML")
        return None
    if not isinstance(data, dict):
        problems.append(f"{where}: must be a mapping with items")
        return None
    unknown = set(data) - {"role", "version", "includes", "items", "description"}
    for field in sorted(unknown):
        problems.append(f"{where}: field {field}: unknown field")
    role = data.get("role")
    if role is not None and role not in CHECKLIST_ROLES:
        problems.append(f"{where}: field role: {role!r} is not one of {', '.join(CHECKLIST_ROLES)}")
        role = None
    version = data.get("version")
    if not isinstance(version, (str, int)) or isinstance(version, bool) or not str(version):
        problems.append(f"{where}: field version: required (a number or a short text)")
        version = "?"
    includes = data.get("includes", [])
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        problems.append(f"{where}: field includes: must be a list of template names")
        includes = []
    entries = data.get("items")
    if not isinstance(entries, list):
        problems.append(f"{where}: field items: must be a list")
        entries = []
    items: list[TemplateItem] = []
    for index, entry in enumerate(entries, start=1):
        item = _read_item(where, index, entry, problems)
        if item is not None:
            items.append(item)
    return _File(name, role, str(version), tuple(includes), tuple(items), raw)


def _read_item(where: str, index: int, entry: object, problems: list[str]) -> TemplateItem | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: item {index}: must be a mapping")
        return None
    key = entry.get("key")
    if not isinstance(key, str) or not key.replace("_", "").isalnum() or len(key) > 60:
        problems.append(f"{where}: item {index}: field key: required, letters, digits and _")
        return None
    start = len(problems)

    def bad(field: str, message: str) -> None:
        problems.append(f"{where}: item {key}: field {field}: {message}")

    for field in sorted(set(entry) - _ITEM_FIELDS):
        bad(field, "unknown field")
    title = entry.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > 200:
        bad("title", "required, at most 200 characters")
    description = entry.get("description", "")
    if not isinstance(description, str):
        bad("description", "must be text")
    owner = entry.get("owner")
    if owner not in OWNERS:
        bad("owner", f"{owner!r} is not one of {', '.join(sorted(OWNERS))}")
    due = entry.get("due")
    if not isinstance(due, int) or isinstance(due, bool) or not MIN_OFFSET <= due <= MAX_OFFSET:
        bad("due", f"{due!r} must be whole business days from {MIN_OFFSET} to {MAX_OFFSET}")
    depends_on = entry.get("depends_on", [])
    if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
        bad("depends_on", "must be a list of item keys")
        depends_on = []
    evidence = entry.get("evidence", ["completion_date"])
    if not isinstance(evidence, list) or not set(evidence) <= EVIDENCE_KINDS or not evidence:
        bad("evidence", f"must list some of {', '.join(sorted(EVIDENCE_KINDS))}")
        evidence = []
    category = entry.get("category")
    if category not in CATEGORIES:
        bad("category", f"{category!r} is not one of {', '.join(CATEGORIES)}")
    recurrence = entry.get("recurrence_months")
    if recurrence is not None and (
        not isinstance(recurrence, int)
        or isinstance(recurrence, bool)
        or not 1 <= recurrence <= 120
    ):
        bad("recurrence_months", f"{recurrence!r} must be whole months from 1 to 120")
    law = entry.get("required_by_law", False)
    if not isinstance(law, bool):
        bad("required_by_law", "must be true or false")
    access = entry.get("access")
    if access is not None and (not isinstance(access, str) or not access or len(access) > 60):
        bad("access", "must be a short name of what the item grants")
    if len(problems) > start:
        return None
    return TemplateItem(
        key=key,
        title=str(title).strip(),
        description=str(description).strip(),
        owner=str(owner),
        due=int(due),  # type: ignore[arg-type]
        depends_on=tuple(depends_on),
        evidence=tuple(evidence),
        category=str(category),
        recurrence_months=recurrence,
        required_by_law=bool(law),
        access=access,
        source=where,
    )


def _merge(role_file: _File, files: Mapping[str, _File], problems: list[str]) -> Template | None:
    """The role's items after its includes' (each file once), checked as one checklist."""
    start = len(problems)
    order: list[_File] = []
    seen: set[str] = set()

    def visit(current: _File, path: tuple[str, ...]) -> None:
        for name in current.includes:
            if name in path:
                problems.append(f"{current.name}.yaml: field includes: {name!r} includes itself")
                continue
            included = files.get(name)
            if included is None:
                problems.append(f"{current.name}.yaml: field includes: no template {name}.yaml")
                continue
            if name not in seen:
                visit(included, (*path, name))
                if name not in seen:
                    seen.add(name)
                    order.append(included)

    visit(role_file, (role_file.name,))
    order.append(role_file)
    items: dict[str, TemplateItem] = {}
    for part in order:
        for item in part.items:
            if item.key in items:
                first = items[item.key].source
                problems.append(f"{part.name}.yaml: item {item.key}: field key: also in {first}")
                continue
            items[item.key] = item
    for item in items.values():
        for dependency in item.depends_on:
            if dependency not in items:
                problems.append(
                    f"{item.source}: item {item.key}: field depends_on: "
                    f"no item {dependency!r} in the {role_file.role} checklist"
                )
    cycle = _cycle(items)
    if cycle:
        origin = items[cycle[0]]
        problems.append(
            f"{origin.source}: item {origin.key}: field depends_on: a cycle "
            + " -> ".join([*cycle, cycle[0]])
        )
    if len(problems) > start:
        return None
    digest = hashlib.sha256(b"".join(part.raw for part in order)).hexdigest()[:12]
    return Template(
        name=role_file.name,
        role=str(role_file.role),
        version=f"{role_file.version}+{digest}",
        items=tuple(items.values()),
    )


def _cycle(items: Mapping[str, TemplateItem]) -> list[str]:
    """One dependency cycle's keys, in order, or [] when there is none."""
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def walk(key: str) -> list[str]:
        state[key] = 1
        stack.append(key)
        for dependency in items[key].depends_on:
            if dependency not in items:
                continue
            if state.get(dependency) == 1:
                return stack[stack.index(dependency) :]
            if dependency not in state:
                found = walk(dependency)
                if found:
                    return found
        stack.pop()
        state[key] = 2
        return []

    for key in items:
        if key not in state:
            found = walk(key)
            if found:
                return found
    return []
