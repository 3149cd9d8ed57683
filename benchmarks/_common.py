"""Helpers shared by the benchmark scripts: machine facts, peak memory, medians, the echo server,
and refreshing one section of docs/benchmarks.md.

Benchmarks are scripts, not tests: each prints a result line and (with --write) replaces its own
section of docs/benchmarks.md, between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`.
"""

from __future__ import annotations

import datetime
import os
import platform
import resource
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
if str(ROOT) not in sys.path:  # tests/servers.py starts llm-katan; reuse it
    sys.path.insert(0, str(ROOT))


def load_average() -> str:
    """The 1/5/15-minute load averages, e.g. '1.52 1.80 2.01'."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def gpu_name() -> str | None:
    """The first GPU's name as nvidia-smi reports it, or None without one."""
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return None
    done = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True)
    names = done.stdout.strip().splitlines() if done.returncode == 0 else []
    return names[0].strip() if names else None


def machine() -> str:
    """One line: cores, memory, GPU, Python, load average now."""
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores, {mem_gib:.0f} GiB, {gpu_name() or 'no GPU'}, Python {platform.python_version()}, "
        f"load average {load_average()}"
    )


def today() -> str:
    return datetime.date.today().isoformat()


def peak_rss_mib() -> float:
    """This process's peak resident memory (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median(values: list[float]) -> float:
    """
    >>> median([3.0, 1.0, 2.0])
    2.0
    """
    return statistics.median(values)


def fmt_runs(values: list[float]) -> str:
    """
    >>> fmt_runs([1.234, 2.0])
    '1.23, 2.00'
    """
    return ", ".join(f"{v:.2f}" for v in values)


def command_line() -> str:
    """The command that ran this script, as a user would type it from the project root."""
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(ROOT)
    except ValueError:
        pass
    return " ".join([".venv/bin/python", str(script), *sys.argv[1:]])


def replace_section(text: str, name: str, body: str) -> str:
    """Put `body` between the markers of section `name`, appending the section if it is new.

    >>> replace_section("a\\n<!-- bench:x -->\\nold\\n<!-- /bench:x -->\\nb", "x", "new")
    'a\\n<!-- bench:x -->\\nnew\\n<!-- /bench:x -->\\nb'
    >>> replace_section("a\\n", "y", "z")
    'a\\n\\n<!-- bench:y -->\\nz\\n<!-- /bench:y -->\\n'
    """
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        return head + block + tail
    return text.rstrip("\n") + "\n\n" + block + "\n"


def write_section(name: str, body: str) -> Path:
    """Refresh section `name` of docs/benchmarks.md (written to a temp file, then renamed)."""
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n"
    tmp = DOC.with_suffix(".md.tmp")
    tmp.write_text(replace_section(text, name, body), encoding="utf-8")
    tmp.replace(DOC)
    return DOC


def publish(name: str, body: str, write: bool) -> None:
    """Refresh section `name` of docs/benchmarks.md with `body` (--write), else print the body."""
    if write:
        print(f"wrote {write_section(name, body)}")
    else:
        print(body)


def start_echo_server(latency_ms: int = 0, max_concurrent: int = 1024):
    """llm-katan's echo backend on 127.0.0.1 (tests/servers.py); use as a context manager."""
    from tests.servers import start_llm_katan

    return start_llm_katan(f"--latency-ms={latency_ms}", f"--max-concurrent={max_concurrent}", "--log-level=warning")


def current_rss_mib() -> float:
    """This process's resident memory now (VmRSS from /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
