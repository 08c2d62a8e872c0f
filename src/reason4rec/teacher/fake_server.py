"""A local OpenAI-compatible chat-completions server, for tests and benchmarks.

It answers ``POST /v1/chat/completions`` after ``delay_s`` with an echo of the
last user message, counts requests per prompt, and can be told to answer a
prompt with 429 (with ``Retry-After``) a number of times, or always with 500.
It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAIServer:
    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.requests: Counter = Counter()
        self.authorizations: list[str] = []
        self.rate_limit_times: Counter = Counter()  # prompt -> how many more 429s
        self.always_fail: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][-1]["content"]
                with server._lock:
                    server.requests[prompt] += 1
                    server.authorizations.append(self.headers.get("Authorization", ""))
                    limited = server.rate_limit_times[prompt] > 0
                    if limited:
                        server.rate_limit_times[prompt] -= 1
                time.sleep(server.delay_s)
                if prompt in server.always_fail:
                    return self._reply(500, {"error": {"message": "boom", "type": "server_error"}})
                if limited:
                    return self._reply(429, {"error": {"message": "slow down", "type": "rate_limit"}}, {"Retry-After": "0.2"})
                answer = f"echo: {prompt}"
                self._reply(200, {
                    "id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(answer.split()), "total_tokens": 0},
                })

            def _reply(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler
