"""A deterministic OpenAI-compatible stand-in for tests that compare version ids across runs.

llm-katan's echo replies carry the time and the port, so two runs never get the same text. This
server answers a chat completion with text that depends only on the request (messages,
temperature, seed), gives verdict log-probabilities when asked (`logprobs`), and can inject
faults: `error_rate` (HTTP 500, random per request) and `fail_after` (every request after the
first N answers `fail_status`; 0 drops the connection unanswered, as a server that died does), with
`retry_after` as its Retry-After header and `error_code` as the error's `code`. `latency_s` holds each answer that long; `received` counts
chat-completion requests as they arrive (answered or not).
`port` reuses a port, so a re-run reaches "the same endpoint" (the request cache keys on the URL).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class JsonHandler(BaseHTTPRequestHandler):
    """A quiet http.server handler that reads and answers JSON: the base of the tests' stand-in servers."""

    def log_message(self, *args) -> None:
        pass

    def read_json(self) -> dict:
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")

    def send_json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def reply_for(body: dict) -> str:
    """The reply text: a function of the request only.

    >>> reply_for({"messages": [{"role": "user", "content": "hi"}], "seed": 1}) == reply_for({"seed": 1, "messages": [{"role": "user", "content": "hi"}]})
    True
    """
    key = json.dumps([body.get("messages"), body.get("temperature"), body.get("seed")], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()
    user = next((m["content"] for m in reversed(body.get("messages", [])) if m.get("role") == "user"), "")
    return f"Reply {digest[:8]} ({int(digest[8:10], 16) % 7 + 1} points) to: {user[:60]}"


def _logprobs(body: dict) -> dict:
    """Verdict-token log-probabilities: a pairwise a/b first, then a pointwise rating (5/1) and a binary yes/no, so
    every judge type finds its verdict (the first position whose token is one of its options)."""
    p_a = 0.2 + 0.6 * int(hashlib.sha256(json.dumps(body.get("messages")).encode()).hexdigest()[:4], 16) / 0xFFFF

    def position(first: str, second: str) -> dict:
        tops = [
            {"token": first, "logprob": math.log(p_a), "bytes": None},
            {"token": second, "logprob": math.log(1 - p_a), "bytes": None},
        ]
        return {"token": first, "logprob": math.log(p_a), "bytes": None, "top_logprobs": tops}

    return {"content": [position("a", "b"), position("5", "1"), position("yes", "no")]}


def completion(body: dict) -> dict:
    """The chat completion answering a request body: a function of the body only (also the Batch API stand-in's answer)."""
    text = "a" if body.get("logprobs") else reply_for(body)
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": "stop",
        "logprobs": _logprobs(body) if body.get("logprobs") else None,
    }
    usage = {"prompt_tokens": 10, "completion_tokens": len(text.split()), "total_tokens": 10 + len(text.split())}
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "det"),
        "choices": [choice],
        "usage": usage,
    }


class DetServer:
    """Run with `with DetServer() as server:`; `server.base_url` ends in /v1; `server.calls` counts answers."""

    def __init__(
        self,
        error_rate: float = 0.0,
        fail_after: int | None = None,
        fail_status: int = 503,
        seed: int = 0,
        port: int = 0,
        latency_s: float = 0.0,
        retry_after: str | None = None,
        error_code: str | None = None,
    ) -> None:
        self.error_rate, self.fail_after, self.fail_status = error_rate, fail_after, fail_status
        self.latency_s, self.retry_after, self.error_code = latency_s, retry_after, error_code
        self.received = 0
        self.random = random.Random(seed)
        self.calls = self.failures = 0
        self.bodies: Counter = (
            Counter()
        )  # sha256 of each chat-completion request body -> times received (a repeated paid call shows as > 1)
        self.lock = threading.Lock()
        ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.port = self.httpd.server_address[1]
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def _fault(self) -> int | None:
        with self.lock:
            if self.fail_after is not None and self.calls >= self.fail_after:
                self.failures += 1
                return self.fail_status
            if self.error_rate and self.random.random() < self.error_rate:
                self.failures += 1
                return 500
            self.calls += 1
            return None

    def _handler(self):
        server = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    return self.send_json(
                        200, {"object": "list", "data": [{"id": "det", "object": "model", "owned_by": "tests"}]}
                    )
                self.send_json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                body = self.read_json()
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self.send_json(404, {"error": {"message": "not found"}})
                with server.lock:
                    server.bodies[hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()] += 1
                    server.received += 1
                time.sleep(server.latency_s)
                status = server._fault()
                if status == 0:
                    self.close_connection = True  # no answer at all: the client sees the connection drop
                    return
                if status:
                    headers = {"Retry-After": server.retry_after} if server.retry_after else {}
                    error = {"message": f"injected fault {status}", "type": "server_error", "code": server.error_code}
                    return self.send_json(status, {"error": error}, headers)
                self.send_json(200, completion(body))

        return Handler

    def __enter__(self) -> DetServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
