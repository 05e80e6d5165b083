"""Payer eligibility adapters: each implements `office.contracts.payers.PayerAdapter`.

Built-ins and ``officeflows.payers`` plugins are found by name through one registry;
`payers_from_settings` builds the `PayerDirectory` a batch opens them through, with the
one HTTP client factory (`default_client`) and its connection pools.
"""

from __future__ import annotations

from integrations.payers.client import PayerClient, PooledTransport, default_client
from integrations.payers.directory import Payers, payers_from_settings
from integrations.payers.registry import available_payers, get_payer

__all__ = [
    "PayerClient",
    "Payers",
    "PooledTransport",
    "available_payers",
    "default_client",
    "get_payer",
    "payers_from_settings",
]
