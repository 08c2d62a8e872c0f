"""Predictions and recommendations for pairs a user chooses: the method on requests, not on a test split.

A request is a (user, item) pair. Its histories are the user's and the item's
summarized interactions in the history pool (the interactions ``summarize``
summarized: ``history.source``) strictly before the time of the request. That
time is the pair's own interaction's when the data holds one, so the pair's own
review is never read and a test pair is predicted exactly as ``evaluate``
predicts it; otherwise it is after everything known. A user or item with no
earlier interaction is predicted with that history side empty and flagged
(``cold_user``, ``cold_item``, ``cold_both``); a malformed request (a missing
id, a repeated pair) is kept as a row whose ``status`` says why it was rejected,
and the rest are predicted.

The Kedro pipelines ``predict`` and ``recommend`` and
:class:`reason4rec.recommender.Recommender` all go through these functions, so
they give the same answers.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from reason4rec.contexts import TARGET_COLUMNS, build_contexts
from reason4rec.inference import predict_with_reasons
from reason4rec.llm.artifacts import AdapterArtifact
from reason4rec.llm.engine import InferenceEngine
from reason4rec.parameters import Prompting

logger = logging.getLogger(__name__)

OK = "ok"
PREDICTION_COLUMNS = ["user_id", "item_id", "status", "reason", "prediction", "distribution", "user_history_size", "item_history_size"]
RECOMMENDATION_COLUMNS = ["user_id", "rank", "item_id", "prediction", "reason", "distribution", "status"]


def prediction_contexts(requests: pd.DataFrame, interactions: pd.DataFrame, pool: pd.DataFrame, summaries: pd.DataFrame, prompting: Prompting) -> pd.DataFrame:
    """One context per request row, in request order, with its ``status``: the
    histories a prediction reads (empty for a rejected row, which is not predicted).

    ``interactions`` is every known interaction (to find a pair's own time and an
    item's title); ``pool`` and ``summaries`` are the histories' source, as ``evaluate``'s.
    """
    targets = request_targets(requests, interactions, pool)
    valid = targets["status"] == OK
    contexts = build_contexts(targets[valid], pool, summaries, prompting) if valid.any() else None
    empty = [[] for _ in range(int((~valid).sum()))]
    rejected = targets.loc[~valid, TARGET_COLUMNS].assign(user_history=empty, item_history=empty, user_mean_rating=np.nan, item_mean_rating=np.nan)
    table = pd.concat([part for part in (contexts, rejected.reset_index(drop=True)) if part is not None], ignore_index=True)
    table["status"] = list(targets.loc[valid, "status"]) + list(targets.loc[~valid, "status"])
    table["request"] = list(targets.index[valid]) + list(targets.index[~valid])
    table = table.sort_values("request", kind="stable").reset_index(drop=True)
    cold_user, cold_item = table["user_history"].map(len) == 0, table["item_history"].map(len) == 0
    ok = table["status"] == OK
    table.loc[ok & cold_user & cold_item, "status"] = "cold_both"
    table.loc[ok & cold_user & ~cold_item, "status"] = "cold_user"
    table.loc[ok & ~cold_user & cold_item, "status"] = "cold_item"
    counts = table["status"].value_counts()
    logger.info("%d requests: %s", len(table), ", ".join(f"{count} {status}" for status, count in counts.items()))
    return table


def request_targets(requests: pd.DataFrame, interactions: pd.DataFrame, pool: pd.DataFrame) -> pd.DataFrame:
    """The requests as target rows (``TARGET_COLUMNS`` and ``status``): ``ok``, or
    ``rejected: <why>``. The rating and review are unknown (NaN, empty)."""
    missing = [column for column in ("user_id", "item_id") if column not in requests.columns]
    if missing:
        raise ValueError(f"prediction requests need the column(s) {', '.join(missing)}; found {', '.join(map(str, requests.columns)) or 'none'}")
    if requests.empty:
        raise ValueError("there are no prediction requests: each row is a user_id and an item_id")
    targets = pd.DataFrame({"user_id": _ids(requests["user_id"]), "item_id": _ids(requests["item_id"])}, index=requests.index)
    status = pd.Series(OK, index=requests.index, dtype=object)
    status[targets["item_id"].isna()] = "rejected: missing item_id"
    status[targets["user_id"].isna()] = "rejected: missing user_id"
    status[targets.duplicated(["user_id", "item_id"], keep="first") & (status == OK)] = "rejected: repeats an earlier request for this pair"

    own = interactions.groupby(["user_id", "item_id"], sort=False).agg(own_time=("timestamp", "min"), own_title=("title", "first")).reset_index()
    titles = interactions.sort_values("timestamp", kind="stable").groupby("item_id")["title"].last().rename("item_title").reset_index()
    joined = targets.reset_index().merge(own, on=["user_id", "item_id"], how="left").merge(titles, on="item_id", how="left").set_index("index")
    after_everything = int(max(interactions["timestamp"].max(), pool["timestamp"].max())) + 1
    given_titles = requests["title"].where(requests["title"].notna(), None) if "title" in requests.columns else pd.Series(None, index=requests.index)
    title = joined["own_title"].fillna(joined["item_title"]).fillna(given_titles).fillna(joined["item_id"]).fillna("")
    return pd.DataFrame(
        {
            "user_id": joined["user_id"],
            "item_id": joined["item_id"],
            "rating": np.nan,
            "review": "",
            "title": title.astype(str),
            "timestamp": joined["own_time"].fillna(after_everything).astype(np.int64),
            "status": status,
        },
        index=requests.index,
    )


def _ids(column: pd.Series) -> pd.Series:
    """Ids as stripped strings; empty or missing ones as ``None``."""
    return pd.Series([_id(value) for value in column], index=column.index, dtype=object)


def _id(value: Any) -> str | None:
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()
    return text or None


def predict_requests(
    contexts: pd.DataFrame, engine: InferenceEngine, reasoner_adapter: AdapterArtifact, predictor_adapter: AdapterArtifact, prompting: Prompting, generation: dict[str, Any]
) -> pd.DataFrame:
    """Reason4Rec on every predictable request (``predict_with_reasons``, as
    ``evaluate`` runs it): the reason, the rating distribution over 1..5 and its
    logit-weighted rating. Rejected rows keep their status and no prediction."""
    predictable = ~contexts["status"].str.startswith("rejected")
    table = contexts[["user_id", "item_id", "status"]].assign(
        reason=None, prediction=np.nan, distribution=None,
        user_history_size=contexts["user_history"].map(len), item_history_size=contexts["item_history"].map(len),
    )  # fmt: skip
    if predictable.any():
        predicted = predict_with_reasons(contexts[predictable].reset_index(drop=True), engine, reasoner_adapter, predictor_adapter, prompting, generation)
        index = contexts.index[predictable]
        table.loc[index, "reason"] = predicted["reason"].to_numpy()
        table.loc[index, "prediction"] = predicted["prediction"].to_numpy()
        table["distribution"] = table["distribution"].astype(object)
        for position, distribution in zip(index, predicted["distribution"]):
            table.at[position, "distribution"] = list(distribution)
    rejected = int((~predictable).sum())
    if rejected:
        logger.warning("%d of %d requests rejected: %s", rejected, len(table), "; ".join(sorted(set(table.loc[~predictable, "status"]))))
    return table[PREDICTION_COLUMNS]


def recommendation_candidates(requests: pd.DataFrame, interactions: pd.DataFrame) -> pd.DataFrame:
    """The (user, item) pairs to score for each recommendation request, with ``k``.

    A request is ``user_id`` with ``candidates`` (a list, or ids separated by
    spaces or commas in a CSV cell) and/or ``k``. No candidates: every known
    item the user has not rated. ``k`` missing: every candidate ranked. A
    request without a user id, with a ``k`` below 1, or repeating a user is
    kept as one row with ``item_id`` missing and its ``status`` saying why.
    """
    if "user_id" not in requests.columns:
        raise ValueError(f"recommendation requests need the column user_id; found {', '.join(map(str, requests.columns)) or 'none'}")
    if requests.empty:
        raise ValueError("there are no recommendation requests: each row is a user_id, with k and/or candidates")
    users = _ids(requests["user_id"])
    rated = interactions.groupby("user_id")["item_id"].agg(set)
    catalogue = sorted(interactions["item_id"].unique())
    rows, seen = [], set()
    for position, user in zip(requests.index, users):
        k = _k(requests["k"].get(position)) if "k" in requests.columns else None
        candidates = _candidates(requests["candidates"].get(position)) if "candidates" in requests.columns else []
        problem = (
            "rejected: missing user_id" if user is None
            else f"rejected: repeats the request for user {user}" if user in seen
            else "rejected: k must be a whole number of at least 1" if k == 0
            else None
        )  # fmt: skip
        seen.add(user)
        if problem:
            rows.append({"request": position, "user_id": user, "item_id": None, "k": None, "status": problem})
            continue
        items = candidates or [item for item in catalogue if item not in rated.get(user, set())]
        if not items:
            rows.append({"request": position, "user_id": user, "item_id": None, "k": None, "status": "rejected: no candidates (the user has rated every known item)"})
        rows += [{"request": position, "user_id": user, "item_id": item, "k": k or len(items), "status": OK} for item in items]
    return pd.DataFrame(rows, columns=["request", "user_id", "item_id", "k", "status"])


def _k(value: Any) -> int | None:
    """``k`` as a count; ``None`` when absent, 0 when it is not a whole number of at least 1."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
        return None
    try:
        number = float(value)
    except ValueError:
        return 0
    return int(number) if number.is_integer() and number >= 1 else 0


def _candidates(value: Any) -> list[str]:
    """Candidate ids in order, without repeats, from a list or a CSV cell."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    items = [str(v).strip() for v in value] if isinstance(value, (list, tuple, np.ndarray)) else str(value).replace(",", " ").split()
    return list(dict.fromkeys(item for item in items if item))


def rank_recommendations(candidates: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """Each user's top ``k`` candidates by predicted rating (ties: the smaller item id
    first), with their reasons, distributions and statuses (``predictions`` is
    row for row ``candidates``'s); a rejected request keeps one row with its
    status and no rank."""
    scored = candidates.reset_index(drop=True).assign(**{c: predictions[c].to_numpy() for c in ("reason", "prediction", "distribution")})
    requested = scored["status"] == OK
    scored.loc[requested, "status"] = predictions["status"].to_numpy()[requested.to_numpy()]
    ranked = scored[requested].sort_values(["request", "prediction", "item_id"], ascending=[True, False, True], kind="stable")
    ranked["rank"] = ranked.groupby("request").cumcount() + 1
    ranked = ranked[ranked["rank"] <= ranked["k"]]
    table = pd.concat([ranked, scored[~requested].assign(rank=np.nan)]).sort_values(["request", "rank"], kind="stable")
    table["rank"] = table["rank"].astype("Int64")
    return table[RECOMMENDATION_COLUMNS].reset_index(drop=True)
