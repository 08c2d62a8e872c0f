"""Rating accuracy: MAE, RMSE and Pearson correlation on the same rows for every method."""

from __future__ import annotations

import numpy as np
import pandas as pd


def mae(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.abs(np.asarray(truth, float) - np.asarray(predicted, float)).mean())


def rmse(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(((np.asarray(truth, float) - np.asarray(predicted, float)) ** 2).mean()))


def pearson(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Correlation with the true rating; NaN for a constant prediction (it ranks nothing).

    Constant means all equal (``np.ptp``): the standard deviation of a repeated
    non-representable float such as a global mean is rounding noise, not zero."""
    truth, predicted = np.asarray(truth, float), np.asarray(predicted, float)
    if np.ptp(truth) == 0 or np.ptp(predicted) == 0:
        return float("nan")
    return float(np.corrcoef(truth, predicted)[0, 1])


def accuracy_table(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per method (MAE, RMSE, Pearson, rows) from long predictions (``method``,
    ``user_id``, ``item_id``, ``rating``, ``prediction``), best MAE first.

    Every method must have scored the same rows: a method that skipped one
    would be compared on an easier set, so that is an error.
    """
    keys = predictions.groupby("method").apply(lambda g: frozenset(zip(g["user_id"], g["item_id"])), include_groups=False)
    if keys.nunique() > 1:
        sizes = keys.map(len).to_dict()
        raise ValueError(f"methods scored different rows: {sizes}")
    rows = [
        {"method": method, "mae": mae(g["rating"], g["prediction"]), "rmse": rmse(g["rating"], g["prediction"]), "pearson": pearson(g["rating"], g["prediction"]), "rows": len(g)}
        for method, g in predictions.groupby("method", sort=False)
    ]
    return pd.DataFrame(rows).sort_values("mae", kind="stable").reset_index(drop=True)
