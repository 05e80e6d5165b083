"""Payer eligibility adapters: each implements `office.contracts.payers.PayerAdapter`.

Built-ins and ``officeflows.payers`` plugins are found by name through one registry.
"""

from __future__ import annotations

from integrations.payers.registry import available_payers, default_client, get_payer

__all__ = ["available_payers", "default_client", "get_payer"]
