"""Completions from an OpenAI-compatible server, or any backend, that never pay twice.

The client (bounded concurrency, retries that honour ``Retry-After``, token and
cost accounting) and its crash-safe answer cache, below both their users: the
teacher (``reason4rec.datasets.teacher``) and the experts served by vLLM
(``reason4rec.llm.served``).
"""

from reason4rec.completions.client import CompletionAnswer, CompletionClient, CompletionRequest, complete_with_guard

__all__ = ["CompletionAnswer", "CompletionClient", "CompletionRequest", "complete_with_guard"]
