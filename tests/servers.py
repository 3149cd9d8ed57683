"""Real test servers for the test-suite.

``start_llm_katan`` runs the real ``llm-katan`` server (PyPI) with its *echo*
backend -- no model download, no torch -- as a subprocess on 127.0.0.1 and a
free port, and waits until ``GET /health`` answers.

Facts about llm-katan 0.22 (echo backend, OpenAI provider) that tests rely on:

* ``POST /v1/chat/completions`` needs an ``Authorization`` header (any value
  unless ``--validate-keys``), else 401.  The reply is always one choice,
  ``finish_reason="stop"``, ``logprobs=None``; the content is two lines::

      [echo] model=<served> host=<hostname>:<port> time=<iso> messages=<n> max_tokens=<m> temperature=<t>
      User: <last user message>

  ``usage`` counts whitespace-separated words (prompt: all messages' content;
  completion: the echo text).  ``max_tokens``/``temperature`` are only echoed,
  never enforced; ``n``, ``seed``, ``logprobs``, ``top_p``, ... are accepted
  and ignored.  The response ``model`` is the request's ``model``.
* Injected faults answer ``{"error": {"message": M, "type": "server_error",
  "code": null}}`` with no ``Retry-After`` header:
  ``--error-rate`` -> 500 "internal server error",
  ``--rate-limit-after N`` -> 429 "rate limit exceeded" from request N+1 on,
  ``--timeout-after N`` -> 504 "upstream request timeout" from request N+1 on
  (immediately; nothing actually hangs),
  ``--max-inflight K`` -> 503 "service overloaded".
  ``--latency-ms`` sleeps only on successful requests, *inside* the
  ``--max-concurrent`` semaphore (default 1, so this helper raises it).
* ``GET /metrics`` (Prometheus text): ``llm_katan_requests_total`` counts
  completed (200) chat completions only -- injected errors are not counted.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path

DEFAULT_MODEL = "katan-echo"
DEFAULT_MAX_CONCURRENT = 64

__all__ = ["KatanServer", "start_llm_katan", "llm_katan_command", "DEFAULT_MODEL"]


# Talk to 127.0.0.1 directly even if *_proxy variables are set.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def llm_katan_command() -> list[str]:
    """argv prefix that runs llm-katan from the current interpreter's environment."""
    exe = Path(sys.executable).parent / "llm-katan"
    if exe.exists():
        return [str(exe)]
    try:  # installed but without its console script (unusual); run the module
        import llm_katan.cli  # noqa: F401
    except ImportError as e:
        raise RuntimeError(
            f"llm-katan is not installed in {Path(sys.executable).parent.parent} (pip install 'llm-katan>=0.22')"
        ) from e
    return [sys.executable, "-m", "llm_katan.cli"]


def _has_opt(args: tuple[str, ...], name: str) -> bool:
    return any(a == name or a.startswith(name + "=") for a in args)


def _kill(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


class KatanServer:
    """A running llm-katan subprocess.  Use as a context manager (exit stops it)
    or call :meth:`stop` yourself."""

    def __init__(self, proc: subprocess.Popen, host: str, port: int, model: str, log_path: Path):
        self.proc = proc
        self.host = host
        self.port = port
        self.model = model
        self.log_path = log_path
        self.root_url = f"http://{host}:{port}"
        self.base_url = f"{self.root_url}/v1"
        # Never leak the process, even if the caller forgets stop().
        self._finalizer = weakref.finalize(self, _kill, proc)

    # -- inspection -------------------------------------------------------
    def output(self) -> str:
        """Everything the server wrote to stdout/stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _get(self, path: str, timeout: float = 5.0) -> bytes:
        with _OPENER.open(self.root_url + path, timeout=timeout) as r:
            return r.read()

    def health(self) -> dict:
        return json.loads(self._get("/health"))

    def metrics(self) -> dict[str, float]:
        """Parsed ``GET /metrics``: metric name (labels dropped) -> value."""
        out: dict[str, float] = {}
        for line in self._get("/metrics").decode().splitlines():
            m = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?\s+(\S+)$", line.strip())
            if m:
                out[m.group(1)] = float(m.group(2))
        return out

    def requests_served(self) -> int:
        """Chat completions answered with 200 since start (``llm_katan_requests_total``).
        Requests failed by fault injection (429/500/503/504) are NOT counted."""
        return int(self.metrics()["llm_katan_requests_total"])

    # -- lifecycle --------------------------------------------------------
    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        if self._finalizer.detach() is not None:  # first call only
            _kill(self.proc, timeout)
        try:
            self.log_path.unlink()
        except OSError:
            pass

    def __enter__(self) -> KatanServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"KatanServer(base_url={self.base_url!r}, model={self.model!r}, pid={self.proc.pid})"


def start_llm_katan(
    *extra_args: str,
    port: int | None = None,
    model: str = DEFAULT_MODEL,
    startup_timeout: float = 30.0,
    host: str = "127.0.0.1",
) -> KatanServer:
    """Start llm-katan (echo backend) and return a ready :class:`KatanServer`.

    ``extra_args`` go to the CLI verbatim, e.g. ``"--error-rate", "1.0"`` or
    ``"--latency-ms=200"``.  ``--max-concurrent`` defaults to 64 here (the
    CLI default of 1 serialises requests) unless given in ``extra_args``.
    The persistent stats file and the dashboard are disabled.

        with start_llm_katan("--rate-limit-after", "3") as srv:
            client = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
            client.chat.completions.create(model=srv.model, messages=[...])
    """
    attempts = 1 if port is not None else 3  # a picked free port can be raced
    last_err: Exception | None = None
    for _ in range(attempts):
        p = port if port is not None else _free_port()
        try:
            return _start_once(extra_args, p, model, startup_timeout, host)
        except _PortInUse as e:
            last_err = e
    raise RuntimeError(str(last_err))


class _PortInUse(RuntimeError):
    pass


def _start_once(extra_args, port, model, startup_timeout, host) -> KatanServer:
    argv = llm_katan_command() + [
        "--backend",
        "echo",
        "--model",
        model,
        "--host",
        host,
        "--port",
        str(port),
        "--stats-file",
        "",  # empty -> no persistent ~/.llm-katan/stats.json
        "--disable-dashboard",
    ]
    if not _has_opt(extra_args, "--max-concurrent"):
        argv += ["--max-concurrent", str(DEFAULT_MAX_CONCURRENT)]
    argv += list(extra_args)

    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_KATAN_")}
    env["PYTHONUNBUFFERED"] = "1"
    fd, log_name = tempfile.mkstemp(prefix=f"llm-katan-{port}-", suffix=".log")
    os.close(fd)
    log_path = Path(log_name)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
    server = KatanServer(proc, host, port, model, log_path)

    deadline = time.monotonic() + startup_timeout
    while True:
        rc = proc.poll()
        if rc is not None:
            out = server.output()
            server.stop()
            msg = f"llm-katan exited with code {rc} during startup.\ncommand: {argv}\noutput:\n{out[-4000:]}"
            if "address already in use" in out.lower():
                raise _PortInUse(msg)
            raise RuntimeError(msg)
        try:
            info = server.health()
            if info.get("status") == "ok" and info.get("model") == model:
                return server
        except (urllib.error.URLError, OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            out = server.output()
            server.stop()
            raise RuntimeError(
                f"llm-katan did not become ready on {server.root_url} within {startup_timeout:.0f}s.\n"
                f"command: {argv}\noutput:\n{out[-4000:]}"
            )
        time.sleep(0.1)
