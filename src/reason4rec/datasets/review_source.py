"""``ReviewSourceDataset``: where the raw reviews come from, chosen in configuration.

``source: synthetic`` generates the synthetic review world; ``amazon`` and
``yelp`` read the public dumps. Either way the pipeline receives one table in
the raw schema of :mod:`reason4rec.data.readers`, unreadable lines included and
marked, so every later step is the same for real and generated data.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from reason4rec.data.readers import RAW_COLUMNS, read_amazon_reviews, read_titles, read_yelp_reviews
from reason4rec.data.synthetic import generate_review_world

SOURCES = ("synthetic", "amazon", "yelp")


class ReviewSourceDataset(AbstractDataset[None, pd.DataFrame]):
    """Read-only raw reviews from a dump file or the synthetic generator.

    Args:
        source: ``synthetic``, ``amazon`` or ``yelp``.
        reviews_path: the review file (``amazon``: any release, JSON lines,
            optionally gzipped; ``yelp``: ``review.json``).
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

    def load(self) -> pd.DataFrame:
        if self._source == "synthetic":
            world = generate_review_world(self._synthetic)
            world["source_file"] = "synthetic"
            world["line_number"] = range(1, len(world) + 1)
            world["reject_reason"] = None
            world["reject_detail"] = ""
            return world
        reader = read_amazon_reviews if self._source == "amazon" else read_yelp_reviews
        reviews = reader(self._reviews_path)
        if self._metadata_path:
            id_keys, title_key = (("business_id",), "name") if self._source == "yelp" else (("parent_asin", "asin"), "title")
            titles = read_titles(self._metadata_path, id_keys, title_key)
            reviews["title"] = reviews["item_id"].map(titles)
        else:
            reviews["title"] = None
        return reviews[RAW_COLUMNS]

    def save(self, data: None) -> None:
        raise DatasetError("ReviewSourceDataset is read-only: raw reviews are never overwritten")

    def _describe(self) -> dict[str, Any]:
        return {"source": self._source, "reviews_path": self._reviews_path, "metadata_path": self._metadata_path}
