"""History windows: for each target interaction, the user's and the item's earlier interactions.

Every prompt in the method needs, for a target (user, item, time), the user's
last ``n`` and the item's last ``n`` interactions strictly earlier in time, in
chronological order, and the mean rating over all earlier ones. The published
scripts filter the whole table once per target (O(N^2)); here one sort and one
``searchsorted`` per side find every window at once (O(N log N)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

HISTORY_COLUMNS = [
    "user_history",
    "item_history",
    "user_history_count",
    "item_history_count",
    "user_mean_rating",
    "item_mean_rating",
]


def history_windows(targets: pd.DataFrame, pool: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """Return, aligned with ``targets``' rows, the history of each target in ``pool``.

    ``user_history`` / ``item_history`` are lists of row positions in ``pool``
    (at most ``n``, oldest first) of the user's / item's interactions with a
    timestamp strictly earlier than the target's; the counts and mean ratings
    are over *all* earlier interactions (NaN mean when there are none).
    """
    user_positions, user_counts, user_means = _side_windows(targets, pool, "user_id", n)
    item_positions, item_counts, item_means = _side_windows(targets, pool, "item_id", n)
    return pd.DataFrame(
        {
            "user_history": user_positions,
            "item_history": item_positions,
            "user_history_count": user_counts,
            "item_history_count": item_counts,
            "user_mean_rating": user_means,
            "item_mean_rating": item_means,
        },
        index=targets.index,
    )


def _side_windows(
    targets: pd.DataFrame, pool: pd.DataFrame, key: str, n: int
) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
    codes, uniques = pd.factorize(pool[key], sort=False)
    target_codes = pd.Index(uniques).get_indexer(targets[key])
    pool_times = pool["timestamp"].to_numpy(np.int64)
    all_times = np.concatenate([pool_times, targets["timestamp"].to_numpy(np.int64)])
    t_min = int(all_times.min()) if len(all_times) else 0
    span = int(all_times.max()) - t_min + 1 if len(all_times) else 1

    # One sortable int64 key per row: (entity code, time). Entity codes fit in
    # the high part as long as n_entities * time span < 2**63.
    order = np.lexsort((np.arange(len(pool)), pool_times, codes))
    pool_keys = codes[order].astype(np.int64) * span + (pool_times[order] - t_min)
    entity_start = np.searchsorted(codes[order], np.arange(len(uniques)), side="left")

    known = target_codes >= 0
    safe_codes = np.where(known, target_codes, 0)
    target_keys = safe_codes.astype(np.int64) * span + (targets["timestamp"].to_numpy(np.int64) - t_min)
    end = np.searchsorted(pool_keys, target_keys, side="left")
    start = np.where(known, entity_start[safe_codes] if len(uniques) else 0, end)
    counts = end - start

    ratings = pool["rating"].to_numpy(float)[order]
    cumulative = np.concatenate([[0.0], np.cumsum(ratings)])
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, (cumulative[end] - cumulative[start]) / counts, np.nan)

    window_start = np.maximum(start, end - n)
    positions = [order[a:b].tolist() for a, b in zip(window_start, end)]
    return positions, counts, means


def naive_history_windows(targets: pd.DataFrame, pool: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The published scripts' way: filter the whole pool once per target (O(N^2)).

    Kept as the reference that tests and ``bench/history_windows.py`` compare against.
    """
    rows = []
    for _, target in targets.iterrows():
        row = {}
        for side, key in (("user", "user_id"), ("item", "item_id")):
            earlier = pool[(pool[key] == target[key]) & (pool["timestamp"] < target["timestamp"])]
            earlier = earlier.sort_values("timestamp", kind="stable")
            row[f"{side}_history"] = [pool.index.get_loc(i) for i in earlier.index[-n:]]
            row[f"{side}_history_count"] = len(earlier)
            row[f"{side}_mean_rating"] = earlier["rating"].mean() if len(earlier) else np.nan
        rows.append(row)
    return pd.DataFrame(rows, index=targets.index)[HISTORY_COLUMNS]
