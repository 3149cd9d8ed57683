"""Progress where output is not a terminal (rlaif/core/progress.py; issue 26 item 2): `rlaif run` with its stderr
going to a pipe, as under CI, nohup or a Prefect worker, prints plain progress lines as the work goes, not
only a final bar."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.badinput import cli_env, two_policy_recipe
from tests.conftest import ROOT
from tests.det_server import DetServer


def test_a_run_without_a_terminal_prints_progress_lines_at_each_tenth(tmp_path):
    with DetServer() as server:
        recipe = two_policy_recipe(tmp_path, server.base_url, [f"Progress question {i}?" for i in range(30)], "prog")
        argv = [
            sys.executable,
            "-m",
            "rlaif.cli",
            "run",
            str(recipe),
            "--store",
            str(tmp_path / "store"),
            "--no-prefect",
        ]
        done = subprocess.run(argv, cwd=ROOT, env=cli_env({"RLAIF_PROGRESS": "1"}), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if re.search(r": \d+/\d+ \(\d+%\), \d+ s$", line)]
    sampling = [line for line in lines if line.startswith("sampling cold")]
    assert [re.search(r"\((\d+)%\)", line)[1] for line in sampling] == [str(10 * k) for k in range(1, 11)], lines
    assert any(line.startswith("judging") and "(100%)" in line for line in lines), done.stderr


def test_library_bars_write_nothing_to_a_file():
    """A new user's `make demo` log held one long carriage-return line: transformers' plain tqdm bar while it
    converts the GGUF weights. With stderr not a terminal, no library bar writes anything."""
    code = (
        "import io, sys\n"
        "from rlaif.core.progress import quiet_library_bars\n"
        "quiet_library_bars()\n"
        "from tqdm.auto import tqdm\n"
        "for _ in tqdm(range(50), desc='Converting and de-quantizing GGUF tensors...'): pass\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0 and "\r" not in done.stderr and "GGUF" not in done.stderr, done.stderr
