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


def clean_reviews(scanned: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep well-formed reviews; reject the rest with a reason.

    Works on the scan of a dump (ids, rating, timestamp, ``review_blank``; no
    text), so it costs the same whatever the reviews' length. Reasons, in the
    order they are checked: the reader's own (``invalid_utf8``,
    ``malformed_line``), ``missing_user_id``, ``missing_item_id``,
    ``invalid_rating`` (not a number in [1, 5]), ``invalid_timestamp``,
    ``empty_review``, then ``duplicate_review`` for every later review of a
    (user, item) pair already reviewed.
    """
    reason = scanned["reject_reason"].astype("object").where(scanned["reject_reason"].notna(), None)

    def flag(mask: pd.Series, name: str) -> None:
        nonlocal reason
        reason = reason.where(~(mask & reason.isna()), name)

    rating = pd.to_numeric(scanned["rating"], errors="coerce")
    timestamp = pd.to_numeric(scanned["timestamp"], errors="coerce")
    flag(_blank(scanned["user_id"]), "missing_user_id")
    flag(_blank(scanned["item_id"]), "missing_item_id")
    flag(~rating.between(1, 5), "invalid_rating")
    flag(timestamp.isna() | (timestamp < 0), "invalid_timestamp")
    flag(scanned["review_blank"].astype(bool), "empty_review")

    valid = reason.isna().to_numpy()
    extra = [c for c in scanned.columns if c.startswith("true_")]
    candidates = scanned.loc[valid, ["user_id", "item_id", *extra, "source_file", "line_number"]].assign(
        rating=rating[valid].astype(float), timestamp=timestamp[valid].astype("int64")
    )
    candidates = candidates.assign(user_id=candidates["user_id"].astype(str), item_id=candidates["item_id"].astype(str))
    ordered = candidates.sort_values(["timestamp", "line_number"], kind="stable")
    duplicate = ordered.duplicated(["user_id", "item_id"], keep="first")
    rejects = pd.concat(
        [
            make_rejects(scanned[~valid], "clean", reason[~valid], scanned["reject_detail"][~valid].fillna("").astype(str)),
            make_rejects(ordered[duplicate], "clean", "duplicate_review", "a (user, item) pair reviewed again; the earliest review is kept"),
        ],
        ignore_index=True,
    )
    kept = ordered[~duplicate]
    columns = ["user_id", "item_id", "rating", "timestamp", *extra, "source_file", "line_number"]
    return kept[columns].sort_values(["timestamp", "user_id", "item_id"], kind="stable").reset_index(drop=True), rejects


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype(str).str.strip() == "")


def attach_review_text(interactions: pd.DataFrame, texts: pd.DataFrame) -> pd.DataFrame:
    """The kept interactions with their review text and title, in the published column order.

    ``texts`` holds ``review`` (stripped) and ``title`` row for row, read from the
    dump for the kept lines only. A missing title gets the placeholder ``Item <id>``;
    a missing review means the file changed since it was scanned, which is an error.
    """
    if len(texts) != len(interactions) or texts["review"].isna().any():
        missing = int(texts["review"].isna().sum())
        raise ValueError(f"{missing} kept reviews were not found on the second read of the review file: did it change during the run?")
    review = texts["review"].astype("str")
    title = texts["title"].astype("str").str.strip()
    placeholder = title.isna() | (title == "")
    if placeholder.any():
        logger.warning("%d of %d kept reviews have no item title: using the placeholder 'Item <id>'", placeholder.sum(), len(interactions))
    title = title.where(~placeholder, "Item " + interactions["item_id"].astype(str).reset_index(drop=True))
    kept = interactions.reset_index(drop=True).assign(review=review, title=title)
    extra = [c for c in interactions.columns if c.startswith("true_")]
    return kept[INTERACTION_COLUMNS + extra + ["source_file", "line_number"]]  # already in time order: no sort (and no copy of the text)


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
    Counting runs on integer codes, so a round costs two ``bincount``s.
    """
    users, _ = pd.factorize(interactions["user_id"])
    items, _ = pd.factorize(interactions["item_id"])
    keep = np.ones(len(interactions), dtype=bool)
    rounds = 0
    while True:
        rounds += 1
        user_counts = np.bincount(users[keep], minlength=users.max(initial=-1) + 1)
        item_counts = np.bincount(items[keep], minlength=items.max(initial=-1) + 1)
        weak = keep & ((user_counts[users] < k) | (item_counts[items] < k))
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
    in_order = interactions["timestamp"].is_monotonic_increasing  # the ingest's tables are: no copy of the text to sort
    ordered = interactions.reset_index(drop=True) if in_order else interactions.sort_values("timestamp", kind="stable").reset_index(drop=True)
    times = ordered["timestamp"].to_numpy()
    n = len(ordered)
    n_train = int(round(n * (1 - valid_fraction - test_fraction)))
    n_train_valid = int(round(n * (1 - test_fraction)))
    train_cut = times[max(n_train - 1, 0)]
    valid_cut = times[max(n_train_valid - 1, 0)]
    # In time order each split is a contiguous run of rows: slices, not copies of the text.
    train = ordered.iloc[: np.searchsorted(times, train_cut, side="right")]
    valid = ordered.iloc[len(train) : np.searchsorted(times, valid_cut, side="right")]
    test = ordered.iloc[len(train) + len(valid) :]

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
    columns = ["user_id", "item_id", "rating", "timestamp"]
    parts = {"train": train, "valid": valid, "test": test, "all": pd.concat([part[columns] for part in (train, valid, test)])}
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
