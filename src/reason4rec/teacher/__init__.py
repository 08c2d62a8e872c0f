"""The teacher: the offline rules teacher (``rules``) or an OpenAI-compatible model, asked
through :mod:`reason4rec.completions`. :func:`teacher_client` builds one from a ``teacher:``
block; Kedro's ``teacher`` catalog entry and :class:`~reason4rec.recommender.Recommender` both use it."""

from __future__ import annotations

from dataclasses import replace

from reason4rec.completions.cache import AnswerCache
from reason4rec.completions.client import CompletionClient, RetryPolicy
from reason4rec.completions.openai_backend import OpenAIBackend
from reason4rec.parameters import TeacherConfig
from reason4rec.teacher.rules import RulesBackend


def teacher_client(config: TeacherConfig, api_key: str | None) -> CompletionClient:
    """A ready client (backend, answer cache, retries, prices, Batch API in batch mode) for ``config``; ``api_key`` for ``openai``."""
    if config.backend == "rules":
        backend = RulesBackend(config.model or "rules-v1")
    else:
        backend = OpenAIBackend(config.model, api_key, config.base_url, config.timeout_s)
    return CompletionClient(
        backend=backend,
        cache=AnswerCache(config.cache_path),
        concurrency=config.concurrency,
        retry=RetryPolicy(config.max_retries, config.backoff_base_s, config.backoff_max_s),
        prices_per_million_tokens=config.prices_per_million_tokens or {},
        batches=backend.batches(replace(config.batch, manifest_path=config.batch_manifest_path())) if config.mode == "batch" else None,
    )
