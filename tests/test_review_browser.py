"""`rlaif review` in a real browser: Playwright driving Debian's Chromium (`executable_path`; Playwright's own
browser download cannot reach its host here). Five pairs decided with the keyboard, one undone, a reload keeps
them, the note field swallows keys, the command line commits the decisions; hostile responses run nothing and
load nothing. Screenshots of the page go to $RLAIF_SCREENSHOTS when it is set (docs/review-*.png were made so:
RLAIF_SCREENSHOTS=docs .venv/bin/python -m pytest tests/test_review_browser.py), else to the test's own folder."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from rlaif.review import decisions
from rlaif.store.versions import load_manifest
from tests.badinput import run_cli
from tests.conftest import ROOT
from tests.test_review_app import hostile_version, serve
from tests.test_review_queue import version  # noqa: F401  (a fixture)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (in the dev extra)")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: apt-get install chromium (.ci/run installs it)"),
]


@pytest.fixture
def browser():
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def shot(tmp_path, name: str) -> str:
    folder = os.environ.get("RLAIF_SCREENSHOTS")
    return str((ROOT / folder if folder else tmp_path) / name)


def decided(page) -> int:
    return int(re.search(r"decided (\d+) /", page.inner_text("#progress")).group(1))


def test_keyboard_review_undo_reload_and_commit(version, browser, tmp_path):  # noqa: F811
    store, version_id, _ = version
    shutil.copytree(store, tmp_path / "store")
    store = tmp_path / "store"
    process, url = serve(store, version_id, "--reviewer", "ann")
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        page.wait_for_selector("body[data-review-ready]")
        assert "the judge" not in page.inner_text("main")  # hidden until decided
        page.screenshot(path=shot(tmp_path, "review-pair.png"))
        page.click("#note")
        page.keyboard.type("1 2 t")  # keys typed in the note field decide nothing
        assert page.input_value("#note") == "1 2 t" and decided(page) == 0
        page.fill("#note", "")
        page.locator("body").click(position={"x": 5, "y": 5})
        for key in ("1", "2", "ArrowLeft", "t", "x"):
            pair = page.get_attribute("#pair", "data-pair")
            with page.expect_navigation():
                page.keyboard.press(key)
            assert page.get_attribute("#pair", "data-pair") != pair
        assert decided(page) == 5 and "the judge" in page.inner_text("#last")  # shown once decided
        page.screenshot(path=shot(tmp_path, "review-decided.png"))
        with page.expect_navigation():
            page.keyboard.press("u")
        assert decided(page) == 4
        page.reload()
        page.wait_for_selector("body[data-review-ready]")
        assert decided(page) == 4  # kept on the server
        with page.expect_navigation():
            page.keyboard.press("s")  # skip
        page.keyboard.press("?")
        assert page.is_visible("#help")
    finally:
        process.terminate()
        process.wait(30)
    standing = decisions.current(decisions.read(store, version_id))
    assert sorted(line.decision for line in standing.values()) == ["pick", "pick", "pick", "skip", "tie"]
    committed = run_cli("review", "commit", version_id, "--store", str(store))
    assert committed.returncode == 0, committed.stdout + committed.stderr
    new_id = re.search(r"version: (\S+)", committed.stdout).group(1)
    review = load_manifest(store, new_id)["review"]
    assert review["decisions"] == {"pick": 3, "skip": 1, "tie": 1} and review["judge_agreement"]["n"] == 3


def test_hostile_responses_run_nothing_and_load_nothing_in_chromium(browser, tmp_path):
    store, version_id = hostile_version(tmp_path)
    process, url = serve(store, version_id)
    requests: list[str] = []
    try:
        page = browser.new_page()
        page.on("request", lambda request: requests.append(request.url))
        page.goto(url)
        page.wait_for_selector("body[data-review-ready]")
        page.keyboard.press("r")  # the raw text too
        page.wait_for_timeout(300)
        assert page.title().startswith("rlaif review") and "pwned" not in page.title()
        assert page.locator("img").count() == 0
        assert page.locator('a[href^="javascript:"]').count() == 0
    finally:
        process.terminate()
        process.wait(30)
    assert requests and all(r.startswith(url.split("/?")[0]) for r in requests), requests  # this server only
