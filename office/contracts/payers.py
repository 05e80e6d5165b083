"""The payer adapter contract the eligibility service needs, and its error tree.

Errors are split by what the caller may do next, so a Prefect ``retry_condition_fn``
can retry exactly the retryable branch::

    PayerError
    ├── PayerRetryableError     no answer about the patient yet: timeout, connect error,
    │                           HTTP 5xx, 429 (``retry_after`` from Retry-After), 408,
    │                           payer-level AAA (2000A/2100A) that means "try later"
    │                           (42, 80, and 04 by the office's AAA table)
    └── PayerFinalError         sending the same request again cannot help
        ├── PayerRejected       the clearinghouse refused the request: any other 4xx
        │                       without AAA, an unknown payer id, a 270 that cannot be
        │                       built from the request
        ├── PayerResponseInvalid  an answer came back but cannot be read (malformed 271
        │                       or JSON); ``.raw`` keeps the text so it can be stored
        └── PayerConfigError    unknown adapter name or missing/invalid adapter settings

Every error may carry ``status_code``, the AAA it was raised for (``aaa``) and the raw
answer (``raw``) for the caller to store; messages carry HTTP statuses, AAA codes and
setting names, never payload text, member data or URLs.

Decision on AAA: an AAA about the patient (2100C/2100D: 72, 73, 75, ...) or about the
provider (2100B: 41, 43, 44, 50, 51, 79, ...; payer-level 79/T4/41) is an *answer*, not a
failure. The adapter returns it as a normal ``EligibilityResult`` with status
``unverified`` and the AAA list, so the caller stores the raw 271 and opens the matching
work item ("fix patient data", "provider setup") from ``overall_action(result.aaa)``.
Only an AAA that says the payer could not answer now raises, as ``PayerRetryableError``,
because that is the one case where the same request should simply be sent again.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    # Annotations only: `office.eligibility` uses this contract, so importing it here at run
    # time would make each package wait on the other.
    from office.eligibility.types import Aaa, EligibilityRequest, EligibilityResult

__all__ = [
    "PayerAdapter",
    "PayerConfigError",
    "PayerDirectory",
    "PayerError",
    "PayerFinalError",
    "PayerRejected",
    "PayerResponse",
    "PayerResponseInvalid",
    "PayerRetryableError",
]


class PayerError(Exception):
    """Root of every payer adapter failure; vendor exceptions are chained as __cause__."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        aaa: tuple[Aaa, ...] = (),
        raw: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.aaa = aaa
        self.raw = raw


class PayerRetryableError(PayerError):
    """No answer about the patient yet; the same request may be sent again later."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status_code: int | None = None,
        aaa: tuple[Aaa, ...] = (),
        raw: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, aaa=aaa, raw=raw)
        self.retry_after = retry_after


class PayerFinalError(PayerError):
    """Sending the same request again cannot succeed; something must change first."""


class PayerRejected(PayerFinalError):
    """The clearinghouse or payer refused the request itself."""


class PayerResponseInvalid(PayerFinalError):
    """The answer could not be read; `raw` keeps it so the caller can store it."""

    raw: str

    def __init__(self, message: str, *, raw: str, status_code: int | None = None) -> None:
        super().__init__(message, status_code=status_code, raw=raw)


class PayerConfigError(PayerFinalError):
    """The adapter name is unknown, or its settings are missing or invalid."""


@dataclass(frozen=True, slots=True)
class PayerResponse:
    """One answer: the normalized result and the raw text the caller stores beside it."""

    result: EligibilityResult
    raw: str
    raw_format: Literal["x12", "json"]


@runtime_checkable
class PayerAdapter(Protocol):
    """Asks one payer (directly or through a clearinghouse) about one patient."""

    name: ClassVar[str]

    async def check(self, request: EligibilityRequest) -> PayerResponse:
        """Send one inquiry and return the payer's answer about the requested patient.

        Raises:
            PayerRetryableError, PayerRejected, PayerResponseInvalid, PayerConfigError:
                see the tree above; nothing else escapes an adapter.
        """
        ...


class PayerDirectory(Protocol):
    """Where a batch gets the adapter for a payer; `integrations.payers` builds the real one.

    The directory knows how adapters are built (which HTTP client, which settings every
    payer of a kind shares); the caller knows only the payer's row.
    """

    def open(
        self, adapter: str, settings: Mapping[str, Any], *, connections: int
    ) -> AbstractAsyncContextManager[PayerAdapter]:
        """The adapter named `adapter` for one payer, for the length of an ``async with``.

        Args:
            adapter: The payer's adapter name ("x12", "stedi", "sandbox", a plugin's).
            settings: The payer's own adapter settings, as stored on its row.
            connections: How many requests the caller will have in flight at once.

        Raises:
            PayerConfigError: On entering, when the name is unknown or the settings are
                missing or invalid.
        """
        ...
