"""``TeacherDataset``: the teacher as a catalog entry, so its key arrives as Kedro credentials.

The API key comes from ``credentials`` (``conf/local/credentials.yml``, or the
``OPENAI_API_KEY`` environment variable through ``conf/base/credentials.yml``)
and never from parameters. ``_describe`` (what Kedro logs and kedro-viz shows)
leaves it out.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from reason4rec.completions.cache import AnswerCache
from reason4rec.completions.client import CompletionClient, RetryPolicy
from reason4rec.completions.openai_backend import OpenAIBackend
from reason4rec.teacher.rules import RulesBackend
from reason4rec.parameters import TeacherConfig

class TeacherDataset(AbstractDataset[None, CompletionClient]):
    """Loads a ready :class:`CompletionClient` (backend, answer cache, retries, prices).

    Args:
        config: ``backend`` (``rules`` | ``openai``), ``model``, ``base_url``,
            ``concurrency``, ``timeout_s``, ``max_retries``, ``backoff_base_s``,
            ``backoff_max_s``, ``cache_path``, ``prices_per_million_tokens``.
        credentials: ``{"api_key": ...}`` for ``openai``.
    """

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None):
        try:
            self._config = TeacherConfig.from_dict(dict(config))
        except ValueError as error:
            raise DatasetError(str(error)) from error
        self._api_key = (credentials or {}).get("api_key")
        self.metadata = metadata

    def load(self) -> CompletionClient:
        config = self._config
        if config.backend == "rules":
            backend = RulesBackend(config.model or "rules-v1")
        else:
            backend = OpenAIBackend(config.model, self._api_key, config.base_url, config.timeout_s)
        return CompletionClient(
            backend=backend,
            cache=AnswerCache(config.cache_path),
            concurrency=config.concurrency,
            retry=RetryPolicy(config.max_retries, config.backoff_base_s, config.backoff_max_s),
            prices_per_million_tokens=config.prices_per_million_tokens or {},
        )

    def save(self, data: CompletionClient) -> None:
        raise DatasetError("the teacher is read-only")

    def _describe(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self._config).items() if k != "prices_per_million_tokens"}
