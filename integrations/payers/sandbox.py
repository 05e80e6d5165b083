"""A simulated payer for the demo and the benchmarks that answers through the real X12 codec.

Every check builds the 270, decides what the payer says, builds that 271 and reads it
back, so the full codec path runs. What a patient's plan looks like (active or not, not
found, copays, authorization, other payers) is a pure function of the member id and the
date of service, so a demo replays the same way. Transient faults (timeout, AAA 42) also
hash the trace and how many times that trace was asked, so a retry can clear them.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, ClassVar, Literal

import httpx

from integrations.payers.base import ControlNumbers, read_answer, response_from_271, setting
from integrations.x12 import Scenario, X12Error, build_270, build_271
from office.contracts.payers import (
    PayerConfigError,
    PayerRejected,
    PayerResponse,
    PayerRetryableError,
)
from office.eligibility.types import EligibilityRequest

__all__ = ["AttemptLog", "SandboxPayer", "SandboxProfile", "choose_scenario", "transient_fault"]

Fault = Literal["timeout", "aaa42"]

_PLANS = (
    ("GOLD PPO 1500", "PR"),
    ("SILVER HMO 3000", "HM"),
    ("BRONZE HMO 5000", "HM"),
    ("CHOICE PLUS", "C1"),
    ("OPEN ACCESS PLUS", "PR"),
)
_COPAYS = (10, 20, 25, 30, 40, 50)
_DEDUCTIBLES = (500, 1000, 1500, 2000, 3000, 5000)
_MET_FRACTIONS = (Decimal("0"), Decimal("0.25"), Decimal("0.5"), Decimal("0.75"), Decimal("1"))
_COINSURANCE = (Decimal("0"), Decimal("0.1"), Decimal("0.2"), Decimal("0.3"))
_DEFAULT_SEED = "officeflows"
_OTHER_PAYERS = (("MEDICARE PART B", "CMS"), ("AETNA", "60054"), ("CIGNA", "62308"))


@dataclass(frozen=True, slots=True)
class SandboxProfile:
    """How often the simulated payer answers each way; rates are probabilities in 0..1."""

    latency_ms: float = 0.0
    aaa42_rate: float = 0.0  # payer-level AAA 42: transient
    timeout_rate: float = 0.0  # no answer: transient
    inactive_rate: float = 0.0
    not_found_rate: float = 0.0  # subscriber-level AAA 75
    invalid_member_rate: float = 0.0  # subscriber-level AAA 72
    auth_rate: float = 0.0
    corrected_rate: float = 0.0  # INS04=25
    other_payer_rate: float = 0.0
    seed: str = _DEFAULT_SEED

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SandboxProfile:
        """Read the profile from adapter settings; unknown keys are left to other layers."""
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name == "seed":
                values["seed"] = setting(config, SandboxPayer.name, "seed", str, _DEFAULT_SEED)
                continue
            number = setting(config, SandboxPayer.name, item.name, float, 0.0)
            limit = float("inf") if item.name == "latency_ms" else 1.0
            if not 0.0 <= number <= limit:
                raise PayerConfigError(
                    f"payer adapter 'sandbox': setting {item.name!r} is out of range"
                )
            values[item.name] = number
        return cls(**values)


def _draws(*parts: str) -> random.Random:
    """A generator seeded by the parts; the same parts always draw the same numbers."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _npi(rng: random.Random) -> str:
    """A well-formed NPI: nine digits and the Luhn check digit over the 80840 prefix."""
    body = "1" + "".join(str(rng.randrange(10)) for _ in range(8))
    total = 24  # the 80840 prefix's contribution to the Luhn sum
    for position, char in enumerate(reversed(body)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            digit = digit - 9 if digit > 9 else digit
        total += digit
    return body + str((10 - total % 10) % 10)


def choose_scenario(request: EligibilityRequest, profile: SandboxProfile) -> Scenario:
    """What the payer knows about this member on this date; stable across retries."""
    rng = _draws(
        profile.seed, "patient", request.member_id or "", request.date_of_service.isoformat()
    )
    # Every roll is drawn every time, so changing one rate never reshuffles the others.
    not_found = rng.random() < profile.not_found_rate
    invalid_member = rng.random() < profile.invalid_member_rate
    inactive = rng.random() < profile.inactive_rate
    auth = rng.random() < profile.auth_rate
    corrected = rng.random() < profile.corrected_rate
    other = rng.random() < profile.other_payer_rate
    plan_name, insurance = rng.choice(_PLANS)
    copay = Decimal(rng.choice(_COPAYS))
    deductible = Decimal(rng.choice(_DEDUCTIBLES))
    remaining = (deductible * (1 - rng.choice(_MET_FRACTIONS))).quantize(Decimal("1"))
    coinsurance = rng.choice(_COINSURANCE)
    # Most HMO members see the PCP they chose, so the requesting provider usually is it.
    sees_own_pcp = rng.random() < 0.8
    pcp = request.provider_npi if sees_own_pcp else _npi(rng)
    other_name, other_id = rng.choice(_OTHER_PAYERS)
    aaa: tuple[tuple[str, str, str], ...] = ()
    if not_found:
        aaa = (("2100C", "75", "C"),)
    elif invalid_member:
        aaa = (("2100C", "72", "C"),)
    return Scenario(
        status="inactive" if inactive else "active",
        plan_name=plan_name,
        insurance_type=insurance,
        copay=copay,
        copay_out_of_network=copay * 2,
        deductible=deductible,
        deductible_remaining=remaining,
        coinsurance=coinsurance,
        pcp_npi=pcp if insurance == "HM" else None,
        other_payer=other_name if other else None,
        other_payer_code=other_id if other else None,
        auth_required=auth,
        corrected_data=corrected,
        aaa=aaa,
    )


def transient_fault(
    request: EligibilityRequest, profile: SandboxProfile, attempt: int
) -> Fault | None:
    """Whether this attempt at this trace times out or meets a payer outage."""
    rng = _draws(
        profile.seed,
        "transient",
        request.member_id or "",
        request.date_of_service.isoformat(),
        request.trace,
        str(attempt),
    )
    timeout, outage = rng.random() < profile.timeout_rate, rng.random() < profile.aaa42_rate
    if timeout:
        return "timeout"
    return "aaa42" if outage else None


class AttemptLog:
    """How many times each trace was asked, bounded so a long benchmark cannot grow it."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._capacity = capacity
        # Prefect may run sync tasks in threads; the count must not skip or repeat.
        self._lock = threading.Lock()

    def next_attempt(self, key: str) -> int:
        """0 for the first ask, then 1, 2, ..."""
        with self._lock:
            attempt = self._counts.pop(key, -1) + 1
            self._counts[key] = attempt
            if len(self._counts) > self._capacity:
                self._counts.popitem(last=False)
            return attempt


# Shared by every sandbox in the process, so a retry that builds a new adapter still
# counts as the next attempt.
_SHARED_ATTEMPTS = AttemptLog()


class SandboxPayer:
    """The simulated payer; ``config`` holds a `SandboxProfile`'s fields.

    The HTTP client is accepted for the common factory signature and not used.
    """

    name: ClassVar[str] = "sandbox"

    def __init__(
        self,
        config: Mapping[str, Any],
        client: httpx.AsyncClient | None = None,
        *,
        attempts: AttemptLog | None = None,
    ) -> None:
        self.profile = SandboxProfile.from_config(config)
        self._attempts = attempts if attempts is not None else _SHARED_ATTEMPTS
        self._controls = ControlNumbers(setting(config, self.name, "control_start", int, 0) or None)

    async def check(self, request: EligibilityRequest) -> PayerResponse:
        """Answer as the profile says, through build_270, build_271 and parse_271."""
        attempt = self._attempts.next_attempt(f"{self.profile.seed}\x1f{request.trace}")
        control = self._controls.next()
        try:
            build_270(request, interchange_control=control, usage="T")
        except X12Error as exc:
            raise PayerRejected(f"cannot build the 270: {exc}") from exc
        if self.profile.latency_ms:
            await asyncio.sleep(self.profile.latency_ms / 1000)
        fault = transient_fault(request, self.profile, attempt)
        if fault == "timeout":
            raise PayerRetryableError("payer did not answer in time (sandbox)")
        scenario = choose_scenario(request, self.profile)
        if fault == "aaa42":
            scenario = Scenario(aaa=(("2100A", "42", "P"),))
        try:
            raw = build_271(request, interchange_control=control, scenario=scenario)
        except X12Error as exc:
            raise PayerRejected(f"cannot build the sandbox 271: {exc}") from exc
        return await read_answer(len(raw), response_from_271, request, raw)
