"""Shared helpers for the bad-input and fault tests (tests/test_bad_*.py) and every test that runs `rlaif`.

Every bad input must end the same way: exit code 2 (or the code named), a message on stderr that
names the file / field / URL, no Python traceback, and nothing written to the store.

`run_cli` runs the command in this process by default (typer's CliRunner: no interpreter start, the
imports paid once per test process); `run_cli(..., process=True)` runs `python -m rlaif.cli` in a child
process, as a user does. A child process is for what is about a process or would leave something in
this one: a run that goes past its checks (models, threads, event loops, Prefect flows, training,
torchrun), a server, a kill or a signal, and a variable that a library reads once, at its import
(PREFECT_*, HF_ENDPOINT / HF_HOME / HF_HUB_OFFLINE, torch's and the BLAS libraries' threads,
PYTHONPATH): in this process the library would not see it. An in-process call that leaves a thread
running, a signal handler, or a changed environment behind fails, saying to use process=True.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import typer.rich_utils  # noqa: F401 - reads TERMINAL_WIDTH / FORCE_COLOR once, at import: never a test's
import yaml
from rich.console import Console
from typer.testing import CliRunner

import rlaif.cli  # here, outside any call: its consoles are made once, at import, as in `python -m rlaif.cli`
from tests.conftest import ROOT

QUIET = {"RLAIF_PROGRESS": "0", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
ENV = {**os.environ, **QUIET}  # the environment at import, for tests that start their own processes
PROG = "python -m rlaif.cli"  # the program name click finds for `python -m rlaif.cli` (usage lines, hints)
# Prefect's settings as this test process starts: Prefect reads them once, at its import (see _prefect_imported)
_PREFECT_AT_START = {key: value for key, value in {**os.environ, **QUIET}.items() if key.startswith("PREFECT_")}


def cli_env(extra: dict | None = None) -> dict:
    """The environment now (a fixture may have set PREFECT_API_URL), quiet, with `extra` on top (None: unset)."""
    env = {**os.environ, **QUIET, **(extra or {})}
    return {key: value for key, value in env.items() if value is not None}


GOOD = {"name": "t", "policies": [{"name": "p", "model": "smollm2-135m"}]}


def run_cli(
    *args: str, cwd: Path = ROOT, env: dict | None = None, timeout: float = 120, process: bool = False
) -> subprocess.CompletedProcess:
    """`rlaif ARGS...` in the folder `cwd`, with `env` on top of the current environment (a None value
    unsets a variable): its exit code, stdout and stderr as a CompletedProcess.

    In this process unless `process` (then `python -m rlaif.cli ARGS...` in a child process, as a user
    runs it): the module docstring says which calls need a process. In this process an exception that
    ends the command is what Python prints for it in a process: "Traceback ..." on stderr, exit code 1;
    a command still running after `timeout` seconds raises subprocess.TimeoutExpired, as subprocess.run does.
    """
    if process:
        return subprocess.run(
            [sys.executable, "-m", "rlaif.cli", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=cli_env(env),
        )
    return _in_process([str(arg) for arg in args], Path(cwd), {**QUIET, **(env or {})}, timeout)


class _Runner(CliRunner):
    """typer's CliRunner, keeping the stdout and stderr it gives the command (to find what still holds them),
    its consoles sized by the command's environment."""

    @contextlib.contextmanager
    def isolation(self, *args, **kwargs) -> Iterator:
        with super().isolation(*args, **kwargs) as streams, _consoles_sized_now():
            self.streams = {"stdout": sys.stdout, "stderr": sys.stderr}
            yield streams


@contextlib.contextmanager
def _consoles_sized_now() -> Iterator[None]:
    """rlaif's rich consoles (rlaif.cli.common: console, err) are made at import, and a console takes its width
    and height from COLUMNS and LINES when it is made (pytest-xdist's workers set COLUMNS=80): for the command,
    what they would be in a process started with the environment now (a test's env={"COLUMNS": "250"})."""
    consoles = {
        id(value): value
        for name, module in list(sys.modules.items())
        if name.startswith("rlaif.")
        for value in list(vars(module).values())
        if isinstance(value, Console)
    }.values()
    saved = [(console, console._width, console._height) for console in consoles]
    columns, lines = os.environ.get("COLUMNS", ""), os.environ.get("LINES", "")
    for console in consoles:  # rich.console.Console.__init__: a width / height from the environment, else None
        console._width = int(columns) if columns.isdigit() else None
        console._height = int(lines) if lines.isdigit() else None
    try:
        yield
    finally:
        for console, width, height in saved:
            console._width, console._height = width, height


def _in_process(args: list[str], cwd: Path, env: dict, timeout: float) -> subprocess.CompletedProcess:
    _prefect_imported(env)
    threads, handlers, environ = set(threading.enumerate()), _signal_handlers(), dict(os.environ)
    runner = _Runner()
    with contextlib.chdir(cwd), _deadline(timeout, args), _last_resort(), _python_warnings():
        result = runner.invoke(rlaif.cli.app, args, env=env, prog_name=PROG, catch_exceptions=True)
    _release_streams(runner.streams)
    if isinstance(result.exception, _Expired):
        raise subprocess.TimeoutExpired([PROG, *args], timeout, result.stdout, result.stderr)
    _check_nothing_left(args, threads, handlers, environ)
    stdout, stderr, code = result.stdout, result.stderr, result.exit_code
    if isinstance(result.exception, SystemExit):
        message = result.exception.code
        if message is not None and not isinstance(message, int):  # sys.exit("text"): Python prints it on stderr
            stdout = stdout.removesuffix(f"{message}\n")
            stderr += f"{message}\n"
    elif result.exception is not None:  # what the interpreter prints for an uncaught exception
        stderr += "".join(traceback.format_exception(*result.exc_info))
        code = 1
    return subprocess.CompletedProcess([PROG, *args], code, stdout, stderr)


def _prefect_imported(env: dict) -> None:
    """Prefect reads its settings (PREFECT_API_URL, PREFECT_HOME, ...) once, when it is first imported, and
    keeps them for the life of the process. A command run here may import it (a check may import a flow
    module): that first import must see this process's own settings, never a call's `env` or a fixture's
    PREFECT_API_URL, or every later test in this process would get them."""
    if "prefect" in sys.modules:
        return
    now = {**os.environ, **env}
    if {key: value for key, value in now.items() if key.startswith("PREFECT_") and value is not None} == (
        _PREFECT_AT_START
    ):
        return
    with mock.patch.dict(os.environ):
        for key in [key for key in os.environ if key.startswith("PREFECT_")]:
            del os.environ[key]
        os.environ.update(_PREFECT_AT_START)
        import prefect.context  # noqa: F401


class _Expired(Exception):  # noqa: N818 - raised in the command when its time is up
    pass


@contextlib.contextmanager
def _deadline(seconds: float, args: list[str]) -> Iterator[None]:
    """Stop the command with _Expired after `seconds` (SIGALRM, main thread; not when a timer already runs)."""
    if threading.current_thread() is not threading.main_thread() or signal.getitimer(signal.ITIMER_REAL)[0]:
        yield
        return

    def expire(signum, frame):
        raise _Expired(f"rlaif {' '.join(args)}: still running after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _last_resort() -> Iterator[None]:
    """A warning or error logged by the command shows on its stderr, as in a process: there the root logger
    has no handler and Python's last resort prints it; here pytest's own handler would keep it."""
    root = logging.getLogger()
    added = logging.lastResort is not None and logging.lastResort not in root.handlers
    if added:
        root.addHandler(logging.lastResort)
    try:
        yield
    finally:
        if added:
            root.removeHandler(logging.lastResort)


# Python's own warning filters (no -W, no PYTHONWARNINGS), in their order (docs: "Default Warning Filter")
_DEFAULT_FILTERS = [
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, ""),
    ("ignore", PendingDeprecationWarning, ""),
    ("ignore", ImportWarning, ""),
    ("ignore", ResourceWarning, ""),
]


@contextlib.contextmanager
def _python_warnings() -> Iterator[None]:
    """A warning the command raises shows on its stderr under Python's default filters, as in a process; here
    pytest would record it instead (and count it in its summary)."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    with warnings.catch_warnings():
        warnings.resetwarnings()
        for action, category, module in reversed(_DEFAULT_FILTERS):
            warnings.filterwarnings(action, category=category, module=module)
        warnings.showwarning = show
        yield


class _Current:
    """sys.stdout or sys.stderr as it is when written to (what a process's stream is to its handlers)."""

    def __init__(self, name: str):
        self.name = name

    def write(self, text: str) -> int:
        return getattr(sys, self.name).write(text)

    def flush(self) -> None:
        getattr(sys, self.name).flush()

    def __getattr__(self, attribute: str):
        return getattr(getattr(sys, self.name), attribute)


def _release_streams(streams: dict) -> None:
    """A logging handler made during the command (a library's, on its first import) holds the command's
    captured stream: point it at this process's stream of the same name, as it is when written to."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            stream = getattr(handler, "stream", None)
            for name, captured in streams.items():
                if stream is captured:  # not setStream: it flushes the old stream, closed by now
                    with handler.lock:
                        handler.stream = _Current(name)


# Variables a library sets in os.environ on its first import, whoever imports it (torch's inductor, imported with
# trl, sets its cache folder): put back after an in-process call like any other, but not a reason to fail it.
_SET_ON_IMPORT = {"TORCHINDUCTOR_CACHE_DIR"}


def _signal_handlers() -> dict:
    return {
        sig: signal.getsignal(sig) for sig in signal.valid_signals() if sig not in (signal.SIGKILL, signal.SIGSTOP)
    }


def _check_nothing_left(args: list[str], threads: set, handlers: dict, environ: dict) -> None:
    """Fail (after putting back what can be) when the command left a thread, a signal handler or an environment
    variable behind it: such a command belongs in a child process (run_cli(..., process=True))."""
    problems = []
    changed = {sig: was for sig, was in handlers.items() if signal.getsignal(sig) != was}
    for sig, was in changed.items():
        signal.signal(sig, was if was is not None else signal.SIG_DFL)
    if changed:
        problems.append(f"signal handlers changed: {sorted(signal.Signals(sig).name for sig in changed)}")
    keys = sorted(key for key in {*os.environ, *environ} if os.environ.get(key) != environ.get(key))
    for key in keys:
        if key in environ:
            os.environ[key] = environ[key]
        else:
            del os.environ[key]
    if set(keys) - _SET_ON_IMPORT:
        problems.append(f"environment variables changed: {keys}")
    deadline = time.monotonic() + 30  # a thread that ends by itself (an import in the background) is no leak
    left = [  # not the per-request threads of a test's own HTTP server (socketserver.ThreadingMixIn) in this process
        thread
        for thread in threading.enumerate()
        if thread not in threads and "process_request_thread" not in thread.name
    ]
    for thread in left:
        thread.join(max(0.0, deadline - time.monotonic()))
    left = [thread.name for thread in left if thread.is_alive()]
    if left:
        problems.append(f"threads still running: {left}")
    if problems:
        raise AssertionError(
            f"`rlaif {' '.join(args)}` in the test process left: {'; '.join(problems)} - run it with process=True"
        )


def write_recipe(folder: Path, recipe: dict | str, name: str = "recipe.yaml") -> Path:
    """A recipe file: a dict is dumped as YAML, a string written as is (for YAML-level faults)."""
    path = folder / name
    path.write_text(recipe if isinstance(recipe, str) else yaml.safe_dump(recipe, sort_keys=False))
    return path


def two_policy_recipe(folder: Path, base_url: str, questions: list[str], name: str, **endpoint) -> Path:
    """A recipe file: two policies (temperatures 0.2 and 0.9, one sample each) and the judge on one OpenAI-compatible
    endpoint (model "det": tests/det_server.py), every judged pair kept; `endpoint` adds model settings."""
    from tests.conftest import write_prompts

    prompts = write_prompts(folder / "prompts.jsonl", questions)
    model = {"backend": "openai", "base_url": base_url, "model": "det", **endpoint}
    return write_recipe(
        folder,
        {
            "name": name,
            "prompts": {"path": str(prompts)},
            "policies": [{"name": n, **model, "params": {"temperature": t}} for n, t in (("cold", 0.2), ("hot", 0.9))],
            "samples_per_prompt": 1,
            "judge": model,
            "filters": {"min_margin": 0.0, "consistency": False},
        },
    )


def assert_clean_failure(
    result: subprocess.CompletedProcess, *needles: str, store: Path | None = None, code: int = 2
) -> None:
    """Exit `code`, every needle in the message (whitespace folded), no traceback, nothing in `store`."""
    message = " ".join(result.stderr.split())
    assert result.returncode == code, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    for needle in needles:
        assert needle in message, f"{needle!r} not in: {message}"
    if store is not None:
        assert not written(store), f"the store was written: {sorted(str(p) for p in Path(store).rglob('*'))}"


def written(store: Path) -> bool:
    """Whether anything (a version, a cache, a work folder) was written under the store."""
    store = Path(store)
    return store.exists() and any(store.iterdir())
