"""The experts on an OpenAI-compatible inference server (vLLM), behind the engine's interface.

vLLM serves the base with the adapters by name::

    vllm serve <base> --enable-lora --max-lora-rank 16 \
        --lora-modules summarizer=<folder> reward_model=<folder> reasoner=<folder> predictor=<folder> predictor_no_reason=<folder>

``ServedEngine`` puts each prompt in the base's chat template here (the
tokenizer is loaded, the weights are not) and sends it to ``/v1/completions``
under the expert's model name. Requests go through the teacher's client
(:class:`reason4rec.completions.client.CompletionClient`): the same bounded concurrency,
retries that honour ``Retry-After``, and a persistent answer cache keyed by the
adapter's run, so a rerun after a crash asks only what is missing.

Rating scoring asks for one token with ``logprobs`` and takes the paper's
expectation over the digits "1".."5" among the returned top tokens. A digit
that is not among them has a probability below every returned token's; it is
counted and left out of the expectation (which is then over the digits
present), and a prompt with no digit at all is an error.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

from transformers import AutoTokenizer

from reason4rec.llm.artifacts import AdapterArtifact, BaseModelArtifact
from reason4rec.llm.chat import RATING_PREFIX, chat_prompt, expected_rating, rating_token_ids
from reason4rec.parameters import Inference
from reason4rec.completions.cache import AnswerCache
from reason4rec.completions.client import CompletionClient, CompletionAnswer, CompletionRequest
from reason4rec.completions.openai_backend import CompletionsBackend

logger = logging.getLogger(__name__)


class ServedEngine:
    """Generation and logit-weighted scoring on a server, with the in-process engine's methods."""

    def __init__(self, base: BaseModelArtifact, inference: Inference):
        self.inference = inference
        self.batch_size = inference.batch_size  # not sent: the server batches what is in flight
        self.base_name = base.name
        self.tokenizer = base.tokenizer if base.tokenizer is not None else AutoTokenizer.from_pretrained(base.folder or base.name)
        self.rating_tokens = [self.tokenizer.decode([i]) for i in rating_token_ids(self.tokenizer)]
        self.cache = AnswerCache(inference.cache_path)
        self.fingerprints: dict[str, str] = {}
        self._teachers: dict[str | None, CompletionClient] = {}
        self.missing_digits = 0  # digits absent from a scored prompt's top tokens, over this engine's life

    def load_adapters(self, adapters: dict[str, AdapterArtifact]) -> None:
        """Record which run of each adapter the server is expected to serve (the cache key)."""
        for name, adapter in adapters.items():
            fingerprint = str(adapter.metadata.get("run") or adapter.metadata.get("version") or "unversioned")
            if self.fingerprints.get(name) != fingerprint:
                self._teachers.pop(name, None)
            self.fingerprints[name] = fingerprint

    @contextmanager
    def uncached(self):
        """Ask the server for every answer afresh and keep none (timing one prediction at a time)."""
        kept, teachers = self.cache, self._teachers
        self.cache, self._teachers = AnswerCache(None), {}
        try:
            yield self
        finally:
            self.cache, self._teachers = kept, teachers

    def _teacher(self, adapter: str | None) -> CompletionClient:
        if adapter not in self._teachers:
            if adapter is not None and adapter not in self.fingerprints:
                raise KeyError(f"no adapter named {adapter!r} is loaded")
            served = self.inference.served_base or self.base_name if adapter is None else (self.inference.served_names or {}).get(adapter, adapter)
            backend = CompletionsBackend(
                served, self.inference.base_url, os.environ.get(self.inference.api_key_env), self.inference.timeout_s,
                self.fingerprints.get(adapter, f"base {self.base_name}"),
            )  # fmt: skip
            self._teachers[adapter] = CompletionClient(backend, self.cache, concurrency=self.inference.concurrency)
        return self._teachers[adapter]

    def _complete(self, requests: list[CompletionRequest], adapter: str | None, desc: str) -> list[CompletionAnswer]:
        answers = self._teacher(adapter).complete(requests, stage=f"inference {adapter or 'base'}", desc=desc)
        failed = [a.error for a in answers if not a.ok]
        if failed:
            raise RuntimeError(f"{len(failed)} of {len(requests)} requests to {self.inference.base_url} for {adapter or 'the base'} failed after retries (first: {failed[0]})")
        return answers

    def generate(
        self,
        prompts: Sequence[str],
        adapter: str | None,
        max_new_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        batch_size: int | None = None,
        seed: int = 0,
        desc: str = "generating",
    ) -> list[dict[str, Any]]:
        """``{"text", "new_tokens", "truncated"}`` per prompt, in order (``batch_size`` is the server's
        business: requests run ``concurrency`` at a time). Sampled prompts are told
        apart by ``seed`` in the cache key, so a rerun gets the same samples."""
        if top_p != 1.0:
            raise ValueError("the served engine samples with the server's top_p: leave top_p at 1.0")
        requests = [CompletionRequest(chat_prompt(self.tokenizer, p), temperature, max_new_tokens, sample_index=seed) for p in prompts]
        return [
            {"text": a.text.strip(), "new_tokens": a.completion_tokens, "truncated": a.cut_at(max_new_tokens)}  # type: ignore[union-attr]
            for a in self._complete(requests, adapter, desc)
        ]

    def score_ratings(self, prompts: Sequence[str], adapter: str | None, batch_size: int | None = None, desc: str = "scoring") -> list[float]:
        return [expected_rating(d) for d in self.rating_distributions(prompts, adapter, batch_size, desc)]

    def rating_distributions(self, prompts: Sequence[str], adapter: str | None, batch_size: int | None = None, desc: str = "scoring") -> list[list[float]]:
        """The rating's distribution from the first answer token's top log-probabilities
        (a digit not among them gets 0)."""
        requests = [
            CompletionRequest(chat_prompt(self.tokenizer, p) + RATING_PREFIX, 0.0, 1, top_logprobs=self.inference.top_logprobs) for p in prompts
        ]  # fmt: skip
        distributions, missing = [], 0
        for prompt_index, answer in enumerate(self._complete(requests, adapter, desc)):
            top = json.loads(answer.text)  # type: ignore[arg-type]
            logprobs = [top.get(token) for token in self.rating_tokens]
            missing += logprobs.count(None)
            if all(lp is None for lp in logprobs):
                raise ValueError(f"no rating digit among the top {self.inference.top_logprobs} tokens for prompt {prompt_index} ({adapter}): raise llm.inference.top_logprobs")
            distributions.append(distribution_from_logprobs(logprobs))
        if missing:
            logger.warning("%d rating digits were not among the top %d tokens of %d prompts: each prompt's distribution is over its digits present", missing, self.inference.top_logprobs, len(prompts))
        self.missing_digits += missing
        return distributions


def distribution_from_logprobs(logprobs: Sequence[float | None]) -> list[float]:
    """The digits' probabilities renormalized among those present (``None``: absent, 0):
    with all five present, exactly the softmax over their logits."""
    peak = max(lp for lp in logprobs if lp is not None)
    weights = [0.0 if lp is None else math.exp(lp - peak) for lp in logprobs]
    return [w / sum(weights) for w in weights]
