"""Nodes of ``reward_model``: the reward model for reason judgment (the paper's section 3.4)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from reason4rec import contexts as ctx
from reason4rec.evaluation.metrics import mae, rmse
from reason4rec.inference import score_ratings
from reason4rec.llm.artifacts import AdapterArtifact, BaseModelArtifact
from reason4rec.llm.engine import engine_for
from reason4rec.parameters import RewardModel
from reason4rec.typed_config import typed_block


def reward_sft_examples(reward_contexts: pd.DataFrame, domain: str) -> pd.DataFrame:
    """The predictor prompt with the target review in the reason slot, answered with the rating."""
    return ctx.rating_sft_examples(reward_contexts, domain, reward_contexts["review"].tolist())


def check_reward_model(
    reasoner_contexts: pd.DataFrame,
    base_model: BaseModelArtifact,
    reward_adapter: AdapterArtifact,
    domain: str,
    params: dict[str, Any],
    batch_size: int,
    inference: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """MAE and RMSE of the reward model on pairs it did not train on, given the
    target review vs no reason (the paper's Table 5 rows "Review-guided Reason"
    and "Without Reason"), on the first ``check_pairs`` of them. The review should
    help; the table shows whether it does."""
    check_pairs = typed_block(RewardModel, params, "reward_model").check_pairs
    engine = engine_for(base_model, {"reward_model": reward_adapter}, inference)
    checked = reasoner_contexts.head(check_pairs) if check_pairs else reasoner_contexts
    truth = checked["rating"].to_numpy(float)
    results = []
    for name, reasons in (("Review-guided Reason", checked["review"]), ("Without Reason", None)):
        predicted, _ = score_ratings(engine, checked, reasons, "reward_model", domain, batch_size)
        results.append({"reason_type": name, "mae": mae(truth, predicted), "rmse": rmse(truth, predicted), "rows": len(truth)})
    return pd.DataFrame(results)
