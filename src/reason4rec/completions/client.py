"""One teacher interface for ``summarize`` and ``distill_reasons``.

Many prompts in, completions with token usage out, in order. The ``CompletionClient``
wraps a backend (OpenAI-compatible HTTP, or the offline rules) with what a
long, paid job needs: a persistent cache keyed by everything that decides the
answer (so a rerun repeats no completed call), bounded concurrency, retries
with exponential backoff and jitter that honour ``Retry-After``, failures
recorded rather than raised, and token and cost accounting. With ``batches``
set (``teacher.mode: batch``), what the cache cannot answer goes through the
OpenAI Batch API instead (:mod:`reason4rec.completions.batch`), at its price.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, cast

import pandas as pd
from tqdm.auto import tqdm

from reason4rec.completions.batch import OpenAIBatches
from reason4rec.completions.cache import AnswerCache

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompletionRequest:
    """One completion to ask for. ``sample_index`` tells apart repeated samples
    of the same prompt, so sampled answers stay reproducible from the cache.
    ``top_logprobs`` asks a completions backend for the first token's most
    likely tokens instead of the text (rating scoring)."""

    prompt: str
    temperature: float = 0.0
    max_tokens: int = 512
    sample_index: int = 0
    system: str | None = None
    top_logprobs: int | None = None

    def messages(self) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.system}] if self.system else []
        return messages + [{"role": "user", "content": self.prompt}]


@dataclass
class CompletionAnswer:
    text: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    error: str | None = None
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.text is not None

    def cut_at(self, max_tokens: int) -> bool:
        """Whether the answer used its whole token budget: it was most likely cut short
        (the usage the server reports; OpenAI's ``finish_reason: length``)."""
        return self.ok and self.completion_tokens >= max_tokens


class RetryableError(Exception):
    """A failure worth retrying (429, 5xx, timeout, connection); ``retry_after`` in seconds if the server said."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Backend(Protocol):
    name: str
    model: str

    def identity(self) -> dict[str, Any]:
        """What, besides the request, decides the answer (backend, model, endpoint)."""

    def call(self, request: CompletionRequest) -> tuple[str, int, int]:
        """Return ``(text, prompt_tokens, completion_tokens)``; raise RetryableError or any other error."""


class BatchBackend(Backend, Protocol):
    """A backend whose requests can go through the Batch API (``OpenAIBackend``)."""

    def chat_body(self, request: CompletionRequest) -> dict[str, Any]:
        """The chat-completions request body: what ``call`` sends, and a batch line's ``body``."""

    def answer_of(self, body: dict[str, Any]) -> tuple[str, int, int]:
        """``(text, prompt_tokens, completion_tokens)`` of a batch line's response body, as ``call`` reads a response."""


@dataclass
class RetryPolicy:
    max_retries: int = 6
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter, never shorter than the server's Retry-After."""
        backoff = random.uniform(0, min(self.backoff_max_s, self.backoff_base_s * 2**attempt))
        return max(backoff, retry_after or 0.0)


@dataclass
class Usage:
    """Counts of one stage and model. ``calls`` and the token counts include the batch ones,
    which ``batch_*`` count again on their own (they cost ``batch.price_factor`` as much)."""

    calls: int = 0
    cache_hits: int = 0
    failures: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    batch_calls: int = 0
    batch_prompt_tokens: int = 0
    batch_completion_tokens: int = 0


@dataclass
class CompletionClient:
    backend: Backend
    cache: AnswerCache
    concurrency: int = 8
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    prices_per_million_tokens: dict[str, dict[str, float]] = field(default_factory=dict)
    sleep: Callable[[float], None] = time.sleep
    usage: dict[tuple[str, str], Usage] = field(default_factory=lambda: defaultdict(Usage))
    batches: OpenAIBatches | None = None  # teacher.mode: batch (the backend must be a BatchBackend)

    def key(self, request: CompletionRequest) -> str:
        payload = {
            **self.backend.identity(),
            "messages": request.messages(),
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "sample_index": request.sample_index,
        }
        if request.top_logprobs is not None:  # only then, so earlier answers keep their keys
            payload["top_logprobs"] = request.top_logprobs
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def complete(self, requests: Sequence[CompletionRequest], stage: str, desc: str | None = None) -> list[CompletionAnswer]:
        """Answers in request order. Cached answers cost nothing; the rest go in
        batches (``batches`` set) or run ``concurrency`` at a time, and are cached
        as each arrives. A request that still fails after its retries (or batch
        rounds) comes back with ``error`` set."""
        usage = self.usage[(stage, self.backend.model)]
        desc = desc or f"teacher {stage}"
        answers: list[CompletionAnswer | None] = [None] * len(requests)
        keys = [self.key(r) for r in requests]
        pending = []
        for index, key in enumerate(keys):
            hit = self.cache.get(key)
            if hit is not None:
                answers[index] = CompletionAnswer(hit[0], hit[1], hit[2], cached=True)
                usage.cache_hits += 1
            else:
                pending.append(index)
        if self.batches is not None and pending:
            pending = self._answer_in_batches(requests, keys, pending, answers, usage, desc)
        self._answer_synchronously(requests, keys, pending, answers, usage, desc)
        failed = [a for a in answers if a is not None and not a.ok]
        if failed:
            logger.warning("teacher %s: %d of %d requests failed after retries (first error: %s)", stage, len(failed), len(requests), failed[0].error)
        return answers  # type: ignore[return-value]

    def _answer_synchronously(self, requests, keys, pending: list[int], answers: list, usage: Usage, desc: str) -> None:
        progress = tqdm(total=len(requests), initial=len(requests) - len(pending), desc=desc, unit="call")
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            futures = {pool.submit(self._call_with_retries, requests[i]): i for i in pending}
            for future in as_completed(futures):
                index = futures[future]
                answer = future.result()
                usage.calls += answer.attempts
                usage.retries += max(0, answer.attempts - 1)
                if answer.ok:
                    self.cache.put(keys[index], answer.text, answer.prompt_tokens, answer.completion_tokens, self.backend.model)
                    usage.prompt_tokens += answer.prompt_tokens
                    usage.completion_tokens += answer.completion_tokens
                else:
                    usage.failures += 1
                answers[index] = answer
                progress.update(1)
                progress.set_postfix(failed=usage.failures, cost=f"${self._cost(self.backend.model, usage):.4f}")
        progress.close()

    def _answer_in_batches(self, requests, keys, pending: list[int], answers: list, usage: Usage, desc: str) -> list[int]:
        """Answer ``pending`` through the Batch API, one batch (per file) for all of them; return
        those left for the synchronous path (``failures: sync``). Every answered line is cached,
        one of this call's or not (a resumed batch may hold requests of an earlier call)."""
        batches, backend = cast(OpenAIBatches, self.batches), cast(BatchBackend, self.backend)
        indices_of: dict[str, list[int]] = defaultdict(list)
        for index in pending:
            indices_of[keys[index]].append(index)

        def on_answer(key: str, body: dict[str, Any]) -> None:
            text, prompt_tokens, completion_tokens = backend.answer_of(body)
            self.cache.put(key, text, prompt_tokens, completion_tokens, backend.model)
            usage.calls += 1
            usage.batch_calls += 1
            usage.prompt_tokens += prompt_tokens
            usage.completion_tokens += completion_tokens
            usage.batch_prompt_tokens += prompt_tokens
            usage.batch_completion_tokens += completion_tokens
            for index in indices_of.get(key, []):
                answers[index] = CompletionAnswer(text, prompt_tokens, completion_tokens, attempts=1)

        def on_failure(key: str, error: str) -> None:
            usage.calls += 1
            usage.batch_calls += 1

        bodies = {key: backend.chat_body(requests[indices[0]]) for key, indices in indices_of.items()}
        unanswered = batches.run(bodies, on_answer, on_failure, desc)
        left = [index for key in unanswered for index in indices_of[key]]
        if batches.policy.failures == "sync":
            return sorted(left)
        for index in left:
            answers[index] = CompletionAnswer(None, error=unanswered[keys[index]], attempts=1)
            usage.failures += 1
        return []

    def _call_with_retries(self, request: CompletionRequest) -> CompletionAnswer:
        attempt = 0
        while True:
            attempt += 1
            try:
                text, prompt_tokens, completion_tokens = self.backend.call(request)
                return CompletionAnswer(text, prompt_tokens, completion_tokens, attempts=attempt)
            except RetryableError as error:
                if attempt > self.retry.max_retries:
                    return CompletionAnswer(None, error=f"gave up after {attempt} attempts: {error}", attempts=attempt)
                self.sleep(self.retry.delay(attempt - 1, error.retry_after))
            except Exception as error:  # noqa: BLE001 - a bad request must not stop the other prompts
                return CompletionAnswer(None, error=f"{type(error).__name__}: {error}", attempts=attempt)

    def cost(self, stage: str | None = None) -> float:
        return sum(self._cost(model, usage) for (s, model), usage in self.usage.items() if stage in (None, s))

    def _cost(self, model: str, usage: Usage) -> float:
        """Synchronous tokens at ``prices_per_million_tokens``, batch tokens at ``batch.price_factor`` of it."""
        price = self.prices_per_million_tokens.get(model, {})

        def priced(prompt_tokens: int, completion_tokens: int) -> float:
            return (prompt_tokens * price.get("prompt", 0.0) + completion_tokens * price.get("completion", 0.0)) / 1e6

        price_factor = self.batches.policy.price_factor if self.batches is not None else 1.0
        synchronous = priced(usage.prompt_tokens - usage.batch_prompt_tokens, usage.completion_tokens - usage.batch_completion_tokens)
        return synchronous + price_factor * priced(usage.batch_prompt_tokens, usage.batch_completion_tokens)

    def usage_table(self) -> pd.DataFrame:
        """Calls, cache hits, failures, tokens (of them through the Batch API: ``batch_*``) and estimated cost per stage and model."""
        rows = [
            {"stage": stage, "backend": self.backend.name, "model": model, **vars(usage), "estimated_cost_usd": round(self._cost(model, usage), 6)}
            for (stage, model), usage in self.usage.items()
        ]
        columns = ["stage", "backend", "model", *(f.name for f in fields(Usage)), "estimated_cost_usd"]
        table = pd.DataFrame(rows, columns=columns)
        if len(table):
            logger.info("teacher usage:\n%s", table.to_string(index=False))
        return table


def complete_with_guard(
    teacher: CompletionClient,
    requests: Sequence[CompletionRequest],
    accept: Callable[[str], bool],
    max_attempts: int,
    stage: str,
) -> tuple[list[CompletionAnswer], pd.DataFrame]:
    """Ask again (next ``sample_index``) for every answer that ``accept`` refuses, up to ``max_attempts``.

    Returns the accepted answers (a failed or never-accepted one has ``text=None``
    and its last ``error``) and one row per attempt: request index, attempt,
    outcome (``accepted``; ``truncated``: refused and cut at ``max_tokens``, a budget
    too small rather than a bad answer; ``rejected_by_guard``; ``failed``) and error.
    """
    final: list[CompletionAnswer | None] = [None] * len(requests)
    attempts = []
    open_indices = list(range(len(requests)))
    for attempt in range(max_attempts):
        if not open_indices:
            break
        batch = [CompletionRequest(**{**vars(requests[i]), "sample_index": requests[i].sample_index + attempt}) for i in open_indices]
        answers = teacher.complete(batch, stage, desc=f"teacher {stage} (attempt {attempt + 1})")
        still_open = []
        for index, answer in zip(open_indices, answers):
            if not answer.ok:
                outcome = "failed"
                final[index] = answer
            elif accept(answer.text):
                outcome = "accepted"
                final[index] = answer
            else:
                outcome = "truncated" if answer.cut_at(requests[index].max_tokens) else "rejected_by_guard"
                final[index] = CompletionAnswer(None, error="no answer passed the output guard", cached=answer.cached)
                still_open.append(index)
            attempts.append({"request": index, "attempt": attempt, "outcome": outcome, "error": answer.error})
        open_indices = still_open
    return final, pd.DataFrame(attempts, columns=["request", "attempt", "outcome", "error"])  # type: ignore[return-value]
