"""History windows: vectorized (one sort + searchsorted) vs the published per-row filter.

    python bench/history_windows.py            # naive timed on 1,000 targets, scaled to all rows
    python bench/history_windows.py --full     # naive timed on every row (minutes at 50k)

Both run on the same table (targets = pool = every interaction, n = 10) and
the vectorized result is checked against the naive one on the timed targets.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from reason4rec.data.history import history_windows, naive_history_windows


def interactions(n_rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_users, n_items = max(n_rows // 8, 1), max(n_rows // 12, 1)
    return pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in rng.integers(0, n_users, n_rows)],
            "item_id": [f"i{i}" for i in rng.zipf(1.3, n_rows) % n_items],
            "timestamp": np.sort(rng.integers(1_400_000_000, 1_500_000_000, n_rows)),
            "rating": rng.integers(1, 6, n_rows).astype(float),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--full", action="store_true", help="time the naive filter on every row")
    parser.add_argument("--naive-sample", type=int, default=1000)
    args = parser.parse_args()
    print(f"{'rows':>8} {'vectorized_s':>13} {'naive_s':>10} {'naive_timed_on':>15} {'speedup':>9}")
    for n_rows in args.sizes:
        pool = interactions(n_rows)
        start = time.perf_counter()
        fast = history_windows(pool, pool, n=10)
        fast_seconds = time.perf_counter() - start

        targets = pool if args.full else pool.sample(min(args.naive_sample, n_rows), random_state=0)
        start = time.perf_counter()
        slow = naive_history_windows(targets, pool, n=10)
        naive_seconds = (time.perf_counter() - start) * n_rows / len(targets)
        assert fast.loc[targets.index, "user_history"].tolist() == slow["user_history"].tolist()
        assert fast.loc[targets.index, "item_history"].tolist() == slow["item_history"].tolist()
        timed_on = "all rows" if args.full else f"{len(targets)} (scaled)"
        print(f"{n_rows:>8} {fast_seconds:>13.3f} {naive_seconds:>10.1f} {timed_on:>15} {naive_seconds / fast_seconds:>8.0f}x")


if __name__ == "__main__":
    main()
