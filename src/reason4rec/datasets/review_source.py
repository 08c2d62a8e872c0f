"""``ReviewSourceDataset``: where the raw reviews come from, chosen in configuration.

``source: synthetic`` generates the synthetic review world; ``amazon`` and
``yelp`` read the public dumps. Either way the pipeline receives a reader with
two passes (``scan``: one row per input line without the review text,
unreadable lines included and marked; ``texts``: the text of the lines kept),
so memory follows the rows kept rather than the file, and every later step is
the same for real and generated data.
"""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError

from reason4rec.data.readers import ReviewDump
from reason4rec.data.synthetic import GeneratedReviews

SOURCES = ("synthetic", "amazon", "yelp")


class ReviewSourceDataset(AbstractDataset[None, "ReviewDump | GeneratedReviews"]):
    """Read-only raw reviews from a dump file or the synthetic generator.

    Args:
        source: ``synthetic``, ``amazon`` or ``yelp``.
        reviews_path: the review file (``amazon``: any release, JSON lines,
            plain or gz/bz2/xz; ``yelp``: ``review.json``).
        metadata_path: optional item metadata for titles (Amazon ``meta_*``
            files, or Yelp ``business.json``).
        synthetic: generator parameters (see ``generate_review_world``).
    """

    def __init__(
        self,
        source: str = "synthetic",
        reviews_path: str | None = None,
        metadata_path: str | None = None,
        synthetic: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        if source not in SOURCES:
            raise DatasetError(f"Unknown review source {source!r}: expected one of {', '.join(SOURCES)}")
        if source != "synthetic" and not reviews_path:
            raise DatasetError(f"source={source!r} needs reviews_path (the review dump to read)")
        self._source = source
        self._reviews_path = reviews_path
        self._metadata_path = metadata_path or None
        self._synthetic = synthetic or {}
        self.metadata = metadata

    def load(self) -> ReviewDump | GeneratedReviews:
        if self._source == "synthetic":
            return GeneratedReviews(self._synthetic)
        return ReviewDump(self._source, self._reviews_path, self._metadata_path)

    def save(self, data: None) -> None:
        raise DatasetError("ReviewSourceDataset is read-only: raw reviews are never overwritten")

    def _describe(self) -> dict[str, Any]:
        return {"source": self._source, "reviews_path": self._reviews_path, "metadata_path": self._metadata_path}
