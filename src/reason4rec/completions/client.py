"""One teacher interface for ``summarize`` and ``distill_reasons``.

Many prompts in, completions with token usage out, in order. The ``CompletionClient``
wraps a backend (OpenAI-compatible HTTP, or the offline rules) with what a
long, paid job needs: a persistent cache keyed by everything that decides the
answer (so a rerun repeats no completed call), bounded concurrency, retries
with exponential backoff and jitter that honour ``Retry-After``, failures
recorded rather than raised, and token and cost accounting.
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
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd
from tqdm.auto import tqdm

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
    calls: int = 0
    cache_hits: int = 0
    failures: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class CompletionClient:
    backend: Backend
    cache: AnswerCache
    concurrency: int = 8
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    prices_per_million_tokens: dict[str, dict[str, float]] = field(default_factory=dict)
    sleep: Callable[[float], None] = time.sleep
    usage: dict[tuple[str, str], Usage] = field(default_factory=lambda: defaultdict(Usage))

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
        """Answers in request order. Cached answers cost nothing; the rest run
        ``concurrency`` at a time and are cached as each arrives. A request that
        still fails after its retries comes back with ``error`` set."""
        usage = self.usage[(stage, self.backend.model)]
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
        progress = tqdm(total=len(requests), initial=len(requests) - len(pending), desc=desc or f"teacher {stage}", unit="call")
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
                progress.set_postfix(failed=usage.failures, cost=f"${self.cost(stage):.4f}")
        progress.close()
        if usage.failures:
            failed = [a for a in answers if a is not None and not a.ok]
            logger.warning("teacher %s: %d of %d requests failed after retries (first error: %s)", stage, len(failed), len(requests), failed[0].error if failed else "")
        return answers  # type: ignore[return-value]

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
        price = self.prices_per_million_tokens.get(model, {})
        return (usage.prompt_tokens * price.get("prompt", 0.0) + usage.completion_tokens * price.get("completion", 0.0)) / 1e6

    def usage_table(self) -> pd.DataFrame:
        """Calls, cache hits, failures, tokens and estimated cost per stage and model."""
        rows = [
            {"stage": stage, "backend": self.backend.name, "model": model, **vars(usage), "estimated_cost_usd": round(self._cost(model, usage), 6)}
            for (stage, model), usage in self.usage.items()
        ]
        columns = ["stage", "backend", "model", "calls", "cache_hits", "failures", "retries", "prompt_tokens", "completion_tokens", "estimated_cost_usd"]
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
