"""Does the rating follow the reason? Each test row scored again with the reason of a row whose verdict points the other way.

A reason's verdict is read from the rating it led to, not from its words (the
default reasoner is a 135M model and the paper's reasons are free text): the
test rows are split at the median of their own predictions, the reasons of rows
above it point up (+1), at or below it down (-1).

Pairing rule: each side is ranked from its extreme inwards (the up side highest
prediction first, the down side lowest first, ties in test order), and the row
at rank i takes the reason at rank i of the other side, cycling through the
other side when it is smaller. The most negative reason is thus read with the
most positive row's histories and the other way round.

A predictor that ignores its reason rescores every row as before: its shift is
0 and no row moves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from reason4rec.inference import score_ratings
from reason4rec.llm.artifacts import AdapterArtifact
from reason4rec.llm.engine import InferenceEngine
from reason4rec.parameters import Prompting

KEYS = ["user_id", "item_id"]
COUNTERFACTUAL_COLUMNS = ["user_id", "item_id", "donor_user_id", "donor_item_id", "direction", "prediction", "counterfactual_prediction", "shift"]
# A rating that changes by less than this (stars) has not moved: batches padded
# differently around a new reason change the last digits of a reason-blind rating.
MOVED = 0.01
PAIRING_NOTE = (
    "each row rescored with the reason of the row at the mirrored rank on the other side of the median test prediction; "
    "shift = counterfactual - original rating, signed toward the donor reason's verdict"
)
NOT_MEASURABLE_NOTE = "not measurable: no test prediction is above the median (all equal, or the highest shared by half the rows), so no reason points the other way"


def pair_with_donors(test_predictions: pd.DataFrame) -> pd.DataFrame:
    """Each test row with its donor (the module's pairing rule): ``user_id``, ``item_id``,
    ``donor_user_id``, ``donor_item_id``, ``direction`` (the donor reason's verdict, +1 or -1),
    ``prediction`` (the row's own) and ``donor_reason``, in test order. No rows when the
    predictions do not split at their median."""
    rows = test_predictions.reset_index(drop=True)
    above = rows["prediction"] > rows["prediction"].median()
    if not above.any():
        return pd.DataFrame(columns=[*KEYS, "donor_user_id", "donor_item_id", "direction", "prediction", "donor_reason"])
    up = rows[above].sort_values("prediction", ascending=False, kind="stable")
    down = rows[~above].sort_values("prediction", kind="stable")
    return pd.concat([_take_reasons(down, up, +1), _take_reasons(up, down, -1)]).sort_index()


def _take_reasons(receivers: pd.DataFrame, donors: pd.DataFrame, direction: int) -> pd.DataFrame:
    """Rank i of ``receivers`` takes the reason at rank i of ``donors``, cycling."""
    picked = donors.iloc[np.arange(len(receivers)) % len(donors)]
    return pd.DataFrame(
        {
            "user_id": receivers["user_id"],
            "item_id": receivers["item_id"],
            "donor_user_id": picked["user_id"].to_numpy(),
            "donor_item_id": picked["item_id"].to_numpy(),
            "direction": direction,
            "prediction": receivers["prediction"],
            "donor_reason": picked["reason"].to_numpy(),
        },
        index=receivers.index,
    )


def score_counterfactual_reasons(
    test_contexts: pd.DataFrame, test_predictions: pd.DataFrame, engine: InferenceEngine, predictor_adapter: AdapterArtifact, prompting: Prompting
) -> pd.DataFrame:
    """``counterfactual_predictions``: each row's own context (its histories) scored by the
    predictor with its donor's reason; ``shift`` = counterfactual - original rating."""
    pairs = pair_with_donors(test_predictions)
    if pairs.empty:
        return pd.DataFrame(columns=COUNTERFACTUAL_COLUMNS)
    contexts = pairs[KEYS].merge(test_contexts, on=KEYS, how="left", validate="one_to_one", indicator=True)
    missing = contexts.loc[contexts.pop("_merge") != "both", KEYS]
    if len(missing):
        raise ValueError(f"test_predictions rows without a test context: {missing.head().to_dict('records')}")
    engine.load_adapters({"predictor": predictor_adapter})
    ratings, _ = score_ratings(engine, contexts, pairs["donor_reason"], "predictor", prompting)
    counterfactual = pairs.assign(counterfactual_prediction=ratings)
    return counterfactual.assign(shift=counterfactual["counterfactual_prediction"] - counterfactual["prediction"])[COUNTERFACTUAL_COLUMNS].reset_index(drop=True)


def counterfactual_summary(counterfactual_predictions: pd.DataFrame) -> dict[str, Any]:
    """The shift toward the donor reason's verdict: its mean, the shares of rows that move
    toward it and against it (by at least ``MOVED`` stars), and the mean absolute shift."""
    if counterfactual_predictions.empty:
        return {"rows": 0, "mean_shift_toward_reason": None, "share_toward_reason": None, "share_against_reason": None,
                "mean_absolute_shift": None, "moved_at_least": MOVED, "note": NOT_MEASURABLE_NOTE}  # fmt: skip
    toward = counterfactual_predictions["direction"].astype(float) * counterfactual_predictions["shift"].astype(float)
    return {
        "rows": int(len(toward)),
        "mean_shift_toward_reason": float(toward.mean()),
        "share_toward_reason": float((toward >= MOVED).mean()),
        "share_against_reason": float((toward <= -MOVED).mean()),
        "mean_absolute_shift": float(toward.abs().mean()),
        "moved_at_least": MOVED,
        "note": PAIRING_NOTE,
    }
