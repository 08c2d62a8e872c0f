"""Calibration of the predictor's rating distribution, on a small table computed by hand."""

import numpy as np
import pandas as pd
import pytest

from reason4rec.evaluation.calibration import calibration_summary, central_intervals, reliability_bins
from reason4rec.llm.chat import expected_rating

# distribution over 1..5, true rating; the central 80% interval and the mass it holds by hand
DISTRIBUTIONS = [
    ([0.1, 0.1, 0.2, 0.3, 0.3], 4),  # cumulative .1 .2 .4 .7 1: [1, 5], mass 1, inside
    ([0.0, 0.0, 0.0, 0.5, 0.5], 3),  # [4, 5], mass 1, outside
    ([0.05, 0.05, 0.8, 0.05, 0.05], 3),  # cumulative .05 .1 .9: [2, 3], mass .85, inside
    ([0.7, 0.2, 0.1, 0.0, 0.0], 1),  # 0.7 + 0.2 falls a rounding error short of 0.9: [1, 2], mass .9, inside
    ([0.0, 0.0, 0.0, 0.0, 1.0], 5),  # [5, 5], mass 1, inside
]


def hand_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(len(DISTRIBUTIONS))],
            "item_id": [f"i{i}" for i in range(len(DISTRIBUTIONS))],
            "rating": [float(r) for _, r in DISTRIBUTIONS],
            "prediction": [expected_rating(d) for d, _ in DISTRIBUTIONS],  # 3.6, 4.5, 3.0, 1.4, 5.0
            "distribution": [np.array(d) for d, _ in DISTRIBUTIONS],  # as Parquet gives it back
        }
    )


def test_the_central_interval_runs_from_the_first_rating_past_a_tenth_to_the_first_past_nine_tenths():
    lo, hi = central_intervals(np.array([d for d, _ in DISTRIBUTIONS]))
    assert lo.tolist() == [1, 4, 2, 1, 5] and hi.tolist() == [5, 5, 3, 2, 5]


def test_coverage_brier_and_bins_on_a_hand_built_table():
    summary = calibration_summary(hand_table())
    assert summary["rows"] == 5 and summary["interval_mass"] == 0.8
    assert summary["observed_coverage"] == pytest.approx(4 / 5)
    assert summary["expected_coverage"] == pytest.approx((1 + 1 + 0.85 + 0.9 + 1) / 5)
    assert summary["mean_interval_ratings"] == pytest.approx((5 + 2 + 2 + 2 + 1) / 5)
    assert summary["brier_score"] == pytest.approx((0.64 + 1.5 + 0.05 + 0.14 + 0.0) / 5)
    bins = pd.DataFrame(summary["bins"])
    assert bins["bin"].tolist() == ["[1, 2)", "[3, 3.5)", "[3.5, 4)", "[4.5, 5]"]  # empty bins left out
    assert bins["rows"].tolist() == [1, 1, 1, 2]
    assert bins["mean_predicted"].tolist() == pytest.approx([1.4, 3.0, 3.6, 4.75])
    assert bins["mean_true"].tolist() == pytest.approx([1.0, 3.0, 4.0, 4.0])


def test_bins_are_closed_on_the_left_and_the_last_holds_five():
    table = pd.DataFrame({"prediction": [1.0, 1.99, 2.0, 3.5, 4.49, 4.5, 5.0], "rating": [1.0] * 7})
    bins = reliability_bins(table)
    assert bins["bin"].tolist() == ["[1, 2)", "[2, 3)", "[3.5, 4)", "[4, 4.5)", "[4.5, 5]"]
    assert bins["rows"].tolist() == [2, 1, 1, 1, 2]


def test_a_rating_off_the_scale_or_a_short_distribution_is_refused_with_its_row():
    off_scale = hand_table()
    off_scale.loc[2, "rating"] = 3.5
    with pytest.raises(ValueError, match="rating 3.5 of u2 / i2 is not one of 1..5"):
        calibration_summary(off_scale)
    short = hand_table()
    short.at[1, "distribution"] = np.array([0.5, 0.5])
    with pytest.raises(ValueError, match="distribution of u1 / i1"):
        calibration_summary(short)
