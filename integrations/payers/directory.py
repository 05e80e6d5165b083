"""The payer directory a batch opens adapters through: settings merged, one client each.

`payers_from_settings` is where the practice's clearinghouse settings meet each `x12`
payer's own: the payer's settings win, the clearinghouse fills in what they leave out,
and a row that would send the practice's data or credential somewhere unsafe is refused
(`office.settings.check_payer_settings`) before any adapter is built.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx

from integrations.payers.client import default_client
from integrations.payers.registry import get_payer
from integrations.payers.x12 import X12Payer
from office.contracts.payers import PayerAdapter, PayerConfigError
from office.settings import SettingsError, check_payer_settings

if TYPE_CHECKING:
    from office.settings import Settings

__all__ = ["Payers", "payers_from_settings"]


class Payers:
    """Implements `office.contracts.payers.PayerDirectory` over the adapter registry.

    Args:
        shared: Settings every payer of an adapter kind starts from, by adapter name.
        client: Builds the HTTP client for `connections` requests at once; the directory
            closes it when the adapter's ``async with`` ends. `default_client` unless a
            test gives a client with a mock transport.
        vet: Called with the adapter name and the payer's own settings before they are
            merged; raises `PayerConfigError` for settings that must not be used.
    """

    def __init__(
        self,
        shared: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        client: Callable[[int], httpx.AsyncClient] = default_client,
        vet: Callable[[str, Mapping[str, Any]], None] | None = None,
    ) -> None:
        self._shared = {name: dict(values) for name, values in (shared or {}).items()}
        self._client = client
        self._vet = vet

    def settings_for(self, adapter: str, own: Mapping[str, Any]) -> dict[str, Any]:
        """The adapter's settings: the payer's own over those its kind shares.

        Raises:
            PayerConfigError: The payer's own settings were refused.
        """
        if self._vet is not None:
            self._vet(adapter, own)
        return {**self._shared.get(adapter, {}), **own}

    @asynccontextmanager
    async def open(
        self, adapter: str, settings: Mapping[str, Any], *, connections: int
    ) -> AsyncIterator[PayerAdapter]:
        """Build the adapter with a client of its own, closed when the block ends."""
        config = self.settings_for(adapter, settings)
        async with self._client(connections) as client:
            yield get_payer(adapter, config=config, client=client)


def payers_from_settings(settings: Settings) -> Payers:
    """The directory for this practice: `x12` payers share the clearinghouse settings."""
    clearinghouse: dict[str, Any] = {}
    if settings.clearinghouse_url:
        clearinghouse["url"] = settings.clearinghouse_url
    if settings.clearinghouse_auth is not None:
        clearinghouse["auth_header"] = settings.clearinghouse_auth_header
        clearinghouse["auth_value"] = settings.clearinghouse_auth.get_secret_value()

    def vet(adapter: str, own: Mapping[str, Any]) -> None:
        if adapter != X12Payer.name:
            return
        try:
            check_payer_settings(
                own,
                clearinghouse_url=settings.clearinghouse_url,
                clearinghouse_credential=settings.clearinghouse_auth is not None,
            )
        except SettingsError as exc:
            raise PayerConfigError(f"payer settings refused: {exc}") from exc

    return Payers({X12Payer.name: clearinghouse}, vet=vet)
