"""Hub push and pull against the stand-in Hub server (tests/hub_server.py), a real HTTP server.

Covers: one private tagged commit per version, re-push is a no-op, `datasets.load_dataset` at the
tag (in a subprocess with HF_ENDPOINT, as a user would run it), pull into a fresh store with the
same id and byte-identical files, clear errors (no token, bad token, missing repo or tag, edited
upload, public repo) and that the token is written nowhere.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants
import pyarrow.parquet as pq
import pytest

from rlaif.core.errors import HubError
from rlaif.core.schema import Feedback, Generation, PreferencePair, Prompt, Ranking
from rlaif.publish.export import DATA_FILE, export_version
from rlaif.publish.hub import pull_version, push_version
from rlaif.store.versions import TABLES, commit_tables, list_versions, version_path, versions_dir
from tests import badinput
from tests.hub_server import start_hub

TOKEN = f"hf_test_{secrets.token_hex(12)}"  # random, so finding it anywhere means it leaked
REPO = "alice/prefs"


def make_version(store: Path, name: str = "crafted", n: int = 3, salt: str = "") -> str:
    """A small pairwise version with every table, made by hand (no model)."""
    prompts = [Prompt(f"p{i}", [{"role": "user", "content": f"Question {i}{salt}?"}], "test") for i in range(n)]
    gens, pairs, feedback = [], [], []
    for prompt in prompts:
        for k, policy in enumerate(("smol", "big")):
            params = {"temperature": 0.8, "max_tokens": 64} if policy == "smol" else {"temperature": 1.0}
            gens.append(
                Generation(prompt.id, policy, "m", 0, f"answer {k} to {prompt.id}{salt}", "stop", 5, 3, 0.1, params, 0)
            )
        chosen, rejected = [{"role": "assistant", "content": g.text} for g in gens[-2:]]
        pairs.append(
            PreferencePair(
                prompt.messages,
                [chosen],
                [rejected],
                prompt.id,
                f"{prompt.id}/smol/0",
                f"{prompt.id}/big/0",
                "smol",
                "big",
                0.75,
                0.5,
                0.8,
                0.7,
                "judge",
                "ab" * 32,
            )
        )
        feedback.append(Feedback(prompt.id, f"{prompt.id}/smol/0", prompt.messages, [chosen], "smol", 0.9, True))
    rankings = [
        Ranking(
            p.id,
            p.messages,
            [f"{p.id}/smol/0", f"{p.id}/big/0"],
            ["a", "b"],
            ["smol", "big"],
            [1.0, 0.0],
            [1, 2],
            "pairwise",
        )
        for p in prompts
    ]
    manifest = {
        "recipe": {"name": name, "judge": {"model": "judge"}},
        "counts": {"in": n, "kept": n},
        "calls": {"live": 0, "cached": 0, "failed": 0},
    }
    tables = {"prompts": prompts, "generations": gens, "pairs": pairs, "feedback": feedback, "rankings": rankings}
    version_id, _ = commit_tables(store, name, tables, manifest)
    return version_id


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    for offline in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):  # the stand-in is local: offline mode does not apply
        monkeypatch.delenv(offline, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    server = start_hub(tmp_path / "hub", {TOKEN: ["alice", "rlaif-org"], "hf_bob": ["bob"]})
    yield server
    server.stop()
    assert server.unknown == [], f"the stand-in Hub got requests it does not implement: {server.unknown}"


@pytest.fixture
def store(tmp_path) -> Path:
    return tmp_path / "store"


def tree(hub, revision: str, repo: str = REPO) -> dict[str, str]:
    state = hub.repo(repo)
    sha = state["tags"].get(revision) or state["branches"].get(revision) or revision
    return state["commits"][sha]["tree"]


def test_push_makes_one_private_commit_tagged_with_the_version_id(hub, store):
    version_id = make_version(store)
    result = push_version(store, version_id, REPO, endpoint=hub.url)
    state = hub.repo(REPO)
    assert result.pushed and result.private is True and state["private"] is True
    assert state["tags"] == {version_id: result.commit} and state["branches"]["main"] == result.commit
    assert len(state["commits"]) == 2  # the repo's initial commit and ours: one commit per push
    files = tree(hub, version_id)
    raw = {f"rlaif/{table}.parquet" for table in TABLES} | {"rlaif/manifest.json"}
    assert set(files) == {".gitattributes", "README.md", DATA_FILE} | raw
    folder = version_path(store, version_id)
    for name in ["manifest.json", *(f"{table}.parquet" for table in TABLES)]:
        assert hub.read_file(REPO, f"rlaif/{name}", version_id) == (folder / name).read_bytes()
    assert "configs:" in hub.read_file(REPO, "README.md", version_id).decode()


def test_repush_of_the_same_version_is_a_no_op(hub, store):
    version_id = make_version(store)
    first = push_version(store, version_id, REPO, endpoint=hub.url)
    commits = len(hub.repo(REPO)["commits"])
    hub.requests.clear()
    again = push_version(store, version_id, REPO, endpoint=hub.url)
    assert not again.pushed and again.commit == first.commit
    assert len(hub.repo(REPO)["commits"]) == commits
    assert not [
        path
        for method, path in hub.requests
        if method == "POST" and ("/commit/" in path or "/preupload/" in path or "/tag/" in path)
    ]


@pytest.mark.slow
def test_pushed_data_loads_with_datasets_at_the_tag(hub, store, tmp_path):
    version_id = make_version(store)
    push_version(store, version_id, REPO, endpoint=hub.url)
    make_version(store, salt=" (later)")  # a later version on main must not leak into the tag
    push_version(store, list_versions(store)[-1]["id"], REPO, endpoint=hub.url)
    expected = pq.read_table(export_version(store, version_id, "dpo", tmp_path / "export") / DATA_FILE).to_pylist()
    code = (
        "import json, sys, datasets\n"
        "try:\n"
        f"    datasets.load_dataset({REPO!r}, revision={version_id!r}, split='train', token=False)\n"
        "    print('ANONYMOUS LOAD WORKED')\n"
        "except Exception as exc:\n"
        "    print('anonymous:', type(exc).__name__, file=sys.stderr)\n"
        f"rows = datasets.load_dataset({REPO!r}, revision={version_id!r}, split='train').to_list()\n"
        "print(json.dumps(rows))\n"
    )
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": TOKEN,
        "HF_HOME": str(tmp_path / "hf-sub"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "anonymous: DatasetNotFoundError" in run.stderr  # private: invisible without the token
    assert json.loads(run.stdout.strip().splitlines()[-1]) == expected
    assert len(expected) == 3 and all(set(row) >= {"prompt", "chosen", "rejected"} for row in expected)


def test_pull_into_a_fresh_store_restores_the_same_version(hub, store, tmp_path):
    version_id = make_version(store)
    pushed = push_version(store, version_id, REPO, endpoint=hub.url)
    fresh = tmp_path / "fresh"
    result = pull_version(fresh, f"{REPO}@{version_id}", endpoint=hub.url)
    assert result.created and result.version_id == version_id and result.commit == pushed.commit
    assert [m["id"] for m in list_versions(fresh)] == [version_id]
    old, new = version_path(store, version_id), version_path(fresh, version_id)
    for name in ["manifest.json", *(f"{table}.parquet" for table in TABLES)]:
        assert (new / name).read_bytes() == (old / name).read_bytes(), name
    origin = json.loads((new / "origin.json").read_text())
    assert origin["repo"] == REPO and origin["revision"] == version_id and origin["commit"] == pushed.commit
    assert not [p.name for p in versions_dir(fresh).iterdir() if p.name.startswith(".")]  # no leftovers
    assert not pull_version(fresh, REPO, endpoint=hub.url).created  # main holds the same version


def test_a_pull_stopped_while_copying_leaves_nothing_half_written(hub, store, tmp_path, monkeypatch):
    """Ctrl-C (or any error) while the pulled files are copied into the store: no version, no temporary
    folder, and the next pull installs it (the pull commits as every version does, rlaif.store.artifacts)."""
    import shutil as real_shutil

    version_id = make_version(store)
    push_version(store, version_id, REPO, endpoint=hub.url)
    fresh, copy, copied = tmp_path / "fresh", real_shutil.copyfile, []

    def interrupted(source, target, *args, **kwargs):
        if copied:
            raise KeyboardInterrupt
        copied.append(target)
        return copy(source, target, *args, **kwargs)

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr("rlaif.publish.hub.shutil.copyfile", interrupted)
        pull_version(fresh, REPO, endpoint=hub.url)
    assert copied and list(versions_dir(fresh).iterdir()) == []  # one file was copied; nothing is left of it
    assert pull_version(fresh, REPO, endpoint=hub.url).created and list_versions(fresh)


def test_each_tag_keeps_exactly_its_own_version(hub, store, tmp_path):
    from huggingface_hub import CommitOperationAdd, HfApi

    first = make_version(store)
    push_version(store, first, REPO, endpoint=hub.url)
    api = HfApi(endpoint=hub.url, token=TOKEN)
    extra = [CommitOperationAdd("data/stale-00000.parquet", b"not ours"), CommitOperationAdd("NOTES.md", b"kept")]
    api.create_commit(REPO, extra, commit_message="user files", repo_type="dataset")
    second = make_version(store, salt=" v2")
    push_version(store, second, REPO, endpoint=hub.url)
    assert "data/stale-00000.parquet" not in tree(hub, second) and "NOTES.md" in tree(hub, second)
    assert (
        hub.read_file(REPO, "rlaif/manifest.json", first)
        == (version_path(store, first) / "manifest.json").read_bytes()
    )
    assert pull_version(tmp_path / "a", f"{REPO}@{first}", endpoint=hub.url).version_id == first
    assert pull_version(tmp_path / "b", REPO, endpoint=hub.url).version_id == second


def pushed_with_edited_pairs(hub, store, tmp_path) -> str:
    """A version pushed, then its pairs table replaced on the Hub by another version's (an edited upload)."""
    from huggingface_hub import CommitOperationAdd, HfApi

    version_id = make_version(store)
    push_version(store, version_id, REPO, endpoint=hub.url)
    other = make_version(tmp_path / "other", salt=" edited")
    edited = (version_path(tmp_path / "other", other) / "pairs.parquet").read_bytes()
    HfApi(endpoint=hub.url, token=TOKEN).create_commit(
        REPO, [CommitOperationAdd("rlaif/pairs.parquet", edited)], commit_message="edit", repo_type="dataset"
    )
    return version_id


def test_pull_refuses_tables_that_do_not_hash_to_the_id(hub, store, tmp_path):
    version_id = pushed_with_edited_pairs(hub, store, tmp_path)
    fresh = tmp_path / "fresh"
    with pytest.raises(HubError, match=f"hash to crafted-[0-9a-f]{{12}}, not to the version id {version_id}"):
        pull_version(fresh, REPO, endpoint=hub.url)
    assert list(versions_dir(fresh).iterdir()) == []  # nothing written half-way


def test_pull_refuses_a_manifest_that_claims_another_name_for_the_same_content(hub, store, tmp_path):
    """Issue 25 item 3: the id's name part is the recipe's, recomputed, never the claim's."""
    from huggingface_hub import CommitOperationAdd, HfApi

    version_id = make_version(store)
    push_version(store, version_id, REPO, endpoint=hub.url)
    manifest = json.loads((version_path(store, version_id) / "manifest.json").read_text())
    evil = "evil-" + version_id.rsplit("-", 1)[1]  # the true content hash, under a name the content never had
    claimed = json.dumps({**manifest, "id": evil, "name": "evil"}).encode()
    HfApi(endpoint=hub.url, token=TOKEN).create_commit(
        REPO, [CommitOperationAdd("rlaif/manifest.json", claimed)], commit_message="rename", repo_type="dataset"
    )
    fresh = tmp_path / "fresh"
    with pytest.raises(HubError, match=f"hash to {version_id}, not to the version id {evil}"):
        pull_version(fresh, REPO, endpoint=hub.url)
    assert list(versions_dir(fresh).iterdir()) == []  # nothing written


def test_pull_checks_the_id_before_saying_the_version_is_already_in_the_store(hub, store, tmp_path):
    """Issue 25 item 3: edited tables under an id the store already holds are refused, not "already there"."""
    version_id = pushed_with_edited_pairs(hub, store, tmp_path)
    before = sorted(p.name for p in version_path(store, version_id).iterdir())
    with pytest.raises(HubError, match=f"not to the version id {version_id}"):
        pull_version(store, REPO, endpoint=hub.url)  # the store that holds version_id
    assert sorted(p.name for p in version_path(store, version_id).iterdir()) == before
    assert [p.name for p in versions_dir(store).iterdir()] == [version_id]  # no staging folder left


def test_missing_or_refused_token_is_a_clear_error(hub, store, monkeypatch):
    version_id = make_version(store)
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(HubError, match="HF_TOKEN is not set"):
        push_version(store, version_id, REPO, endpoint=hub.url)
    assert hub.requests == []
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(HubError, match="refused HF_TOKEN"):
        push_version(store, version_id, REPO, endpoint=hub.url)
    monkeypatch.setenv("HF_TOKEN", "hf_bob")
    with pytest.raises(HubError, match="may not write to alice"):
        push_version(store, version_id, REPO, endpoint=hub.url)


def test_pull_of_a_missing_repo_or_tag_is_a_clear_error(hub, store, tmp_path, monkeypatch):
    version_id = make_version(store)
    push_version(store, version_id, REPO, endpoint=hub.url)
    with pytest.raises(HubError, match="alice/nothing on .*no such dataset repo"):
        pull_version(tmp_path / "s", "alice/nothing", endpoint=hub.url)
    with pytest.raises(HubError, match=f"{REPO}@crafted-000000000000: no such tag"):
        pull_version(tmp_path / "s", f"{REPO}@crafted-000000000000", endpoint=hub.url)
    monkeypatch.delenv("HF_TOKEN")  # the repo is private: anonymous pulls cannot see it
    with pytest.raises(HubError, match="private and HF_TOKEN cannot read it"):
        pull_version(tmp_path / "s", f"{REPO}@{version_id}", endpoint=hub.url)
    assert list_versions(tmp_path / "s") == []


def test_public_push_and_no_silent_push_into_a_public_repo(hub, store, monkeypatch):
    first = make_version(store)
    assert push_version(store, first, REPO, private=False, endpoint=hub.url).private is False
    assert hub.repo(REPO)["private"] is False
    second = make_version(store, salt=" 2")
    with pytest.raises(HubError, match="exists and is public - pass --public"):
        push_version(store, second, REPO, endpoint=hub.url)
    monkeypatch.delenv("HF_TOKEN")
    assert pull_version(store.parent / "anon", f"{REPO}@{first}", endpoint=hub.url).created  # public: no token needed


def test_the_token_is_written_nowhere(hub, store, tmp_path):
    version_id = make_version(store)
    push_version(store, version_id, REPO, endpoint=hub.url)
    pull_version(tmp_path / "fresh", REPO, endpoint=hub.url)
    for folder in (tmp_path / "hub", store, tmp_path / "fresh"):
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert files and not [p for p in files if TOKEN.encode() in p.read_bytes()]
    for folder in (store, tmp_path / "fresh"):  # the endpoint is not recorded in the store either
        assert not [p for p in folder.rglob("*") if p.is_file() and hub.url.encode() in p.read_bytes()]


def run_cli(*args: str, env: dict[str, str], process: bool = True) -> subprocess.CompletedProcess:
    """`rlaif ARGS` without this process's HF_TOKEN, `env` on top: in a child process unless `process` is False,
    since huggingface_hub reads HF_ENDPOINT and HF_HOME once, at its import (tests/badinput.py)."""
    return badinput.run_cli(*args, env={"HF_TOKEN": None, **env}, process=process)


@pytest.mark.slow
def test_cli_push_and_pull(hub, store, tmp_path):
    version_id = make_version(store)
    env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf-cli")}
    no_token = run_cli(  # refused before the Hub is asked: in this process
        "datasets", "push", version_id, "--repo", REPO, "--store", str(store), env=env, process=False
    )
    assert no_token.returncode == 2 and "HF_TOKEN is not set" in no_token.stderr
    env["HF_TOKEN"] = TOKEN
    pushed = run_cli("datasets", "push", version_id, "--repo", REPO, "--store", str(store), env=env)
    assert pushed.returncode == 0, pushed.stderr
    assert f"pushed {version_id} to {REPO}" in pushed.stdout and "private" in pushed.stdout
    again = run_cli("datasets", "push", version_id, "--repo", REPO, "--store", str(store), env=env)
    assert again.returncode == 0 and "already pushed" in again.stdout
    fresh = tmp_path / "fresh"
    pulled = run_cli("datasets", "pull", f"{REPO}@{version_id}", "--store", str(fresh), env=env)
    assert pulled.returncode == 0 and f"pulled {version_id}" in pulled.stdout, pulled.stderr
    assert [m["id"] for m in list_versions(fresh)] == [version_id]
    for ref, expected in (
        (f"{REPO}@nope", "no such tag"),
        ("alice/none", "no such dataset repo"),
        ("prefs", "NAMESPACE/NAME"),
    ):
        failed = run_cli("datasets", "pull", ref, "--store", str(fresh), env=env)
        assert failed.returncode == 2 and expected in " ".join(failed.stderr.split()), failed.stderr
    for command in ("push", "pull"):
        helped = run_cli("datasets", command, "--help", env=env, process=False)
        assert helped.returncode == 0 and "Example:" in helped.stdout
