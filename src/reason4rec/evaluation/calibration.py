"""Is the predictor's distribution over the ratings 1..5 calibrated? Expected against observed rating, and interval coverage.

Bins are fixed, not equal-count, so that two runs (or two models) are read on
the same scale: [1, 2), [2, 3), [3, 3.5), [3.5, 4), [4, 4.5), [4.5, 5], finer
where the ratings of review data crowd. Empty bins are left out.

The central 80% interval of a distribution over 1..5 runs from the smallest
rating whose cumulative probability reaches 0.1 to the smallest whose
cumulative probability reaches 0.9. Being discrete, it holds at least 80% of
its own distribution's mass, usually more: a calibrated predictor's coverage
matches that mass (``expected_coverage``), which is the figure to read the
observed coverage against, beside the nominal 80%.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

BIN_EDGES = [1.0, 2.0, 3.0, 3.5, 4.0, 4.5, 5.0]
INTERVAL_MASS = 0.8
RATINGS = np.arange(1, 6)
# Cumulative sums such as 0.7 + 0.2 fall a rounding error short of 0.9.
ROUNDING = 1e-9


def rating_distributions(test_predictions: pd.DataFrame) -> np.ndarray:
    """The ``distribution`` column as a (rows, 5) array, each row normalised to sum 1."""
    rows = [np.asarray(d, dtype=float) for d in test_predictions["distribution"]]
    bad = next((i for i, d in enumerate(rows) if d.shape != RATINGS.shape or (d < 0).any() or d.sum() <= 0), None)
    if bad is not None:
        row = test_predictions.iloc[bad]
        raise ValueError(f"test_predictions: the distribution of {row['user_id']} / {row['item_id']} is {rows[bad]}, not 5 probabilities of the ratings 1..5")
    distributions = np.array(rows).reshape(-1, len(RATINGS))
    return distributions / distributions.sum(axis=1, keepdims=True)


def true_ratings(test_predictions: pd.DataFrame) -> np.ndarray:
    """The true ratings as integers 1..5; a rating off that scale has no probability to read."""
    ratings = test_predictions["rating"].to_numpy(dtype=float)
    off_scale = ~np.isin(ratings, RATINGS)
    if off_scale.any():
        row = test_predictions.iloc[int(np.argmax(off_scale))]
        raise ValueError(f"test_predictions: rating {row['rating']} of {row['user_id']} / {row['item_id']} is not one of 1..5")
    return ratings.astype(int)


def central_intervals(distributions: np.ndarray, mass: float = INTERVAL_MASS) -> tuple[np.ndarray, np.ndarray]:
    """Each distribution's central ``mass`` interval [lo, hi] (ratings 1..5, the module's rule)."""
    cumulative = np.cumsum(distributions, axis=1)
    tail = (1 - mass) / 2
    lo = np.argmax(cumulative >= tail - ROUNDING, axis=1) + 1
    hi = np.argmax(cumulative >= 1 - tail - ROUNDING, axis=1) + 1
    return lo, hi


def reliability_bins(test_predictions: pd.DataFrame) -> pd.DataFrame:
    """Per bin of the predicted rating (``BIN_EDGES``): ``bin``, ``rows``, ``mean_predicted``, ``mean_true``."""
    predicted = test_predictions["prediction"].to_numpy(dtype=float)
    index = np.clip(np.searchsorted(BIN_EDGES, predicted, side="right") - 1, 0, len(BIN_EDGES) - 2)
    labels = [f"[{lo:g}, {hi:g})" for lo, hi in zip(BIN_EDGES[:-2], BIN_EDGES[1:-1])] + [f"[{BIN_EDGES[-2]:g}, {BIN_EDGES[-1]:g}]"]
    table = (
        pd.DataFrame({"bin": index, "prediction": predicted, "rating": test_predictions["rating"].to_numpy(dtype=float)})
        .groupby("bin")
        .agg(rows=("prediction", "size"), mean_predicted=("prediction", "mean"), mean_true=("rating", "mean"))
        .reset_index()
    )
    return table.assign(bin=[labels[i] for i in table["bin"]])


def calibration_summary(test_predictions: pd.DataFrame) -> dict[str, Any]:
    """Coverage of the central 80% intervals (nominal, expected from the distributions' own mass,
    observed), their mean width in ratings, the Brier score of the true rating and the reliability bins."""
    distributions, ratings = rating_distributions(test_predictions), true_ratings(test_predictions)
    lo, hi = central_intervals(distributions)
    cumulative = np.concatenate([np.zeros((len(distributions), 1)), np.cumsum(distributions, axis=1)], axis=1)
    each = np.arange(len(distributions))
    observed = (ratings[:, None] == RATINGS).astype(float)  # one-hot true ratings
    return {
        "rows": int(len(distributions)),
        "interval_mass": INTERVAL_MASS,
        "expected_coverage": float((cumulative[each, hi] - cumulative[each, lo - 1]).mean()),
        "observed_coverage": float(((lo <= ratings) & (ratings <= hi)).mean()),
        "mean_interval_ratings": float((hi - lo + 1).mean()),
        "brier_score": float(((distributions - observed) ** 2).sum(axis=1).mean()),
        "bins": reliability_bins(test_predictions).to_dict("records"),
    }
