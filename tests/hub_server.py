"""A stand-in Hugging Face Hub: a real HTTP server on 127.0.0.1 for tests of push and pull.

No Hub-compatible server can be installed here, so this one implements the HTTP endpoints that
huggingface_hub 2.4 and datasets 5.2 call for create_repo, create_commit (preupload answering
`regular` for every file, then an NDJSON commit with base64 content), create_tag,
list_repo_refs, repo_info / dataset_info, list_repo_tree, get_paths_info (HfFileSystem),
hf_hub_download / snapshot_download (resolve, GET and HEAD with ranges) and load_dataset.

Repos live in a folder with real history: every commit has an id (sha1 of its content), a parent
and a tree {path: git blob sha1}; branches and tags point at commits. Writes need
`Authorization: Bearer TOKEN` with a token the server knows, for a namespace that token owns; a
private repo is invisible (404 RepoNotFound) to anyone else, as on the Hub. Errors carry the
`X-Error-Code` header that huggingface_hub turns into RepositoryNotFoundError,
RevisionNotFoundError and EntryNotFoundError. A request the stand-in does not know answers 404
and is recorded in `server.unknown`, so tests can assert that nothing was missed. LFS/Xet uploads
are refused (preupload never asks for them).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


class HubError(Exception):
    """An HTTP error answer: status, X-Error-Code and a message."""

    def __init__(self, status: int, message: str, code: str = "", **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def git_blob_sha(data: bytes) -> str:
    """The git blob id, as huggingface_hub computes a regular file's oid.

    >>> git_blob_sha(b"Hello, World!")
    'b45ef6fec89518d314f546fd6c3025367b721684'
    """
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class RepoStore:
    """Repos on disk: `<root>/<type>s/<ns>/<name>/repo.json` (refs, commits) and `objects/<blob>`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.RLock()

    def folder(self, repo_type: str, repo_id: str) -> Path:
        return self.root / f"{repo_type}s" / repo_id

    def load(self, repo_type: str, repo_id: str) -> dict[str, Any]:
        path = self.folder(repo_type, repo_id) / "repo.json"
        if not path.is_file():
            raise HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return json.loads(path.read_text())

    def save(self, repo_type: str, repo_id: str, repo: dict[str, Any]) -> None:
        path = self.folder(repo_type, repo_id) / "repo.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(repo, indent=1))
        tmp.replace(path)

    def blob(self, repo_type: str, repo_id: str, oid: str) -> bytes:
        return (self.folder(repo_type, repo_id) / "objects" / oid).read_bytes()

    def put_blob(self, repo_type: str, repo_id: str, data: bytes) -> str:
        oid = git_blob_sha(data)
        path = self.folder(repo_type, repo_id) / "objects" / oid
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return oid

    def create(self, repo_type: str, repo_id: str, private: bool) -> None:
        if (self.folder(repo_type, repo_id) / "repo.json").exists():
            raise HubError(409, f"You already created this {repo_type} repo: {repo_id}")
        self.folder(repo_type, repo_id).mkdir(parents=True)
        repo = {"private": private, "created_at": _now(), "branches": {}, "tags": {}, "commits": {}}
        attributes = self.put_blob(repo_type, repo_id, b"*.parquet filter=lfs diff=lfs merge=lfs -text\n")
        sha = self._new_commit(repo, None, {".gitattributes": attributes}, "initial commit", "")
        repo["branches"]["main"] = sha
        self.save(repo_type, repo_id, repo)

    @staticmethod
    def _new_commit(repo: dict, parent: str | None, tree: dict[str, str], title: str, description: str) -> str:
        body = {"parent": parent, "tree": tree, "title": title, "description": description, "date": _now()}
        sha = hashlib.sha1(json.dumps({**body, "n": len(repo["commits"])}, sort_keys=True).encode()).hexdigest()
        repo["commits"][sha] = body
        return sha

    @staticmethod
    def resolve(repo: dict[str, Any], revision: str) -> str:
        """Commit id of a branch, tag, `refs/heads/X`, `refs/tags/X` or commit id."""
        for prefix, refs in (("refs/heads/", repo["branches"]), ("refs/tags/", repo["tags"])):
            name = revision[len(prefix) :] if revision.startswith(prefix) else revision
            if name in refs:
                return refs[name]
        if revision in repo["commits"]:
            return revision
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def commit(self, repo_type: str, repo_id: str, branch: str, lines: list[dict]) -> str:
        """Apply an NDJSON commit payload to a branch; returns the new commit id."""
        with self.lock:
            repo = self.load(repo_type, repo_id)
            if branch not in repo["branches"]:
                raise HubError(404, f"Invalid rev id: {branch} is not a branch", "RevisionNotFound")
            head = repo["branches"][branch]
            header = lines[0]["value"] if lines and lines[0].get("key") == "header" else None
            if header is None or not header.get("summary"):
                raise HubError(400, "the first NDJSON line must be a header with a summary")
            parent = header.get("parentCommit")
            if parent and not head.startswith(parent):
                raise HubError(412, f"A commit has happened since {parent}: {branch} is at {head}")
            tree = dict(repo["commits"][head]["tree"])
            for line in lines[1:]:
                self._apply(repo_type, repo_id, tree, line)
            sha = self._new_commit(repo, head, tree, header["summary"], header.get("description", ""))
            repo["branches"][branch] = sha
            self.save(repo_type, repo_id, repo)
            return sha

    def _apply(self, repo_type: str, repo_id: str, tree: dict[str, str], line: dict) -> None:
        key, value = line.get("key"), line.get("value", {})
        path = value.get("path", "").strip("/")
        if key == "file":
            if value.get("encoding") != "base64":
                raise HubError(400, f"{path}: only base64 file content is supported")
            tree[path] = self.put_blob(repo_type, repo_id, base64.b64decode(value["content"]))
        elif key == "deletedFile":
            if tree.pop(path, None) is None:
                raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
        elif key == "deletedFolder":
            for name in [n for n in tree if n.startswith(path + "/")]:
                del tree[name]
        else:
            raise HubError(400, f"the stand-in Hub accepts regular files only, not {key!r}")

    def tag(self, repo_type: str, repo_id: str, revision: str, tag: str) -> None:
        with self.lock:
            repo = self.load(repo_type, repo_id)
            sha = self.resolve(repo, revision)
            if not tag or tag in repo["tags"] or tag in repo["branches"]:
                raise HubError(409, f"Tag {tag!r} already exists or is invalid")
            repo["tags"][tag] = sha
            self.save(repo_type, repo_id, repo)


def _entries(repo: dict, sha: str, base: str, recursive: bool) -> list[tuple[str, str | None]]:
    """(path, blob id or None for a folder) under `base` in the tree of commit `sha`."""
    tree = repo["commits"][sha]["tree"]
    prefix = base.strip("/") + "/" if base.strip("/") else ""
    found: dict[str, str | None] = {}
    for path, oid in tree.items():
        if not path.startswith(prefix):
            continue
        parts = path[len(prefix) :].split("/")
        for depth in range(1, len(parts)):
            if recursive or depth == 1:
                found[prefix + "/".join(parts[:depth])] = None
        if recursive or len(parts) == 1:
            found[path] = oid
    return sorted(found.items())


def _last_commit(repo: dict, sha: str, path: str) -> dict[str, str]:
    """The newest commit (from `sha` back) that changed `path` or anything under it."""

    def view(commit: str) -> dict:
        return {p: o for p, o in repo["commits"][commit]["tree"].items() if p == path or p.startswith(path + "/")}

    current = sha
    while (parent := repo["commits"][current]["parent"]) is not None and view(parent) == view(current):
        current = parent
    commit = repo["commits"][current]
    return {"id": current, "title": commit["title"], "date": commit["date"]}


Answer = tuple[int, Any, dict[str, str]] | None  # (status, JSON or bytes, headers); None: unknown request


def route(h: Handler, method: str, seg: list[str], query: dict[str, str], body: bytes) -> Answer:
    """Dispatch one request; None for a request the stand-in does not implement."""
    if seg[:1] == ["api"]:
        return _api(h, method, seg[1:], query, body)
    repo_type = TYPES[seg[0]] if seg and seg[0] in ("datasets", "spaces") else "model"
    rest = seg if repo_type == "model" else seg[1:]
    if method in ("GET", "HEAD") and len(rest) >= 5 and rest[2] == "resolve":
        return _resolve(h, repo_type, "/".join(rest[:2]), rest[3], "/".join(rest[4:]))
    return None


def _api(h: Handler, method: str, seg: list[str], query: dict[str, str], body: bytes) -> Answer:
    if seg == ["whoami-v2"] and method == "GET":
        owned = h.user_namespaces()
        if not owned:
            raise HubError(401, "Invalid user token")
        names = h.server.tokens[h.headers["Authorization"].removeprefix("Bearer ").strip()]
        return 200, {"type": "user", "name": names[0], "orgs": [{"name": org} for org in names[1:]]}, {}
    if seg == ["validate-yaml"] and method == "POST":
        try:
            card_data(json.loads(body)["content"])
        except yaml.YAMLError as exc:
            return 400, {"errors": [{"message": str(exc)}], "warnings": []}, {}
        return 200, {"errors": [], "warnings": []}, {}
    if seg == ["repos", "create"] and method == "POST":
        return _create(h, json.loads(body))
    if len(seg) < 3 or seg[0] not in TYPES:
        return None
    repo_type, repo_id, action = TYPES[seg[0]], f"{seg[1]}/{seg[2]}", seg[3:]
    repo = _readable(h, repo_type, repo_id)
    if method == "GET" and (not action or (action[0] == "revision" and len(action) == 2)):
        return _info(h, repo_type, repo_id, repo, action[1] if action else "main", query)
    if method == "GET" and action == ["refs"]:
        return 200, _refs(repo, query.get("include_prs")), {}
    if method == "GET" and len(action) >= 2 and action[0] == "tree":
        return _tree(h, repo_type, repo_id, repo, action[1], "/".join(action[2:]), query)
    if method == "POST" and len(action) == 2 and action[0] == "paths-info":
        return _paths_info(h, repo_type, repo_id, repo, action[1], body)
    if method == "POST" and len(action) == 2 and action[0] in ("preupload", "commit", "tag"):
        _writable(h, repo_id)
        if action[0] == "preupload":
            tree = repo["commits"][RepoStore.resolve(repo, action[1])]["tree"]
            files = [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": tree.get(f["path"])}
                for f in json.loads(body)["files"]
            ]
            return 200, {"files": files, "commitOid": RepoStore.resolve(repo, action[1])}, {}
        if action[0] == "tag":
            h.server.repos.tag(repo_type, repo_id, action[1], json.loads(body).get("tag", ""))
            return 200, {}, {}
        if query.get("create_pr"):
            raise HubError(400, "the stand-in Hub does not implement pull requests")
        sha = h.server.repos.commit(
            repo_type, repo_id, action[1], [json.loads(line) for line in body.splitlines() if line.strip()]
        )
        url = f"{h.server.url}/{URL_PREFIX[repo_type]}{repo_id}/commit/{sha}"
        return 200, {"success": True, "commitOid": sha, "commitUrl": url, "hookOutput": "", "pullRequestUrl": None}, {}
    return None


def _readable(h: Handler, repo_type: str, repo_id: str) -> dict[str, Any]:
    owned = h.user_namespaces()  # an invalid token is refused even for public repos, as on the Hub
    repo = h.server.repos.load(repo_type, repo_id)
    if repo["private"]:
        if owned is None or repo_id.split("/")[0] not in owned:
            raise HubError(401 if owned is None else 404, f"Repository {repo_id} not found", "RepoNotFound")
    return repo


def _writable(h: Handler, repo_id: str) -> None:
    owned = h.user_namespaces()
    if owned is None:
        raise HubError(401, "You must be authenticated (Authorization: Bearer TOKEN) to write")
    if repo_id.split("/")[0] not in owned:
        raise HubError(403, f"You don't have the rights to write to {repo_id}")


def _create(h: Handler, payload: dict[str, Any]) -> Answer:
    owned = h.user_namespaces()
    if owned is None:
        raise HubError(401, "You must be authenticated (Authorization: Bearer TOKEN) to create a repo")
    names = h.server.tokens[h.headers["Authorization"].removeprefix("Bearer ").strip()]
    repo_type = payload.get("type") or "model"
    repo_id = f"{payload.get('organization') or names[0]}/{payload['name']}"
    _writable(h, repo_id)
    url = f"{h.server.url}/{URL_PREFIX[repo_type]}{repo_id}"
    with h.server.repos.lock:
        if (h.server.repos.folder(repo_type, repo_id) / "repo.json").exists():
            raise HubError(409, f"You already created this {repo_type} repo", url=url)
        h.server.repos.create(repo_type, repo_id, private=payload.get("visibility") == "private")
    return 200, {"url": url, "name": repo_id, "id": repo_id}, {}


def _file(h: Handler, repo_type: str, repo_id: str, path: str, oid: str | None) -> dict[str, Any]:
    if oid is None:
        return {"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0, "path": path}
    size = len(h.server.repos.blob(repo_type, repo_id, oid))
    return {"type": "file", "oid": oid, "size": size, "path": path}


def _info(h: Handler, repo_type: str, repo_id: str, repo: dict, revision: str, query: dict[str, str]) -> Answer:
    sha = RepoStore.resolve(repo, revision)
    tree = repo["commits"][sha]["tree"]
    blobs = query.get("blobs", "").lower() in ("1", "true")
    siblings = [
        {"rfilename": p, **({"size": len(h.server.repos.blob(repo_type, repo_id, o)), "blobId": o} if blobs else {})}
        for p, o in sorted(tree.items())
    ]
    readme = h.server.repos.blob(repo_type, repo_id, tree["README.md"]).decode() if "README.md" in tree else ""
    info = {
        "_id": sha[:24],
        "id": repo_id,
        "author": repo_id.split("/")[0],
        "sha": sha,
        "private": repo["private"],
        "gated": False,
        "disabled": False,
        "lastModified": repo["commits"][sha]["date"],
        "createdAt": repo["created_at"],
        "downloads": 0,
        "likes": 0,
        "tags": [],
        "siblings": siblings,
        "cardData": card_data(readme),
    }
    return 200, info, {}


def _refs(repo: dict[str, Any], include_prs: str | None) -> dict[str, Any]:
    def refs(kind: str, items: dict[str, str]) -> list[dict[str, str]]:
        return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": sha} for n, sha in sorted(items.items())]

    answer = {"branches": refs("heads", repo["branches"]), "tags": refs("tags", repo["tags"]), "converts": []}
    return {**answer, "pullRequests": []} if include_prs else answer


def _tree(
    h: Handler, repo_type: str, repo_id: str, repo: dict, revision: str, path: str, query: dict[str, str]
) -> Answer:
    sha = RepoStore.resolve(repo, revision)
    recursive = query.get("recursive", "").lower() in ("1", "true")
    entries = _entries(repo, sha, path, recursive)
    if path.strip("/") and not entries:
        raise HubError(404, f"{path} does not exist (or is not a folder) at {revision}", "EntryNotFound")
    items = [_file(h, repo_type, repo_id, p, oid) for p, oid in entries]
    if query.get("expand", "").lower() in ("1", "true"):
        items = [{**item, "lastCommit": _last_commit(repo, sha, item["path"])} for item in items]
    return 200, items, {}


def _paths_info(h: Handler, repo_type: str, repo_id: str, repo: dict, revision: str, body: bytes) -> Answer:
    sha = RepoStore.resolve(repo, revision)
    tree = repo["commits"][sha]["tree"]
    if h.headers.get("Content-Type", "").startswith("application/json"):
        form = json.loads(body)
        paths, expand = form.get("paths", []), str(form.get("expand", ""))
    else:
        form = parse_qs(body.decode())
        paths, expand = form.get("paths", []), form.get("expand", [""])[-1]
    items = []
    for path in (p.strip("/") for p in paths):
        if path in tree:
            items.append(_file(h, repo_type, repo_id, path, tree[path]))
        elif path and any(name.startswith(path + "/") for name in tree):
            items.append(_file(h, repo_type, repo_id, path, None))
    if expand.lower() in ("1", "true"):
        items = [{**item, "lastCommit": _last_commit(repo, sha, item["path"])} for item in items]
    return 200, items, {}


def _resolve(h: Handler, repo_type: str, repo_id: str, revision: str, path: str) -> Answer:
    repo = _readable(h, repo_type, repo_id)
    sha = RepoStore.resolve(repo, revision)
    oid = repo["commits"][sha]["tree"].get(path)
    if oid is None:
        raise HubError(404, f"{path} does not exist at {revision}", "EntryNotFound")
    data = h.server.repos.blob(repo_type, repo_id, oid)
    headers = {
        "ETag": f'"{oid}"',
        "X-Repo-Commit": sha,
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
    }
    wanted = h.headers.get("Range", "")
    if not wanted.startswith("bytes="):
        return 200, data, headers
    first, _, last = wanted[len("bytes=") :].partition("-")
    start = len(data) - int(last) if first == "" else int(first)
    end = min(len(data) - 1, int(last)) if first != "" and last else len(data) - 1
    if start >= len(data) or start < 0:
        return 416, b"", {**headers, "Content-Range": f"bytes */{len(data)}"}
    return 206, data[start : end + 1], {**headers, "Content-Range": f"bytes {start}-{end}/{len(data)}"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: StandInHub

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet; requests are kept instead
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        segments = [unquote(s) for s in url.path.split("/")[1:]]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        body = self._body()
        self.server.requests.append((method, self.path))
        try:
            answer = route(self, method, segments, query, body)
        except HubError as exc:
            answer = (
                exc.status,
                {"error": exc.message, **exc.extra},
                {"X-Error-Code": exc.code, "X-Error-Message": exc.message},
            )
        except Exception as exc:  # noqa: BLE001 - a bug in the stand-in: answer 500 and keep it for the test
            self.server.unknown.append(f"{method} {self.path}: {exc!r}")
            answer = (500, {"error": f"stand-in Hub crashed: {exc!r}"}, {})
        if answer is None:
            self.server.unknown.append(f"{method} {self.path}")
            answer = (404, {"error": f"stand-in Hub: no route for {method} {url.path}"}, {})
        self._send(method, *answer)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while (size := int(self.rfile.readline().strip() or b"0", 16)) > 0:
                data += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return data
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, method: str, status: int, payload: Any, headers: dict[str, str]) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        if not isinstance(payload, bytes):
            self.send_header("Content-Type", "application/json")
        headers = {"Content-Length": str(len(data)), **headers}
        for name, value in headers.items():
            if value:
                self.send_header(name, value)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(data)

    def user_namespaces(self) -> set[str] | None:
        """Namespaces the request's token may write; None when no token was sent."""
        auth = self.headers.get("Authorization", "")
        if not auth:
            return None
        token = auth.removeprefix("Bearer ").strip()
        if token not in self.server.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return set(self.server.tokens[token])


class StandInHub(ThreadingHTTPServer):
    """The server; `url` is its endpoint (for HF_ENDPOINT), `repos` its storage."""

    daemon_threads = True

    def __init__(self, root: Path, tokens: dict[str, list[str]]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.repos = RepoStore(Path(root))
        self.tokens = tokens
        self.requests: list[tuple[str, str]] = []
        self.unknown: list[str] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), name="stand-in-hub", daemon=True)

    def start(self) -> StandInHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def repo(self, repo_id: str, repo_type: str = "dataset") -> dict[str, Any]:
        """The stored state of a repo (refs, commits, private flag), for assertions."""
        return self.repos.load(repo_type, repo_id)

    def read_file(self, repo_id: str, path: str, revision: str = "main", repo_type: str = "dataset") -> bytes:
        repo = self.repo(repo_id, repo_type)
        sha = RepoStore.resolve(repo, revision)
        return self.repos.blob(repo_type, repo_id, repo["commits"][sha]["tree"][path])

    def __enter__(self) -> StandInHub:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_hub(root: Path, tokens: dict[str, list[str]]) -> StandInHub:
    """Start a stand-in Hub on a free port; `tokens` maps each valid token to the namespaces it owns."""
    return StandInHub(root, tokens).start()


def card_data(text: str) -> dict | None:
    """The YAML front matter of a README, as the Hub reports it in `cardData`.

    >>> card_data("---\\nlicense: mit\\n---\\n# Title")
    {'license': 'mit'}
    """
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    data = yaml.safe_load(text[3:end]) if end > 0 else None
    return data if isinstance(data, dict) else None
