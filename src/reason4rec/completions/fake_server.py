"""Local OpenAI-compatible servers, for tests and benchmarks (127.0.0.1 only).

``LocalServer`` runs a handler in a thread and answers JSON; ``FakeOpenAIServer``
answers ``POST /v1/chat/completions`` after ``delay_s`` (by default with an echo of
the last user message), counts requests per prompt, and can be told to answer a
prompt with 429 (with ``Retry-After``) a number of times, or always with 500.
``FakeBatchServer`` adds the Batch API, answering lines the same way.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalServer:
    """An HTTP server on a free local port, in a daemon thread, for ``with`` blocks.

    A subclass implements ``post(body, headers) -> (status, payload, extra_headers)``
    for every JSON ``POST``, or overrides ``handle`` for other methods and bodies;
    calls may arrive from several threads at once.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def post(self, body: dict, headers) -> tuple[int, dict, dict]:
        raise NotImplementedError

    def handle(self, method: str, path: str, raw: bytes, headers) -> tuple[int, dict | bytes, dict]:
        """``(status, payload, extra_headers)``: a dict payload is sent as JSON, bytes as they are."""
        if method != "POST":
            return 405, {"error": {"message": f"{method} not supported", "type": "invalid_request_error"}}, {}
        return self.post(json.loads(raw), headers)

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):  # noqa: N802 - http.server's name
                self._answer("GET")

            def do_POST(self):  # noqa: N802 - http.server's name
                self._answer("POST")

            def _answer(self, method: str) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload, headers = server.handle(method, self.path, raw, self.headers)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream" if isinstance(payload, bytes) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


def echo_answer(body: dict) -> tuple[str, int, int]:
    """``echo: <last message>``, with its words and the prompt's as token counts."""
    prompt = body["messages"][-1]["content"]
    answer = f"echo: {prompt}"
    return answer, len(prompt.split()), len(answer.split())


def chat_completion(body: dict, answer: Callable[[dict], tuple[str, int, int]]) -> dict:
    """A ``chat.completion`` object answering the request ``body``."""
    text, prompt_tokens, completion_tokens = answer(body)
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
    }  # fmt: skip


class FakeOpenAIServer(LocalServer):
    """``answer(body) -> (text, prompt_tokens, completion_tokens)`` writes each answer (default: :func:`echo_answer`)."""

    def __init__(self, delay_s: float = 0.0, answer: Callable[[dict], tuple[str, int, int]] = echo_answer):
        super().__init__()
        self.delay_s = delay_s
        self.answer = answer
        self.requests: Counter = Counter()
        self.authorizations: list[str] = []
        self.rate_limit_times: Counter = Counter()  # prompt -> how many more 429s
        self.always_fail: set[str] = set()

    def post(self, body: dict, headers) -> tuple[int, dict, dict]:
        prompt = body["messages"][-1]["content"]
        with self._lock:
            self.requests[prompt] += 1
            self.authorizations.append(headers.get("Authorization", ""))
            limited = self.rate_limit_times[prompt] > 0
            if limited:
                self.rate_limit_times[prompt] -= 1
        time.sleep(self.delay_s)
        if prompt in self.always_fail:
            return 500, {"error": {"message": "boom", "type": "server_error"}}, {}
        if limited:
            return 429, {"error": {"message": "slow down", "type": "rate_limit"}}, {"Retry-After": "0.2"}
        return 200, chat_completion(body, self.answer), {}


BATCH_LINE_KEYS = {"custom_id", "method", "url", "body"}


class FakeBatchServer(FakeOpenAIServer):
    """``FakeOpenAIServer`` with the Batch API: ``POST /v1/files`` (multipart, ``purpose=batch``),
    ``GET /v1/files/{id}/content``, ``POST /v1/batches``, ``GET /v1/batches`` and ``/v1/batches/{id}``.

    Each input line is checked against the API's format (a batch with a bad line fails, as
    OpenAI's validation does). A batch is ``in_progress`` until its ``polls_to_finish``-th
    retrieval, then ``completed`` with its output lines in shuffled order; a line whose prompt
    is in ``fail_once`` goes to the error file the first time it is in a batch; the batches
    whose numbers (1, 2, ... in creation order) are in ``expire`` expire with the first half
    of their lines answered; the next ``unavailable_polls`` retrievals are answered 503.
    ``submitted`` counts each custom_id's lines in created batches.
    """

    def __init__(self, polls_to_finish: int = 2, answer: Callable[[dict], tuple[str, int, int]] = echo_answer, seed: int = 0):
        super().__init__(answer=answer)
        self.polls_to_finish = polls_to_finish
        self.fail_once: set[str] = set()
        self.expire: set[int] = set()
        self.unavailable_polls = 0
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.polls: Counter = Counter()
        self.submitted: Counter = Counter()
        self._failed_already: set[str] = set()
        self._random = random.Random(seed)

    def handle(self, method: str, path: str, raw: bytes, headers) -> tuple[int, dict | bytes, dict]:
        path = path.split("?")[0].removeprefix("/v1")
        with self._lock:
            if (method, path) == ("POST", "/files"):
                return self._upload(raw, headers["Content-Type"])
            if method == "GET" and path.startswith("/files/") and path.endswith("/content"):
                file_id = path.removeprefix("/files/").removesuffix("/content")
                return (200, self.files[file_id], {}) if file_id in self.files else (404, {"error": {"message": f"no file {file_id}"}}, {})
            if (method, path) == ("POST", "/batches"):
                return self._create(json.loads(raw))
            if (method, path) == ("GET", "/batches"):
                newest_first = sorted(self.batches.values(), key=lambda b: b["number"], reverse=True)
                return 200, {"object": "list", "data": [_public(b) for b in newest_first], "has_more": False}, {}
            if method == "GET" and path.startswith("/batches/"):
                return self._retrieve(path.removeprefix("/batches/"))
        return super().handle(method, path, raw, headers)

    def _upload(self, raw: bytes, content_type: str) -> tuple[int, dict, dict]:
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
        parts = {part.get_param("name", header="content-disposition"): part.get_payload(decode=True) for part in message.iter_parts()}
        if parts.get("purpose") != b"batch" or "file" not in parts:
            return 400, {"error": {"message": "expected a file with purpose=batch", "type": "invalid_request_error"}}, {}
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = parts["file"]
        return 200, {"id": file_id, "object": "file", "bytes": len(parts["file"]), "created_at": int(time.time()), "filename": "requests.jsonl", "purpose": "batch", "status": "processed"}, {}

    def _create(self, body: dict) -> tuple[int, dict, dict]:
        if body.get("endpoint") != "/v1/chat/completions" or body.get("completion_window") != "24h" or body.get("input_file_id") not in self.files:
            return 400, {"error": {"message": f"bad batch request {body}", "type": "invalid_request_error"}}, {}
        lines = [json.loads(line) for line in self.files[body["input_file_id"]].decode().splitlines()]
        problem = _format_problem(lines)
        number = len(self.batches) + 1
        batch = {
            "id": f"batch-{number}", "object": "batch", "endpoint": body["endpoint"], "input_file_id": body["input_file_id"],
            "completion_window": "24h", "status": "failed" if problem else "in_progress", "created_at": int(time.time()),
            "request_counts": {"total": len(lines), "completed": 0, "failed": len(lines) if problem else 0},
            "errors": {"object": "list", "data": [{"code": "invalid_request", "message": problem}]} if problem else None,
            "number": number, "lines": lines,
        }  # fmt: skip
        if not problem:
            self.submitted.update(line["custom_id"] for line in lines)
        self.batches[batch["id"]] = batch
        return 200, _public(batch), {}

    def _retrieve(self, batch_id: str) -> tuple[int, dict, dict]:
        if self.unavailable_polls > 0:
            self.unavailable_polls -= 1
            return 503, {"error": {"message": "try again", "type": "server_error"}}, {}
        batch = self.batches[batch_id]
        self.polls[batch_id] += 1
        if batch["status"] == "in_progress" and self.polls[batch_id] >= self.polls_to_finish:
            self._finish(batch)
        return 200, _public(batch), {}

    def _finish(self, batch: dict) -> None:
        lines = batch["lines"]
        expired = batch["number"] in self.expire
        outputs, errors = [], []
        for line in lines[: len(lines) // 2] if expired else lines:
            prompt = line["body"]["messages"][-1]["content"]
            if prompt in self.fail_once and prompt not in self._failed_already:
                self._failed_already.add(prompt)
                errors.append({"id": "batch_req", "custom_id": line["custom_id"], "response": {"status_code": 500, "request_id": "req", "body": {"error": {"message": "boom", "type": "server_error"}}}, "error": None})
            else:
                outputs.append({"id": "batch_req", "custom_id": line["custom_id"], "response": {"status_code": 200, "request_id": "req", "body": chat_completion(line["body"], self.answer)}, "error": None})
        self._random.shuffle(outputs)
        for kind, written in (("output_file_id", outputs), ("error_file_id", errors)):
            if written:
                file_id = f"file-{len(self.files) + 1}"
                self.files[file_id] = "".join(json.dumps(line) + "\n" for line in written).encode()
                batch[kind] = file_id
        batch["status"] = "expired" if expired else "completed"
        batch["request_counts"] = {"total": len(lines), "completed": len(outputs), "failed": len(errors)}


def _public(batch: dict) -> dict:
    """A batch as the API shows it (without the fake's bookkeeping)."""
    return {k: v for k, v in batch.items() if k not in ("number", "lines")}


def _format_problem(lines: list[dict]) -> str | None:
    """What is wrong with a batch input file, as the API's validation would say, or None."""
    custom_ids = [line.get("custom_id") for line in lines]
    if len(set(custom_ids)) != len(custom_ids):
        return "custom_id values must be unique within a batch"
    for number, line in enumerate(lines, 1):
        if set(line) != BATCH_LINE_KEYS or line["method"] != "POST" or line["url"] != "/v1/chat/completions":
            return f"line {number}: expected {sorted(BATCH_LINE_KEYS)} with method POST and url /v1/chat/completions, got {line}"
        if not line["body"].get("model") or not line["body"].get("messages"):
            return f"line {number}: the body needs a model and messages"
    return None
