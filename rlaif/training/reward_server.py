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
``{"error": ..., "field": ...}`` naming the field.

The server is the standard library's ThreadingHTTPServer: no dependency beyond what rlaif needs
(fastapi/uvicorn would come only with the optional Prefect install), it starts at once, and one
lock serializes the model anyway (each request is scored as one batch), so an async framework
would add nothing.

verl client: verl calls a custom reward function per response with no prompt; the `verl-rl`
export (`rlaif datasets export ID --format verl-rl`) puts the prompt in `extra_info.messages`.
Point verl at this file::

    custom_reward_function.path=/path/to/rlaif/reward_server.py custom_reward_function.name=compute_score
    +custom_reward_function.reward_kwargs.url=http://127.0.0.1:5000/get_reward

(`compute_score_batch` with ``reward_model.reward_manager=batch``). The client functions use only
the standard library; the URL defaults to ``$RLAIF_REWARD_URL``, else http://127.0.0.1:5000/get_reward.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_URL = "http://127.0.0.1:5000/get_reward"
ROLES = ("system", "user", "assistant")
CHAT_PATTERNS = (
    re.compile(r"<\|im_start\|>(system|user|assistant)\n(.*?)(?:<\|im_end\|>|(?=<\|im_start\|>)|$)", re.S),
    re.compile(r"<\|start_header_id\|>(system|user|assistant)<\|end_header_id\|>\n\n(.*?)(?:<\|eot_id\|>|(?=<\|start_header_id\|>)|$)", re.S),
)
END_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "</s>", "<eos>", "<|end|>", "<pad>", "<end_of_turn>")
START_TOKENS = ("<|begin_of_text|>", "<s>", "<|endoftext|>", "<pad>", "<|pad|>")
# a special token as a decode with skip_special_tokens=False writes it: <|...|>, DeepSeek's <｜...｜>, SentencePiece's
SPECIAL_TOKEN = re.compile(r"<\|[^<>|\s]{1,64}\|>|<｜[^<>｜]{1,64}｜>|</?s>|<pad>|<unk>|<bos>|<eos>")
MIN_MATCH = 16  # characters a cut prompt's kept piece must have for a query to match it
# what transformers' clean_up_tokenization does to decoded text (clean_up_tokenization_spaces=True, e.g. Llama-3)
CLEAN_UP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


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


def _strings(body: dict, name: str, n: int | None = None) -> list[str]:
    values = body.get(name)
    if not isinstance(values, list) or not values:
        raise RequestError(name, "must be a non-empty list of strings")
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise RequestError(f"{name}[{i}]", f"must be a string, got {type(value).__name__}")
    if n is not None and len(values) != n:
        raise RequestError(name, f"has {len(values)} items; it needs one per query/response ({n})")
    return values


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
        raise RequestError("prompts", f"missing, and query[{i}] has no chat-template turns ending in the response: send the prompt of each query")
    return turns[:-1], turns[-1]["content"]


def _label_baselines(body: dict, n: int) -> list[str]:
    labels = body.get("labels")
    fix = "this server takes OpenRLHF's labels as the judge's baselines (--labels-as-baselines): send a reference response per query, or serve without that option"
    if not isinstance(labels, list) or len(labels) != n:
        raise RequestError("labels", f"must be a list with one label per query ({n}): {fix}")
    for i, label in enumerate(labels):
        if not (isinstance(label, str) and label.strip()):
            raise RequestError(f"labels[{i}]", f"is {label!r}, not a baseline response: {fix}")
    return list(labels)


def _openrlhf(body: dict, labels_as_baselines: bool = False) -> RewardBatch:
    queries = _strings(body, "query")
    prompts = _strings(body, "prompts", len(queries)) if body.get("prompts") is not None else None
    pairs = [_with_prompt(q, prompts[i], i) if prompts is not None else _from_turns(q, i) for i, q in enumerate(queries)]
    baselines = _label_baselines(body, len(queries)) if labels_as_baselines else None
    return RewardBatch([chat for chat, _ in pairs], [response for _, response in pairs], baselines)


def _chat(value: Any, name: str) -> list[dict]:
    if isinstance(value, str) and value.strip():
        return [{"role": "user", "content": value}]
    ok = isinstance(value, list) and value and all(isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str) for m in value)
    if not ok:
        raise RequestError(name, "must be the prompt text or a non-empty list of {role, content} messages")
    return [{"role": m["role"], "content": m["content"]} for m in value]


def _pairs(body: dict) -> RewardBatch:
    responses = _strings(body, "responses")
    prompts = body.get("prompts")
    if not isinstance(prompts, list) or len(prompts) != len(responses):
        raise RequestError("prompts", f"must be a list with one prompt per response ({len(responses)})")
    messages = [_chat(p, f"prompts[{i}]") for i, p in enumerate(prompts)]
    baselines = _strings(body, "baselines", len(responses)) if body.get("baselines") is not None else None
    return RewardBatch(messages, responses, baselines)


def parse_request(body: Any, labels_as_baselines: bool = False) -> RewardBatch:
    """The pairs to score from a request body (either shape in the module docstring); RequestError when it is bad.
    `labels_as_baselines`: OpenRLHF's `labels` are the judge's baselines (else they are ignored)."""
    if not isinstance(body, dict):
        raise RequestError("body", "must be a JSON object")
    if "query" in body:
        return _openrlhf(body, labels_as_baselines)
    if "responses" in body:
        return _pairs(body)
    raise RequestError("query", 'missing: send {"query": [...], "prompts": [...]} (OpenRLHF) or {"prompts": [...], "responses": [...]}')


@dataclass
class RewardService:
    """A reward function behind a lock, answering in OpenRLHF's response shape."""

    reward: Callable[..., list[float]]
    kind: str  # "model" or "judge"
    name: str
    failed_reward: float = 0.0
    labels_as_baselines: bool = False  # OpenRLHF's `labels` as the judge's baselines (RLVR labels are bare answers: off)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def score(self, batch: RewardBatch) -> dict[str, Any]:
        extra = {"baseline": batch.baselines} if batch.baselines is not None else {}
        with self.lock:
            values = self.reward(batch.prompts, batch.responses, **extra)
        failed = [not math.isfinite(v) for v in values]  # a judge reward built with failed_reward=nan marks its failures
        rewards = [self.failed_reward if bad else float(v) for v, bad in zip(values, failed)]
        return {"rewards": rewards, "scores": rewards, "extra_logs": {"reward_failed": [float(bad) for bad in failed]}}

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "kind": self.kind, "name": self.name}


class JsonHandler(BaseHTTPRequestHandler):
    """A quiet request handler that reads and answers JSON (the reward server's; the tests' stand-in servers build on it)."""

    def log_message(self, *args) -> None:
        pass

    def read_json(self) -> dict:
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")

    def send_json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def make_handler(service: RewardService) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        _send = JsonHandler.send_json

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.rstrip("/") == "/health":
                return self._send(200, service.health())
            self._send(404, {"error": f"no route GET {self.path}: use POST /get_reward or GET /health"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path.rstrip("/") not in ("/get_reward", ""):
                return self._send(404, {"error": f"no route POST {self.path}: use POST /get_reward"})
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                batch = parse_request(body, service.labels_as_baselines)
            except ValueError as exc:  # bad JSON or a RequestError
                field_name = exc.field if isinstance(exc, RequestError) else "body"
                problem = exc.problem if isinstance(exc, RequestError) else f"not valid JSON ({exc})"
                return self._send(400, {"error": f"{field_name}: {problem}", "field": field_name})
            try:
                self._send(200, service.score(batch))
            except Exception as exc:  # noqa: BLE001 - a failed reward call is the client's answer, not a dead server
                self._send(500, {"error": f"the reward function failed: {type(exc).__name__}: {exc}"})

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet unless asked
            if os.environ.get("RLAIF_SERVER_LOG"):
                BaseHTTPRequestHandler.log_message(self, format, *args)

    return Handler


def make_server(service: RewardService, host: str = "127.0.0.1", port: int = 5000) -> ThreadingHTTPServer:
    """A bound server; call `serve_forever()` (and `server_close()` after)."""
    return ThreadingHTTPServer((host, port), make_handler(service))


# ---------------------------------------------------------------- clients (standard library only)


def post_rewards(prompts: list, responses: list[str], baselines: list[str] | None = None, url: str | None = None, timeout: float = 300.0) -> list[float]:
    """POST pairs to a running `rlaif serve-reward`; one reward per response."""
    body: dict[str, Any] = {"prompts": prompts, "responses": responses}
    if baselines is not None:
        body["baselines"] = baselines
    request = urllib.request.Request(url or os.environ.get("RLAIF_REWARD_URL", DEFAULT_URL), json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return [float(x) for x in json.loads(response.read())["rewards"]]


def _messages_of(extra_info: Any, data_source: str) -> list[dict]:
    messages = (extra_info or {}).get("messages") if isinstance(extra_info, dict) else None
    if messages is None:
        raise ValueError(f"extra_info has no 'messages' (data_source {data_source!r}): export the data with `rlaif datasets export ID --format verl-rl`")
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in list(messages)]


def _baseline(ground_truth: Any) -> str | None:
    return ground_truth if isinstance(ground_truth, str) and ground_truth.strip() else None


def compute_score(data_source: str, solution_str: str, ground_truth: Any = None, extra_info: Any = None, url: str | None = None, **kwargs: Any) -> float:
    """verl's custom reward function: the reward of one response (its prompt from `extra_info.messages`)."""
    baseline = _baseline(ground_truth)
    return post_rewards([_messages_of(extra_info, data_source)], [solution_str], [baseline] if baseline else None, url)[0]


def compute_score_batch(data_sources: list, solution_strs: list[str], ground_truths: list, extra_infos: list, url: str | None = None, **kwargs: Any) -> list[float]:
    """verl's batch reward function (reward_manager=batch): one POST for the whole batch."""
    prompts = [_messages_of(info, source) for info, source in zip(extra_infos, data_sources)]
    baselines = [_baseline(g) for g in ground_truths]
    return post_rewards(prompts, list(solution_strs), baselines if all(baselines) else None, url)
