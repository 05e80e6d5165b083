"""The one module in `office/` that talks to Prefect: hand work over, serve deployments.

Everything else in `office/` is plain Python; the web app and the CLI reach
Prefect only through these functions.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from datetime import datetime

    from rich.console import Console
    from sqlalchemy import Engine

    from app.demo import FlowReport, Timings
    from office.settings import Settings

__all__ = [
    "DEPLOYMENTS_FILE",
    "DeploymentSpec",
    "build_deployments",
    "dispatch_inbox",
    "load_specs",
    "prefect_api",
    "run_demo_flows",
    "serve_all",
]

log = logging.getLogger("office.handoff")

REPO = Path(__file__).resolve().parent.parent
DEPLOYMENTS_FILE = REPO / "deployments" / "prefect.yaml"
INTAKE_DEPLOYMENT = "process-inbox/intake"


@contextmanager
def prefect_api() -> Iterator[str]:
    """Use the configured Prefect API, or start one for this process and its flow runs.

    Without PREFECT_API_URL every flow-run subprocess would start its own
    temporary server; one shared server keeps runs fast and visible in one UI.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = PREFECT_API_URL.value()
    if configured:
        yield configured
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start(timeout=180)
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()


async def dispatch_inbox(inbox_id: int, key: str) -> str | None:
    """Start the intake flow for a stored item; the key makes a double dispatch one run."""
    from prefect.deployments import arun_deployment

    run = await arun_deployment(
        INTAKE_DEPLOYMENT,
        parameters={"inbox_id": inbox_id},
        idempotency_key=key,
        timeout=0,
    )
    return str(run.id)


@dataclass(frozen=True)
class DeploymentSpec:
    """One entry of deployments/prefect.yaml, as `office serve` needs it."""

    name: str
    entrypoint: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    schedules: tuple[dict[str, Any], ...] = ()
    tags: tuple[str, ...] = ()
    concurrency: int | None = None


def load_specs(path: Path = DEPLOYMENTS_FILE) -> list[DeploymentSpec]:
    document = yaml.safe_load(path.read_text())
    specs = []
    for entry in document.get("deployments", []):
        limit = entry.get("concurrency_limit")
        specs.append(
            DeploymentSpec(
                name=entry["name"],
                entrypoint=entry["entrypoint"],
                description=entry.get("description", ""),
                parameters=dict(entry.get("parameters") or {}),
                schedules=tuple(entry.get("schedules") or ()),
                tags=tuple(entry.get("tags") or ()),
                concurrency=limit.get("limit") if isinstance(limit, dict) else limit,
            )
        )
    return specs


def _load_flow(entrypoint: str) -> Any:
    path, _, name = entrypoint.partition(":")
    module_name = path.removesuffix(".py").replace("/", ".")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    if importlib.util.find_spec(module_name) is None:
        raise FileNotFoundError(f"deployment entrypoint {entrypoint} not found")
    module = importlib.import_module(module_name)
    return getattr(module, name)


async def build_deployments(timezone: str | None = None) -> list[Any]:
    """Every deployment in prefect.yaml as a runner deployment for `serve`."""
    from prefect.schedules import Cron

    deployments = []
    for spec in load_specs():
        flow = _load_flow(spec.entrypoint)
        schedules = [
            Cron(
                entry["cron"],
                timezone=timezone or entry.get("timezone"),
                slug=entry.get("slug"),
                parameters=entry.get("parameters") or {},
                active=entry.get("active", True),
            )
            for entry in spec.schedules
        ]
        deployments.append(
            await flow.ato_deployment(
                name=spec.name,
                description=spec.description,
                parameters=spec.parameters,
                schedules=schedules or None,
                tags=list(spec.tags),
                concurrency_limit=spec.concurrency,
            )
        )
    return deployments


async def serve_all(timezone: str | None = None, *, limit: int = 8) -> None:
    """Serve every deployment in this process until cancelled."""
    from prefect import aserve

    deployments = await build_deployments(timezone)
    log.info("serving %d deployments", len(deployments))
    await aserve(*deployments, limit=limit, print_starting_message=False)


def run_demo_flows(
    settings: Settings, engine: Engine, *, now: datetime, console: Console, timings: Timings
) -> list[FlowReport]:
    """Run each flow once for the demo, in this process, against the demo database."""
    with timings.step("import Prefect and the flows"):
        from app.demo_flows import run_all
        from flows.runtime import use_office

    use_office(settings, engine)
    result: list[FlowReport] = asyncio.run(run_all(now=now, console=console, timings=timings))
    return result
