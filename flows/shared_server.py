"""A local Prefect server that `rlaif run`, `train` and `iterate` share, so that a run does not pay for a fresh server.

Without PREFECT_API_URL, the first command starts it detached (its own session; output in PREFECT_HOME/rlaif-server.log;
the Prefect UI on, background services off, as `prefect server start --no-services`), and later commands find it through
PREFECT_HOME/rlaif-server.json, checked by its /health. It stops itself once no command has used it for
RLAIF_SERVER_IDLE_S seconds (default 1800), or on `rlaif server stop`.

Every command holds a shared `flock` on PREFECT_HOME/rlaif-server.users while it uses the server; the server's idle
watch only stops it when it can take that lock exclusively (no command is using it, and a command killed with SIGKILL
holds nothing), and keeps it while it stops, so a command never starts on a server that is going away.
RLAIF_PREFECT_SERVER=run gives each command a server of its own instead, stopped with it (rlaif.flows.server).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock

from rlaif.core.errors import RlaifError
from rlaif.core.processes import free_port

STATE, USERS, LOG, START_LOCK = "rlaif-server.json", "rlaif-server.users", "rlaif-server.log", "rlaif-server.lock"
IDLE_S = 1800.0
MODULE = "rlaif.flows.shared_server"  # the server process is `python -m MODULE PORT`
STARTUP_TIMEOUT_S = 90.0  # the first start also builds the UI's files


class ServerStartError(RlaifError):
    """The Prefect server for the command did not start (the CLI prints it and exits 2)."""


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 even with *_proxy set


def healthy(url: str) -> bool:
    """Whether a Prefect API answers its /health at `url`."""
    try:
        with _OPENER.open(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def prefect_home() -> Path:
    """Where Prefect keeps its database and settings (PREFECT_HOME, default ~/.prefect)."""
    return Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()


def idle_seconds() -> float:
    """RLAIF_SERVER_IDLE_S, else 30 minutes."""
    return float(os.environ.get("RLAIF_SERVER_IDLE_S") or IDLE_S)


def read_state(home: Path | None = None) -> dict | None:
    """The running shared server's {pid, port, url, started} (None when there is none)."""
    path = (home or prefect_home()) / STATE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@contextmanager
def shared_server() -> Iterator[str]:
    """The shared server's API URL, for the block (started first when none is running)."""
    home = prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    with (home / USERS).open("a") as users:
        fcntl.flock(users, fcntl.LOCK_SH)  # released when the file closes, or by the kernel when this process dies
        state = ensure_server(
            home
        )  # it also marks the start of this use: idle time counts from a command's start and end
        try:
            yield state["url"]
        finally:
            os.utime(home / USERS)


def ensure_server(home: Path | None = None) -> dict:
    """The running shared server's state, after starting it if none answers."""
    home = home or prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    with FileLock(home / START_LOCK, timeout=STARTUP_TIMEOUT_S * 2):
        state = read_state(home)
        if not (state and healthy(state["url"])):
            state = _start(home)
    (home / USERS).touch()  # made, or its time set to now: a use starts
    return state


def _start(home: Path) -> dict:
    """Start the server detached and wait for it; another port is tried if the one chosen was taken meanwhile."""
    for _ in range(3):
        port = free_port()
        url = f"http://127.0.0.1:{port}/api"
        with (home / LOG).open("ab") as log:
            launcher = subprocess.Popen(
                [sys.executable, "-m", MODULE, str(port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PREFECT_HOME": str(home)},
            )
        launcher.wait()  # it forks the server and returns at once
        deadline, pid = time.monotonic() + STARTUP_TIMEOUT_S, None
        while time.monotonic() < deadline:
            state = read_state(home)
            if state and state.get("port") == port:
                pid = state["pid"]  # written first thing: from now on, its death is seen
                if healthy(url):
                    return state
            if pid is not None and not _alive(pid):
                break  # it died: the port was taken, or worse (the log says)
            time.sleep(0.05)
    tail = (home / LOG).read_text(errors="replace")[-2000:] if (home / LOG).is_file() else ""
    raise ServerStartError(
        f"the shared Prefect server did not start ({home / LOG}): {tail} - set PREFECT_API_URL to a running server "
        "(`make server`), use RLAIF_PREFECT_SERVER=run for a server of the command's own, or run with --no-prefect"
    )


def _alive(pid: int) -> bool:
    """Whether `pid` is the shared server (not another process that got its number since)."""
    try:
        return MODULE in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def stop_server(timeout: float = 20.0) -> dict | None:
    """Stop the shared server (SIGTERM, waiting for it to end); its state, or None when none was running."""
    home = prefect_home()
    state = read_state(home)
    if state is None:
        return None
    if _alive(state["pid"]):
        os.kill(state["pid"], signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(state["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(state["pid"]):
            os.kill(state["pid"], signal.SIGKILL)
    (home / STATE).unlink(missing_ok=True)
    return state


# -- the server process -------------------------------------------------------------------------------------------


def _serve(port: int) -> None:
    """In the detached process: write the state, serve the API and UI until idle or SIGTERM, then clear the state."""
    url = f"http://127.0.0.1:{port}/api"
    os.environ["PREFECT_UI_API_URL"] = url  # the API the UI's pages call (else Prefect's default, port 4200)
    os.environ.pop("PREFECT_API_URL", None)
    import uvicorn
    from prefect.server.api.server import create_app

    from rlaif.store.atomic import write_json_atomic

    home = prefect_home()
    state = {"pid": os.getpid(), "port": port, "url": url, "started": time.time()}
    write_json_atomic(home / STATE, state)
    app = create_app(final=True)  # the API, the UI and all its services, as `prefect server start`
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on"))
    threading.Thread(target=_idle_watch, args=(server, home), daemon=True).start()
    try:
        server.run()
    finally:
        if (read_state(home) or {}).get("pid") == os.getpid():
            (home / STATE).unlink(missing_ok=True)


def _idle_watch(server, home: Path) -> None:
    """Stop the server once no command holds the users' lock and none has used it for the idle time."""
    limit = idle_seconds()
    with (home / USERS).open("a") as users:
        while not server.should_exit:
            time.sleep(min(30.0, max(limit / 10, 0.2)))
            idle = time.time() - (home / USERS).stat().st_mtime
            if idle < limit:
                continue
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a command is using it
            (home / STATE).unlink(missing_ok=True)  # no command finds it from now on; the lock is held until exit
            server.should_exit = True


def main(argv: list[str]) -> None:
    """`python -m rlaif.flows.shared_server PORT`: fork the server off and return (the launching command waits for this)."""
    if os.fork():
        os._exit(0)
    os.setsid()
    _serve(int(argv[0]))


if __name__ == "__main__":
    main(sys.argv[1:])
