"""A local server in vLLM's shape for the served-engine tests.

It answers ``POST /v1/completions`` as ``vllm serve <base> --enable-lora
--lora-modules <name>=<folder>`` does: the prompt is tokenized as it is (it is
already in the chat template), ``model`` picks an adapter by name (or the base),
and ``logprobs: k`` returns the first token's top-k tokens with their
log-probabilities in ``choices[0].logprobs.top_logprobs[0]``. Behind it is the
in-process engine on one prompt at a time, unpadded. Only 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch

from reason4rec.llm.engine import Engine


class VLLMLikeServer:
    def __init__(self, engine: Engine, base_name: str):
        self.engine = engine
        self.base_name = base_name
        self.requests: Counter = Counter()  # model name -> requests answered
        self.fail_next: list[int] = []  # HTTP statuses to answer before the next successes
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> VLLMLikeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @torch.inference_mode()
    def complete(self, body: dict) -> dict:
        engine, tokenizer = self.engine, self.engine.tokenizer
        adapter = None if body["model"] == self.base_name else body["model"]
        ids = tokenizer(body["prompt"], add_special_tokens=False)["input_ids"]
        logprobs = None
        if body.get("logprobs"):
            with engine._activate(adapter), engine._autocast():
                logits = engine.model(input_ids=torch.tensor([ids], device=engine.device)).logits[0, -1].float()
            log_softmax = torch.log_softmax(logits, dim=-1)
            top = torch.topk(log_softmax, int(body["logprobs"]))
            tokens = [tokenizer.decode([i]) for i in top.indices.tolist()]
            text, new_tokens = tokens[0], 1
            logprobs = {"tokens": [text], "token_logprobs": [top.values[0].item()], "top_logprobs": [dict(zip(tokens, top.values.tolist()))], "text_offset": [0]}
        else:
            (out,) = engine.generate_encoded([ids], adapter, max_new_tokens=body["max_tokens"], temperature=body.get("temperature") or 0.0)
            text, new_tokens = out["text"], out["new_tokens"]
        return {
            "id": "cmpl-1", "object": "text_completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "text": text, "logprobs": logprobs, "finish_reason": "length", "stop_reason": None}],
            "usage": {"prompt_tokens": len(ids), "completion_tokens": new_tokens, "total_tokens": len(ids) + new_tokens},
        }  # fmt: skip

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    status = server.fail_next.pop(0) if server.fail_next else 200
                    if status == 200:
                        if body["model"] != server.base_name and body["model"] not in server.engine.model.peft_config:
                            status, payload = 404, {"error": {"message": f"The model `{body['model']}` does not exist.", "type": "NotFoundError", "code": 404}}
                        else:
                            payload = server.complete(body)
                            server.requests[body["model"]] += 1
                    else:
                        payload = {"error": {"message": "overloaded", "type": "server_error"}}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
