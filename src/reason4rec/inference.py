"""The method's two inference steps on prompt contexts, shared by training, evaluation and Table 4:
the reasoner writes a reason, the predictor scores the rating (logit-weighted)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd

from reason4rec import contexts as ctx
from reason4rec.llm.artifacts import AdapterArtifact
from reason4rec.llm.chat import expected_rating
from reason4rec.llm.engine import InferenceEngine
from reason4rec.parameters import Prompting, ReasonGeneration, prompting_of
from reason4rec.typed_config import typed_block

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS = ["user_id", "item_id", "rating", "reason", "prediction", "distribution", "seconds", "new_tokens"]


def generate_reasons(
    engine: InferenceEngine, contexts: pd.DataFrame, adapter: str, prompting: Prompting, generation: dict[str, Any], batch_size: int | None = None
) -> pd.DataFrame:
    """One reason per context: ``user_id``, ``item_id``, ``reason``, ``new_tokens``, ``seconds``
    (the call's wall time shared equally among its rows). One engine call, so
    the engine can batch prompts of similar length together (``batch_size``:
    the engine's own unless given)."""
    settings = typed_block(ReasonGeneration, generation, "reason_generation")
    began = time.perf_counter()
    outputs = engine.generate(
        [ctx.reasoner_prompt(r, prompting) for r in contexts.to_dict("records")], adapter, max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature, batch_size=batch_size, desc="reasoning",
    )  # fmt: skip
    seconds = (time.perf_counter() - began) / max(1, len(contexts))
    cut = sum(o["truncated"] for o in outputs)
    if cut:
        logger.warning("%d of %d reasons were cut at reason_generation.max_new_tokens (%d)", cut, len(outputs), settings.max_new_tokens)
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


def score_ratings(
    engine: InferenceEngine, contexts: pd.DataFrame, reasons: pd.Series | None, adapter: str, prompting: Prompting, batch_size: int | None = None
) -> tuple[list[float], float]:
    """Logit-weighted ratings for each context given its reason (``None``: the
    prompt without the analysis section); returns the ratings and seconds per row."""
    records, settings = contexts.to_dict("records"), prompting_of(prompting)
    texts = list(reasons) if reasons is not None else [None] * len(records)
    began = time.perf_counter()
    ratings = engine.score_ratings([ctx.predictor_prompt(r, settings, t) for r, t in zip(records, texts)], adapter, batch_size=batch_size, desc="predicting")
    return ratings, (time.perf_counter() - began) / max(1, len(records))


def generate_pair_reasons(contexts: pd.DataFrame, engine: InferenceEngine, reasoner_adapter: AdapterArtifact, prompting: Prompting, generation: dict[str, Any]) -> pd.DataFrame:
    """The trained reasoner's reason for each predictor pair: the predictor learns
    from the reasoner's own reasons, not the teacher's (as the published code does)."""
    engine.load_adapters({"reasoner": reasoner_adapter})
    return generate_reasons(engine, contexts, "reasoner", prompting, generation)


def predictor_sft_examples(contexts: pd.DataFrame, reasons: pd.DataFrame, prompting: Prompting) -> pd.DataFrame:
    """The predictor prompt with the generated reason, answered ``Predicted Rating: x.0``."""
    joined = contexts.merge(reasons[["user_id", "item_id", "reason"]], on=["user_id", "item_id"], how="inner", validate="one_to_one")
    return ctx.rating_sft_examples(joined, prompting, joined["reason"].tolist())


def predict_with_reasons(
    contexts: pd.DataFrame, engine: InferenceEngine, reasoner_adapter: AdapterArtifact, predictor_adapter: AdapterArtifact, prompting: Prompting, generation: dict[str, Any]
) -> pd.DataFrame:
    """Reason4Rec on ``contexts``: the reasoner writes a reason (``reason_generation``: greedy by default), the
    predictor scores the rating. ``seconds`` is this row's share of the batched
    reason generation plus rating scoring."""
    engine.load_adapters({"reasoner": reasoner_adapter, "predictor": predictor_adapter})
    reasons = generate_reasons(engine, contexts, "reasoner", prompting, generation)
    settings, began = prompting_of(prompting), time.perf_counter()
    prompts = [ctx.predictor_prompt(r, settings, reason) for r, reason in zip(contexts.to_dict("records"), reasons["reason"])]
    distributions = engine.rating_distributions(prompts, "predictor", desc="predicting")
    scoring_seconds = (time.perf_counter() - began) / max(1, len(contexts))
    return pd.DataFrame(
        {
            "user_id": contexts["user_id"],
            "item_id": contexts["item_id"],
            "rating": contexts["rating"].astype(float),
            "reason": reasons["reason"].to_numpy(),
            "prediction": [expected_rating(d) for d in distributions],
            "distribution": distributions,  # the predictor's probabilities of 1..5
            "seconds": reasons["seconds"].to_numpy() + scoring_seconds,
            "new_tokens": reasons["new_tokens"].to_numpy() + 1,  # the rating token
        }
    )[PREDICTION_COLUMNS]
