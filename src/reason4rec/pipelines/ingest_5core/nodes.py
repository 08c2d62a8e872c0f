"""Nodes of ``ingest_5core``: thin wrappers over :mod:`reason4rec.data.filtering`."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from reason4rec.data.filtering import (
    INTERACTION_COLUMNS,
    dataset_statistics,
    filter_k_core,
    keep_time_window,
    split_chronologically,
)

logger = logging.getLogger(__name__)


def window_and_k_core(interactions: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The optional time window first (the paper keeps the last months of Books
    and Yelp), then the k-core on what is left."""
    windowed, window_rejects = keep_time_window(interactions, params.get("time_window_days"))
    core, core_rejects = filter_k_core(windowed, params["k_core"])
    return core, pd.concat([window_rejects, core_rejects], ignore_index=True)


def split(
    interactions: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Chronological split, without provenance columns; returns the splits, their statistics and the rejects."""
    train, valid, test, rejects = split_chronologically(interactions, params["valid_fraction"], params["test_fraction"])
    columns = INTERACTION_COLUMNS + [c for c in interactions.columns if c.startswith("true_")]
    train, valid, test = (part[columns] for part in (train, valid, test))
    return train, valid, test, dataset_statistics(train, valid, test), rejects


def collect_rejects(*rejects: pd.DataFrame) -> pd.DataFrame:
    """All dropped rows with their stage and reason; the counts go to the log."""
    combined = pd.concat(rejects, ignore_index=True)
    if len(combined):
        counts = combined.groupby(["stage", "reason"]).size()
        logger.warning("ingest rejected %d rows:\n%s", len(combined), counts.to_string())
    else:
        logger.info("ingest rejected no rows")
    return combined
