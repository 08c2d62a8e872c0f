"""Nodes of ``train_predictor``: the predictor learns from the trained reasoner's own reasons."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from reason4rec import contexts as ctx
from reason4rec.distillation import accepted_reasons
from reason4rec.inference import generate_reasons
from reason4rec.llm.artifacts import AdapterArtifact, BaseModelArtifact
from reason4rec.llm.engine import engine_for
from reason4rec.parameters import TrainPredictor
from reason4rec.typed_config import typed_block

logger = logging.getLogger(__name__)


def predictor_pairs(reasoner_contexts: pd.DataFrame, distilled_reasons: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """The reasoner pairs both predictors train on: all of them, or (``pairs: accepted``,
    the published code) only those that obtained an accepted reason in Algorithm 1."""
    if typed_block(TrainPredictor, params, "train_predictor").pairs == "all":
        return reasoner_contexts
    accepted = accepted_reasons(distilled_reasons)[["user_id", "item_id"]]
    kept = reasoner_contexts.merge(accepted, on=["user_id", "item_id"], how="inner")
    logger.info("predictor pairs: %d of %d reasoner pairs have an accepted reason", len(kept), len(reasoner_contexts))
    return kept


def generate_pair_reasons(
    contexts: pd.DataFrame,
    base_model: BaseModelArtifact,
    reasoner_adapter: AdapterArtifact,
    domain: str,
    wording: str,
    params: dict[str, Any],
    batch_size: int,
    inference: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """The trained reasoner's reason for each predictor pair: the predictor learns
    from the reasoner's own reasons, not the teacher's (as the published code does)."""
    engine = engine_for(base_model, {"reasoner": reasoner_adapter}, inference)
    return generate_reasons(engine, contexts, "reasoner", domain, wording, params, batch_size)


def no_reason_sft_examples(contexts: pd.DataFrame, domain: str, wording: str) -> pd.DataFrame:
    """The "Without Reason" ablation's training pairs: the predictor prompt without the analysis section."""
    return ctx.rating_sft_examples(contexts, domain, wording, [None] * len(contexts))


def predictor_sft_examples(contexts: pd.DataFrame, reasons: pd.DataFrame, domain: str, wording: str) -> pd.DataFrame:
    """The predictor prompt with the generated reason, answered ``Predicted Rating: x.0``."""
    joined = contexts.merge(reasons[["user_id", "item_id", "reason"]], on=["user_id", "item_id"], how="inner", validate="one_to_one")
    return ctx.rating_sft_examples(joined, domain, wording, joined["reason"].tolist())
