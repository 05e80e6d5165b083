"""The checklist templates: the shipped ones load, and a broken one fails on load with an
error naming the file, the item and the field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from office.onboarding.templates import (
    CHECKLIST_ROLES,
    DEFAULT_DIRECTORY,
    TemplateError,
    load_templates,
)


def test_the_shipped_templates_cover_every_role() -> None:
    templates = load_templates()
    assert set(templates) == set(CHECKLIST_ROLES)
    ma = templates["medical_assistant"]
    keys = {item.key for item in ma.items}
    assert {"hipaa_training", "osha_training", "confidentiality_agreement"} <= keys  # common
    assert {"cpr_certification", "shadow_clinical"} <= keys
    assert ma.item("hipaa_training").recurrence_months == 12
    assert ma.item("cpr_certification").recurrence_months == 24
    assert ma.item("i9_form").required_by_law
    assert ma.item("ehr_account").access == "ehr"


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "checklists"
    shutil.copytree(DEFAULT_DIRECTORY, target)
    return target


def _problems(directory: Path) -> str:
    with pytest.raises(TemplateError) as caught:
        load_templates(directory)
    return str(caught.value)


def test_an_unknown_owner_names_file_item_and_field(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    path = directory / "billing.yaml"
    path.write_text(path.read_text().replace("owner: it\n", "owner: janitor\n", 1))
    assert "billing.yaml: item clearinghouse_account: field owner: 'janitor'" in _problems(
        directory
    )


def test_a_dependency_cycle_is_refused(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    path = directory / "front_desk.yaml"
    text = path.read_text().replace(
        "    access: phone\n", "    access: phone\n    depends_on: [shadow_front_desk]\n", 1
    )
    text = text.replace("depends_on: [scheduling_account]", "depends_on: [phone_extension]")
    path.write_text(text)
    problems = _problems(directory)
    assert "front_desk.yaml: item" in problems
    assert "field depends_on: a cycle" in problems
    assert "phone_extension" in problems
    assert "shadow_front_desk" in problems


def test_a_bad_offset_is_refused(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    path = directory / "nurse.yaml"
    path.write_text(path.read_text().replace("due: -3\n", "due: 1.5\n", 1))
    assert "nurse.yaml: item nursing_license: field due: 1.5" in _problems(directory)


def test_a_missing_include_is_refused(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    path = directory / "provider.yaml"
    path.write_text(path.read_text().replace("includes: [common]", "includes: [commons]"))
    assert "provider.yaml: field includes: no template commons.yaml" in _problems(directory)


def test_an_unknown_dependency_and_a_duplicate_key_are_named(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    path = directory / "office_manager.yaml"
    text = path.read_text().replace("depends_on: [hipaa_training]", "depends_on: [hipa_training]")
    path.write_text(text.replace("key: alarm_code", "key: badge"))
    problems = _problems(directory)
    assert (
        "office_manager.yaml: item admin_accounts: field depends_on: no item 'hipa_training'"
        in (problems)
    )
    assert "office_manager.yaml: item badge: field key: also in common.yaml" in problems


def test_the_version_changes_with_the_files_bytes(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    before = load_templates(directory)["billing"].version
    common = directory / "common.yaml"
    common.write_text(common.read_text().replace("Practice email account", "Email account"))
    after = load_templates(directory)["billing"].version
    assert before != after
    assert before.startswith("1+")
    assert after.startswith("1+")
