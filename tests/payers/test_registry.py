"""The registry: built-ins by name, plugins from entry points, one broken plugin skipped."""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
import pytest

from integrations.payers import available_payers, default_client, get_payer, registry
from integrations.payers.registry import ENTRY_POINT_GROUP
from integrations.payers.x12 import X12Payer
from office.contracts.payers import PayerConfigError, PayerResponse
from office.eligibility.types import CoverageStatus, EligibilityRequest, EligibilityResult

from .conftest import make_request

HERE = __name__


class GoodPayer:
    """A third-party adapter as a plugin would ship it."""

    name: ClassVar[str] = "good"

    def __init__(self, config: Mapping[str, Any], client: httpx.AsyncClient) -> None:
        self.config = dict(config)
        self.client = client

    async def check(self, request: EligibilityRequest) -> PayerResponse:
        result = EligibilityResult(status=CoverageStatus.ACTIVE, member_id=request.member_id)
        return PayerResponse(result=result, raw="{}", raw_format="json")


def picky_factory(config: Mapping[str, Any], client: httpx.AsyncClient) -> GoodPayer:
    raise ValueError("needs a token")


def not_an_adapter(config: Mapping[str, Any], client: httpx.AsyncClient) -> object:
    return object()


NOT_CALLABLE = 42


def plugin(name: str, target: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name=name, value=target, group=ENTRY_POINT_GROUP)


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> list[importlib.metadata.EntryPoint]:
    """Replace the installed entry points with the list the test fills in."""
    installed: list[importlib.metadata.EntryPoint] = []

    def entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        assert group == ENTRY_POINT_GROUP
        return list(installed)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return installed


def test_builtins_are_listed_first_by_name(plugins: list[importlib.metadata.EntryPoint]) -> None:
    assert available_payers() == ["x12", "stedi", "sandbox"]


def test_a_broken_plugin_is_skipped_and_named_and_the_good_one_loads(
    plugins: list[importlib.metadata.EntryPoint], caplog: pytest.LogCaptureFixture
) -> None:
    plugins += [
        plugin("broken", "tests.payers.no_such_module:Payer"),
        plugin("good", f"{HERE}:GoodPayer"),
        plugin("numb", f"{HERE}:NOT_CALLABLE"),
    ]
    with caplog.at_level(logging.WARNING, logger="integrations.payers.registry"):
        names = available_payers()
    assert names == ["x12", "stedi", "sandbox", "good"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'broken'" in w and "failed to load" in w for w in warnings)
    assert any("'numb'" in w and "not callable" in w for w in warnings)


@pytest.mark.anyio
async def test_a_good_plugin_is_built_with_its_config_and_the_client(
    plugins: list[importlib.metadata.EntryPoint],
) -> None:
    plugins.append(plugin("good", f"{HERE}:GoodPayer"))
    async with httpx.AsyncClient() as client:
        adapter = get_payer("good", config={"token": "t"}, client=client)
        assert isinstance(adapter, GoodPayer)
        assert (adapter.config, adapter.client) == ({"token": "t"}, client)
        response = await adapter.check(make_request())
    assert response.result.status is CoverageStatus.ACTIVE


def test_asking_for_a_broken_plugin_is_a_config_error_naming_it(
    plugins: list[importlib.metadata.EntryPoint],
) -> None:
    plugins.append(plugin("broken", "tests.payers.no_such_module:Payer"))
    with pytest.raises(PayerConfigError, match="'broken'"):
        get_payer("broken", config={})


def test_a_plugin_cannot_take_a_builtin_name(
    plugins: list[importlib.metadata.EntryPoint], caplog: pytest.LogCaptureFixture
) -> None:
    plugins.append(plugin("x12", f"{HERE}:GoodPayer"))
    with caplog.at_level(logging.WARNING, logger="integrations.payers.registry"):
        assert available_payers() == ["x12", "stedi", "sandbox"]
    assert isinstance(get_payer("x12", config={"url": "https://ch.test/"}), X12Payer)
    assert any("'x12'" in r.getMessage() for r in caplog.records)


def test_a_plugin_refusing_its_settings_is_a_config_error(
    plugins: list[importlib.metadata.EntryPoint],
) -> None:
    plugins.append(plugin("picky", f"{HERE}:picky_factory"))
    with pytest.raises(PayerConfigError, match="'picky'") as caught:
        get_payer("picky", config={})
    assert isinstance(caught.value.__cause__, ValueError)


def test_a_plugin_that_builds_no_adapter_is_a_config_error(
    plugins: list[importlib.metadata.EntryPoint],
) -> None:
    plugins.append(plugin("hollow", f"{HERE}:not_an_adapter"))
    with pytest.raises(PayerConfigError, match="check"):
        get_payer("hollow", config={})


def test_unknown_name_is_a_config_error_naming_it(
    plugins: list[importlib.metadata.EntryPoint],
) -> None:
    with pytest.raises(PayerConfigError, match="'availity'"):
        get_payer("availity", config={})


def test_builtins_never_touch_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    def entry_points(**_: Any) -> list[importlib.metadata.EntryPoint]:
        raise AssertionError("a built-in must not enumerate plugins")

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    assert isinstance(get_payer("x12", config={"url": "https://ch.test/"}), X12Payer)


def test_unreadable_plugin_metadata_leaves_the_builtins(monkeypatch: pytest.MonkeyPatch) -> None:
    def entry_points(**_: Any) -> list[importlib.metadata.EntryPoint]:
        raise ValueError("bad METADATA")

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    assert available_payers() == ["x12", "stedi", "sandbox"]


@pytest.mark.anyio
async def test_the_default_client_has_the_eligibility_timeouts() -> None:
    async with default_client() as client:
        assert client.timeout == httpx.Timeout(connect=10.0, read=90.0, write=10.0, pool=90.0)
        assert client.follow_redirects is False


def test_get_payer_builds_the_default_client_only_when_none_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[httpx.AsyncClient] = []

    def counting_default() -> httpx.AsyncClient:
        client = httpx.AsyncClient()
        built.append(client)
        return client

    monkeypatch.setattr(registry, "default_client", counting_default)
    given = httpx.AsyncClient()
    get_payer("x12", config={"url": "https://ch.test/"}, client=given)
    assert built == []
    get_payer("x12", config={"url": "https://ch.test/"})
    assert len(built) == 1
