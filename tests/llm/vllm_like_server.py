"""A local server in vLLM's shape for the served-engine tests.

It answers ``POST /v1/completions`` as ``vllm serve <base> --enable-lora
--lora-modules <name>=<folder>`` does: the prompt is tokenized as it is (it is
already in the chat template), ``model`` picks an adapter by name (or the base),
and ``logprobs: k`` returns the first token's top-k tokens with their
log-probabilities in ``choices[0].logprobs.top_logprobs[0]``. Behind it is the
in-process engine on one prompt at a time, unpadded. Only 127.0.0.1.
"""

from __future__ import annotations

from collections import Counter

import torch

from reason4rec.llm.engine import Engine
from reason4rec.completions.fake_server import LocalServer


class VLLMLikeServer(LocalServer):
    def __init__(self, engine: Engine, base_name: str):
        super().__init__()
        self.engine = engine
        self.base_name = base_name
        self.requests: Counter = Counter()  # model name -> requests answered
        self.fail_next: list[int] = []  # HTTP statuses to answer before the next successes

    def post(self, body: dict, headers) -> tuple[int, dict, dict]:
        with self._lock:  # one model, adapters switched per request
            if self.fail_next:
                return self.fail_next.pop(0), {"error": {"message": "overloaded", "type": "server_error"}}, {}
            if body["model"] != self.base_name and body["model"] not in self.engine.model.peft_config:
                return 404, {"error": {"message": f"The model `{body['model']}` does not exist.", "type": "NotFoundError", "code": 404}}, {}
            self.requests[body["model"]] += 1
            return 200, self.complete(body), {}

    @torch.inference_mode()
    def complete(self, body: dict) -> dict:
        engine, tokenizer = self.engine, self.engine.tokenizer
        adapter = None if body["model"] == self.base_name else body["model"]
        ids = tokenizer(body["prompt"], add_special_tokens=False)["input_ids"]
        logprobs = None
        if body.get("logprobs"):
            with engine._activate(adapter), engine._autocast():
                logits = engine.model(input_ids=torch.tensor([ids], device=engine.device)).logits[0, -1].float()
            top = torch.topk(torch.log_softmax(logits, dim=-1), int(body["logprobs"]))
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
