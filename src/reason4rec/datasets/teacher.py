"""``TeacherDataset``: the teacher as a catalog entry, so its key arrives as Kedro credentials.

The API key comes from ``credentials`` (``conf/local/credentials.yml``, or the
``OPENAI_API_KEY`` environment variable through ``conf/base/credentials.yml``)
and never from parameters. ``_describe`` (what Kedro logs and kedro-viz shows)
leaves it out.
"""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError

from reason4rec.teacher.cache import AnswerCache
from reason4rec.teacher.core import RetryPolicy, Teacher
from reason4rec.teacher.openai_backend import OpenAIBackend
from reason4rec.teacher.rules import RulesBackend

BACKENDS = ("rules", "openai")


class TeacherDataset(AbstractDataset[None, Teacher]):
    """Loads a ready :class:`Teacher` (backend, answer cache, retries, prices).

    Args:
        config: ``backend`` (``rules`` | ``openai``), ``model``, ``base_url``,
            ``concurrency``, ``timeout_s``, ``max_retries``, ``backoff_base_s``,
            ``backoff_max_s``, ``cache_path``, ``prices_per_million_tokens``.
        credentials: ``{"api_key": ...}`` for ``openai``.
    """

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None):
        if config.get("backend") not in BACKENDS:
            raise DatasetError(f"teacher.backend must be one of {', '.join(BACKENDS)}, got {config.get('backend')!r}")
        self._config = dict(config)
        self._api_key = (credentials or {}).get("api_key")
        self.metadata = metadata

    def load(self) -> Teacher:
        config = self._config
        if config["backend"] == "rules":
            backend = RulesBackend(config.get("model") or "rules-v1")
        else:
            backend = OpenAIBackend(config["model"], self._api_key, config.get("base_url"), config.get("timeout_s", 60.0))
        return Teacher(
            backend=backend,
            cache=AnswerCache(config.get("cache_path")),
            concurrency=config.get("concurrency", 8),
            retry=RetryPolicy(config.get("max_retries", 6), config.get("backoff_base_s", 1.0), config.get("backoff_max_s", 60.0)),
            prices_per_million_tokens=config.get("prices_per_million_tokens") or {},
        )

    def save(self, data: Teacher) -> None:
        raise DatasetError("the teacher is read-only")

    def _describe(self) -> dict[str, Any]:
        return {k: v for k, v in self._config.items() if k != "prices_per_million_tokens"}
