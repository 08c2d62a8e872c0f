"""The method's two inference steps on prompt contexts, shared by training and evaluation:
the reasoner writes a reason, the predictor scores the rating (logit-weighted)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd

from reason4rec import contexts as ctx
from reason4rec.llm.engine import Engine
from reason4rec.parameters import ReasonGeneration
from reason4rec.typed_config import typed_block

logger = logging.getLogger(__name__)


def generate_reasons(engine: Engine, contexts: pd.DataFrame, adapter: str, domain: str, wording: str, params: dict[str, Any], batch_size: int) -> pd.DataFrame:
    """One reason per context: ``user_id``, ``item_id``, ``reason``, ``new_tokens``, ``seconds``
    (the call's wall time shared equally among its rows). One engine call, so
    the engine can batch prompts of similar length together."""
    generation = typed_block(ReasonGeneration, params, "reason_generation")
    began = time.perf_counter()
    outputs = engine.generate(
        [ctx.reasoner_prompt(r, domain, wording) for r in contexts.to_dict("records")], adapter, max_new_tokens=generation.max_new_tokens,
        temperature=generation.temperature, batch_size=batch_size, desc="reasoning",
    )  # fmt: skip
    seconds = (time.perf_counter() - began) / max(1, len(contexts))
    cut = sum(o["truncated"] for o in outputs)
    if cut:
        logger.warning("%d of %d reasons were cut at reason_generation.max_new_tokens (%d)", cut, len(outputs), generation.max_new_tokens)
    return pd.DataFrame(
        {
            "user_id": contexts["user_id"].to_numpy(),
            "item_id": contexts["item_id"].to_numpy(),
            "reason": [o["text"] for o in outputs],
            "new_tokens": [o["new_tokens"] for o in outputs],
            "seconds": seconds,
        },
        columns=["user_id", "item_id", "reason", "new_tokens", "seconds"],
    )


def score_ratings(engine: Engine, contexts: pd.DataFrame, reasons: pd.Series | None, adapter: str, domain: str, wording: str, batch_size: int) -> tuple[list[float], float]:
    """Logit-weighted ratings for each context given its reason (``None``: the
    prompt without the analysis section); returns the ratings and seconds per row."""
    records = contexts.to_dict("records")
    texts = list(reasons) if reasons is not None else [None] * len(records)
    began = time.perf_counter()
    ratings = engine.score_ratings([ctx.predictor_prompt(r, domain, wording, t) for r, t in zip(records, texts)], adapter, batch_size=batch_size, desc="predicting")
    return ratings, (time.perf_counter() - began) / max(1, len(records))
