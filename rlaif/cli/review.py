"""`rlaif review`: people check the judge on a version's pairs in the browser, and make a new version of it.

rlaif review ID [--queue uncertain|all|dropped|disagreements] [--reviewer NAME] [--limit N] [--host H] [--port P]
rlaif review commit ID          # the decisions as a new version (parents: ID)
rlaif review export ID --out FILE.jsonl   # the reviewed pairs as a gold file for eval-judge
"""

from __future__ import annotations

import getpass
import secrets
from pathlib import Path
from typing import Optional

import typer

from rlaif.cli.common import StoreOption, console, existing_store, fail
from rlaif.core.errors import RlaifError, StoreError

EXAMPLE = """Review the pairs of a dataset version in the browser; make a new version of the decisions.

Example:

    rlaif review demo-f5c187559d0d          # serves http://127.0.0.1:8765/

    rlaif review demo-f5c187559d0d --queue dropped --reviewer ann

    rlaif review commit demo-f5c187559d0d   # a new version, its parent the id

    rlaif review export demo-f5c187559d0d --out gold.jsonl   # for eval-judge
"""

ACTIONS = ("commit", "export")
SERVE_ONLY = ("queue", "reviewer", "limit", "host", "port", "allow_remote")


def review(
    first: str = typer.Argument(
        ..., metavar="ID|commit|export", help="The version id to review; or commit or export, then the version id."
    ),
    second: Optional[str] = typer.Argument(None, metavar="ID", help="The version id after commit or export."),
    store: Optional[str] = StoreOption,
    queue: str = typer.Option("uncertain", help="uncertain (smallest margins first), dropped, disagreements or all."),
    reviewer: Optional[str] = typer.Option(None, help="Your name in the decisions (default: your login name)."),
    limit: Optional[int] = typer.Option(None, min=1, help="Review at most this many pairs of the queue."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback only, unless --allow-remote)."),
    port: int = typer.Option(8765, min=0, max=65535, help="Port to listen on (0: any free port)."),
    allow_remote: bool = typer.Option(
        False, "--allow-remote", help="Listen on a non-loopback address (token still required)."
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="export: the gold file to write (JSON Lines)."),
) -> None:
    action, version_id = (first, second) if first in ACTIONS else ("serve", first)
    try:
        if version_id is None or (action == "serve" and second is not None):
            raise StoreError(
                f"usage: rlaif review ID | rlaif review commit ID | rlaif review export ID --out FILE (got {first} {second or ''})"
            )
        where = existing_store(store)[0]
        given = {
            "queue": queue != "uncertain",
            "reviewer": reviewer is not None,
            "limit": limit is not None,
            "host": host != "127.0.0.1",
            "port": port != 8765,
            "allow_remote": allow_remote,
        }
        if action != "serve" and any(given.values()):
            unused = ", ".join(f"--{name.replace('_', '-')}" for name, set_ in given.items() if set_)
            raise StoreError(f"{unused} only apply when serving the review (`rlaif review {version_id}`) - drop them")
        if action != "export" and out is not None:
            raise StoreError(f"--out only applies to `rlaif review export {version_id} --out FILE` - drop it")
        if action == "commit":
            return _commit(where, version_id)
        if action == "export":
            return _export(where, version_id, out)
        _serve(where, version_id, queue, reviewer or getpass.getuser(), limit, host, port, allow_remote)
    except RlaifError as exc:
        fail(exc)


def _commit(store: str, version_id: str) -> None:
    from rlaif.review.commit import commit_review

    new_id, created, manifest = commit_review(store, version_id)
    review = manifest["review"]
    agreement = review["judge_agreement"]
    console.print(
        f"reviewers: {', '.join(review['reviewers'])}; pairs reviewed: {review['pairs_reviewed']}", highlight=False
    )
    console.print(
        "outcomes: " + ", ".join(f"{k} {v}" for k, v in review["outcomes"].items()), highlight=False, soft_wrap=True
    )
    if agreement["agreement"] is not None:
        console.print(
            f"judge agreed with reviewers: {agreement['agreement']:.0%} of {agreement['n']} (95% interval {agreement['interval']})",
            highlight=False,
            soft_wrap=True,
        )
    suggested = agreement["suggested_min_margin"]
    if suggested:
        console.print(
            f"suggested min_margin: {suggested['min_margin']} (the judge agreed {suggested['agreement']:.0%} of {suggested['n']} above it)",
            highlight=False,
        )
    console.print(f"version: {new_id}" + ("" if created else " (already there: the same decisions)"), highlight=False)


def _export(store: str, version_id: str, out: Optional[Path]) -> None:
    from rlaif.review.export import export_gold

    if out is None:
        raise StoreError(f"say where to write the gold file: rlaif review export {version_id} --out FILE.jsonl")
    rows = export_gold(store, version_id, out)
    console.print(
        f"{rows} reviewed pairs -> {out} (rlaif eval-judge RECIPE --gold {out})", highlight=False, soft_wrap=True
    )


def _serve(
    store: str, version_id: str, queue: str, reviewer: str, limit, host: str, port: int, allow_remote: bool
) -> None:
    from rlaif.core.serving import LocalServer, is_loopback
    from rlaif.review.app import Review, make_app
    from rlaif.review.queue import QUEUES

    if queue not in QUEUES:
        raise StoreError(f"unknown --queue {queue!r} - use one of {', '.join(QUEUES)}")
    if not is_loopback(host) and not allow_remote:
        raise StoreError(
            f"{host} is not a loopback address: anyone who can reach it could try to review - add --allow-remote to mean it (the token is still required)"
        )
    review = Review(Path(store), version_id, queue, reviewer, secrets.token_urlsafe(24), limit)
    judged = len(review.version_items)  # read now: an unknown or broken version is an error here, not in the browser
    in_queue = len(review.items(review.log()))
    try:
        server = LocalServer(make_app(review), host, port, max_concurrency=64, grace_s=5)
    except OSError as exc:
        raise StoreError(f"cannot listen on {host}:{port}: {exc} - pick another --port (0: any free one)") from None
    bound_host, bound_port = server.server_address
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    console.print(
        f"reviewing {version_id}: {in_queue} pairs in the {queue} queue (of {judged} judged) as {reviewer}; decisions are saved as you make them",
        highlight=False,
    )
    console.print(f"open http://{shown}:{bound_port}/?token={review.token}", highlight=False, soft_wrap=True)
    console.print(f"Ctrl-C stops; then `rlaif review commit {version_id}` makes the reviewed version", highlight=False)
    try:
        server.serve_forever()
    finally:
        server.server_close()
