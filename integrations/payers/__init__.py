"""Payer eligibility adapters: one `PayerAdapter` contract, one error tree, a registry by name."""

from __future__ import annotations

from integrations.payers.base import (
    PayerAdapter,
    PayerConfigError,
    PayerError,
    PayerFinalError,
    PayerRejected,
    PayerResponse,
    PayerResponseInvalid,
    PayerRetryableError,
)
from integrations.payers.registry import available_payers, default_client, get_payer

__all__ = [
    "PayerAdapter",
    "PayerConfigError",
    "PayerError",
    "PayerFinalError",
    "PayerRejected",
    "PayerResponse",
    "PayerResponseInvalid",
    "PayerRetryableError",
    "available_payers",
    "default_client",
    "get_payer",
]
