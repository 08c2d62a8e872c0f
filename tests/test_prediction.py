"""Predictions for chosen pairs (reason4rec.prediction): request contexts, statuses and ranking on small tables."""

import numpy as np
import pandas as pd
import pytest

from reason4rec.prediction import (
    OK,
    prediction_contexts,
    rank_recommendations,
    recommendation_candidates,
    request_targets,
)
from tests.helpers import PROMPTING

INTERACTIONS = pd.DataFrame(
    {
        "user_id": ["u1", "u1", "u2", "u2", "u3"],
        "item_id": ["i1", "i2", "i1", "i3", "i2"],
        "rating": [5.0, 3.0, 4.0, 2.0, 1.0],
        "review": ["r"] * 5,
        "title": ["One", "Two", "One", "Three", "Two"],
        "timestamp": [10, 20, 30, 40, 50],
    }
)
SUMMARIES = INTERACTIONS[["user_id", "item_id"]].assign(positive="Melody", negative="None", preferences="Melody")


def test_requests_are_checked_and_timed_and_a_pair_never_reads_its_own_review():
    requests = pd.DataFrame({"user_id": ["u2", " u1 ", None, "u1", "u9", "u1"], "item_id": ["i3", "i9", "i1", "", "i1", "i9"]})
    targets = request_targets(requests, INTERACTIONS, INTERACTIONS)
    assert targets["status"].tolist() == [
        OK, OK, "rejected: missing user_id", "rejected: missing item_id", OK, "rejected: repeats an earlier request for this pair",
    ]  # fmt: skip
    # A known pair is predicted at its own time; an unknown one after everything known.
    assert targets["timestamp"].tolist()[:2] == [40, 51] and targets["user_id"].iloc[1] == "u1"
    assert targets["title"].tolist()[:2] == ["Three", "i9"] and targets["title"].iloc[4] == "One"
    contexts = prediction_contexts(requests, INTERACTIONS, INTERACTIONS, SUMMARIES, {**PROMPTING, "history_length": 5})
    assert contexts["status"].tolist() == [
        "cold_item", "cold_item", "rejected: missing user_id", "rejected: missing item_id", "cold_user", "rejected: repeats an earlier request for this pair",
    ]  # fmt: skip
    own = contexts.iloc[0]  # u2's review of i3 (time 40) is in neither of its own histories: i3 has no other
    assert [e["title"] for e in own["user_history"]] == ["One"] and list(own["item_history"]) == []
    assert contexts.loc[1, "user_history"][-1]["rating"] == 3.0 and np.isnan(contexts.loc[4, "user_mean_rating"])


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="need the column\\(s\\) item_id; found user_id, item"):
        request_targets(pd.DataFrame({"user_id": ["u1"], "item": ["i1"]}), INTERACTIONS, INTERACTIONS)
    with pytest.raises(ValueError, match="need the column user_id"):
        recommendation_candidates(pd.DataFrame({"k": [3]}), INTERACTIONS)
    with pytest.raises(ValueError, match="there are no prediction requests"):
        request_targets(pd.DataFrame({"user_id": [], "item_id": []}), INTERACTIONS, INTERACTIONS)
    with pytest.raises(ValueError, match="there are no recommendation requests"):
        recommendation_candidates(pd.DataFrame({"user_id": []}), INTERACTIONS)


def test_recommendation_candidates_default_to_unrated_items_and_bad_requests_are_kept():
    requests = pd.DataFrame(
        {"user_id": ["u1", "u2", "u1", "u3", None], "candidates": [None, "i3, i1 i3", None, None, None], "k": ["1", None, "2", "zero", "1"]}
    )
    pairs = recommendation_candidates(requests, INTERACTIONS)
    assert pairs[(pairs["user_id"] == "u1") & (pairs["status"] == OK)]["item_id"].tolist() == ["i3"]  # u1 rated i1 and i2
    assert pairs[pairs["user_id"] == "u2"][["item_id", "k"]].values.tolist() == [["i3", 2], ["i1", 2]]  # repeats dropped; k: every candidate
    assert pairs.loc[pairs["status"] != OK, "status"].tolist() == [
        "rejected: repeats the request for user u1", "rejected: k must be a whole number of at least 1", "rejected: missing user_id",
    ]  # fmt: skip
    pairs = recommendation_candidates(pd.DataFrame({"user_id": ["u2"], "candidates": [np.array(["i2"])]}), INTERACTIONS)
    assert pairs["item_id"].tolist() == ["i2"]  # a Parquet list column
    everything_rated = INTERACTIONS.assign(user_id="u1")
    assert recommendation_candidates(pd.DataFrame({"user_id": ["u1"]}), everything_rated)["status"].tolist() == [
        "rejected: no candidates (the user has rated every known item)"
    ]


def test_recommendations_rank_by_prediction_with_ties_by_item_id():
    candidates = pd.DataFrame(
        {"request": [0, 0, 0, 0, 1], "user_id": ["u1"] * 4 + [None], "item_id": ["i4", "i2", "i3", "i1", None], "k": [3, 3, 3, 3, None],
         "status": [OK] * 4 + ["rejected: missing user_id"]}
    )  # fmt: skip
    predictions = pd.DataFrame(
        {"prediction": [4.0, 4.5, 4.0, 2.0, np.nan], "reason": ["a", "b", "c", "d", None], "distribution": [None] * 5,
         "status": [OK, OK, "cold_item", OK, "rejected: missing user_id"]}
    )  # fmt: skip
    ranked = rank_recommendations(candidates, predictions)
    assert ranked["item_id"].tolist()[:3] == ["i2", "i3", "i4"] and ranked["rank"].tolist()[:3] == [1, 2, 3]
    assert ranked["status"].tolist() == [OK, "cold_item", OK, "rejected: missing user_id"] and pd.isna(ranked["rank"].iloc[3])
