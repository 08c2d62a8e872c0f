import numpy as np
import pandas as pd
import pytest

from reason4rec.data.history import history_windows, naive_history_windows


def random_pool(seed, n=400):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in rng.integers(0, 25, n)],
            "item_id": [f"i{i}" for i in rng.integers(0, 20, n)],
            "timestamp": rng.integers(0, 60, n),  # many ties
            "rating": rng.integers(1, 6, n).astype(float),
        }
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_naive_per_row_filter(seed):
    pool = random_pool(seed)
    targets = pd.concat([pool.sample(150, random_state=seed), pd.DataFrame({"user_id": ["new"], "item_id": ["i1"], "timestamp": [30], "rating": [3.0]})])
    fast = history_windows(targets, pool, n=10)
    slow = naive_history_windows(targets, pool, n=10)
    for column in ["user_history", "item_history"]:
        assert fast[column].tolist() == slow[column].tolist()
    for column in ["user_history_count", "item_history_count"]:
        assert fast[column].tolist() == slow[column].tolist()
    for column in ["user_mean_rating", "item_mean_rating"]:
        np.testing.assert_allclose(fast[column].to_numpy(float), slow[column].to_numpy(float))


def test_windows_hold_only_strictly_earlier_rows_in_time_order():
    pool = random_pool(9)
    windows = history_windows(pool, pool, n=10)
    times = pool["timestamp"].to_numpy()
    for position, row in enumerate(windows.itertuples()):
        for side, key in (("user_history", "user_id"), ("item_history", "item_id")):
            history = getattr(row, side)
            assert position not in history and len(history) <= 10
            assert all(times[h] < times[position] for h in history)
            assert list(times[history]) == sorted(times[history])
            assert (pool.iloc[history][key] == pool.iloc[position][key]).all()
