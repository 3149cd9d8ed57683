"""`rlaif deploy` and `rlaif serve`: scheduled Prefect deployments of the run, train and iterate flows (flows/deploy.py)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Optional

import typer

from rlaif.cli.common import StoreOption, console, err, fail
from rlaif.core.errors import RlaifError

DEPLOY_HELP = """Create Prefect deployments of a recipe's flows with a schedule, on a process work pool.

Needs a running Prefect server: `make server`, then `export PREFECT_API_URL=http://127.0.0.1:4200/api`. The work pool (default `rlaif`, process type) is created if missing; `prefect worker start --pool rlaif` then runs the flows on schedule, or now with `prefect deployment run rlaif-run/NAME`. Runs, logs and artifacts show in the UI (http://127.0.0.1:4200). Deploying again updates the deployment.

The recipe path and the store are stored absolute; the runs work in the folder you deploy from (a recipe's relative paths are relative to it, as for `rlaif run`).

Flows (--flow, repeat it for several): run (rlaif-run, the default), train (rlaif-train: needs --param dataset_id=ID; algorithm dpo and model smollm2-135m unless --param sets them), iterate (the iterative loop, when flows/iterate.py is installed).

Example:

    rlaif deploy recipes/demo.yaml --cron "0 2 * * *"     # 02:00 UTC

    rlaif deploy recipes/demo.yaml --interval 3600 --name hourly --pool rlaif

    rlaif deploy recipes/demo.yaml --cron "0 4 * * *" --flow train \\
        --param dataset_id=demo-0123456789ab
"""

SERVE_HELP = """Serve a recipe's flows as scheduled deployments from this process (no work pool or worker).

Runs happen in child processes of this one while it is up, on the schedule or when triggered with `prefect deployment run rlaif-run/NAME`; Ctrl-C stops it cleanly and pauses the schedules. Needs a running Prefect server, as `rlaif deploy` does.

Example:

    rlaif serve recipes/demo.yaml --cron "0 2 * * *"

    rlaif serve recipes/demo.yaml --interval 3600 --flow run --flow iterate
"""

CronOption = typer.Option(None, "--cron", help='Cron schedule (5 fields), e.g. "0 2 * * *" for 02:00 every night.')
IntervalOption = typer.Option(None, "--interval", help="Schedule every S seconds, e.g. 3600.")
TimezoneOption = typer.Option(
    None, "--timezone", help="IANA timezone of the cron schedule, e.g. Europe/Paris (default UTC)."
)
NameOption = typer.Option(
    None,
    "--name",
    help="Deployment name (default: the recipe's name); the full name is FLOW/NAME, e.g. rlaif-run/demo.",
)
FlowOption = typer.Option(None, "--flow", help="run, train or iterate; repeat for several (default: run).")
ParamOption = typer.Option(
    None,
    "--param",
    "-p",
    help="A flow parameter KEY=VALUE (VALUE read as YAML), e.g. -p dataset_id=demo-0123456789ab; repeatable.",
)


def _params(pairs: list[str]) -> dict:
    import yaml

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise RlaifError(f"--param {pair!r}: write KEY=VALUE, e.g. --param dataset_id=demo-0123456789ab")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError as exc:
            raise RlaifError(
                f"--param {pair!r}: the value is not valid YAML ({exc.problem}) - quote it, e.g. --param {key}='\"...\"'"
            ) from None
    return out


def _load(recipe: str, flows: tuple[str, ...]):
    """The recipe as its flows read it: the loop's (`iterate:` section checked) for iterate, a plain recipe for run."""
    from rlaif.config.recipe import load_recipe

    if "iterate" not in flows:
        return load_recipe(recipe)
    from rlaif.loop.spec import load_loop

    parsed, _ = load_loop(recipe)
    if "run" in flows:  # the run flow reads it as a plain recipe, where an `iterate:` section is an error
        try:
            load_recipe(recipe)
        except RlaifError as exc:
            raise RlaifError(
                f"--flow run: {exc} - deploy a loop recipe (with `iterate:`) with --flow iterate only"
            ) from None
    return parsed


def _plan(recipe: str, cron, interval, timezone, name, pool, flows, store, params):
    """Everything checked before Prefect is asked anything: the recipe, the store, the schedule, the flows."""
    from rlaif.config.settings import store_path
    from rlaif.flows.deploy import DEFAULT_POOL, DeployPlan, check_plan, schedule_spec

    schedule = schedule_spec(cron, interval, timezone)
    chosen = tuple(dict.fromkeys(flows or ["run"]))
    parsed = _load(recipe, chosen)
    where = store_path(parsed, store).resolve()
    plan = DeployPlan(
        Path(recipe).resolve(),
        where,
        chosen,
        schedule,
        name or parsed.name,
        pool or DEFAULT_POOL,
        _params(params or []),
    )
    check_plan(plan)
    return plan


def prefect_command() -> str:
    """The `prefect` command of this installation, as a path a shell without the venv activated finds."""
    import shlex
    import sys
    from pathlib import Path

    installed = Path(sys.executable).parent / "prefect"
    return shlex.quote(str(installed)) if installed.exists() else "prefect"


def deploy(
    recipe: str = typer.Argument(..., help="Recipe YAML file, e.g. recipes/demo.yaml."),
    cron: Optional[str] = CronOption,
    interval: Optional[float] = IntervalOption,
    timezone: Optional[str] = TimezoneOption,
    name: Optional[str] = NameOption,
    pool: Optional[str] = typer.Option(
        None, "--pool", help="Process work pool of the deployments (default: rlaif; created if missing)."
    ),
    flow: Optional[list[str]] = FlowOption,
    param: Optional[list[str]] = ParamOption,
    store: Optional[str] = StoreOption,
) -> None:
    from rlaif.flows.deploy import api_url, deploy_flows, ensure_pool

    started = time.perf_counter()
    try:
        plan = _plan(recipe, cron, interval, timezone, name, pool, flow, store, param)
        url = api_url()
        if ensure_pool(plan.pool):
            err.print(f"created the process work pool {plan.pool!r}", highlight=False)
        done = deploy_flows(plan)
    except RlaifError as exc:
        fail(exc)
    for item in done:
        console.print(
            f"deployed {item.full_name} ({plan.schedule.describe()}, work pool {plan.pool!r}) id {item.id}",
            highlight=False,
            soft_wrap=True,
        )
    ui = url[: -len("/api")] if url.endswith("/api") else url
    prefect = prefect_command()
    err.print(
        f"in {time.perf_counter() - started:.1f} s; start a worker:  PREFECT_API_URL={url} {prefect} worker start --pool {plan.pool}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    err.print(
        f"run one now:  PREFECT_API_URL={url} {prefect} deployment run '{done[0].full_name}'   (UI: {ui}/deployments)",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )


def serve(
    recipe: str = typer.Argument(..., help="Recipe YAML file, e.g. recipes/demo.yaml."),
    cron: Optional[str] = CronOption,
    interval: Optional[float] = IntervalOption,
    timezone: Optional[str] = TimezoneOption,
    name: Optional[str] = NameOption,
    flow: Optional[list[str]] = FlowOption,
    param: Optional[list[str]] = ParamOption,
    store: Optional[str] = StoreOption,
) -> None:
    from rlaif.flows.deploy import api_url, serve_flows

    def ready(shown) -> None:
        for item in shown:
            console.print(f"serving {item.full_name} ({plan.schedule.describe()})", highlight=False, soft_wrap=True)
        # a background job of a non-interactive shell starts with SIGINT ignored: Ctrl-C would not reach it
        stop = (
            f"kill {os.getpid()} stops serving"
            if signal.getsignal(signal.SIGINT) == signal.SIG_IGN
            else "Ctrl-C stops serving"
        )
        err.print(
            f"run one now:  {prefect_command()} deployment run '{shown[0].full_name}'   {stop}",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )

    try:
        plan = _plan(recipe, cron, interval, timezone, name, None, flow, store, param)
        api_url()
        serve_flows(plan, on_ready=ready)
    except RlaifError as exc:
        fail(exc)
    except KeyboardInterrupt:  # Ctrl-C: Prefect's runner stopped and paused the schedules
        pass
    except SystemExit as exc:  # SIGTERM: Prefect's runner stops and exits 0
        if exc.code not in (0, None):
            raise
    err.print("stopped serving (schedules paused)", highlight=False)
