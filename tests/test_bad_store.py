"""Version ids that would read outside the store, and damaged versions in it, through the real
CLI: exit 2, a message naming the id or file (and the known versions), no traceback, nothing
written; `datasets list` shows a damaged version as broken and goes on (issue 10, items 2 and 4)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rlaif.core.errors import StoreError
from rlaif.publish.hub import push_version
from rlaif.store.versions import commit_tables, list_versions, load_manifest, version_path
from tests.badinput import assert_clean_failure, run_cli
from tests.test_hub import REPO, TOKEN, hub, make_version  # noqa: F401 (hub: the stand-in Hub fixture)

OUTSIDE = "secret-outside-manifest"


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if not p.is_symlink()
    }


@pytest.fixture
def world(tmp_path):
    """A store with one good version, and a manifest outside the store that must never be read."""
    store = tmp_path / "store"
    good, _ = commit_tables(
        store, "t", {"pairs": [{"prompt_id": "p0", "chosen": "a", "rejected": "b"}]}, {"recipe": {"name": "t"}}
    )
    outside = tmp_path / "elsewhere" / "v"
    outside.mkdir(parents=True)
    (outside / "manifest.json").write_text(json.dumps({"id": OUTSIDE, "parents": []}))
    return {"root": tmp_path, "store": store, "good": good, "outside": outside}


def _command(name: str, version_id: str, world: dict) -> list[str]:
    root, good = world["root"], world["good"]
    return {
        "show": ["show", version_id],
        "report": ["report", version_id, "--out", str(root / "r.html")],
        "diff-a": ["diff", version_id, good],
        "diff-b": ["diff", good, version_id],
        "lineage": ["lineage", version_id, "--json"],
        "export": ["export", version_id, "--format", "dpo", "--out", str(root / "out")],
        "push": ["push", version_id, "--repo", "alice/prefs"],
    }[name]


COMMANDS = ["show", "report", "diff-a", "diff-b", "lineage", "export", "push"]
BAD_IDS = [
    "../../elsewhere/v",
    "ABS",
    "t-0123456789ab/../../../elsewhere/v",
    "a/b",
    "",
    "t-ffffffffffff",
    "t-0123456789AB",
    "x" * 300,
]
PUSH_ENV = {"HF_TOKEN": "hf_dummy_never_used", "HF_ENDPOINT": "http://127.0.0.1:9"}  # nothing may be contacted


def _run(world: dict, *args: str) -> object:
    """In this process, but `push` in a child process: huggingface_hub reads HF_ENDPOINT once, at its import."""
    return run_cli("datasets", *args, "--store", str(world["store"]), env=PUSH_ENV, process=args[0] == "push")


CASES = [("show", bad_id) for bad_id in BAD_IDS] + [
    (command, bad_id) for command in COMMANDS[1:] for bad_id in ("../../elsewhere/v", "t-ffffffffffff")
]


@pytest.mark.parametrize("command, bad_id", CASES)
def test_a_version_id_must_be_a_known_version_of_the_store(world, command, bad_id):
    bad_id = str(world["outside"]) if bad_id == "ABS" else bad_id
    before = _snapshot(world["root"])
    result = _run(world, *_command(command, bad_id, world))
    shown = f"{bad_id!r} in {world['store']}" if len(bad_id) < 80 else f"'{bad_id[:60]}"  # a long id is cut short
    assert_clean_failure(result, f"no version {shown}", f"known versions: {world['good']}")
    assert OUTSIDE not in result.stdout + result.stderr
    assert _snapshot(world["root"]) == before


def test_a_link_out_of_the_store_is_not_a_version(world):
    (world["outside"] / "manifest.json").write_text(json.dumps({"id": "t-cccccccccccc"}))
    link = world["store"] / "versions" / "t-cccccccccccc"
    os.symlink(world["outside"], link)
    for command in ("show", "lineage", "export"):
        result = _run(world, *_command(command, "t-cccccccccccc", world))
        assert_clean_failure(result, f"{link}: a link out of", "not a version of this store")
    listed = _run(world, "list")
    assert listed.returncode == 0 and "t-cccccccccccc" in listed.stdout and world["good"] in listed.stdout
    assert "broken: t-cccccccccccc: a link out of" in " ".join(listed.stderr.split())


def test_a_manifest_linked_from_outside_is_not_read(world):
    folder = world["store"] / "versions" / "t-dddddddddddd"
    folder.mkdir()
    (world["outside"] / "manifest.json").write_text(json.dumps({"id": "t-dddddddddddd", "secret": OUTSIDE}))
    os.symlink(world["outside"] / "manifest.json", folder / "manifest.json")
    result = _run(world, "show", "t-dddddddddddd")
    assert_clean_failure(result, f"{folder}: a link out of")
    assert OUTSIDE not in result.stdout + result.stderr


DAMAGED = [
    (b"{not json", "not valid JSON (Expecting property name enclosed in double quotes, line 1 column 2)"),
    (b"", "not valid JSON (Expecting value, line 1 column 1)"),
    (b'{"id": "t-bbbbbbbbbbbb", ', "not valid JSON"),
    (b"\xff\xfe{}", "not UTF-8 text (byte offset 0)"),
    (b"[1, 2]", "a JSON array, not an object"),
    (b'"t-bbbbbbbbbbbb"', "a JSON string, not an object"),
    (b'{"name": "t"}', "no `id` key"),
    (b'{"id": "other-0123456789ab"}', "its `id` is 'other-0123456789ab', not the folder's name"),
]


def _damage(world: dict, data: bytes) -> Path:
    folder = world["store"] / "versions" / "t-bbbbbbbbbbbb"
    folder.mkdir()
    (folder / "manifest.json").write_bytes(data)
    return folder / "manifest.json"


@pytest.mark.parametrize("data, problem", DAMAGED)
def test_list_shows_a_damaged_version_as_broken_and_goes_on(world, data, problem):
    _damage(world, data)
    result = _run(world, "list")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert world["good"] in result.stdout and "t-bbbbbbbbbbbb" in result.stdout and "broken" in result.stdout
    assert f"broken: t-bbbbbbbbbbbb: manifest.json: {problem}" in " ".join(result.stderr.split())


@pytest.mark.parametrize("data, problem", DAMAGED)
@pytest.mark.parametrize("command", ["show", "lineage", "diff-a", "export"])
def test_a_damaged_manifest_is_named_with_what_to_do(world, data, problem, command):
    path = _damage(world, data)
    before = _snapshot(world["root"])
    result = _run(world, *_command(command, "t-bbbbbbbbbbbb", world))
    assert_clean_failure(result, f"{path}: {problem}", "the version is damaged: delete its folder")
    assert _snapshot(world["root"]) == before


def test_a_damaged_parent_is_named_and_an_unsafe_parent_is_missing(world):
    store = world["store"]
    child, _ = commit_tables(
        store, "c", {"pairs": []}, {"recipe": {}, "parents": ["../../elsewhere/v", world["good"]]}
    )
    tree = json.loads(_run(world, "lineage", child, "--json").stdout)
    assert [p["missing"] for p in tree["parents"]] == [True, False]
    assert OUTSIDE not in json.dumps(tree)
    (version_path(store, world["good"]) / "manifest.json").write_text("{broken")
    result = _run(world, "lineage", child)
    assert_clean_failure(result, f"{version_path(store, world['good'])}/manifest.json: not valid JSON")


@pytest.mark.parametrize(
    "ref",
    [
        "alice/prefs@../../x",
        "alice/prefs@/etc/passwd",
        "alice/prefs@a b",
        "alice/prefs@refs/../main",
        "alice/prefs@x?y=1",
    ],
)
def test_pull_refuses_an_unsafe_revision_before_any_request(tmp_path, ref):
    store = tmp_path / "store"
    result = run_cli("datasets", "pull", ref, "--store", str(store), env=PUSH_ENV, process=True)  # HF_ENDPOINT
    assert_clean_failure(result, f"{ref.partition('@')[2]!r} is not a revision", store=store)
    assert not store.exists()


# the library side of the same rules


@pytest.mark.parametrize(
    "group, file_at", [("datasets", ""), ("datasets", "versions"), ("models", ""), ("models", "models")]
)
def test_listing_a_store_that_is_a_file_is_an_error_not_an_empty_store(tmp_path, group, file_at):
    """Issue 25 item 8: a wrong --store (a file, or a file where the store's folder of that kind should be)
    exits 2 naming it, instead of an empty table and exit 0."""
    store = tmp_path / "store"
    if file_at:
        store.mkdir()
    (store / file_at if file_at else store).write_text("not a folder")
    result = run_cli(group, "list", "--store", str(store))
    assert_clean_failure(result, f"store {store}", "is not a folder (a file is in the way)", "--store")


def test_version_path_and_load_manifest(world):
    store, good = world["store"], world["good"]
    assert version_path(store, good) == store / "versions" / good and load_manifest(store, good)["id"] == good
    with pytest.raises(StoreError, match=r"no version '\.\./x' in .*is not a version id .*known versions: t-"):
        version_path(store, "../x")
    with pytest.raises(StoreError, match="the store is empty"):
        version_path(world["root"] / "empty", "t-0123456789ab")


def test_list_versions_marks_broken_ones(world):
    _damage(world, b"[]")
    (world["store"] / "versions" / "not-an-id").mkdir()
    (world["store"] / "versions" / "not-an-id" / "manifest.json").write_text(json.dumps({"id": "not-an-id"}))
    listed = {m["id"]: m.get("broken") for m in list_versions(world["store"])}
    assert listed == {
        world["good"]: None,
        "t-bbbbbbbbbbbb": "manifest.json: a JSON array, not an object",
        "not-an-id": "the folder's name is not a version id",
    }


@pytest.mark.parametrize(
    "pushed_id", ["../../escaped-0123456789ab", "/tmp/x-0123456789ab", "a/b-0123456789ab", ".hidden-0123456789ab"]
)
def test_pull_refuses_a_pushed_manifest_whose_id_is_not_a_version_id(hub, tmp_path, pushed_id):  # noqa: F811 (the fixture)
    from huggingface_hub import CommitOperationAdd, HfApi

    store = tmp_path / "store"
    version_id = make_version(tmp_path / "source")
    push_version(tmp_path / "source", version_id, REPO, endpoint=hub.url)
    manifest = {**load_manifest(tmp_path / "source", version_id), "id": pushed_id}
    edit = CommitOperationAdd("rlaif/manifest.json", json.dumps(manifest).encode())
    HfApi(endpoint=hub.url, token=TOKEN).create_commit(REPO, [edit], commit_message="edit", repo_type="dataset")
    env = {
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": TOKEN,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "",
        "HF_DATASETS_OFFLINE": "",
    }
    result = run_cli("datasets", "pull", REPO, "--store", str(store), env=env, process=True)  # HF_ENDPOINT, HF_HOME
    assert_clean_failure(
        result, f"{REPO}@main: rlaif/manifest.json has no valid `id` ({pushed_id!r} is not <name>-<12 hex>)"
    )
    assert list((store / "versions").iterdir()) == [] and not (tmp_path / "escaped-0123456789ab").exists()
