"""Nodes of ``reward_model``: the reward model for reason judgment (the paper's section 3.4)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from reason4rec import contexts as ctx
from reason4rec import prompts
from reason4rec.llm.engine import AdapterArtifact, BaseModelArtifact, Engine


def sample_pairs(interactions_train: pd.DataFrame, interactions_all: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two disjoint fixed-seed samples of training pairs with user and item history:
    one trains the reward model, the other the reasoner (and judges the reward model)."""
    samples = ctx.sample_pairs(interactions_train, interactions_all, {"reward": params["reward_model_size"], "reasoner": params["reasoner_size"]}, params["seed"])
    return samples["reward"], samples["reasoner"]


def reward_sft_examples(reward_contexts: pd.DataFrame, domain: str) -> pd.DataFrame:
    """The predictor prompt with the target review in the reason slot, answered with the rating."""
    rows = reward_contexts.to_dict("records")
    return pd.DataFrame(
        {"prompt": [ctx.predictor_prompt(r, domain, r["review"]) for r in rows], "response": [prompts.rating_answer(r["rating"]) for r in rows]}
    )


def check_reward_model(
    reasoner_contexts: pd.DataFrame,
    base_model: BaseModelArtifact,
    reward_adapter: AdapterArtifact,
    domain: str,
    base_params: dict[str, Any],
    params: dict[str, Any],
) -> pd.DataFrame:
    """MAE and RMSE of the reward model on pairs it did not train on, given the
    target review vs no reason (the paper's Table 5 rows "Review-guided Reason"
    and "Without Reason"). The review should help; the table shows whether it does."""
    engine = Engine(base_model, {"reward_model": reward_adapter}, base_params)
    rows = reasoner_contexts.to_dict("records")
    truth = reasoner_contexts["rating"].to_numpy(float)
    results = []
    for name, reason in (("Review-guided Reason", lambda r: r["review"]), ("Without Reason", lambda r: None)):
        predicted = np.array(engine.score_ratings([ctx.predictor_prompt(r, domain, reason(r)) for r in rows], "reward_model", batch_size=params["scoring_batch_size"], desc=name))
        results.append({"reason_type": name, "mae": float(np.abs(predicted - truth).mean()), "rmse": float(np.sqrt(((predicted - truth) ** 2).mean())), "rows": len(rows)})
    return pd.DataFrame(results)
