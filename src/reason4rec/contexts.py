"""Prompt contexts: target interactions with their summarized histories, and the prompts built from them.

A context row is a target (user, item, rating, review, title, timestamp) plus
``user_history`` / ``item_history``: lists of ``{title, positive, negative,
preferences, rating}`` for the last ``n`` strictly earlier interactions, oldest
first, and the mean of all earlier ratings on each side. Every pipeline builds
its prompts from these rows through the functions here, so the reasoner, the
reward model and the predictor see the same histories in the same format.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from reason4rec import prompts
from reason4rec.data.history import history_windows
from reason4rec.parameters import Prompting, prompting_of

TARGET_COLUMNS = ["user_id", "item_id", "rating", "review", "title", "timestamp"]


def history_pool(train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame, source: str = "train") -> pd.DataFrame:
    """The interactions that histories and average ratings come from, in time order, with their split.

    A target sees only interactions strictly earlier than itself either way.
    ``train``: the training split only (the published scripts; the baselines
    are fitted on it too, so every method sees the same information). ``all``:
    valid and test too, so a test target also sees the valid-period and earlier
    test interactions of its user and item, which no baseline is fitted on.
    """
    splits = (("train", train),) if source == "train" else (("train", train), ("valid", valid), ("test", test))
    parts = [part[TARGET_COLUMNS].assign(split=name) for name, part in splits]
    return pd.concat(parts, ignore_index=True).sort_values("timestamp", kind="stable").reset_index(drop=True)


def sample_pairs(train: pd.DataFrame, pool: pd.DataFrame, sizes: dict[str, int], seed: int) -> dict[str, pd.DataFrame]:
    """Disjoint random samples of training interactions whose user and item both have earlier history.

    ``sizes`` maps sample name to size (paper: reward model 8,000, reasoner
    12,000); a sample is smaller when fewer eligible rows exist, never overlapping.
    """
    windows = history_windows(train, pool, n=1)
    eligible = train[(windows["user_history_count"] > 0) & (windows["item_history_count"] > 0)]
    order = np.random.default_rng(seed).permutation(len(eligible))
    samples, start = {}, 0
    for name, size in sizes.items():
        chosen = order[start : start + size]
        samples[name] = eligible.iloc[np.sort(chosen)][TARGET_COLUMNS].reset_index(drop=True)
        start += len(chosen)
    return samples


def build_contexts(targets: pd.DataFrame, pool: pd.DataFrame, summaries: pd.DataFrame, prompting: Prompting) -> pd.DataFrame:
    """Attach to each target its summarized user and item histories (``prompting.history_length``
    entries per side) and mean earlier ratings."""
    keyed = pool.merge(summaries[["user_id", "item_id", "positive", "negative", "preferences"]], on=["user_id", "item_id"], how="left")
    missing = keyed["positive"].isna()
    keyed.loc[missing, ["positive", "negative", "preferences"]] = prompts.NONE_MARK
    entries = keyed[["title", "positive", "negative", "preferences", "rating"]].to_dict("records")
    windows = history_windows(targets, pool, n=prompting_of(prompting).history_length)
    contexts = targets[TARGET_COLUMNS].copy()
    contexts["user_history"] = [[entries[i] for i in positions] for positions in windows["user_history"]]
    contexts["item_history"] = [[entries[i] for i in positions] for positions in windows["item_history"]]
    contexts["user_mean_rating"] = windows["user_mean_rating"].to_numpy()
    contexts["item_mean_rating"] = windows["item_mean_rating"].to_numpy()
    return contexts.reset_index(drop=True)


def _entries(history: Any) -> list[prompts.HistoryEntry]:
    return [
        prompts.HistoryEntry(e["title"], e["positive"], e["negative"], e["preferences"], float(e["rating"]))
        for e in (list(history) if history is not None else [])
    ]


def reasoner_prompt(context: dict | pd.Series, prompting: Prompting, hint: bool = False) -> str:
    settings = prompting_of(prompting)
    return prompts.reasoner_prompt(
        settings.domain,
        context["title"],
        _entries(context["user_history"]),
        _entries(context["item_history"]),
        wording=settings.wording,
        hint_rating=context["rating"] if hint else None,
    )


def review_inferred_prompt(context: dict | pd.Series, prompting: Prompting) -> str:
    settings = prompting_of(prompting)
    return prompts.review_inferred_prompt(
        settings.domain, context["title"], _entries(context["user_history"]), _entries(context["item_history"]), context["review"], wording=settings.wording
    )


def predictor_prompt(context: dict | pd.Series, prompting: Prompting, reason: str | None) -> str:
    settings = prompting_of(prompting)
    return prompts.predictor_prompt(
        settings.domain,
        context["title"],
        _entries(context["user_history"]),
        _entries(context["item_history"]),
        context["user_mean_rating"],
        context["item_mean_rating"],
        reason,
        wording=settings.wording,
    )


def rating_sft_examples(contexts: pd.DataFrame, prompting: Prompting, reasons: list[str | None]) -> pd.DataFrame:
    """(prompt, response) pairs for a rating expert: the predictor prompt with each
    context's reason (the target review for the reward model, the reasoner's reason
    for the predictor, ``None`` for the "Without Reason" ablation), answered
    ``Predicted Rating: x.0``."""
    rows, settings = contexts.to_dict("records"), prompting_of(prompting)
    return pd.DataFrame(
        {
            "prompt": [predictor_prompt(r, settings, reason) for r, reason in zip(rows, reasons)],
            "response": [prompts.rating_answer(r["rating"]) for r in rows],
        }
    )
