"""Nodes of ``train_predictor``: the predictor learns from the trained reasoner's own reasons."""

from __future__ import annotations

from typing import Any

import pandas as pd

from reason4rec import contexts as ctx
from reason4rec import prompts
from reason4rec.llm.engine import AdapterArtifact, BaseModelArtifact, Engine


def generate_reasons(
    contexts: pd.DataFrame, base_model: BaseModelArtifact, reasoner_adapter: AdapterArtifact, domain: str, base_params: dict[str, Any], params: dict[str, Any]
) -> pd.DataFrame:
    """The reasoner's reason for each context (as the published code does for the
    predictor's training data, and as ``evaluate`` does for the test rows)."""
    engine = Engine(base_model, {"reasoner": reasoner_adapter}, base_params)
    outputs = engine.generate(
        [ctx.reasoner_prompt(r, domain) for r in contexts.to_dict("records")],
        "reasoner",
        max_new_tokens=params["max_new_tokens"],
        temperature=params["temperature"],
        batch_size=params["batch_size"],
        desc="reasoning",
    )
    return pd.DataFrame(
        {
            "user_id": contexts["user_id"],
            "item_id": contexts["item_id"],
            "reason": [o["text"] for o in outputs],
            "new_tokens": [o["new_tokens"] for o in outputs],
        }
    )


def predictor_sft_examples(contexts: pd.DataFrame, reasons: pd.DataFrame, domain: str) -> pd.DataFrame:
    """The predictor prompt with the generated reason, answered ``Predicted Rating: x.0``."""
    joined = contexts.merge(reasons[["user_id", "item_id", "reason"]], on=["user_id", "item_id"], how="inner", validate="one_to_one")
    rows = joined.to_dict("records")
    return pd.DataFrame({"prompt": [ctx.predictor_prompt(r, domain, r["reason"]) for r in rows], "response": [prompts.rating_answer(r["rating"]) for r in rows]})
