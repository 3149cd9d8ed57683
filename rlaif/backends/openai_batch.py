"""The OpenAI Batch API path of the openai backend (`batch: true` on a policy or judge).

A step's pending requests (those the request cache does not have) become one JSONL file of chat
requests (`custom_id`: a hash of what determines the call, the engine identity and the request
body - the content the request cache key hashes), uploaded with `files.create(purpose="batch")`,
then `batches.create(endpoint="/v1/chat/completions", completion_window="24h")`; the batch is
polled (first after `batch_poll_s`, each interval 1.5x the last, at most 10 minutes) until it is
completed, failed, expired or cancelled, and its output and error files are read line by line
into the same `Completion` / `Scores` results as the live path, reported through `on_result`, so
rlaif.calls.engine caches each success as it would a live answer: a re-run pays nothing, and the live
path finds what the batch path made (and the other way round).

No batch is submitted twice: the input file id, then the batch id, are written (atomically) to
`STORE/.batches/<hash of the request set>.json` as soon as the service returns them, before any
polling. A run that is killed or crashes while a batch runs, then re-run, finds the record for the
same request set and resumes polling that batch. Once its results are collected the record is
marked `collected` (a later submission of the same set, e.g. failed lines sent again, makes a new
batch). Not covered: a crash in the milliseconds while collected results are being cached leaves
a smaller pending set next time, which is then sent as a new batch.

Failed lines (an HTTP status in the error file, lines missing from an expired or cancelled batch)
are failures as values (`BatchLineFailed`): a 429/5xx or a line that never ran is transient, so
the run's retry passes send it again (as a new, smaller batch); a 400 stays a failure (the row's
`error`). A judge's body asks for `logprobs` / `top_logprobs: 20` as the live path does; there is
no fallback when the service refuses logprobs (those lines fail with the service's 400).

Batches bigger than 50,000 requests (the service's limit) go in parts of 50,000, one batch each.
No rate limit (`rpm`, `tpm`) applies here: batches have their own queue limits on the service.

This path was tested against a local stand-in of the Files and Batches endpoints
(tests/batch_server.py), not against the real OpenAI service.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
from pathlib import Path
from typing import Any

from rlaif.backends.base import Completion, GenerateRequest, ScoreRequest, Scores, Stopped
from rlaif.backends.verdicts import verdict_probs
from rlaif.core.errors import BackendError
from rlaif.core.schema import content_hash

MAX_LINES = 50_000
MAX_POLL_S = 600.0
TERMINAL = ("completed", "failed", "expired", "cancelled")
ENDPOINT = "/v1/chat/completions"


class BatchLineFailed(Exception):
    """One request of a batch that failed; `batch_status` is its HTTP status (transient ones are retried)."""

    def __init__(self, message: str, batch_status: int) -> None:
        super().__init__(message)
        self.batch_status = batch_status


def request_body(backend, kind: str, request: GenerateRequest | ScoreRequest) -> dict[str, Any]:
    """The chat-completion body of a request, as the live path sends it (rlaif.backends.openai_compat)."""
    spec = backend.spec
    if kind == "generate":
        body = {
            "model": spec.model,
            "messages": request.chat(),
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        return body
    body = {"model": spec.model, "messages": request.chat(), "temperature": 0.0, "max_tokens": request.max_tokens}
    if request.want_probs and backend._logprobs_supported:
        body.update(logprobs=True, top_logprobs=20)
    return body


def custom_id(identity: dict, kind: str, body: dict) -> str:
    return content_hash({"kind": kind, "engine": identity, "body": body})


def parse_line(kind: str, request, line: dict) -> Completion | Scores | BatchLineFailed:
    """One line of an output or error file as the live path's result (or a failure)."""
    response, error = line.get("response") or {}, line.get("error")
    status = response.get("status_code") or (500 if error else 200)
    body = response.get("body") or {}
    if error or status != 200:
        message = (error or {}).get("message") or (body.get("error") or {}).get("message") or "no message"
        return BatchLineFailed(f"batch request failed: HTTP {status}: {message}", status)
    choice, usage = body["choices"][0], body.get("usage") or {}
    text = (choice.get("message") or {}).get("content") or ""
    tokens = {
        "prompt_tokens": usage.get("prompt_tokens") or 0,
        "completion_tokens": usage.get("completion_tokens") or 0,
    }
    if kind == "generate":
        return Completion(text=text, finish_reason=choice.get("finish_reason") or "stop", **tokens)
    content = (choice.get("logprobs") or {}).get("content")
    return Scores(probs=verdict_probs(content, request.options) if content else None, text=text, **tokens)


def records_dir(backend) -> Path:
    store = getattr(backend, "store", None)
    if store is None:
        raise BackendError(
            "batch: true needs the run's store (STORE/.batches keeps the batch ids) - run it through `rlaif run` or a BackendPool with a store"
        )
    return Path(store) / ".batches"


def write_record(path: Path, record: dict) -> None:
    """Atomically: a reader sees the old record or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    with tmp.open("w") as handle:
        json.dump(record, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_record(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


async def batch_requests(backend, kind: str, requests: list, on_result) -> None:
    """Send `requests` through the Batch API; every index gets its result (or failure) through `on_result`."""
    identity = type(backend).identity(backend.spec)
    bodies = [request_body(backend, kind, request) for request in requests]
    ids = [custom_id(identity, kind, body) for body in bodies]
    lines = dict(zip(ids, bodies))  # identical requests share one line
    unique = list(lines)
    client = backend._client()
    try:
        for start in range(0, len(unique), MAX_LINES):
            part = unique[start : start + MAX_LINES]
            try:
                if backend.stopping:  # Ctrl-C or SIGTERM: no new batch (one already submitted resumes on the re-run)
                    raise Stopped("not submitted: the run is stopping (Ctrl-C or SIGTERM)")
                results = await run_part(client, backend, part, lines)
            except Exception as exc:  # noqa: BLE001 - the upload, creation or a poll failed: every request of the part fails with it
                results = {line_id: exc for line_id in part}
            wanted = set(part)
            for index, line_id in enumerate(ids):
                if line_id in wanted:
                    found = results.get(line_id)
                    on_result(
                        index, found if isinstance(found, Exception) else parse_line(kind, requests[index], found)
                    )
    finally:
        await client.close()


async def run_part(client, backend, part: list[str], lines: dict[str, dict]) -> dict[str, Any]:
    """custom_id -> output line (or failure) of one batch: submitted once, resumed from its record."""
    path = records_dir(backend) / f"{content_hash(sorted(part))}.json"
    record = read_record(path)
    if record is None or record.get("collected") or not record.get("batch_id"):
        record = await submit(client, path, part, lines, record)
    batch = await poll(client, record["batch_id"], backend.spec.batch_poll_s)
    results = await collect(client, batch, part)
    write_record(path, {**record, "status": batch.status, "collected": True, "collected_at": time.time()})
    return results


async def submit(client, path: Path, part: list[str], lines: dict[str, dict], record: dict | None) -> dict:
    """Upload the JSONL (unless an earlier try did and recorded it) and create the batch; each id is recorded at once."""
    record = {} if record is None or record.get("collected") else record
    if not record.get("input_file_id"):
        text = "".join(
            json.dumps({"custom_id": line_id, "method": "POST", "url": ENDPOINT, "body": lines[line_id]}) + "\n"
            for line_id in part
        )
        uploaded = await client.files.create(file=("rlaif-batch.jsonl", io.BytesIO(text.encode())), purpose="batch")
        record = {"input_file_id": uploaded.id, "lines": len(part), "uploaded_at": time.time()}
        write_record(path, record)
    batch = await client.batches.create(
        input_file_id=record["input_file_id"], endpoint=ENDPOINT, completion_window="24h"
    )
    record = {**record, "batch_id": batch.id, "submitted_at": time.time()}
    write_record(path, record)  # before any poll: a crash from here on resumes this batch
    return record


async def poll(client, batch_id: str, first_s: float):
    """The batch once it is in a terminal state (the interval grows 1.5x per poll, at most 10 minutes)."""
    interval = first_s
    while True:
        batch = await client.batches.retrieve(batch_id)
        if batch.status in TERMINAL:
            return batch
        await asyncio.sleep(interval)
        interval = min(MAX_POLL_S, interval * 1.5)


async def collect(client, batch, part: list[str]) -> dict[str, Any]:
    """The output and error lines by custom_id; a line the batch never ran is a transient failure."""
    found: dict[str, Any] = {}
    for file_id in (batch.output_file_id, batch.error_file_id):
        if file_id:
            content = await client.files.content(file_id)
            for raw in content.text.splitlines():
                if raw.strip():
                    line = json.loads(raw)
                    found[line["custom_id"]] = line
    if batch.status == "failed":
        errors = [e.message for e in (batch.errors.data if batch.errors and batch.errors.data else [])]
        why = f"batch {batch.id} failed validation: {'; '.join(str(e) for e in errors) or 'no reason given'}"
        return {line_id: found.get(line_id) or BatchLineFailed(why, 400) for line_id in part}
    missing = BatchLineFailed(f"batch {batch.id} ended {batch.status} before this request ran", 503)
    return {line_id: found.get(line_id) or missing for line_id in part}
