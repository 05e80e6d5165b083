"""The shell's hand-off to Prefect: which API to use, starting runs, serving the deployments.

The web app, the CLI and the demo reach Prefect only through these functions. Which server
a command talks to is decided in one place, `prefect_api`; starting and watching a server
of our own is `app.prefect_server`'s job.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from app.prefect_server import PrefectServer, Progress, home_server, to_stderr

if TYPE_CHECKING:
    from datetime import datetime

    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from rich.console import Console
    from sqlalchemy import Engine

    from app.demo import FlowReport, Timings
    from office.settings import Settings

__all__ = [
    "DEPLOYMENTS_FILE",
    "DeploymentSpec",
    "DeploymentsFileError",
    "build_deployments",
    "dispatch_inbox",
    "load_specs",
    "prefect_api",
    "run_demo_flows",
    "serve_all",
    "wake_route_mail",
]

log = logging.getLogger("office.handoff")

REPO = Path(__file__).resolve().parent.parent
DEPLOYMENTS_FILE = REPO / "deployments" / "prefect.yaml"
INTAKE_DEPLOYMENT = "process-inbox/intake"
MAIL_ARRIVAL_DEPLOYMENT = "route-mail/on-arrival"


@contextmanager
def prefect_api(
    settings: Settings,
    *,
    serving: bool = False,
    port: int | None = None,
    progress: Progress = to_stderr,
) -> Iterator[PrefectServer]:
    """The Prefect API this process and its flow runs use, for as long as the block lasts.

    PREFECT_API_URL (environment or Prefect profile) when it is set; else this home's
    server (`office serve`'s, or one started for this command: `app.prefect_server`).
    Subprocesses (flow runs, helper processes) inherit it through the environment, so none
    starts a temporary server of its own.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

    configured = PREFECT_API_URL.value()
    if configured:
        ui_url = PREFECT_UI_URL.value() or configured.removesuffix("/").removesuffix("/api")
        yield PrefectServer(api_url=configured, ui_url=ui_url, started=False)
        return
    with home_server(settings, serving=serving, port=port, progress=progress) as server:
        os.environ["PREFECT_API_URL"] = server.api_url
        try:
            with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
                yield server
        finally:
            _drain_run_logs()
            os.environ.pop("PREFECT_API_URL", None)


def _drain_run_logs() -> None:
    """Send the runs' queued log lines while the server still answers: left for Prefect's
    exit hook, they meet a stopped server and it prints "Error logging to API"."""
    from prefect.logging.handlers import APILogWorker

    with contextlib.suppress(Exception):
        APILogWorker.drain_all(timeout=5)


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


async def wake_route_mail(mailbox: str) -> None:
    """Start route-mail for one mailbox now (IMAP IDLE saw mail); one run per mailbox a minute.

    The key folds wake-ups that come in a burst (several announcements, a reconnect) into
    the run already started; the every-5-minutes schedule still sweeps behind it.
    """
    from prefect.deployments import arun_deployment

    minute = int(time.time() // 60)
    await arun_deployment(
        MAIL_ARRIVAL_DEPLOYMENT,
        parameters={"mailbox": mailbox},
        idempotency_key=f"route-mail-{mailbox}-{minute}",
        timeout=0,
    )


class DeploymentsFileError(ValueError):
    """deployments/prefect.yaml cannot be served as written; the message says where."""


@dataclass(frozen=True)
class DeploymentSpec:
    """One entry of deployments/prefect.yaml, as `office serve` serves it."""

    name: str
    entrypoint: str
    description: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    schedules: tuple[DeploymentScheduleCreate, ...] = ()
    tags: tuple[str, ...] = ()
    version: str | None = None
    paused: bool | None = None
    concurrency_limit: int | None = None
    enforce_parameter_schema: bool = True


def load_specs(
    path: Path = DEPLOYMENTS_FILE, *, timezone: str | None = None
) -> list[DeploymentSpec]:
    """The deployments in a prefect.yaml, read as `prefect deploy` reads them.

    The file goes through `prefect deploy`'s own schema (`PrefectYamlModel`) and each schedule
    through its own builder, so cron, interval and rrule schedules mean here what they mean
    to `prefect deploy` on several machines.

    Args:
        path: the prefect.yaml to read.
        timezone: when given, every schedule runs in this zone instead of the one the file
            names (`office serve` passes OFFICE_PRACTICE_TIMEZONE when it is set).
    """
    from prefect.cli.deploy._models import PrefectYamlModel
    from prefect.cli.deploy._schedules import _schedule_config_to_deployment_schedule
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from pydantic import ValidationError

    try:
        document = yaml.safe_load(path.read_text()) or {}
        model = PrefectYamlModel.model_validate(document)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DeploymentsFileError(f"{path} cannot be read: {first}") from None
    specs = []
    for config in model.deployments:
        entry = config.model_dump(exclude_unset=True, mode="json")
        name = entry.get("name")
        if not name or not entry.get("entrypoint"):
            raise DeploymentsFileError(f"{path}: every deployment needs a name and an entrypoint")
        if entry.get("triggers") or entry.get("sla"):
            raise DeploymentsFileError(
                f"{path}: deployment {name} has triggers or SLAs, which office serve does not "
                "serve; register it with `prefect deploy`"
            )
        try:
            schedules = tuple(
                DeploymentScheduleCreate(
                    **_schedule_config_to_deployment_schedule(
                        {**schedule, "timezone": timezone} if timezone else schedule
                    )
                )
                for schedule in entry.get("schedules") or ()
            )
        except (ValueError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise DeploymentsFileError(f"{path}: deployment {name}: {first}") from None
        limit = entry.get("concurrency_limit")
        tags = entry.get("tags") or ()
        specs.append(
            DeploymentSpec(
                name=name,
                entrypoint=entry["entrypoint"],
                description=entry.get("description"),
                parameters=dict(entry.get("parameters") or {}),
                schedules=schedules,
                tags=(tags,) if isinstance(tags, str) else tuple(tags),
                version=entry.get("version"),
                paused=entry.get("paused"),
                concurrency_limit=limit.get("limit") if isinstance(limit, dict) else limit,
                enforce_parameter_schema=entry.get("enforce_parameter_schema", True),
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


async def build_deployments(specs: list[DeploymentSpec]) -> list[Any]:
    """Each spec as a runner deployment of its flow, for `serve_all`."""
    deployments = []
    for spec in specs:
        flow = _load_flow(spec.entrypoint)
        deployments.append(
            await flow.ato_deployment(
                name=spec.name,
                description=spec.description,
                parameters=spec.parameters,
                schedules=list(spec.schedules) or None,
                tags=list(spec.tags),
                version=spec.version,
                paused=spec.paused,
                concurrency_limit=spec.concurrency_limit,
                enforce_parameter_schema=spec.enforce_parameter_schema,
            )
        )
    return deployments


async def serve_all(specs: list[DeploymentSpec], *, limit: int = 8) -> None:
    """Serve the deployments in this process until cancelled.

    Cancelled, Prefect's runner starts no new run, lets the runs in flight finish (cancelling
    them would kill a batch midway), and pauses the schedules.
    """
    from prefect import aserve

    deployments = await build_deployments(specs)
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
    with ExitStack() as stack:
        with console.status("starting Prefect") as status, timings.step("Prefect API start"):
            stack.enter_context(prefect_api(settings, progress=status.update))
        result: list[FlowReport] = asyncio.run(run_all(now=now, console=console, timings=timings))
    return result
