"""The stand-in Hub (tests/hub_server.py) behaves as huggingface_hub expects the real Hub to.

These talk to it with huggingface_hub itself (and raw HTTP where the library hides the answer),
so a stand-in that drifted from what the library sends or expects fails here, not only in
test_hub.py.
"""

from __future__ import annotations

import httpx
import huggingface_hub.constants
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, HfFileSystem
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

from tests.hub_server import git_blob_sha, start_hub

ALICE, BOB = "hf_alice_token", "hf_bob_token"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    for offline in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):  # the stand-in is local: offline mode does not apply
        monkeypatch.delenv(offline, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    server = start_hub(tmp_path / "hub", {ALICE: ["alice", "team"], BOB: ["bob"]})
    yield server
    server.stop()


def api(hub, token=ALICE) -> HfApi:
    return HfApi(endpoint=hub.url, token=token)


def commit(hub, files: dict[str, bytes], message: str, repo: str = "alice/d", deletes: tuple[str, ...] = ()) -> str:
    ops = [CommitOperationAdd(path, data) for path, data in files.items()] + [
        CommitOperationDelete(p) for p in deletes
    ]
    return api(hub).create_commit(repo, ops, commit_message=message, repo_type="dataset").oid


def test_commits_form_a_history_with_branches_and_tags(hub):
    api(hub).create_repo("alice/d", repo_type="dataset", private=True)
    first = commit(hub, {"a.txt": b"one", "dir/b.txt": b"two"}, "first")
    api(hub).create_tag("alice/d", tag="v1", revision=first, repo_type="dataset")
    second = commit(hub, {"a.txt": b"changed"}, "second", deletes=("dir/b.txt",))
    state = hub.repo("alice/d")
    assert state["commits"][second]["parent"] == first and state["branches"]["main"] == second
    refs = api(hub).list_repo_refs("alice/d", repo_type="dataset")
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1", first)]
    assert [(b.name, b.target_commit) for b in refs.branches] == [("main", second)]
    for revision in ("v1", "refs/tags/v1", first):
        info = api(hub).dataset_info("alice/d", revision=revision)
        assert info.sha == first and {s.rfilename for s in info.siblings} == {".gitattributes", "a.txt", "dir/b.txt"}
    assert {s.rfilename for s in api(hub).dataset_info("alice/d").siblings} == {".gitattributes", "a.txt"}
    assert hub.read_file("alice/d", "a.txt", "v1") == b"one"
    with pytest.raises(HfHubHTTPError) as exc:
        api(hub).create_tag("alice/d", tag="v1", revision=second, repo_type="dataset")
    assert exc.value.response.status_code == 409
    with pytest.raises(RevisionNotFoundError):
        api(hub).dataset_info("alice/d", revision="v2")


def test_preupload_answers_regular_with_the_oid_of_a_stored_file(hub):
    api(hub).create_repo("alice/d", repo_type="dataset")
    commit(hub, {"a.txt": b"one"}, "first")
    body = {"files": [{"path": "a.txt", "sample": "", "size": 3}, {"path": "new.bin", "sample": "", "size": 9}]}
    answer = httpx.post(
        f"{hub.url}/api/datasets/alice/d/preupload/main", json=body, headers={"Authorization": f"Bearer {ALICE}"}
    ).json()
    assert answer["files"] == [
        {"path": "a.txt", "uploadMode": "regular", "shouldIgnore": False, "oid": git_blob_sha(b"one")},
        {"path": "new.bin", "uploadMode": "regular", "shouldIgnore": False, "oid": None},
    ]
    before = hub.repo("alice/d")["branches"]["main"]
    assert commit(hub, {"a.txt": b"one"}, "unchanged") == before  # huggingface_hub skips the empty commit


def test_writes_need_a_token_and_private_repos_are_hidden(hub):
    with pytest.raises(HfHubHTTPError) as exc:
        api(hub, token=False).create_repo("alice/d", repo_type="dataset")
    assert exc.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as exc:
        api(hub, token=BOB).create_repo("alice/d", repo_type="dataset")
    assert exc.value.response.status_code == 403
    api(hub).create_repo("team/d", repo_type="dataset", private=True)  # an organization of the token
    api(hub).create_repo("alice/open", repo_type="dataset", private=False)
    for token in (False, BOB):
        with pytest.raises(RepositoryNotFoundError):
            api(hub, token=token).dataset_info("team/d")
        assert api(hub, token=token).dataset_info("alice/open").private is False
    with pytest.raises(HfHubHTTPError) as exc:
        api(hub, token=BOB).create_commit(
            "alice/open", [CommitOperationAdd("x", b"x")], commit_message="m", repo_type="dataset"
        )
    assert exc.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as exc:
        api(hub, token="hf_unknown").dataset_info("alice/open")
    assert exc.value.response.status_code == 401


def test_tree_paths_info_and_downloads(hub, tmp_path):
    api(hub).create_repo("alice/d", repo_type="dataset")
    data = bytes(range(256)) * 40
    commit(hub, {"README.md": b"# hi\n", "data/x/part.bin": data, "data/y.txt": b"y"}, "files")
    top = {e.path for e in api(hub).list_repo_tree("alice/d", repo_type="dataset")}
    assert top == {".gitattributes", "README.md", "data"}
    nested = {e.path for e in api(hub).list_repo_tree("alice/d", "data", repo_type="dataset", recursive=True)}
    assert nested == {"data/x", "data/x/part.bin", "data/y.txt"}
    info = api(hub).get_paths_info("alice/d", ["data/x", "data/y.txt", "missing"], repo_type="dataset")
    assert [(type(e).__name__, e.path) for e in info] == [("RepoFolder", "data/x"), ("RepoFile", "data/y.txt")]
    path = api(hub).hf_hub_download("alice/d", "data/x/part.bin", repo_type="dataset", local_dir=tmp_path / "dl")
    assert open(path, "rb").read() == data
    with HfFileSystem(endpoint=hub.url, token=ALICE).open(
        "datasets/alice/d/data/x/part.bin", "rb", block_size=1000
    ) as f:
        f.seek(5000)
        assert f.read(3000) == data[5000:8000]  # ranged reads
    with pytest.raises(EntryNotFoundError):
        api(hub).hf_hub_download("alice/d", "nope.txt", repo_type="dataset", local_dir=tmp_path / "dl")


def test_unknown_requests_are_recorded_and_lfs_is_refused(hub):
    api(hub).create_repo("alice/d", repo_type="dataset")
    assert httpx.get(f"{hub.url}/api/datasets/alice/d/parquet").status_code == 404
    assert hub.unknown == ["GET /api/datasets/alice/d/parquet"]
    lines = b'{"key":"header","value":{"summary":"lfs"}}\n{"key":"lfsFile","value":{"path":"big.bin","algo":"sha256","oid":"00","size":1}}\n'
    answer = httpx.post(
        f"{hub.url}/api/datasets/alice/d/commit/main", content=lines, headers={"Authorization": f"Bearer {ALICE}"}
    )
    assert answer.status_code == 400 and "regular files only" in answer.json()["error"]
    assert len(hub.repo("alice/d")["commits"]) == 1
