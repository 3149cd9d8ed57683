"""The web app of `rlaif review ID`: one pair at a time, keyboard first, decisions saved as they are made.

Starlette (already in the dependency tree through Prefect) with a Jinja2 template and one small script of
its own (static/review.js, no CDN, no build): the page works offline.

- **Access.** Every request needs the token printed with the URL: `?token=...` on the first visit sets an
  HttpOnly, SameSite=Strict cookie; without either the answer is 401. A POST must also carry the page's
  form field `csrf` (derived from the token) and, when the browser sends one, an Origin of this server:
  another site's page cannot decide for the reviewer.
- **Untrusted text.** Prompts and responses are Markdown rendered on the server by markdown-it-py with raw
  HTML off (`<script>` shows as text), links limited to http(s) and mailto (no `javascript:`), and images
  shown as their alt text and address, never loaded; the Content-Security-Policy allows only this
  server's script and style, so nothing else runs or loads even if a renderer slipped.
- **No anchoring.** The judge's verdict is hidden until the reviewer decides; the next page shows it beside
  the decision just made. Left and right are shuffled per pair and reviewer (the same on reload) and the
  order shown is recorded with the decision.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import html
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jinja2
from markdown_it import MarkdownIt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from rlaif.core.errors import InputError
from rlaif.judges.stats import wilson_interval
from rlaif.review import decisions
from rlaif.review.decisions import Decision
from rlaif.review.queue import Item, ordered, version_items

COOKIE = "rlaif_review"
MAX_BODY_BYTES = 64 << 10  # a decision and its note; larger bodies are refused (413)
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
ACTIONS = {"left", "right", "tie", "both_bad", "skip"}


def markdown() -> MarkdownIt:
    """CommonMark with raw HTML off and tables on; links only to http(s) and mailto; an image shown as its alt
    text and address (loading it would reach its host)."""
    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    md.validateLink = lambda url: urlsplit(url.strip()).scheme.lower() in ("http", "https", "mailto")
    md.add_render_rule("image", _image_as_text)
    return md


def _image_as_text(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    alt = self.renderInline(token.children or [], options, env)
    return f'<span class="image">[image: {alt} ({html.escape(str(token.attrGet("src") or ""))})]</span>'


@dataclass
class Review:
    """The state of one review session: the version, its queue, who reviews, and the session's own clock."""

    store: Path
    version_id: str
    queue: str
    reviewer: str
    token: str
    limit: int | None = None
    started: float = field(default_factory=time.time)

    @functools.cached_property
    def version_items(self) -> list[Item]:
        """Every judged pair of the version, read once per session: a version never changes (its decisions do)."""
        return version_items(self.store, self.version_id)

    def log(self) -> list[Decision]:
        """The version's decisions log as it is now (every reviewer's)."""
        return decisions.read(self.store, self.version_id)

    def items(self, log: list[Decision]) -> list[Item]:
        """The queue in review order, given the log (the disagreements queue depends on it)."""
        found = ordered(self.version_items, self.queue, log)
        return found[: self.limit] if self.limit else found

    def standing(self, log: list[Decision]) -> dict[str, Decision]:
        """pair key -> this reviewer's standing decision."""
        lines = decisions.current(log)
        return {pair: line for (reviewer, pair), line in lines.items() if reviewer == self.reviewer}

    def csrf(self) -> str:
        return hmac.new(self.token.encode(), b"csrf", hashlib.sha256).hexdigest()

    def left_first(self, item: Item) -> bool:
        """Whether response a is shown on the left: random per pair and reviewer, the same on every reload."""
        return hashlib.sha256(f"{self.reviewer}|{item.key}".encode()).digest()[0] % 2 == 0


def make_app(review: Review) -> Starlette:
    md = markdown()
    template = _templates().get_template("review.html.j2")

    def allowed(request: Request) -> bool:
        return hmac.compare_digest(request.cookies.get(COOKIE, ""), review.token)

    async def page(request: Request) -> Response:
        given = request.query_params.get("token")
        if given is not None:
            if not hmac.compare_digest(given, review.token):
                return PlainTextResponse("wrong token - use the URL rlaif review printed", status_code=401)
            response = RedirectResponse(_without_token(request), status_code=303)
            response.set_cookie(COOKIE, review.token, httponly=True, samesite="strict")
            return response
        if not allowed(request):
            return PlainTextResponse("no access - open the URL rlaif review printed (it carries the token)", 401)
        return HTMLResponse(template.render(**_view(review, request, md)), headers={"Content-Security-Policy": CSP})

    async def decide(request: Request) -> Response:
        refused, form = await _checked(review, request, allowed)
        if refused:
            return refused
        items = {item.key: item for item in review.items(review.log())}
        item = items.get(str(form.get("pair")))
        action = str(form.get("action"))
        if item is None or action not in ACTIONS:
            return PlainTextResponse("unknown pair or action - reload the page", status_code=400)
        left, right = (item.a_id, item.b_id) if review.left_first(item) else (item.b_id, item.a_id)
        picked = {"left": left, "right": right}.get(action)
        line = Decision(
            version=review.version_id,
            reviewer=review.reviewer,
            pair=item.key,
            action="decide",
            decision="pick" if picked else action,
            picked=picked,
            left=left,
            right=right,
            judge_choice=item.judge_choice,
            judge_p=item.judge_p,
            note=str(form.get("note") or "")[:2000],
        )
        try:
            decisions.append(review.store, line)
        except InputError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        return RedirectResponse(f"/?shown={item.key}", status_code=303)

    async def undo(request: Request) -> Response:
        refused, _ = await _checked(review, request, allowed)
        if refused:
            return refused
        log = review.log()
        mine = [line for line in log if line.reviewer == review.reviewer]
        standing = review.standing(log)
        last = next((line for line in reversed(mine) if standing.get(line.pair) == line), None)
        if last is not None:
            decisions.append(
                review.store, Decision(review.version_id, review.reviewer, last.pair, "undo", undoes=last.id)
            )
        return RedirectResponse(f"/?at={last.pair}" if last else "/", status_code=303)

    async def script(request: Request) -> Response:
        if not allowed(request):
            return PlainTextResponse("no access", status_code=401)
        text = resources.files("rlaif.review").joinpath("static/review.js").read_text(encoding="utf-8")
        return Response(text, media_type="text/javascript", headers={"Content-Security-Policy": CSP})

    async def style(request: Request) -> Response:
        if not allowed(request):
            return PlainTextResponse("no access", status_code=401)
        text = resources.files("rlaif.review").joinpath("static/review.css").read_text(encoding="utf-8")
        return Response(text, media_type="text/css")

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/decide", decide, methods=["POST"]),
        Route("/undo", undo, methods=["POST"]),
        Route("/static/review.js", script, methods=["GET"]),
        Route("/static/review.css", style, methods=["GET"]),
    ]
    return Starlette(routes=routes)


async def _checked(review: Review, request: Request, allowed) -> tuple[Response | None, dict[str, str]]:
    """(the answer to a POST without the cookie, from another origin, too large, or without the page's csrf field,
    else None; its form fields)."""
    if not allowed(request):
        return PlainTextResponse("no access - open the URL rlaif review printed", status_code=401), {}
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.url.netloc:
        return PlainTextResponse("refused: a request from another site", status_code=403), {}
    form = await _form(request)
    if form is None:
        return PlainTextResponse("refused: request too large", status_code=413), {}
    if not hmac.compare_digest(str(form.get("csrf") or ""), review.csrf()):
        return PlainTextResponse(
            "refused: reload the page (its form is stale or not this server's)", status_code=403
        ), {}
    return None, form


async def _form(request: Request) -> dict[str, str] | None:
    """The urlencoded form the page posts (each field's first value); None when the body is over MAX_BODY_BYTES."""
    if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def _without_token(request: Request) -> str:
    rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
    return "/" + ("?" + "&".join(f"{k}={v}" for k, v in rest) if rest else "")


def _templates() -> jinja2.Environment:
    folder = resources.files("rlaif.review").joinpath("templates")
    loader = jinja2.FunctionLoader(lambda name: folder.joinpath(name).read_text(encoding="utf-8"))
    return jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)


def _view(review: Review, request: Request, md: MarkdownIt) -> dict[str, Any]:
    """What the page shows: the item at `?at=KEY` (else the first this reviewer has not decided), progress, agreement."""
    log = review.log()  # read once per page
    items, standing = review.items(log), review.standing(log)
    keys = [item.key for item in items]
    at = request.query_params.get("at")
    if at in keys:
        index = keys.index(at)
    else:
        index = next((i for i, item in enumerate(items) if item.key not in standing), len(items))
    item = items[index] if index < len(items) else None
    shown = request.query_params.get("shown")
    return {
        "version_id": review.version_id,
        "queue": review.queue,
        "reviewer": review.reviewer,
        "csrf": review.csrf(),
        "position": index + 1,
        "size": len(items),
        "decided": sum(key in standing for key in keys),
        "per_minute": _per_minute(review, standing),
        "agreement": _agreement(standing),
        "item": _item_view(review, item, standing.get(item.key) if item else None, md) if item else None,
        "previous": keys[index - 1] if index > 0 else None,
        "next": keys[index + 1] if index + 1 < len(keys) else None,
        "last": _last_view(items, standing.get(shown)) if shown else None,
    }


def _item_view(review: Review, item: Item, mine: Decision | None, md: MarkdownIt) -> dict[str, Any]:
    a_left = review.left_first(item)
    left, right = (item.a_id, item.b_id) if a_left else (item.b_id, item.a_id)
    text = {item.a_id: item.a_text, item.b_id: item.b_text}
    return {
        "key": item.key,
        "turns": [
            {"role": turn.get("role", "user"), "html": md.render(str(turn.get("content", "")))} for turn in item.prompt
        ],
        "left": {"html": md.render(text[left] or ""), "raw": text[left] or ""},
        "right": {"html": md.render(text[right] or ""), "raw": text[right] or ""},
        "status": "kept" if item.kept else f"dropped ({item.reason})",
        "mine": _mine_view(mine, left, item) if mine else None,
    }


def _mine_view(mine: Decision, left: str, item: Item) -> dict[str, Any]:
    """A decision already made on this pair, and now the judge's verdict beside it."""
    side = None if mine.picked is None else ("left" if mine.picked == left else "right")
    judge = None if item.judge_choice is None else ("left" if item.judge_choice == left else "right")
    return {"decision": mine.decision, "side": side, "judge": judge, "judge_p": item.judge_p, "note": mine.note}


def _last_view(items: list[Item], line: Decision | None) -> dict[str, Any] | None:
    if line is None:
        return None
    item = next((i for i in items if i.key == line.pair), None)
    if item is None:
        return None
    view = _mine_view(line, line.left, item)
    view["agreed"] = None if line.picked is None or item.judge_choice is None else line.picked == item.judge_choice
    return view


def _per_minute(review: Review, standing: dict[str, Decision]) -> float | None:
    minutes = (time.time() - review.started) / 60
    return round(len(standing) / minutes, 1) if minutes > 0.05 and standing else None


def _agreement(standing: dict[str, Decision]) -> dict[str, Any] | None:
    picks = [line for line in standing.values() if line.picked and line.judge_choice]
    if not picks:
        return None
    share = sum(line.picked == line.judge_choice for line in picks) / len(picks)
    return {"share": round(share, 3), "n": len(picks), "interval": wilson_interval(round(share, 4), len(picks))}
