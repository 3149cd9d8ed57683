"""One atomic-write helper (rlaif.store.atomic) used by every file writer, and the model cache's
`filelock` lock: a reader never sees half a file, a failed write leaves the old file and no
temporary, and a built-in model is converted at most once across processes, even when the
process converting it is killed."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from rlaif.store import atomic
from rlaif.store.atomic import write_atomic, write_json_atomic
from rlaif.weights import builtin as models

ROOT = Path(__file__).resolve().parents[1]


def test_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "deep" / "folder" / "report.html"
    assert write_atomic(target, "café ünïcode") == target
    assert target.read_bytes() == "café ünïcode".encode()
    write_atomic(target, b"\x00\x01 bytes as they are")
    assert target.read_bytes() == b"\x00\x01 bytes as they are"
    write_json_atomic(tmp_path / "deep" / "e.json", {"agreement": 0.61, "name": "ü"})
    assert (tmp_path / "deep" / "e.json").read_text(encoding="utf-8") == '{\n  "agreement": 0.61,\n  "name": "ü"\n}\n'
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path, monkeypatch, failing):
    target = tmp_path / "eval.json"
    target.write_text("old")

    def boom(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, failing, boom)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, "new " * 1000)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["eval.json"]


def test_a_reader_sees_the_old_or_the_new_file_never_a_part(tmp_path):
    target = tmp_path / "report.html"
    versions = [(c * 200_000).encode() for c in "abc"]
    write_atomic(target, versions[0])
    stop, seen = threading.Event(), set()

    def writer():
        i = 0
        while not stop.is_set():
            write_atomic(target, versions[i % 3])
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            data = target.read_bytes()
            assert data in versions, f"a reader saw {len(data)} bytes starting {data[:5]!r}"
            seen.add(data[:1])
    finally:
        stop.set()
        thread.join()
    assert len(seen) >= 2  # the writer really replaced the file while we read


def test_no_other_module_writes_through_its_own_temporary_file():
    """Files are written through rlaif.store.atomic; mkstemp / NamedTemporaryFile elsewhere would be a second copy."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "rlaif").rglob("*.py"))
        if path.name != "atomic.py"
        and re.search(r"\bmkstemp\(|NamedTemporaryFile\(", path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_report_eval_export_and_pull_writes_go_through_the_helper():
    for module in ("publish/report.py", "judges/evaluate.py", "publish/export.py", "publish/hub.py"):
        text = (ROOT / "rlaif" / module).read_text(encoding="utf-8")
        assert "from rlaif.store.atomic import" in text, module
        assert "os.replace(" not in text, module


# ---------------------------------------------------------------- the model cache lock (filelock)


def _fake_conversion(log: Path, hang: Path | None):
    def write(spec, gguf, out: Path) -> None:
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        if hang is not None and not hang.exists():
            hang.touch()
            time.sleep(60)  # the test kills this process here, holding the lock, mid-conversion
        time.sleep(0.3)  # widen the window in which a second process could start converting too
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"weights")
        (out / models.COMPLETE_MARKER).write_text("done\n")

    return write


@pytest.fixture
def fake_models(tmp_path, monkeypatch):
    """convert_builtin with the GGUF lookup and the conversion faked: each conversion logs its pid."""
    monkeypatch.setenv("RLAIF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(models, "find_gguf", lambda spec: tmp_path / "fake.gguf")
    monkeypatch.setattr(models, "_verify_chat_template", lambda folder: None)
    return tmp_path / "conversions.log"


def _convert(barrier, results) -> None:
    barrier.wait()
    results.put(str(models.convert_builtin("smollm2-135m")))


def test_concurrent_processes_convert_a_model_once(fake_models, monkeypatch):
    monkeypatch.setattr(models, "_write_conversion", _fake_conversion(fake_models, None))
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_convert, args=(barrier, results)) for _ in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(30)
    assert [proc.exitcode for proc in procs] == [0, 0, 0, 0]
    assert {results.get(timeout=5) for _ in procs} == {str(models.model_dir("smollm2-135m"))}
    assert len(fake_models.read_text().split()) == 1, "converted more than once"


def test_a_killed_converter_releases_the_lock_and_the_next_one_converts(fake_models, monkeypatch, tmp_path):
    hang = tmp_path / "hanging"
    monkeypatch.setattr(models, "_write_conversion", _fake_conversion(fake_models, hang))
    ctx = multiprocessing.get_context("fork")
    first = ctx.Process(target=models.convert_builtin, args=("smollm2-135m",))
    first.start()
    deadline = time.monotonic() + 20
    while not hang.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert hang.exists(), "the first conversion never started"
    os.kill(first.pid, signal.SIGKILL)
    first.join(10)
    final = models.convert_builtin("smollm2-135m")  # would wait forever if the dead process kept the lock
    assert models.is_converted(final)
    assert len(fake_models.read_text().split()) == 2
    assert not list(final.parent.glob(".tmp-smollm2-135m-*")), (
        "the killed conversion's temporary folder was left behind"
    )
    assert json.loads((final / "config.json").read_text()) == {}


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_a_version_its_report_and_export_follow_the_users_umask(tmp_path, mask):
    """Issue 25 item 8: mkdtemp's folders are 0700 and mkstemp's files 0600; what rlaif commits through them
    (a version folder and its manifest, a report, an export and its card) gets what the umask gives a new
    file, so a store shared by a team stays readable by it."""
    from rlaif.publish.export import export_version
    from rlaif.publish.report import write_report
    from rlaif.store.versions import version_path
    from tests.test_diff import commit, pair

    old = os.umask(mask)
    try:
        store = tmp_path / "store"
        version = commit(store, [pair("p1", 0, 1), pair("p2", 1, 0)])
        report = write_report(store, version, tmp_path / "report.html")
        export = export_version(store, version, "dpo", tmp_path / "export")
        write_json_atomic(tmp_path / "plain.json", {})
    finally:
        os.umask(old)
    folder, file = 0o777 & ~mask, 0o666 & ~mask
    modes = {
        "version folder": (version_path(store, version), folder),
        "manifest": (version_path(store, version) / "manifest.json", file),
        "report": (report, file),
        "export folder": (export, folder),
        "export card": (export / "README.md", file),
        "a file written atomically": (tmp_path / "plain.json", file),
    }
    got = {name: oct(path.stat().st_mode & 0o777) for name, (path, _) in modes.items()}
    assert got == {name: oct(mode) for name, (_, mode) in modes.items()}


def test_the_umask_is_read_without_changing_it():
    old = os.umask(0o027)
    try:
        assert atomic.umask() == 0o027 and atomic.umask() == 0o027
    finally:
        os.umask(old)
