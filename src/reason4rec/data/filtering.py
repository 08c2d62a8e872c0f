"""Cleaning, time window, k-core and chronological split of interaction tables.

Each step returns ``(kept, rejects)``: nothing is dropped without a row in
``rejects`` saying which input row it was and why.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

INTERACTION_COLUMNS = ["user_id", "item_id", "rating", "review", "title", "timestamp"]
REJECT_COLUMNS = ["stage", "reason", "source_file", "line_number", "user_id", "item_id", "detail"]


def make_rejects(rows: pd.DataFrame, stage: str, reason: str | pd.Series, detail: str | pd.Series = "") -> pd.DataFrame:
    """Build reject rows in the common schema from the rows being dropped."""
    rejects = pd.DataFrame(
        {
            "stage": stage,
            "reason": reason,
            "source_file": rows.get("source_file", pd.Series("", index=rows.index)),
            "line_number": rows.get("line_number", pd.Series(-1, index=rows.index)),
            "user_id": rows.get("user_id"),
            "item_id": rows.get("item_id"),
            "detail": detail,
        },
        index=rows.index,
    )
    return rejects[REJECT_COLUMNS].astype(
        {"stage": str, "reason": str, "source_file": str, "line_number": "int64", "user_id": "string", "item_id": "string", "detail": str}
    ).reset_index(drop=True)


def clean_reviews(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep well-formed reviews; reject the rest with a reason.

    Reasons, in the order they are checked: the reader's own (``invalid_utf8``,
    ``malformed_line``), ``missing_user_id``, ``missing_item_id``,
    ``invalid_rating`` (not a number in [1, 5]), ``invalid_timestamp``,
    ``empty_review``, then ``duplicate_review`` for every later review of a
    (user, item) pair already reviewed. Missing titles get a placeholder.
    """
    frame = raw.copy()
    reason = frame["reject_reason"].astype("object").where(frame["reject_reason"].notna(), None)
    detail = frame["reject_detail"].fillna("").astype(str)

    def flag(mask: pd.Series, name: str) -> None:
        nonlocal reason
        reason = reason.where(~(mask & reason.isna()), name)

    rating = pd.to_numeric(frame["rating"], errors="coerce")
    timestamp = pd.to_numeric(frame["timestamp"], errors="coerce")
    review = frame["review"].where(frame["review"].map(lambda v: isinstance(v, str)), "")
    flag(_blank(frame["user_id"]), "missing_user_id")
    flag(_blank(frame["item_id"]), "missing_item_id")
    flag(~rating.between(1, 5), "invalid_rating")
    flag(timestamp.isna() | (timestamp < 0), "invalid_timestamp")
    flag(review.str.strip() == "", "empty_review")

    valid = reason.isna()
    candidates = frame[valid].assign(
        rating=rating[valid].astype(float), timestamp=timestamp[valid].astype("int64"), review=review[valid].str.strip()
    )
    candidates = candidates.assign(user_id=candidates["user_id"].astype(str), item_id=candidates["item_id"].astype(str))
    ordered = candidates.sort_values(["timestamp", "line_number"], kind="stable")
    duplicate = ordered.duplicated(["user_id", "item_id"], keep="first")
    kept = ordered[~duplicate]

    placeholder = kept["title"].isna() | (kept["title"].astype(str).str.strip() == "")
    if placeholder.any():
        logger.warning("%d of %d kept reviews have no item title: using the placeholder 'Item <id>'", placeholder.sum(), len(kept))
    kept = kept.assign(title=kept["title"].where(~placeholder, "Item " + kept["item_id"]))

    rejects = pd.concat(
        [
            make_rejects(frame[~valid], "clean", reason[~valid], detail[~valid]),
            make_rejects(ordered[duplicate], "clean", "duplicate_review", "a (user, item) pair reviewed again; the earliest review is kept"),
        ],
        ignore_index=True,
    )
    extra = [c for c in kept.columns if c.startswith("true_")]
    return _interactions(kept, extra), rejects


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype(str).str.strip() == "")


def _interactions(frame: pd.DataFrame, extra: list[str] | None = None) -> pd.DataFrame:
    """Columns in the published order, sorted by time, provenance kept for rejects."""
    columns = INTERACTION_COLUMNS + (extra or []) + ["source_file", "line_number"]
    return frame[columns].sort_values(["timestamp", "user_id", "item_id"], kind="stable").reset_index(drop=True)


def keep_time_window(interactions: pd.DataFrame, window_days: float | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep the last ``window_days`` before the latest interaction (None keeps all)."""
    if not window_days:
        return interactions, make_rejects(interactions.iloc[:0], "time_window", "outside_time_window")
    start = interactions["timestamp"].max() - int(window_days * 86400)
    inside = interactions["timestamp"] > start
    return (
        interactions[inside].reset_index(drop=True),
        make_rejects(interactions[~inside], "time_window", "outside_time_window", f"older than the last {window_days} days"),
    )


def filter_k_core(interactions: pd.DataFrame, k: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Iteratively drop users and items with fewer than ``k`` interactions, to a fixed point.

    The result is the largest subset in which every user and item has at least
    ``k`` interactions (the k-core is unique, and this peeling reaches it).
    """
    keep = np.ones(len(interactions), dtype=bool)
    users, items = interactions["user_id"].to_numpy(), interactions["item_id"].to_numpy()
    rounds = 0
    while True:
        rounds += 1
        user_counts = pd.Series(users[keep]).value_counts()
        item_counts = pd.Series(items[keep]).value_counts()
        weak = keep & (
            (pd.Series(users).map(user_counts).fillna(0).to_numpy() < k)
            | (pd.Series(items).map(item_counts).fillna(0).to_numpy() < k)
        )
        if not weak.any():
            break
        keep &= ~weak
    logger.info("%d-core: kept %d of %d interactions after %d rounds", k, keep.sum(), len(keep), rounds)
    return (
        interactions[keep].reset_index(drop=True),
        make_rejects(interactions[~keep], "k_core", "below_k_core", f"user or item with fewer than {k} interactions"),
    )


def split_chronologically(
    interactions: pd.DataFrame, valid_fraction: float, test_fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split by time so that every valid row is later than every train row and every
    test row later than every train and valid row; then drop valid and test rows whose
    user or item is absent from train (no cold start).

    Rows sharing the timestamp at a cut go to the earlier split, so the
    fractions are met as closely as strict time order allows.
    """
    if not (0 <= valid_fraction < 1 and 0 < test_fraction < 1 and valid_fraction + test_fraction < 1):
        raise ValueError(f"split fractions must be in [0, 1) and sum below 1, got valid={valid_fraction}, test={test_fraction}")
    ordered = interactions.sort_values("timestamp", kind="stable").reset_index(drop=True)
    times = ordered["timestamp"].to_numpy()
    n = len(ordered)
    n_train = int(round(n * (1 - valid_fraction - test_fraction)))
    n_train_valid = int(round(n * (1 - test_fraction)))
    train_cut = times[max(n_train - 1, 0)]
    valid_cut = times[max(n_train_valid - 1, 0)]
    train = ordered[times <= train_cut]
    valid = ordered[(times > train_cut) & (times <= valid_cut)]
    test = ordered[times > valid_cut]

    known_users, known_items = set(train["user_id"]), set(train["item_id"])
    rejects = []
    kept = []
    for name, part in (("valid", valid), ("test", test)):
        warm = part["user_id"].isin(known_users) & part["item_id"].isin(known_items)
        kept.append(part[warm].reset_index(drop=True))
        rejects.append(make_rejects(part[~warm], "split", "cold_start", f"{name} row whose user or item is not in train"))
    return train.reset_index(drop=True), kept[0], kept[1], pd.concat(rejects, ignore_index=True)


def dataset_statistics(train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """Rows, users and items per split and overall (the paper's Table 1)."""
    parts = {"train": train, "valid": valid, "test": test, "all": pd.concat([train, valid, test])}
    return pd.DataFrame(
        [
            {
                "split": name,
                "rows": len(part),
                "users": part["user_id"].nunique(),
                "items": part["item_id"].nunique(),
                "mean_rating": round(float(part["rating"].mean()), 4) if len(part) else float("nan"),
                "first_timestamp": int(part["timestamp"].min()) if len(part) else -1,
                "last_timestamp": int(part["timestamp"].max()) if len(part) else -1,
            }
            for name, part in parts.items()
        ]
    )
