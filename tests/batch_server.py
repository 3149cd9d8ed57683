"""A stand-in of the OpenAI Files and Batches endpoints (and of chat completions, as DetServer).

It implements what rlaif.backends.openai_batch calls with the openai client: POST /v1/files
(multipart, purpose=batch), GET /v1/files/{id}/content, POST /v1/batches, GET /v1/batches/{id}.
A batch goes validating -> in_progress -> completed over `polls` GETs; at completion every line
of its input file is answered with tests.det_server.completion (the same answer the live
/v1/chat/completions gives for that body) into the output file. `fail_lines` lines of each of
the first `fail_batches` batches go to the error file with HTTP `fail_status` instead.
`batches` lists the batches created (tests count them); `unknown` the requests it did not know.
Not the real service: its limits, its latency (minutes to hours) and its validation are not modelled.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import time

from tests.det_server import DetServer, completion


def form_fields(content_type: str, data: bytes) -> dict[str, bytes]:
    """The parts of a multipart/form-data body by name."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + data
    )
    return {
        part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
        for part in message.iter_parts()
    }


class BatchServer(DetServer):
    """`with BatchServer(polls=2) as server:`; `server.base_url` ends in /v1."""

    def __init__(
        self, polls: int = 2, fail_lines: int = 0, fail_status: int = 500, fail_batches: int = 1, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.polls, self.fail_lines, self.fail_status, self.fail_batches = polls, fail_lines, fail_status, fail_batches
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.seen: dict[str, int] = {}  # batch id -> GETs so far
        self.unknown: list[str] = []

    def _new_file(self, data: bytes, purpose: str) -> dict:
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = data
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": f"{file_id}.jsonl",
            "purpose": purpose,
            "status": "processed",
        }

    def _finish(self, batch: dict) -> None:
        """Answer every input line: the output file, and the error file for the injected failures."""
        number = list(self.batches).index(batch["id"]) + 1
        out, err = [], []
        for i, raw in enumerate(self.files[batch["input_file_id"]].decode().splitlines()):
            line = json.loads(raw)
            if number <= self.fail_batches and i < self.fail_lines:
                body = {"error": {"message": f"injected batch line fault {self.fail_status}", "type": "server_error"}}
                err.append(
                    {
                        "id": f"req-{i}",
                        "custom_id": line["custom_id"],
                        "response": {"status_code": self.fail_status, "request_id": f"r{i}", "body": body},
                        "error": None,
                    }
                )
            else:
                out.append(
                    {
                        "id": f"req-{i}",
                        "custom_id": line["custom_id"],
                        "response": {"status_code": 200, "request_id": f"r{i}", "body": completion(line["body"])},
                        "error": None,
                    }
                )
        batch["output_file_id"] = (
            self._new_file("".join(json.dumps(x) + "\n" for x in out).encode(), "batch_output")["id"] if out else None
        )
        batch["error_file_id"] = (
            self._new_file("".join(json.dumps(x) + "\n" for x in err).encode(), "batch_output")["id"] if err else None
        )
        batch["request_counts"] = {"total": len(out) + len(err), "completed": len(out), "failed": len(err)}
        batch.update(status="completed", completed_at=int(time.time()))

    def _get_batch(self, batch_id: str) -> dict | None:
        batch = self.batches.get(batch_id)
        if batch is not None and batch["status"] not in ("completed", "failed"):
            self.seen[batch_id] = self.seen.get(batch_id, 0) + 1
            if self.seen[batch_id] >= self.polls:
                self._finish(batch)
            else:
                batch["status"] = "in_progress"
        return batch

    def _create_batch(self, body: dict) -> tuple[int, dict]:
        if (
            body.get("input_file_id") not in self.files
            or body.get("endpoint") != "/v1/chat/completions"
            or body.get("completion_window") != "24h"
        ):
            return 400, {"error": {"message": f"bad batch request {body}", "type": "invalid_request_error"}}
        batch_id = f"batch_{len(self.batches) + 1}"
        self.batches[batch_id] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "input_file_id": body["input_file_id"],
            "completion_window": "24h",
            "status": "validating",
            "created_at": int(time.time()),
            "output_file_id": None,
            "error_file_id": None,
            "errors": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
        }
        return 200, self.batches[batch_id]

    def _handler(self):
        server, base = self, super()._handler()

        class Handler(base):
            def do_GET(self) -> None:  # noqa: N802
                parts = self.path.rstrip("/").split("/")
                with server.lock:
                    if len(parts) == 5 and parts[2] == "files" and parts[4] == "content" and parts[3] in server.files:
                        data = server.files[parts[3]]
                        self.send_response(200)
                        self.send_header("Content-Type", "application/octet-stream")
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        return self.wfile.write(data)
                    if len(parts) == 4 and parts[2] == "batches":
                        batch = server._get_batch(parts[3])
                        if batch is not None:
                            return self.send_json(200, batch)
                if self.path.rstrip("/") != "/v1/models":
                    server.unknown.append(f"GET {self.path}")
                return super().do_GET()

            def do_POST(self) -> None:  # noqa: N802
                path = self.path.rstrip("/")
                if path == "/v1/files":
                    data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                    fields = form_fields(self.headers["Content-Type"], data)
                    with server.lock:
                        return self.send_json(200, server._new_file(fields["file"], fields["purpose"].decode()))
                if path == "/v1/batches":
                    with server.lock:
                        return self.send_json(*server._create_batch(self.read_json()))
                if path != "/v1/chat/completions":
                    server.unknown.append(f"POST {self.path}")
                return super().do_POST()

        return Handler
