"""``TeacherDataset``: the teacher as a catalog entry, so its key arrives as Kedro credentials.

The API key comes from ``credentials`` (``conf/local/credentials.yml``, or the
``OPENAI_API_KEY`` environment variable through ``conf/base/credentials.yml``)
and never from parameters. ``_describe`` (what Kedro logs and kedro-viz shows)
leaves it out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from reason4rec.teacher.cache import AnswerCache
from reason4rec.teacher.core import RetryPolicy, Teacher
from reason4rec.teacher.openai_backend import OpenAIBackend
from reason4rec.teacher.rules import RulesBackend
from reason4rec.typed_config import typed_block

BACKENDS = ("rules", "openai")


@dataclass(frozen=True)
class TeacherConfig:
    """The ``teacher:`` block of ``globals.yml``; an unknown key is refused, not ignored."""

    backend: str = "rules"
    model: str | None = None
    base_url: str | None = None
    concurrency: int = 8
    timeout_s: float = 60.0
    max_retries: int = 6
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    cache_path: str | None = None
    prices_per_million_tokens: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> TeacherConfig:
        try:
            typed = typed_block(cls, config, "teacher")
        except ValueError as error:
            raise DatasetError(str(error)) from error
        if typed.backend not in BACKENDS:
            raise DatasetError(f"teacher.backend must be one of {', '.join(BACKENDS)}, got {typed.backend!r}")
        if typed.backend == "openai" and not typed.model:
            raise DatasetError("teacher.model is required for the openai backend")
        return typed


class TeacherDataset(AbstractDataset[None, Teacher]):
    """Loads a ready :class:`Teacher` (backend, answer cache, retries, prices).

    Args:
        config: ``backend`` (``rules`` | ``openai``), ``model``, ``base_url``,
            ``concurrency``, ``timeout_s``, ``max_retries``, ``backoff_base_s``,
            ``backoff_max_s``, ``cache_path``, ``prices_per_million_tokens``.
        credentials: ``{"api_key": ...}`` for ``openai``.
    """

    def __init__(self, config: dict[str, Any], credentials: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None):
        self._config = TeacherConfig.from_dict(dict(config))
        self._api_key = (credentials or {}).get("api_key")
        self.metadata = metadata

    def load(self) -> Teacher:
        config = self._config
        if config.backend == "rules":
            backend = RulesBackend(config.model or "rules-v1")
        else:
            backend = OpenAIBackend(config.model, self._api_key, config.base_url, config.timeout_s)
        return Teacher(
            backend=backend,
            cache=AnswerCache(config.cache_path),
            concurrency=config.concurrency,
            retry=RetryPolicy(config.max_retries, config.backoff_base_s, config.backoff_max_s),
            prices_per_million_tokens=config.prices_per_million_tokens or {},
        )

    def save(self, data: Teacher) -> None:
        raise DatasetError("the teacher is read-only")

    def _describe(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self._config).items() if k != "prices_per_million_tokens"}
