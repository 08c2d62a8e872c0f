"""Nodes of ``train_reasoner``: SFT data from the accepted reasons."""

from __future__ import annotations

import logging

import pandas as pd

from reason4rec import contexts as ctx
from reason4rec.distillation import accepted_reasons
from reason4rec.parameters import Prompting

logger = logging.getLogger(__name__)


def reasoner_sft_examples(distilled_reasons: pd.DataFrame, reasoner_contexts: pd.DataFrame, prompting: Prompting) -> pd.DataFrame:
    """The reasoner prompt (never with the hint) answered by the pair's accepted reason."""
    accepted = accepted_reasons(distilled_reasons)
    joined = reasoner_contexts.merge(accepted[["user_id", "item_id", "reason"]], on=["user_id", "item_id"], how="inner")
    logger.info("reasoner SFT data: %d of %d pairs have an accepted reason", len(joined), len(reasoner_contexts))
    rows = joined.to_dict("records")
    return pd.DataFrame({"prompt": [ctx.reasoner_prompt(r, prompting) for r in rows], "response": [r["reason"] for r in rows]})
