"""Prefect deployments of the rlaif flows, with schedules: `rlaif deploy` and `rlaif serve` (rlaif/cli/ops.py).

- `deploy_flows`: one deployment per flow (run, train, iterate) on a process work pool (created if
  missing); `prefect worker start --pool POOL` then runs them, on their schedule or when triggered
  (`prefect deployment run rlaif-run/NAME`).
- `serve_flows`: the same deployments served from this process (`prefect.serve`), no pool or worker;
  Ctrl-C stops it and pauses their schedules.

The flows are the project's own (flows/pipeline.py `rlaif-run`, flows/train.py `rlaif-train`,
flows/iterate.py when it exists), deployed from local source: the source folder is the folder
`rlaif deploy` ran in (a recipe's relative paths, e.g. `prompts.path`, are relative to it, as for
`rlaif run`) and the entrypoint the installed module (`rlaif.flows.pipeline.rlaif_run`), so any worker
started with the project's Python runs them. The recipe path and the store are made absolute at
deploy time. Both need a running Prefect server (`make server`, then PREFECT_API_URL).
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import importlib.util
import inspect
import io
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlaif.core.errors import RlaifError
from rlaif.core.names import ID_RULE, is_version_id, name_problem, short_repr
from rlaif.training import ALGORITHMS

DEFAULT_POOL = "rlaif"
FLOW_MODULES = {"run": "rlaif.flows.pipeline", "train": "rlaif.flows.train", "iterate": "rlaif.flows.iterate"}
TRAIN_DEFAULTS = {"algorithm": "dpo", "model": "smollm2-135m"}
MAX_INTERVAL_S = 366 * 24 * 3600  # a schedule's interval: at most a year (Prefect's timedelta overflows near 1e14 s)
SERVER_FIX = "start one with `make server` (UI on http://127.0.0.1:4200), then `export PREFECT_API_URL=http://127.0.0.1:4200/api`"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 even with *_proxy set


class DeployError(RlaifError):
    """A deployment cannot be made or served (no Prefect server, a bad schedule, a missing parameter)."""


@dataclass(frozen=True)
class ScheduleSpec:
    """Exactly one of a cron string or an interval in seconds; `timezone` (IANA, default UTC) for cron."""

    cron: str | None = None
    interval: float | None = None
    timezone: str | None = None

    def describe(self) -> str:
        if self.cron:
            return f"cron {self.cron!r} ({self.timezone or 'UTC'})"
        return f"every {self.interval:g} s"

    def prefect(self):
        from prefect.schedules import Cron, Interval

        if self.cron:
            return Cron(self.cron, timezone=self.timezone)
        return Interval(datetime.timedelta(seconds=self.interval), timezone=self.timezone)


@dataclass(frozen=True)
class DeployPlan:
    """What to deploy: the flows, their shared schedule and parameters, names, pool and source folder."""

    recipe: Path
    store: Path
    flows: tuple[str, ...]
    schedule: ScheduleSpec
    name: str
    pool: str = DEFAULT_POOL
    params: dict[str, Any] = field(default_factory=dict)
    workdir: Path = field(default_factory=Path.cwd)


@dataclass(frozen=True)
class Deployed:
    flow_name: str
    name: str
    id: str
    parameters: dict[str, Any]

    @property
    def full_name(self) -> str:
        return f"{self.flow_name}/{self.name}"


def schedule_spec(cron: str | None, interval: float | None, timezone: str | None = None) -> ScheduleSpec:
    """A validated schedule: exactly one of --cron / --interval; a cron string croniter accepts; a known timezone.

    >>> schedule_spec("0 2 * * *", None).describe()
    "cron '0 2 * * *' (UTC)"
    >>> schedule_spec(None, 3600).describe()
    'every 3600 s'
    """
    if (cron is None) == (interval is None):
        raise DeployError(
            'give exactly one schedule: --cron "0 2 * * *" (every night at 02:00) or --interval 3600 (seconds)'
            + (", not both" if cron is not None else "")
        )
    if interval is not None and not interval > 0:  # nan too
        raise DeployError(
            f"--interval {interval:g}: the interval must be a positive number of seconds, e.g. --interval 3600"
        )
    if interval is not None and interval > MAX_INTERVAL_S:
        raise DeployError(
            f"--interval {interval:g}: at most {MAX_INTERVAL_S} seconds (366 days) - for a longer period use --cron"
        )
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    if cron is not None:
        fields = len(cron.split())
        if fields != 5:  # croniter takes a sixth field as seconds: "0 0 2 * * *" fires every second of a minute
            seconds = " (a sixth field would be read as seconds)" if fields == 6 else ""
            raise DeployError(
                f"--cron {cron!r} is not a valid cron schedule ({fields} fields{seconds}) - a cron string has 5 fields: "
                'minute hour day-of-month month day-of-week, e.g. "0 2 * * *" (02:00 every day)'
            )
        try:
            CronSchedule(cron=cron)
        except ValidationError as exc:
            raise DeployError(
                f"--cron {cron!r} is not a valid cron schedule ({_first_error(exc)}) - a cron string has 5 fields: "
                'minute hour day-of-month month day-of-week, e.g. "0 2 * * *" (02:00 every day)'
            ) from None
    if timezone is not None:
        try:
            CronSchedule(cron="0 0 * * *", timezone=timezone)
        except ValidationError:
            raise DeployError(
                f"--timezone {timezone!r} is not a known timezone - give an IANA name, e.g. Europe/Paris or UTC"
            ) from None
    return ScheduleSpec(cron, interval, timezone)


def _first_error(exc) -> str:
    errors = exc.errors()
    message = str(errors[0].get("msg", exc)) if errors else str(exc)
    return message.removeprefix("Value error, ")


def api_url() -> str:
    """The URL of a running Prefect server (PREFECT_API_URL, from the environment or the Prefect profile)."""
    from prefect.settings import PREFECT_API_URL

    url = (PREFECT_API_URL.value() or "").rstrip("/")
    if not url:
        raise DeployError(f"deployments need a running Prefect server and PREFECT_API_URL is not set: {SERVER_FIX}")
    try:
        with _OPENER.open(f"{url}/health", timeout=5) as response:
            if response.status == 200:
                return url
            problem = f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        problem = f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        problem = str(getattr(exc, "reason", exc))
    raise DeployError(f"no Prefect server answers at PREFECT_API_URL={url} ({problem}): {SERVER_FIX}")


def flow_object(kind: str):
    """The Prefect flow of `kind` (run, train, iterate), imported only now."""
    if kind not in FLOW_MODULES:
        raise DeployError(f"--flow {kind!r}: unknown flow - use one of: {', '.join(FLOW_MODULES)}")
    module_name = FLOW_MODULES[kind]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise DeployError(
            f"--flow {kind}: {module_name.replace('.', '/')}.py is not in this installation - deploy the run and train flows only"
        ) from None
    return _module_flow(module, kind)


def _module_flow(module, kind: str):
    from prefect import Flow

    flows = [
        (attr, value)
        for attr, value in vars(module).items()
        if isinstance(value, Flow) and value.fn.__module__ == module.__name__
    ]
    if not flows:
        raise DeployError(f"--flow {kind}: {module.__name__} defines no Prefect flow")
    preferred = [pair for pair in flows if pair[1].name == f"rlaif-{kind}"]
    return (preferred or flows)[0]


def flow_parameters(kind: str, fn, plan: DeployPlan) -> dict[str, Any]:
    """The deployment's parameters: the recipe and store (absolute), train defaults, then --param values;
    only those the flow takes. A required parameter left without a value is an error naming it."""
    accepted = inspect.signature(fn).parameters
    known = {"recipe_path": str(plan.recipe), "recipe": str(plan.recipe), "store": str(plan.store)}
    if kind == "train":
        known.update(TRAIN_DEFAULTS)
    params = {key: value for key, value in known.items() if key in accepted}
    unknown = sorted(key for key in plan.params if key not in accepted)
    if unknown:
        raise DeployError(
            f"--param {unknown[0]}: the {kind} flow has no parameter {unknown[0]!r} - its parameters: {', '.join(accepted)}"
        )
    params.update(plan.params)
    check_values(params)
    check_dataset(params)
    missing = [name for name, p in accepted.items() if p.default is inspect.Parameter.empty and name not in params]
    if missing:
        hint = " (a dataset version id: `rlaif datasets list`)" if missing[0] == "dataset_id" else ""
        raise DeployError(f"--flow {kind} needs a value for {missing[0]!r}{hint}: add --param {missing[0]}=VALUE")
    return params


def check_values(params: dict[str, Any]) -> None:
    """The parameter values rlaif's own rules decide: a dataset id is a version id, an algorithm is one of ALGORITHMS."""
    if "dataset_id" in params and not is_version_id(params["dataset_id"]):
        raise DeployError(
            f"--param dataset_id: {short_repr(params['dataset_id'])} is not a version id ({ID_RULE}) - "
            "see `rlaif datasets list`"
        )
    if "algorithm" in params and params["algorithm"] not in ALGORITHMS:
        raise DeployError(
            f"--param algorithm: {short_repr(params['algorithm'])} is not a training algorithm - use one of: {', '.join(ALGORITHMS)}"
        )


def check_dataset(params: dict[str, Any]) -> None:
    """A training deployment's dataset version is in its store now: otherwise every scheduled run would fail."""
    from rlaif.core.errors import StoreError
    from rlaif.store.versions import load_manifest

    if "dataset_id" in params and "store" in params:
        try:
            load_manifest(params["store"], params["dataset_id"])
        except StoreError as exc:
            raise DeployError(f"--param dataset_id: {exc} - every run of this deployment would fail") from None


def check_plan(plan: DeployPlan) -> None:
    """The names, every flow of the plan and all its parameters (before a server is asked anything)."""
    for option, value in (("--name", plan.name), ("--pool", plan.pool)):
        if name_problem(value):
            raise DeployError(f"{option}: {name_problem(value)}")
    for kind in plan.flows:
        flow_parameters(kind, flow_object(kind)[1].fn, plan)


def _deployments(plan: DeployPlan) -> list[tuple[Any, str, dict[str, Any]]]:
    """(flow loaded from local source, entrypoint, parameters) per flow of the plan."""
    from prefect import Flow

    items = []
    for kind in plan.flows:
        attr, flow = flow_object(kind)
        params = flow_parameters(kind, flow.fn, plan)
        entrypoint = f"{FLOW_MODULES[kind]}.{attr}"
        items.append((Flow.from_source(source=str(plan.workdir), entrypoint=entrypoint), flow.name, params))
    return items


def ensure_pool(name: str) -> bool:
    """A process work pool called `name`; True when it was created now."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(
                WorkPoolCreate(
                    name=name, type="process", base_job_template=ProcessWorker.get_default_base_job_template()
                )
            )
            return True
    if pool.type != "process":
        raise DeployError(
            f"--pool {name}: the work pool {name!r} is of type {pool.type!r}, not 'process' - choose another --pool name (rlaif makes a process pool)"
        )
    return False


def deploy_flows(plan: DeployPlan) -> list[Deployed]:
    """Create (or update) one deployment per flow of the plan on the plan's work pool."""
    from prefect.deployments.runner import EntrypointType

    done = []
    for flow, flow_name, params in _deployments(plan):
        with contextlib.redirect_stdout(io.StringIO()):  # Prefect's own table of deployments: rlaif prints its lines
            deployment_id = flow.deploy(
                name=plan.name,
                work_pool_name=plan.pool,
                schedule=plan.schedule.prefect(),
                parameters=params,
                entrypoint_type=EntrypointType.MODULE_PATH,
                print_next_steps=False,
                ignore_warnings=True,
                tags=["rlaif"],
                description=f"rlaif {flow_name} of {plan.recipe.name}, {plan.schedule.describe()}",
            )
        done.append(Deployed(flow_name, plan.name, str(deployment_id), params))
    return done


def serve_flows(plan: DeployPlan, on_ready=None) -> None:
    """Serve the plan's deployments from this process until Ctrl-C (or SIGTERM); their schedules are paused then."""
    from prefect import serve
    from prefect.deployments.runner import EntrypointType

    deployments, shown = [], []
    for flow, flow_name, params in _deployments(plan):
        deployments.append(
            flow.to_deployment(
                name=plan.name,
                schedule=plan.schedule.prefect(),
                parameters=params,
                entrypoint_type=EntrypointType.MODULE_PATH,
                tags=["rlaif"],
            )
        )
        shown.append(Deployed(flow_name, plan.name, "", params))
    if on_ready:
        on_ready(shown)
    serve(*deployments, print_starting_message=False)
