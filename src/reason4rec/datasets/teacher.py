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

from reason4rec.completions.client import CompletionClient
from reason4rec.parameters import TeacherConfig
from reason4rec.teacher import teacher_client


class TeacherDataset(AbstractDataset[None, CompletionClient]):
    """Loads a ready :class:`CompletionClient` (backend, answer cache, retries, prices).

    Args:
        config: ``backend`` (``rules`` | ``openai``), ``model``, ``base_url``,
            ``concurrency``, ``timeout_s``, ``max_retries``, ``backoff_base_s``,
            ``backoff_max_s``, ``cache_path``, ``prices_per_million_tokens``, ``mode``
            (``sync`` | ``batch``: the OpenAI Batch API) and ``batch`` (its settings).
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
        return teacher_client(self._config, self._api_key)

    def save(self, data: CompletionClient) -> None:
        raise DatasetError("the teacher is read-only")

    def _describe(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self._config).items() if k != "prices_per_million_tokens"}
