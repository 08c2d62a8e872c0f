"""Nodes of ``reward_model``: the reward model for reason judgment (the paper's section 3.4)."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from reason4rec import contexts as ctx
from reason4rec.completions import CompletionClient, CompletionRequest
from reason4rec.distillation import usable_reason
from reason4rec.evaluation.metrics import mae, rmse
from reason4rec.inference import score_ratings
from reason4rec.llm.artifacts import AdapterArtifact
from reason4rec.llm.engine import InferenceEngine
from reason4rec.parameters import DistillReasons, Prompting, RewardModel
from reason4rec.typed_config import typed_block

logger = logging.getLogger(__name__)


def reward_sft_examples(reward_contexts: pd.DataFrame, prompting: Prompting) -> pd.DataFrame:
    """The predictor prompt with the target review in the reason slot, answered with the rating."""
    return ctx.rating_sft_examples(reward_contexts, prompting, reward_contexts["review"].tolist())


# Table 5's rows, in the order of their known closeness to the target review.
REASON_TYPES = ("Review-guided Reason", "Review-inferred Reason", "Hint-inferred Reason", "History-inferred Reason", "Without Reason")
# The rows whose reason the teacher writes, from the histories and (some) the target review.
TEACHER_REASON_TYPES = ("Review-inferred Reason", "Hint-inferred Reason", "History-inferred Reason")


def request_check_reasons(
    reasoner_contexts: pd.DataFrame, teacher: CompletionClient, prompting: Prompting, params: dict[str, Any], distill_params: dict[str, Any]
) -> pd.DataFrame:
    """The pairs Table 5 scores (the first ``reward_model.check_pairs`` reasoner pairs,
    which the reward model did not train on), each with a column per type of reason.

    Review-guided: the target review. Review-inferred: the teacher's reason
    inferred from that review. Hint-inferred: the teacher's reason from the
    histories with the rating hint (Algorithm 1's first hinted prompt).
    History-inferred: from the histories alone (Algorithm 1's first prompt).
    Without Reason: no analysis section. The teacher writes as it does in
    Algorithm 1 (``distill_reasons.temperature`` and ``max_tokens``, so an LLM
    teacher's answers are shared with it through the cache). Only pairs whose
    three teacher reasons all came back whole and state no rating are kept, so
    every row scores the same pairs.
    """
    check_pairs = typed_block(RewardModel, params, "reward_model").check_pairs
    distill = typed_block(DistillReasons, distill_params, "distill_reasons")
    checked = (reasoner_contexts.head(check_pairs) if check_pairs else reasoner_contexts).reset_index(drop=True)
    records = checked.to_dict("records")
    teacher_prompts = {
        "Review-inferred Reason": [(ctx.review_inferred_prompt(r, prompting), 0) for r in records],
        "Hint-inferred Reason": [(ctx.reasoner_prompt(r, prompting, hint=True), 1) for r in records],
        "History-inferred Reason": [(ctx.reasoner_prompt(r, prompting), 0) for r in records],
    }
    reasons = checked.assign(**{"Review-guided Reason": checked["review"]})
    usable = pd.Series(True, index=checked.index)
    for name, asked in teacher_prompts.items():
        requests = [CompletionRequest(p, temperature=distill.temperature, max_tokens=distill.max_tokens, sample_index=i) for p, i in asked]
        answers = teacher.complete(requests, stage="reward_check", desc=f"teacher {name.lower()}s")
        reasons[name] = [a.text for a in answers]
        usable &= pd.Series([usable_reason(a, distill.max_tokens) for a in answers], index=checked.index)
    if not usable.all():
        logger.warning("reward check: %d of %d pairs left out (a teacher reason failed, was cut short or states the rating)", (~usable).sum(), len(usable))
    return reasons[usable].reset_index(drop=True)


def check_reward_model(check_reasons: pd.DataFrame, engine: InferenceEngine, reward_adapter: AdapterArtifact, prompting: Prompting) -> pd.DataFrame:
    """The paper's Table 5: the reward model's MAE and RMSE on the checked pairs given each
    type of reason (``request_check_reasons``). It works when the rows come out in this order."""
    truth = check_reasons["rating"].to_numpy(float)
    engine.load_adapters({"reward_model": reward_adapter})
    results = []
    for name in REASON_TYPES:
        slot = None if name == "Without Reason" else check_reasons[name]
        predicted, _ = score_ratings(engine, check_reasons, slot, "reward_model", prompting)
        results.append({"reason_type": name, "mae": mae(truth, predicted), "rmse": rmse(truth, predicted), "rows": len(truth)})
    return pd.DataFrame(results)
