"""Local OpenAI-compatible servers, for tests and benchmarks (127.0.0.1 only).

``LocalServer`` runs a handler in a thread and answers JSON; ``FakeOpenAIServer``
answers ``POST /v1/chat/completions`` after ``delay_s`` with an echo of the
last user message, counts requests per prompt, and can be told to answer a
prompt with 429 (with ``Retry-After``) a number of times, or always with 500.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalServer:
    """An HTTP server on a free local port, in a daemon thread, for ``with`` blocks.

    A subclass implements ``post(body, headers) -> (status, payload, extra_headers)``
    for every ``POST``; calls may arrive from several threads at once.
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

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, payload, headers = server.post(body, self.headers)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


class FakeOpenAIServer(LocalServer):
    def __init__(self, delay_s: float = 0.0):
        super().__init__()
        self.delay_s = delay_s
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
        answer = f"echo: {prompt}"
        return 200, {
            "id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(answer.split()), "total_tokens": 0},
        }, {}  # fmt: skip
