"""Nodes of ``train_predictor``: the predictor learns from the trained reasoner's own reasons."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from reason4rec import contexts as ctx
from reason4rec.distillation import accepted_reasons
from reason4rec.parameters import Prompting, TrainPredictor
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


def no_reason_sft_examples(contexts: pd.DataFrame, prompting: Prompting) -> pd.DataFrame:
    """The "Without Reason" ablation's training pairs: the predictor prompt without the analysis section."""
    return ctx.rating_sft_examples(contexts, prompting, [None] * len(contexts))
