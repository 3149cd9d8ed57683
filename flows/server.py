"""The Prefect API server of one `rlaif run`: started with the run, stopped with it, never orphaned.

Without PREFECT_API_URL, Prefect's "ephemeral" mode starts a server subprocess on first use and
stops it at exit (atexit). After SIGKILL that server survives as an orphan for a minute or more;
after SIGTERM it also keeps the run's stdout, so `rlaif run ... | tee log` hangs. `prefect_api()`
starts the same server itself (same command and settings as Prefect's
`prefect.server.api.server.SubprocessASGIServer`) with

- PR_SET_PDEATHSIG=SIGKILL: the kernel kills it the moment the run's process dies, even by SIGKILL;
- its own session and its output in an unnamed temporary file (shown only if it fails to start),
  so it never holds the run's stdout/stderr and a Ctrl-C in the terminal reaches the run, not it;
- a SIGTERM handler for the run: SIGTERM outside the flow raises SystemExit(143); inside the
  flow Prefect's own handler marks the flow run Crashed; either way the server is stopped.

A flow run whose process was SIGKILLed cannot report anything: the next run on the store marks
it Crashed (`crash_abandoned_flow_runs`, from the flow-run id kept in the work folder).

When PREFECT_API_URL is set (a server you run, `make server`, or Prefect Cloud) nothing is
started and that API is used.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from rlaif.core.processes import die_with_parent, free_port, sigterm_exits
from rlaif.flows.shared_server import ServerStartError, healthy

#: a flow's summary log record carries this attribute: `rlaif run` and `rlaif train --prefect` print the summary
#: themselves and keep that record off Prefect's console (rlaif.cli.common.summary_off_prefect_console)
SUMMARY_RECORD = "rlaif_summary"

STARTUP_TIMEOUT_S = 60.0
FLOW_RUN_FILE = "flow-run-id"  # in the run's work folder


def _launch(log: IO[bytes]) -> tuple[subprocess.Popen, str]:
    """Start the server on a free port without waiting for it (nor importing Prefect); (process, API URL)."""
    spec = importlib.util.find_spec("prefect")
    app_dir = Path(spec.origin).parent.parent if spec and spec.origin else Path(sys.prefix)
    port = free_port()
    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
    env.pop("PREFECT_API_URL", None)
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(app_dir),
        "--factory",
        "prefect.server.api.server:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]
    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent(signal.SIGKILL),
    )
    return proc, f"http://127.0.0.1:{port}/api"


def _wait_healthy(proc: subprocess.Popen, url: str, log: IO[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not healthy(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            output = log.read().decode(errors="replace")[-2000:]
            raise ServerStartError(
                f"the Prefect API server for this run did not start on {url} (exit code {proc.poll()}): {output} - "
                "set PREFECT_API_URL to a running server (`make server`), or run with --no-prefect"
            )
        time.sleep(0.05)


def stop(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_server(
    log: IO[bytes], launched: tuple[subprocess.Popen, str] | None = None, attempts: int = 3
) -> tuple[subprocess.Popen, str]:
    """A healthy server (`launched` if given, else a new one); another port is tried if one was taken meanwhile."""
    for attempt in range(attempts):
        proc, url = launched or _launch(log)
        launched = None
        try:
            _wait_healthy(proc, url, log)
            return proc, url
        except BaseException as exc:  # SIGTERM (SystemExit) while waiting included
            stop(proc)
            if not isinstance(exc, ServerStartError) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _drain_prefect_workers(timeout: float = 5.0) -> None:
    """Let Prefect's log and event workers send what they hold (else they retry a gone server for a minute at exit)."""
    from prefect.logging.handlers import APILogWorker

    try:
        APILogWorker.drain_all(
            timeout=timeout, at_exit=False
        )  # the instances of every Prefect queue service, events too
    except Exception:  # nothing to send, or it cannot be sent: the server is stopped anyway
        pass


def _profile_api() -> str | None:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


@contextmanager
def prefect_api() -> Iterator[str]:
    """A Prefect API for the block: PREFECT_API_URL (environment or Prefect profile) if set, else a
    server of our own, stopped at the end; yields its URL.

    The server is launched before Prefect is imported, so its start overlaps the imports. Call
    this from the main thread: the server dies with the thread that started it.
    """
    if os.environ.get("PREFECT_API_URL"):
        with sigterm_exits(), _terminated_exits():
            yield os.environ["PREFECT_API_URL"]
        return
    if os.environ.get("RLAIF_PREFECT_SERVER", "shared") != "run":
        yield from _shared()
        return
    with sigterm_exits(), tempfile.TemporaryFile() as log:
        launched = _launch(log)
        try:
            configured = _profile_api()
        except BaseException:
            stop(launched[0])
            raise
        if configured:  # set in the Prefect profile: use that server
            stop(launched[0])
            yield configured
            return
        yield from _serve(start_server(log, launched))


@contextmanager
def _terminated_exits() -> Iterator[None]:
    """SIGTERM inside the flow (Prefect's TerminationSignal; Prefect marked the flow run Crashed) ends the command
    with 143, as outside it."""
    from prefect.exceptions import TerminationSignal

    try:
        yield
    except TerminationSignal:
        raise SystemExit(128 + signal.SIGTERM) from None


def _shared() -> Iterator[str]:
    """The server in the Prefect profile if one is set, else the local server that commands share (flows/shared_server.py)."""
    from rlaif.flows.shared_server import shared_server

    with sigterm_exits():
        configured = _profile_api()
        if configured:
            yield configured
            return
        with shared_server() as url:
            yield from _using(url, ui=url.removesuffix("/api"))


def _using(url: str, ui: str) -> Iterator[str]:
    """Prefect's client pointed at `url` for the block (`ui`: where "View at" links go; "" for none)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

    try:
        with _terminated_exits(), temporary_settings(updates={PREFECT_API_URL: url, PREFECT_UI_URL: ui}):
            os.environ["PREFECT_API_URL"] = url
            yield url
    finally:
        _drain_prefect_workers()  # they send the run's last logs and events: while the server is up
        os.environ.pop("PREFECT_API_URL", None)


def _serve(server: tuple[subprocess.Popen, str]) -> Iterator[str]:
    proc, url = server
    try:
        # no "View at <url>" line: the run's own server has no UI and stops with the run (the link would not open)
        yield from _using(url, ui="")
    finally:
        stop(proc)


def record_flow_run(work: Path) -> None:
    """Keep the current flow run's id in the run's work folder, for `crash_abandoned_flow_runs`."""
    from prefect.runtime import flow_run

    if flow_run.id:
        (work / FLOW_RUN_FILE).write_text(str(flow_run.id))


def crash_abandoned_flow_runs(store: Path) -> list[str]:
    """Mark Crashed the flow runs of this store's runs that died without a word (SIGKILL); returns their ids.

    A run's work folder that is abandoned (its lock is free) is removed by the next run's start;
    just before that, its flow run (still RUNNING in Prefect's database) is set to Crashed.
    """
    from rlaif.store.locks import locked_folder
    from rlaif.store.workdirs import abandoned_work_folders

    runs = Path(store) / ".runs"
    if not runs.is_dir():
        return []
    with locked_folder(runs):
        ids = [
            (folder / FLOW_RUN_FILE).read_text().strip()
            for folder in abandoned_work_folders(runs)
            if (folder / FLOW_RUN_FILE).is_file()
        ]
    return [flow_run_id for flow_run_id in ids if _mark_crashed(flow_run_id)]


def _mark_crashed(flow_run_id: str) -> bool:
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(flow_run_id)
            if run.state and run.state.is_final():
                return False
            client.set_flow_run_state(
                flow_run_id,
                Crashed(message="the process of this run was killed (found by the next rlaif run on the store)"),
                force=True,
            )
    except Exception:  # another Prefect database, or the API is unreachable: nothing to mark
        return False
    return True
