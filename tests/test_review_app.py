"""The review web app over HTTP (Starlette's TestClient) and `rlaif review` as a user runs it: the token, the
queue, decisions, undo, the judge hidden until decided, cross-site requests refused, hostile responses inert;
a killed server keeps every acknowledged decision; commit and export from the command line."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
from starlette.testclient import TestClient

from rlaif.review import decisions
from rlaif.review.app import CSP, Review, make_app
from rlaif.review.queue import ordered, version_items
from rlaif.store.versions import commit_tables, load_manifest, read_table
from tests.badinput import assert_clean_failure, run_cli
from tests.conftest import ROOT
from tests.test_review_queue import version  # noqa: F401  (a fixture)

HOSTILE = [
    '<script>document.title="pwned"</script>',
    "<img src=x onerror=\"document.title='pwned'\">",
    "[click me](javascript:alert(1))",
    "![tracker](http://203.0.113.9/pixel.png)",
]


def own_copy(made, tmp_path):
    store, version_id, _ = made
    shutil.copytree(store, tmp_path / "store")
    return tmp_path / "store", version_id


def client_for(store, version_id, reviewer="ann", queue="uncertain") -> tuple[TestClient, Review]:
    review = Review(store, version_id, queue, reviewer, "secret-token")
    client = TestClient(make_app(review), base_url="http://127.0.0.1:8765")
    return client, review


def test_every_request_needs_the_token_then_its_cookie(version, tmp_path):  # noqa: F811
    client, review = client_for(*own_copy(version, tmp_path))
    assert client.get("/").status_code == 401
    assert client.get("/?token=wrong").status_code == 401
    assert client.post("/decide", data={"csrf": review.csrf()}).status_code == 401
    assert client.get("/static/review.js").status_code == 401
    first = client.get("/?token=secret-token", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/"
    assert (
        "httponly" in first.headers["set-cookie"].lower() and "samesite=strict" in first.headers["set-cookie"].lower()
    )
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
    assert client.get("/static/review.js").status_code == 200


def side_ids(review, item):
    return (item.a_id, item.b_id) if review.left_first(item) else (item.b_id, item.a_id)


def test_deciding_walks_the_queue_hides_the_judge_until_decided_and_undo_takes_one_back(version, tmp_path):  # noqa: F811
    store, version_id = own_copy(version, tmp_path)
    client, review = client_for(store, version_id)
    client.get("/?token=secret-token")
    queue = ordered(version_items(store, version_id), "uncertain")
    page = client.get("/").text
    assert f'data-pair="{queue[0].key}"' in page and "the judge" not in page  # no anchoring
    assert f"decided 0 / {len(queue)}" in page
    left, right = side_ids(review, queue[0])
    answer = client.post(
        "/decide", data={"csrf": review.csrf(), "pair": queue[0].key, "action": "right", "note": "terse"}
    )
    assert answer.status_code == 200 and f'data-pair="{queue[1].key}"' in answer.text  # followed to the next pair
    assert "Your decision: <b>picked right</b>" in answer.text and "the judge chose the" in answer.text  # now shown
    client.post("/decide", data={"csrf": review.csrf(), "pair": queue[1].key, "action": "tie"})
    (first, second) = decisions.read(store, version_id)
    assert (first.picked, first.left, first.right, first.note) == (right, left, right, "terse")
    assert first.judge_choice == queue[0].judge_choice and second.decision == "tie"
    undone = client.post("/undo", data={"csrf": review.csrf()})
    assert f'data-pair="{queue[1].key}"' in undone.text  # back on the pair undone
    standing = decisions.current(decisions.read(store, version_id))
    assert set(standing) == {("ann", queue[0].key)}
    again = client.get(f"/?at={urllib.parse.quote(queue[0].key)}").text  # a decided pair: the judge beside it
    assert "You decided: <b>picked right</b>" in again


def test_cross_site_and_stale_posts_are_refused(version, tmp_path):  # noqa: F811
    store, version_id = own_copy(version, tmp_path)
    client, review = client_for(store, version_id)
    client.get("/?token=secret-token")
    key = ordered(version_items(store, version_id), "uncertain")[0].key
    form = {"csrf": review.csrf(), "pair": key, "action": "left"}
    assert client.post("/decide", data={**form, "csrf": "forged"}).status_code == 403
    assert client.post("/decide", data=form, headers={"Origin": "http://evil.example"}).status_code == 403
    assert client.post("/decide", data={**form, "action": "delete"}).status_code == 400
    assert client.post("/decide", data={**form, "note": "x" * 70_000}).status_code == 413
    assert decisions.read(store, version_id) == []


def hostile_version(tmp_path):
    """A version whose prompt and responses are the hostile texts."""
    store = tmp_path / "hostile"
    prompt = [{"role": "user", "content": HOSTILE[0]}]
    rows = [
        {
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": "\n\n".join(HOSTILE)}],
            "rejected": [{"role": "assistant", "content": HOSTILE[1]}],
            "prompt_id": "p0",
            "chosen_id": "p0/x/0",
            "rejected_id": "p0/x/1",
            "chosen_policy": "x",
            "rejected_policy": "x",
            "p_chosen": 0.6,
            "margin": 0.2,
            "p_chosen_raw_ab": 0.6,
            "p_chosen_raw_ba": 0.6,
            "judge_model": "m",
            "judge_template_sha256": "0" * 64,
        }
    ]
    version_id, _ = commit_tables(store, "hostile", {"pairs": rows}, {"recipe": {"name": "hostile"}})
    return store, version_id


def test_hostile_responses_render_as_inert_text(tmp_path):
    store, version_id = hostile_version(tmp_path)
    client, _ = client_for(store, version_id)
    client.get("/?token=secret-token")
    page = client.get("/").text
    tags = re.findall(r"<[a-z][^>]*>", page)  # the page's own elements (the hostile text is escaped inside them)
    assert not [t for t in tags if t.startswith("<script") and 'src="/static/review.js"' not in t], tags
    assert not [t for t in tags if t.startswith("<img") or " onerror" in t or "javascript:" in t], tags
    assert not [t for t in tags if "203.0.113.9" in t], tags  # the remote image: neither loaded nor linked
    assert "&lt;script&gt;" in page and "[image: tracker (http://203.0.113.9/pixel.png)]" in page


def serve(store, version_id, *extra) -> tuple[subprocess.Popen, str]:
    """`rlaif review ID --port 0` in a child process; (the process, the URL it printed)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "rlaif.cli", "review", version_id, "--store", str(store), "--port", "0", *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )
    deadline = time.monotonic() + 120
    for line in process.stdout:
        found = re.search(r"open (http://\S+)", line)
        if found:
            return process, found.group(1)
        assert time.monotonic() < deadline
    raise AssertionError(process.stderr.read())


class Browser:
    """urllib with the cookie the first visit sets (as a browser keeps it)."""

    def __init__(self, url: str) -> None:
        import http.cookiejar

        self.base = url.split("/?")[0]
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.page = self.opener.open(url, timeout=30).read().decode()

    def decide(self, action: str) -> str:
        pair = re.search(r'data-pair="([^"]+)"', self.page).group(1)
        csrf = re.search(r'name="csrf" value="([^"]+)"', self.page).group(1)
        body = urllib.parse.urlencode({"csrf": csrf, "pair": pair, "action": action}).encode()
        self.page = self.opener.open(self.base + "/decide", data=body, timeout=30).read().decode()
        return pair


@pytest.mark.slow
def test_a_killed_server_keeps_every_acknowledged_decision_and_the_cli_commits_and_exports(version, tmp_path):  # noqa: F811
    store, version_id = own_copy(version, tmp_path)
    process, url = serve(store, version_id, "--reviewer", "ann")
    try:
        browser = Browser(url)
        decided = [browser.decide(action) for action in ("left", "right", "left")]
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    assert [line.pair for line in decisions.read(store, version_id)] == decided  # acknowledged, so saved
    process, url = serve(store, version_id, "--reviewer", "ann")
    try:
        browser = Browser(url)
        assert "decided 3 /" in browser.page  # resumes where it stopped
        decided.append(browser.decide("tie"))
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0 or process.returncode == -signal.SIGTERM
    committed = run_cli("review", "commit", version_id, "--store", str(store))
    assert committed.returncode == 0, committed.stdout + committed.stderr
    new_id = re.search(r"version: (\S+)", committed.stdout).group(1)
    manifest = load_manifest(store, new_id)
    assert manifest["parents"] == [version_id] and manifest["review"]["decisions"] == {"pick": 3, "tie": 1}
    assert len(read_table(store, new_id, "pairs")) == len(read_table(store, version_id, "pairs")) - 1
    gold = tmp_path / "gold.jsonl"
    exported = run_cli("review", "export", version_id, "--store", str(store), "--out", str(gold))
    assert exported.returncode == 0 and len(gold.read_text().splitlines()) == 3
    assert all(set(json.loads(line)) >= {"prompt", "chosen", "rejected"} for line in gold.read_text().splitlines())


def test_cli_refuses_what_would_not_take_effect(version, tmp_path):  # noqa: F811
    store, version_id = own_copy(version, tmp_path)
    remote = run_cli("review", version_id, "--store", str(store), "--host", "0.0.0.0")
    assert_clean_failure(remote, "0.0.0.0 is not a loopback address", "--allow-remote")
    stray = run_cli("review", "commit", version_id, "--store", str(store), "--queue", "dropped")
    assert_clean_failure(stray, "--queue only apply when serving", "drop them")
    nothing = run_cli("review", "commit", version_id, "--store", str(store))
    assert_clean_failure(nothing, f"nobody has reviewed {version_id} yet", f"rlaif review {version_id}")
    no_out = run_cli("review", "export", version_id, "--store", str(store))
    assert_clean_failure(no_out, "say where to write the gold file")
    unknown = run_cli("review", "demo-0123456789ab", "--store", str(store))
    assert unknown.returncode == 2 and "demo-0123456789ab" in unknown.stdout + unknown.stderr
