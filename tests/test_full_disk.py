"""A full disk (rlaif/store/space.py): a store on a small tmpfs, filled by the request cache, a row spill
or a commit. Each is exit 2 with a StoreError naming where, what was being written and the space free,
no traceback; nothing half-committed; the request cache intact; and after the disk is made larger the
same command resumes without repeating a call and commits the version a roomy store gets.

Mounting a tmpfs needs root (CI runs as root); elsewhere these tests skip saying so.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from rlaif.core.errors import StoreError
from rlaif.store.artifacts import commit, new_workdir
from rlaif.store.spill import RowSpill
from rlaif.store.versions import VERSIONS, list_versions
from tests.badinput import assert_clean_failure, run_cli, two_policy_recipe
from tests.det_server import DetServer
from tests.test_faults import cached_rows
from tests.test_resume import summary


class Disk:
    """A tmpfs mounted at `path`; `resize(kib)` changes its size, the files stay."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def resize(self, kib: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={kib}k", str(self.path)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 512 KiB tmpfs at tmp_path/disk."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs (a disk that fills up) needs root; CI runs as root")
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield Disk(folder)
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def api_recipe(folder: Path, base_url: str) -> Path:
    return two_policy_recipe(folder, base_url, [f"Disk question {i}: {'words ' * 40}" for i in range(300)], "disk")


@pytest.mark.slow
def test_a_run_whose_cache_fills_the_disk_stops_cleanly_and_resumes_once_there_is_room(tmp_path, small_disk):
    store = small_disk.path / "store"
    with DetServer() as server:
        recipe = api_recipe(tmp_path, server.base_url)
        full = run_cli("run", str(recipe), "--store", str(store), "--no-prefect", timeout=300)
        assert_clean_failure(
            full, f"the disk holding {store} is full", "request cache", "free", "run the same command again"
        )
        assert list_versions(store) == []
        with sqlite3.connect(store / "cache.sqlite") as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kept = cached_rows(store / "cache.sqlite")
        assert 0 < kept < 1200
        received = server.received

        small_disk.resize(32 * 1024)
        resumed = run_cli("run", str(recipe), "--store", str(store), "--no-prefect", timeout=300)
        again = summary(resumed)
        assert again["cached"] == kept and again["live"] == 1200 - kept and again["failed"] == 0
        assert server.received - received == 1200 - kept  # no finished call paid twice
        roomy = run_cli("run", str(recipe), "--store", str(tmp_path / "roomy"), "--no-prefect", timeout=300)
    assert again["version"] == summary(roomy)["version"]


def test_a_spill_on_a_full_disk_is_a_store_error_and_leaves_no_part(small_disk):
    (small_disk.path / "filler").write_bytes(b"x" * (500 * 1024))
    spill = RowSpill(small_disk.path / "work", "generations")
    with pytest.raises(StoreError, match=r"is full: writing the run's generations rows \(50 rows\) failed"):
        spill.append([{"text": "y" * 2000} for _ in range(50)])
    assert spill.parts == [] and list((small_disk.path / "work").iterdir()) == []


def test_a_commit_on_a_full_disk_is_a_store_error_and_leaves_no_folder(small_disk):
    store = small_disk.path / "store"
    work = new_workdir(VERSIONS, store, "v")

    def write(folder: Path) -> None:
        (folder / "pairs.parquet").write_bytes(os.urandom(600 * 1024))

    with pytest.raises(StoreError) as full:
        commit(VERSIONS, store, "v-000000000000", work, write)
    message = " ".join(str(full.value).split())
    assert f"the disk holding {store / 'versions'} is full: writing version v-000000000000 failed" in message
    assert "it had written" in message
    assert [p.name for p in (store / "versions").iterdir()] == []
