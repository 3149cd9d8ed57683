"""A trained reward model or a judge as an HTTP reward endpoint for other RL frameworks: `rlaif serve-reward`.

Server (``POST /get_reward``, ``GET /health``), in OpenRLHF's remote reward model shape
(``openrlhf/cli/serve_rm.py``; trainers pass ``--remote_rm_url http://HOST:PORT/get_reward``)::

    request   {"query": [full text: prompt + response, as the policy's chat template rendered it],
               "prompts": [the prompt part of each query] (optional), "labels": [...] (optional)}
    response  {"rewards": [one float per query], "scores": [the same], "extra_logs": {"reward_failed": [0.0 | 1.0 per query]}}

Each query is split into the chat and the response; the chat is always `prompts[i]` whole, parsed
back from ChatML (``<|im_start|>role``) or Llama-3 (``<|start_header_id|>role<|end_header_id|>``)
markers, else the prompt text is one user turn. OpenRLHF decodes the query from token ids with
special tokens kept and may cut a long prompt, so the response starts after the first of these
that holds (`split_query`; each tried after 0, 1, 2, ... of the query's leading special tokens,
i.e. pad or BOS tokens, and with the prompt as decoding with ``clean_up_tokenization_spaces``
renders it):

1. whole: the query starts with `prompts[i]`;
2. tail: the query starts with the prompt's last characters (at least MIN_MATCH of them, the longest
   such piece): OpenRLHF 0.9.1 to 0.11 keep a long prompt's last tokens (utils/agent.py);
3. head: the query and the prompt share a beginning of at least MIN_MATCH characters and the
   prompt's last MIN_MATCH characters do not follow it (else the query is another prompt's):
   OpenRLHF up to 0.9.0 keep a long prompt's first tokens (the tokenizer's right truncation); the
   response starts where the two part.

A query no rule fits gets HTTP 400 naming the row. Without `prompts` the query itself must carry
chat markers, its last assistant turn being the response. End-of-turn and pad tokens at the end of a
response are dropped. The same endpoint also takes explicit pairs, which is what `compute_score`
below sends::

    {"prompts": [messages or text], "responses": [text], "baselines": [text] (optional)}

Rewards: a reward model's logit (`rlaif.training.rewards.reward_model_scorer`), or with a judge
recipe `rlaif.training.rewards.judge_reward`: P(response beats a baseline), both orders, the
judge's position bias estimated over every judgment the server made and removed. The baseline is
`baselines` (verl: the row's `reward_model.ground_truth`), else the recipe's first policy's greedy
answer. OpenRLHF's `labels` are baselines only on a server made with ``labels_as_baselines=True``
(`RewardService`), every label then a non-empty string (else HTTP 400): in RLVR data a label is a
bare answer such as "42", no response to compare with, so by default labels are ignored. A failed judgment
gets reward 0.0 and `reward_failed` 1.0. A bad request gets HTTP 400 with
``{"error": ..., "field": ...}`` naming the field (pydantic request models check the types; the
message names the first bad field, e.g. ``responses[0]``).

The server is a Starlette app (`make_app`) under uvicorn (`make_server`), both already installed
with rlaif (FastAPI, Prefect). It scores one batch at a time (a request is one batch; the others
wait their turn), parses bodies off the event loop, and is bounded: a body over MAX_BODY_BYTES gets
HTTP 413, more than MAX_CONCURRENCY connections at once HTTP 503 (OpenRLHF's client retries), a request
with more than MAX_RESPONSES responses (each one or more model calls) HTTP 413, JSON nested deeper than
Python's parser goes HTTP 400, a body not sent whole within BODY_TIMEOUT_S HTTP 408. A request's time is
bounded too (REQUEST_TIMEOUT_S, `rlaif serve-reward --timeout`): one still waiting for its turn then gets HTTP
503 with Retry-After, one being scored HTTP 504; a scoring call cannot be stopped from outside its thread, so
it runs on, holding the turn, and the next requests get 503 until it ends.

Authentication: a bearer token. With ``$RLAIF_REWARD_TOKEN`` set, every request but ``GET /health`` must
carry it; on a host other than loopback the server never runs without one (`server_token` makes one and
`rlaif serve-reward` prints it). A client sends ``Authorization: Bearer TOKEN``, or, for a client that
sends no header of its own such as OpenRLHF's, puts it in the URL: ``http://rlaif:TOKEN@HOST:PORT/get_reward``
(Basic authentication with the token as the password). A request without it gets HTTP 401.
Ctrl-C (or SIGTERM) lets the batch being scored finish for up to SHUTDOWN_GRACE_S seconds.
``RLAIF_SERVER_LOG=1`` turns on uvicorn's access log.

verl client: verl calls a custom reward function per response with no prompt; the `verl-rl`
export (`rlaif datasets export ID --format verl-rl`) puts the prompt in `extra_info.messages`.
Point verl at this file::

    custom_reward_function.path=/path/to/rlaif/reward_server.py custom_reward_function.name=compute_score
    +custom_reward_function.reward_kwargs.url=http://127.0.0.1:5000/get_reward

(`compute_score_batch` with ``reward_model.reward_manager=batch``). The client functions use only
the standard library, and so does importing this file (the server's imports are made when it is
built); the URL defaults to ``$RLAIF_REWARD_URL``, else http://127.0.0.1:5000/get_reward.
"""

from __future__ import annotations

import base64
import functools
import hmac
import json
import math
import os
import re
import secrets
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

DEFAULT_URL = "http://127.0.0.1:5000/get_reward"
MAX_BODY_BYTES = 32 << 20  # a request body's bound (HTTP 413 above): an OpenRLHF batch of long queries is a few MB
MAX_CONCURRENCY = (
    1024  # open connections at once (HTTP 503 above): OpenRLHF 0.11 sends one query per request, many in parallel
)
SHUTDOWN_GRACE_S = 10  # how long Ctrl-C waits for the batch being scored
MAX_RESPONSES = 1024  # responses per request (HTTP 413 above): each is one or more reward or judge calls
BODY_TIMEOUT_S = 60  # a body not received whole in this time: HTTP 408 (a stalled upload holds no slot longer)
REQUEST_TIMEOUT_S = 600.0  # a request's wait for its turn plus its scoring: 503 while waiting, 504 while scoring
TOKEN_ENV = "RLAIF_REWARD_TOKEN"
CHAT_PATTERNS = (
    re.compile(r"<\|im_start\|>(system|user|assistant)\n(.*?)(?:<\|im_end\|>|(?=<\|im_start\|>)|$)", re.S),
    re.compile(
        r"<\|start_header_id\|>(system|user|assistant)<\|end_header_id\|>\n\n(.*?)(?:<\|eot_id\|>|(?=<\|start_header_id\|>)|$)",
        re.S,
    ),
)
END_TOKENS = (
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "</s>",
    "<eos>",
    "<|end|>",
    "<pad>",
    "<end_of_turn>",
)
START_TOKENS = ("<|begin_of_text|>", "<s>", "<|endoftext|>", "<pad>", "<|pad|>")
# a special token as a decode with skip_special_tokens=False writes it: <|...|>, DeepSeek's <｜...｜>, SentencePiece's
SPECIAL_TOKEN = re.compile(r"<\|[^<>|\s]{1,64}\|>|<｜[^<>｜]{1,64}｜>|</?s>|<pad>|<unk>|<bos>|<eos>")
MIN_MATCH = 16  # characters a cut prompt's kept piece must have for a query to match it
# what transformers' clean_up_tokenization does to decoded text (clean_up_tokenization_spaces=True, e.g. Llama-3)
CLEAN_UP = (
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
)


class RequestError(ValueError):
    """A bad request: `field` names the part of the JSON body that is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


@dataclass
class RewardBatch:
    prompts: list[list[dict]]
    responses: list[str]
    baselines: list[str] | None = None


def clean_response(text: str) -> str:
    """A response without the end-of-turn tokens the policy's decode left at its end.

    >>> clean_response("Hi there.<|im_end|>\\n<|endoftext|>")
    'Hi there.'
    """
    text = text.strip()
    while any(text.endswith(token) for token in END_TOKENS):
        text = next(text[: -len(t)] for t in END_TOKENS if text.endswith(t)).strip()
    return text


def leading_starts(query: str) -> list[int]:
    """Where a query's text may begin: 0, then after each of its leading special tokens (pad, BOS).

    >>> leading_starts("<|im_end|><|im_end|><|im_start|>user")
    [0, 10, 20, 32]
    """
    starts = [0]
    while match := SPECIAL_TOKEN.match(query, starts[-1]):
        starts.append(match.end())
    return starts


def prompt_forms(prompt: str) -> list[str]:
    """The prompt as written, and as a decode with clean_up_tokenization_spaces renders it when that differs."""
    cleaned = prompt
    for old, new in CLEAN_UP:
        cleaned = cleaned.replace(old, new)
    return [prompt] if cleaned == prompt else [prompt, cleaned]


def whole_end(query: str, start: int, prompt: str) -> int | None:
    """Rule 1: the query (from `start`) begins with the whole prompt; where the response starts."""
    return start + len(prompt) if query.startswith(prompt, start) else None


def tail_end(query: str, start: int, prompt: str) -> int | None:
    """Rule 2: the query begins with the prompt's longest last piece of >= MIN_MATCH characters
    (a cut through a multi-byte character decodes as U+FFFD, skipped)."""
    while query.startswith("\ufffd", start):
        start += 1
    head = query[start : start + MIN_MATCH]
    at = prompt.find(head, 1) if len(head) == MIN_MATCH else -1
    while at != -1:
        if query.startswith(prompt[at:], start):
            return start + len(prompt) - at
        at = prompt.find(head, at + 1)
    return None


def head_end(query: str, start: int, prompt: str) -> int | None:
    """Rule 3: the query and the prompt share a beginning of >= MIN_MATCH characters, and the
    prompt's end does not follow it (else the query was made from another prompt with that beginning)."""
    shared = len(os.path.commonprefix([query[start : start + len(prompt)], prompt]))
    if shared < MIN_MATCH or shared == len(prompt) or prompt[-MIN_MATCH:] in query[start + shared :]:
        return None
    end = start + shared
    while query.startswith("\ufffd", end):
        end += 1
    return end


def split_query(query: str, prompt: str) -> int | None:
    """Where the response starts in an OpenRLHF query made from `prompt`: the first rule of the module
    docstring that holds, tried after each count of leading special tokens; None when none does."""
    for rule in (whole_end, tail_end, head_end):
        for start in leading_starts(query):
            for form in prompt_forms(prompt):
                end = rule(query, start, form)
                if end is not None:
                    return end
    return None


def parse_chat(text: str) -> list[dict] | None:
    """The turns of a chat-template rendering (ChatML or Llama-3), or None when it has no markers.

    >>> parse_chat("<|im_start|>user\\nHi?<|im_end|>\\n<|im_start|>assistant\\nHello.<|im_end|>\\n")
    [{'role': 'user', 'content': 'Hi?'}, {'role': 'assistant', 'content': 'Hello.'}]
    >>> parse_chat("plain text") is None
    True
    """
    for pattern in CHAT_PATTERNS:
        turns = [{"role": role, "content": clean_response(content)} for role, content in pattern.findall(text)]
        if turns:
            return turns
    return None


def prompt_messages(prompt: str) -> list[dict]:
    """A rendered prompt as messages: its chat turns (a trailing empty assistant turn dropped), else one user turn."""
    turns = parse_chat(prompt)
    if turns and turns[-1]["role"] == "assistant" and not turns[-1]["content"]:
        turns = turns[:-1]
    if turns:
        return turns
    text = prompt.strip()
    for token in START_TOKENS:
        text = text.removeprefix(token)
    return [{"role": "user", "content": text.strip()}]


@functools.cache
def request_models() -> Any:
    """The pydantic request models (`.OpenRLHF`, `.Pairs`, `.Labels`), made on first use: verl loads this
    file for its client functions, which need only the standard library."""
    from typing import Annotated, Literal

    from pydantic import AfterValidator, BaseModel, ConfigDict, Field

    def non_blank(text: str) -> str:
        if not text.strip():
            raise ValueError("is blank")
        return text

    Text = Annotated[str, AfterValidator(non_blank)]
    Strings = Annotated[list[str], Field(min_length=1)]

    class Model(BaseModel):
        model_config = ConfigDict(
            strict=True, extra="ignore"
        )  # JSON's types as sent; other keys (OpenRLHF's extras) ignored

    class Message(Model):
        role: Literal["system", "user", "assistant"]
        content: str

    class OpenRLHF(Model):
        query: Strings
        prompts: Strings | None = None
        labels: Any = None  # checked (`Labels`) only where they are the judge's baselines

    class Pairs(Model):  # fields in the order they are checked: the first bad one is reported
        responses: Strings
        prompts: Annotated[list[Text | Annotated[list[Message], Field(min_length=1)]], Field(min_length=1)]
        baselines: Strings | None = None

    class Labels(Model):
        labels: list[Text]

    return SimpleNamespace(OpenRLHF=OpenRLHF, Pairs=Pairs, Labels=Labels)


def _is_string(value: Any) -> str:
    return f"must be a string, got {type(value).__name__}"


STRINGS = ("must be a non-empty list of strings", _is_string)


def _validate(model: Any, body: dict, problems: dict[str, tuple[str, Callable[[Any], str]]]) -> Any:
    """`body` as `model`, or RequestError naming the first bad field (``name`` or ``name[i]``) with its problem
    from `problems`: name -> (the field's problem, a function of a bad item giving the item's problem)."""
    from pydantic import ValidationError

    try:
        return model.model_validate(body)
    except ValidationError as exc:
        loc = exc.errors()[0]["loc"]
        name = str(loc[0])
        whole, item = problems[name]
        if len(loc) > 1 and isinstance(loc[1], int):
            raise RequestError(f"{name}[{loc[1]}]", item(body[name][loc[1]])) from None
        raise RequestError(name, whole) from None


def _count(name: str, values: list, n: int) -> None:
    if len(values) != n:
        raise RequestError(name, f"has {len(values)} items; it needs one per query/response ({n})")


def _with_prompt(query: str, prompt: str, i: int) -> tuple[list[dict], str]:
    end = split_query(query, prompt)
    if end is None:
        raise RequestError(
            f"prompts[{i}]",
            f"query[{i}] does not begin with it, nor (after leading pad/BOS tokens) with its last or first {MIN_MATCH}+ characters "
            f"as OpenRLHF leaves a cut prompt: send as prompts[{i}] the prompt text query[{i}] was made from, or leave `prompts` "
            "out when every query carries its chat-template turns",
        )
    return prompt_messages(prompt), clean_response(query[end:])


def _from_turns(query: str, i: int) -> tuple[list[dict], str]:
    turns = parse_chat(query)
    if not turns or turns[-1]["role"] != "assistant" or len(turns) < 2:
        raise RequestError(
            "prompts",
            f"missing, and query[{i}] has no chat-template turns ending in the response: send the prompt of each query",
        )
    return turns[:-1], turns[-1]["content"]


def _label_baselines(labels: Any, n: int) -> list[str]:
    fix = "this server takes OpenRLHF's labels as the judge's baselines (--labels-as-baselines): send a reference response per query, or serve without that option"
    if not isinstance(labels, list) or len(labels) != n:
        raise RequestError("labels", f"must be a list with one label per query ({n}): {fix}")
    checked = _validate(
        request_models().Labels,
        {"labels": labels},
        {"labels": ("", lambda label: f"is {label!r}, not a baseline response: {fix}")},
    )
    return checked.labels


def _openrlhf(body: dict, labels_as_baselines: bool = False) -> RewardBatch:
    request = _validate(request_models().OpenRLHF, body, {"query": STRINGS, "prompts": STRINGS})
    queries, prompts = request.query, request.prompts
    if prompts is not None:
        _count("prompts", prompts, len(queries))
    pairs = [
        _with_prompt(q, prompts[i], i) if prompts is not None else _from_turns(q, i) for i, q in enumerate(queries)
    ]
    baselines = _label_baselines(request.labels, len(queries)) if labels_as_baselines else None
    return RewardBatch([chat for chat, _ in pairs], [response for _, response in pairs], baselines)


def _pairs(body: dict) -> RewardBatch:
    n = len(body["responses"]) if isinstance(body["responses"], list) else 0  # shown only once `responses` is valid
    chat = "must be the prompt text or a non-empty list of {role, content} messages"
    problems = {
        "responses": STRINGS,
        "prompts": (f"must be a list with one prompt per response ({n})", lambda _: chat),
        "baselines": STRINGS,
    }
    request = _validate(request_models().Pairs, body, problems)
    if len(request.prompts) != n:
        raise RequestError("prompts", problems["prompts"][0])
    if request.baselines is not None:
        _count("baselines", request.baselines, n)
    messages = [
        [{"role": "user", "content": p}] if isinstance(p, str) else [m.model_dump() for m in p]
        for p in request.prompts
    ]
    return RewardBatch(messages, request.responses, request.baselines)


def parse_request(body: Any, labels_as_baselines: bool = False) -> RewardBatch:
    """The pairs to score from a request body (either shape in the module docstring); RequestError when it is bad.
    `labels_as_baselines`: OpenRLHF's `labels` are the judge's baselines (else they are ignored)."""
    if not isinstance(body, dict):
        raise RequestError("body", "must be a JSON object")
    if "query" in body:
        return _openrlhf(body, labels_as_baselines)
    if "responses" in body:
        return _pairs(body)
    raise RequestError(
        "query",
        'missing: send {"query": [...], "prompts": [...]} (OpenRLHF) or {"prompts": [...], "responses": [...]}',
    )


@dataclass
class RewardService:
    """A reward function behind a lock, answering in OpenRLHF's response shape."""

    reward: Callable[..., list[float]]
    kind: str  # "model" or "judge"
    name: str
    failed_reward: float = 0.0
    labels_as_baselines: bool = (
        False  # OpenRLHF's `labels` as the judge's baselines (RLVR labels are bare answers: off)
    )
    lock: threading.Lock = field(default_factory=threading.Lock)

    def score(self, batch: RewardBatch) -> dict[str, Any]:
        extra = {"baseline": batch.baselines} if batch.baselines is not None else {}
        with self.lock:
            values = self.reward(batch.prompts, batch.responses, **extra)
        failed = [
            not math.isfinite(v) for v in values
        ]  # a judge reward built with failed_reward=nan marks its failures
        rewards = [self.failed_reward if bad else float(v) for v, bad in zip(values, failed)]
        return {"rewards": rewards, "scores": rewards, "extra_logs": {"reward_failed": [float(bad) for bad in failed]}}

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "kind": self.kind, "name": self.name}


def server_token(host: str) -> tuple[str | None, bool]:
    """(the token the endpoint requires, whether it was made now): $RLAIF_REWARD_TOKEN when set; else a new
    random one on a host other than loopback (never an open endpoint on a network); else none."""
    from rlaif.core.serving import is_loopback  # here, not at the top: verl loads this file alone (stdlib only)

    token = os.environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(host):
        return secrets.token_urlsafe(24), True
    return token, False


def authorized(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries `token`: ``Bearer TOKEN``, or ``Basic`` with TOKEN as the password
    (what a client makes of ``http://user:TOKEN@host/...``). Compared in constant time."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() == "bearer":
        given = value.strip()
    elif scheme.lower() == "basic":
        try:
            given = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return False
    else:
        return False
    return hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


TOKEN_FIX = (
    f"send Authorization: Bearer ${TOKEN_ENV}, or put the token in the URL: http://rlaif:TOKEN@HOST:PORT/get_reward"
)


def make_app(
    service: RewardService,
    max_body: int = MAX_BODY_BYTES,
    token: str | None = None,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> Any:
    """The reward endpoint as a Starlette app: POST /get_reward (also / and /get_reward/), GET /health; with a
    `token`, POST needs it (`authorized`); a request's turn and scoring within `timeout_s` (else 503 / 504)."""
    import asyncio

    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    one_batch_at_a_time = asyncio.Lock()  # waiting requests queue here, where Ctrl-C can cancel them, not in threads

    def parse(raw: bytes) -> RewardBatch:
        try:
            data = json.loads(raw or b"null")
        except RecursionError:
            raise RequestError("body", "JSON nested too deep") from None
        return parse_request(data, service.labels_as_baselines)

    async def get_reward(request: Request) -> Response:
        if token is not None and not authorized(request.headers.get("authorization"), token):
            return JSONResponse(
                {"error": f"missing or wrong token - {TOKEN_FIX}"},
                401,
                headers={"WWW-Authenticate": 'Bearer realm="rlaif"'},
            )
        try:
            body = await asyncio.wait_for(request.body(), BODY_TIMEOUT_S)  # over max_body: HTTP 413 from Starlette
            batch = await run_in_threadpool(parse, body)
        except ValueError as exc:  # bad JSON or a RequestError
            field_name, problem = (
                (exc.field, exc.problem) if isinstance(exc, RequestError) else ("body", f"not valid JSON ({exc})")
            )
            return JSONResponse({"error": f"{field_name}: {problem}", "field": field_name}, 400)
        except asyncio.TimeoutError:
            return JSONResponse({"error": f"the body was not received whole within {BODY_TIMEOUT_S} s"}, 408)
        except ClientDisconnect:  # gone before the body was whole: no one to answer
            return Response(status_code=400)
        if len(batch.responses) > MAX_RESPONSES:
            return JSONResponse(
                {
                    "error": f"{len(batch.responses)} responses in one request, at most {MAX_RESPONSES} - send smaller batches",
                    "field": "responses",
                },
                413,
            )
        deadline = asyncio.get_running_loop().time() + timeout_s
        try:
            await asyncio.wait_for(one_batch_at_a_time.acquire(), timeout_s)
        except asyncio.TimeoutError:
            return JSONResponse(
                {"error": f"busy: other batches held the server for {timeout_s:g} s - send it again later"},
                503,
                headers={"Retry-After": str(max(1, round(timeout_s)))},
            )
        scoring = asyncio.ensure_future(run_in_threadpool(service.score, batch))
        scoring.add_done_callback(lambda _: one_batch_at_a_time.release())  # the turn ends when the scoring does
        try:
            left = max(0.0, deadline - asyncio.get_running_loop().time())
            return JSONResponse(await asyncio.wait_for(asyncio.shield(scoring), left))
        except asyncio.TimeoutError:
            return JSONResponse(
                {
                    "error": f"scoring this batch took longer than {timeout_s:g} s (`rlaif serve-reward --timeout`) - send smaller batches"
                },
                504,
            )
        except Exception as exc:  # noqa: BLE001 - a failed reward call is the client's answer, not a dead server
            return JSONResponse({"error": f"the reward function failed: {type(exc).__name__}: {exc}"}, 500)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(service.health())

    async def no_route(
        request: Request, exc: Any
    ) -> JSONResponse:  # 404, and 405 for a known path with another method
        hint = "use POST /get_reward" if request.method == "POST" else "use POST /get_reward or GET /health"
        return JSONResponse(
            {"error": f"no route {request.method} {request.url.path}: {hint}"}, exc.status_code, headers=exc.headers
        )

    routes = [Route(path, get_reward, methods=["POST"]) for path in ("/get_reward", "/get_reward/", "/")]
    routes += [Route(path, health, methods=["GET"]) for path in ("/health", "/health/")]
    return Starlette(routes=routes, exception_handlers={404: no_route, 405: no_route}, max_body_size=max_body)


def make_server(
    service: RewardService,
    host: str = "127.0.0.1",
    port: int = 5000,
    max_body: int = MAX_BODY_BYTES,
    max_concurrency: int = MAX_CONCURRENCY,
    token: str | None = None,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> Any:
    """A bound server; call `serve_forever()` (and `server_close()` after). `token`: see `server_token`; a host
    other than loopback without one is refused (ValueError). The server: rlaif.core.serving.LocalServer."""
    from rlaif.core.serving import LocalServer, is_loopback

    if token is None and not is_loopback(host):
        raise ValueError(f"{host} is not a loopback address: the endpoint needs a token (server_token)")
    return LocalServer(make_app(service, max_body, token, timeout_s), host, port, max_concurrency, SHUTDOWN_GRACE_S)


# ---------------------------------------------------------------- clients (standard library only)


def post_rewards(
    prompts: list,
    responses: list[str],
    baselines: list[str] | None = None,
    url: str | None = None,
    timeout: float = 300.0,
) -> list[float]:
    """POST pairs to a running `rlaif serve-reward`; one reward per response."""
    body: dict[str, Any] = {"prompts": prompts, "responses": responses}
    if baselines is not None:
        body["baselines"] = baselines
    headers = {"Content-Type": "application/json"}
    if os.environ.get(TOKEN_ENV):
        headers["Authorization"] = f"Bearer {os.environ[TOKEN_ENV]}"
    request = urllib.request.Request(
        url or os.environ.get("RLAIF_REWARD_URL", DEFAULT_URL), json.dumps(body).encode(), headers
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return [float(x) for x in json.loads(response.read())["rewards"]]


def _messages_of(extra_info: Any, data_source: str) -> list[dict]:
    messages = (extra_info or {}).get("messages") if isinstance(extra_info, dict) else None
    if messages is None:
        raise ValueError(
            f"extra_info has no 'messages' (data_source {data_source!r}): export the data with `rlaif datasets export ID --format verl-rl`"
        )
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in list(messages)]


def _baseline(ground_truth: Any) -> str | None:
    return ground_truth if isinstance(ground_truth, str) and ground_truth.strip() else None


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any = None,
    extra_info: Any = None,
    url: str | None = None,
    **kwargs: Any,
) -> float:
    """verl's custom reward function: the reward of one response (its prompt from `extra_info.messages`)."""
    baseline = _baseline(ground_truth)
    return post_rewards(
        [_messages_of(extra_info, data_source)], [solution_str], [baseline] if baseline else None, url
    )[0]


def compute_score_batch(
    data_sources: list,
    solution_strs: list[str],
    ground_truths: list,
    extra_infos: list,
    url: str | None = None,
    **kwargs: Any,
) -> list[float]:
    """verl's batch reward function (reward_manager=batch): one POST for the whole batch."""
    prompts = [_messages_of(info, source) for info, source in zip(extra_infos, data_sources)]
    baselines = [_baseline(g) for g in ground_truths]
    return post_rewards(prompts, list(solution_strs), baselines if all(baselines) else None, url)
