"""Find a payer adapter by name: built-ins first, then the ``officeflows.payers`` plugins.

A plugin is an entry point whose object is a factory (usually the adapter class) called
as ``factory(config, client)``. Plugins load only when asked for, and one that fails to
load is logged by name and skipped; it never hides the others.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from integrations.payers.client import default_client
from integrations.payers.sandbox import SandboxPayer
from integrations.payers.stedi import StediPayer
from integrations.payers.x12 import X12Payer
from office.contracts.payers import PayerAdapter, PayerConfigError, PayerError

__all__ = [
    "BUILTIN_PAYERS",
    "ENTRY_POINT_GROUP",
    "PayerFactory",
    "available_payers",
    "get_payer",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "officeflows.payers"

PayerFactory = Callable[[Mapping[str, Any], httpx.AsyncClient], PayerAdapter]

BUILTIN_PAYERS: dict[str, PayerFactory] = {
    X12Payer.name: X12Payer,
    StediPayer.name: StediPayer,
    SandboxPayer.name: SandboxPayer,
}


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    try:
        return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    except Exception:
        # Broken distribution metadata must not take the built-ins down with it.
        logger.warning("could not list payer adapter plugins", exc_info=True)
        return []


def _load(entry_point: importlib.metadata.EntryPoint) -> PayerFactory | None:
    """The plugin's factory, or None (logged) when it cannot be loaded."""
    try:
        factory = entry_point.load()
    except Exception:
        logger.warning("payer adapter plugin %r failed to load; skipped", entry_point.name)
        logger.debug("payer adapter plugin %r load error", entry_point.name, exc_info=True)
        return None
    if not callable(factory):
        logger.warning("payer adapter plugin %r is not callable; skipped", entry_point.name)
        return None
    return factory  # type: ignore[no-any-return]


def _plugins() -> dict[str, PayerFactory]:
    """Every loadable plugin by name; a name a built-in already has is ignored."""
    found: dict[str, PayerFactory] = {}
    for entry_point in _entry_points():
        if entry_point.name in BUILTIN_PAYERS or entry_point.name in found:
            logger.warning("payer adapter plugin %r repeats a name; skipped", entry_point.name)
            continue
        factory = _load(entry_point)
        if factory is not None:
            found[entry_point.name] = factory
    return found


def available_payers() -> list[str]:
    """Names `get_payer` accepts: the built-ins, then every plugin that loads, sorted."""
    return [*BUILTIN_PAYERS, *sorted(_plugins())]


def _factory(name: str) -> PayerFactory:
    builtin = BUILTIN_PAYERS.get(name)
    if builtin is not None:
        return builtin
    for entry_point in _entry_points():
        if entry_point.name == name:
            factory = _load(entry_point)
            if factory is None:
                raise PayerConfigError(f"payer adapter plugin {name!r} cannot be loaded")
            return factory
    raise PayerConfigError(f"unknown payer adapter {name!r}")


def get_payer(
    name: str, *, config: Mapping[str, Any], client: httpx.AsyncClient | None = None
) -> PayerAdapter:
    """Build the adapter called `name` with its settings and an HTTP client.

    Args:
        name: "x12", "stedi", "sandbox", or a plugin's entry-point name.
        config: The payer's adapter settings merged with the global ones by the caller.
        client: Shared by the caller, who closes it; `default_client()` when not given,
            which then lives as long as the adapter.

    Raises:
        PayerConfigError: The name is unknown, the plugin does not load, or the
            settings are missing or invalid.
    """
    factory = _factory(name)
    try:
        adapter = factory(config, client if client is not None else default_client())
    except PayerError:
        raise
    except Exception as exc:
        raise PayerConfigError(f"payer adapter {name!r} rejected its settings") from exc
    if not isinstance(adapter, PayerAdapter):
        raise PayerConfigError(f"payer adapter {name!r} does not implement check()")
    return adapter
