"""`rlaif server`: the local Prefect server that runs share when PREFECT_API_URL is not set (flows/shared_server.py)."""

from __future__ import annotations

import time

import typer

from rlaif.cli.common import console, emit, fail
from rlaif.core.errors import RlaifError

app = typer.Typer(
    help="The local Prefect server that `rlaif run`, `train` and `iterate` share when PREFECT_API_URL is not set: "
    "started by the first of them, stopped after RLAIF_SERVER_IDLE_S idle seconds (default 1800).",
    no_args_is_help=True,
)


def _lines(state: dict) -> list[str]:
    from rlaif.flows.shared_server import idle_seconds, prefect_home

    ui = state["url"].removesuffix("/api")
    up = time.time() - state["started"]
    return [
        f"Prefect server: {ui} (UI), API {state['url']}, pid {state['pid']}, up {up / 60:.1f} min",
        f"Prefect home: {prefect_home()}; it stops after {idle_seconds() / 60:g} idle minutes, or with `rlaif server stop`",
    ]


@app.command("start")
def server_start() -> None:
    """Start the shared server now (the first run would otherwise start it), and print where its UI is.

    Example: rlaif server start
    """
    from rlaif.flows.shared_server import ensure_server

    try:
        state = ensure_server()
    except RlaifError as exc:
        fail(exc)
    for line in _lines(state):
        console.print(line, highlight=False, soft_wrap=True)


@app.command("status")
def server_status(as_json: bool = typer.Option(False, "--json", help="Print the server's state as JSON.")) -> None:
    """Whether the shared server is running, where, and for how long (exit 1 when it is not).

    Example: rlaif server status --json
    """
    from rlaif.flows.shared_server import healthy, read_state

    state = read_state()
    running = bool(state and healthy(state["url"]))
    if as_json:
        emit({"running": running, **(state or {})})
    elif running:
        for line in _lines(state):
            console.print(line, highlight=False, soft_wrap=True)
    else:
        console.print("no shared Prefect server is running (the next `rlaif run` starts one)")
    raise typer.Exit(0 if running else 1)


@app.command("stop")
def server_stop() -> None:
    """Stop the shared server (a run using it finishes first only if it is not in the middle of one: stop it when idle).

    Example: rlaif server stop
    """
    from rlaif.flows.shared_server import stop_server

    state = stop_server()
    console.print(
        f"stopped the shared Prefect server (pid {state['pid']})" if state else "no shared Prefect server was running"
    )
