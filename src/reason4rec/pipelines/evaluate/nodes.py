"""Nodes of ``evaluate``: Tables 2, 3, 5 and 6 on the test split, whether the rating follows the reason, and the report.

The steps shared with ``reason_ablations`` (prediction with reasons, GPTScore)
and the baselines live in the library (``reason4rec.inference``,
``reason4rec.evaluation``); these nodes sample, time and assemble.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from reason4rec.distillation import accepted_reasons
from reason4rec.evaluation.calibration import calibration_summary
from reason4rec.evaluation.faithfulness import counterfactual_summary
from reason4rec.evaluation.metrics import accuracy_table
from reason4rec.evaluation.reason_quality import aspect_recovery, reason_quality
from reason4rec.evaluation.report import PLOT_FILES, markdown_report, plots
from reason4rec.inference import generate_reasons, predict_with_reasons, score_ratings
from reason4rec.llm.artifacts import AdapterArtifact
from reason4rec.llm.engine import InferenceEngine
from reason4rec.llm.loading import describe_device
from reason4rec.parameters import Evaluate, Prompting
from reason4rec.typed_config import typed_block

logger = logging.getLogger(__name__)


def sample_test_rows(interactions_test: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """The test rows every method scores: a fixed-seed sample of ``test_rows`` (all when null), in time order."""
    config = typed_block(Evaluate, params, "evaluate")
    if config.test_rows is None or config.test_rows >= len(interactions_test):
        return interactions_test.reset_index(drop=True)
    return interactions_test.sample(config.test_rows, random_state=config.seed).sort_index().reset_index(drop=True)


def select_timed_rows(test_contexts: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """The first ``evaluate.timed_rows`` test rows, which Table 6 times one at a time."""
    return test_contexts.head(typed_block(Evaluate, params, "evaluate").timed_rows)


def time_predictions(
    timed_contexts: pd.DataFrame, engine: InferenceEngine, reasoner_adapter: AdapterArtifact, predictor_adapter: AdapterArtifact, prompting: Prompting, generation: dict[str, Any]
) -> pd.DataFrame:
    """Table 6 on the timed rows, nothing answered from the inference cache: one
    prediction at a time as the paper timed it (the reason, then the rating: what
    one user waits), then the same rows in one batch (what a set of requests
    costs per row). Timing ``test_predictions`` instead would time the cache
    whenever ``evaluate`` is rerun."""
    engine.load_adapters({"reasoner": reasoner_adapter, "predictor": predictor_adapter})
    timed = []
    with engine.uncached():
        for _, context in timed_contexts.iterrows():
            one = context.to_frame().T
            began = time.perf_counter()
            reason = generate_reasons(engine, one, "reasoner", prompting, generation, batch_size=1)
            score_ratings(engine, one, reason["reason"], "predictor", prompting, batch_size=1)
            timed.append({"mode": "one_at_a_time", "user_id": context["user_id"], "item_id": context["item_id"],
                          "seconds": time.perf_counter() - began, "new_tokens": int(reason["new_tokens"].iloc[0]) + 1})  # fmt: skip
        batched = predict_with_reasons(timed_contexts, engine, reasoner_adapter, predictor_adapter, prompting, generation)
    timed += [{"mode": "batched", **row} for row in batched[["user_id", "item_id", "seconds", "new_tokens"]].to_dict("records")]
    return pd.DataFrame(timed, columns=["mode", "user_id", "item_id", "seconds", "new_tokens"])


def predict_without_reasons(test_contexts: pd.DataFrame, engine: InferenceEngine, adapter: AdapterArtifact, prompting: Prompting) -> pd.DataFrame:
    """The "Without Reason" ablation (Table 4's first row) on the test rows."""
    engine.load_adapters({"predictor_no_reason": adapter})
    ratings, _ = score_ratings(engine, test_contexts, None, "predictor_no_reason", prompting)
    return test_contexts[["user_id", "item_id", "rating"]].assign(prediction=ratings)


def compile_accuracy(test_predictions: pd.DataFrame, no_reason_predictions: pd.DataFrame, baseline_predictions: pd.DataFrame) -> pd.DataFrame:
    """Table 2: MAE and RMSE for every method on the same test rows."""
    long = pd.concat(
        [
            test_predictions[["user_id", "item_id", "rating", "prediction"]].assign(method="Reason4Rec"),
            no_reason_predictions.assign(method="Reason4Rec w/o reason"),
            baseline_predictions,
        ],
        ignore_index=True,
    )
    table = accuracy_table(long)
    logger.info("Rating accuracy on %d test rows:\n%s", table["rows"].iloc[0], table.to_string(index=False, float_format="%.4f"))
    return table


def summarize_distillation(distilled_reasons: pd.DataFrame, interactions_train: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """Algorithm 1's attempts in figures, and (with ground truth) the aspects the accepted reasons name."""
    vocabulary = typed_block(Evaluate, params, "evaluate").aspect_vocabulary
    per_pair = distilled_reasons.groupby("pair_id")["accepted"].any()
    first = distilled_reasons[distilled_reasons["attempt"] == 0]
    hinted = distilled_reasons[distilled_reasons["hinted"]]
    taught = accepted_reasons(distilled_reasons).merge(interactions_train, on=["user_id", "item_id"], how="left", suffixes=("", "_train"))
    teacher_aspects = (
        aspect_recovery(taught["reason"].tolist(), [list(p) + list(n) for p, n in zip(taught["true_positive_aspects"], taught["true_negative_aspects"])], vocabulary)
        if "true_positive_aspects" in taught
        else None
    )
    return {
        "teacher_reason_aspects": teacher_aspects,
        "distillation": {
            "pairs": int(len(per_pair)),
            "pairs_accepted": int(per_pair.sum()),
            "attempts": int(len(distilled_reasons)),
            "first_attempt_acceptance": float(first["accepted"].mean()) if len(first) else float("nan"),
            "hinted_attempts": int(len(hinted)),
            "hinted_accepted": int(hinted["accepted"].sum()),
            "mean_attempts_per_pair": float(distilled_reasons.groupby("pair_id").size().mean()) if len(per_pair) else float("nan"),
            "statuses": {k: int(v) for k, v in distilled_reasons["status"].value_counts().items()},
        },
    }


def assess_reasons(test_predictions: pd.DataFrame, interactions_test: pd.DataFrame, gptscore: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The reasoner's test reasons against the target reviews (Table 3's offline measures), and the GPTScore judging."""
    vocabulary = typed_block(Evaluate, params, "evaluate").aspect_vocabulary
    return {"reason_quality": {**reason_quality(test_predictions, interactions_test, vocabulary), "gptscore": gptscore.get("gptscore")}, "gptscore": gptscore}


def assess_predictions(test_predictions: pd.DataFrame, counterfactual_predictions: pd.DataFrame) -> dict[str, Any]:
    """Does the rating follow the reason? The counterfactual reasons' shift and the calibration of the rating distribution."""
    return {
        "test_rows": int(len(test_predictions)),
        "counterfactual_reasons": counterfactual_summary(counterfactual_predictions),
        "calibration": calibration_summary(test_predictions),
    }


TIMING_NOTES = {
    "one_at_a_time": "the paper's way (Table 6): each row's reason, then its rating, alone and uncached",
    "batched": "the same rows' reasons generated in one batch, then their ratings scored, uncached; wall time shared equally among the rows",
}


def _cost(timings: pd.DataFrame, note: str) -> dict[str, Any]:
    return {
        "rows": int(len(timings)),
        "seconds_per_prediction": float(timings["seconds"].mean()) if len(timings) else None,
        "generated_tokens_per_prediction": float(timings["new_tokens"].mean()) if len(timings) else None,
        "note": note,
    }


def compile_metrics(
    accuracy: pd.DataFrame, reasons: dict[str, Any], distillation: dict[str, Any], reward_check: pd.DataFrame, predictions: dict[str, Any], timings: pd.DataFrame
) -> dict[str, Any]:
    """``evaluation_metrics``: accuracy per method, reason quality (the reasoner's test
    reasons, and with ground truth the teacher's accepted reasons it learned from),
    reward check, distillation, whether the rating follows the reason and inference cost."""
    return {
        "test_rows": predictions["test_rows"],
        "accuracy": accuracy.to_dict("records"),
        "reason_quality": reasons["reason_quality"],
        "teacher_reason_aspects": distillation["teacher_reason_aspects"],
        "gptscore": reasons["gptscore"],
        "reward_check": reward_check.to_dict("records"),
        "distillation": distillation["distillation"],
        "counterfactual_reasons": predictions["counterfactual_reasons"],
        "calibration": predictions["calibration"],
        "inference_cost": {
            "hardware": describe_device(),
            **{mode: _cost(timings[timings["mode"] == mode], note) for mode, note in TIMING_NOTES.items()},
        },
    }


def select_report_examples(test_predictions: pd.DataFrame, interactions_test: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """A fixed-seed handful of test rows, with their reviews, that the report shows in full."""
    examples = test_predictions.merge(interactions_test[["user_id", "item_id", "review"]], on=["user_id", "item_id"])
    return examples.sample(min(typed_block(Evaluate, params, "evaluate").report_examples, len(test_predictions)), random_state=0)


def plot_results(
    accuracy: pd.DataFrame, test_predictions: pd.DataFrame, distilled_reasons: pd.DataFrame, tau: float, counterfactual_predictions: pd.DataFrame
) -> tuple[plt.Figure, ...]:
    """The report's figures, in ``PLOT_FILES``' order (the pipeline's ``plot_*`` outputs)."""
    figures = plots(accuracy, test_predictions, distilled_reasons, tau, counterfactual_predictions)
    return tuple(figures[name] for name in PLOT_FILES)


def write_report(metrics: dict[str, Any], accuracy: pd.DataFrame, reward_check: pd.DataFrame, distilled_reasons: pd.DataFrame, examples: pd.DataFrame) -> str:
    return markdown_report(metrics, accuracy, reward_check, distilled_reasons, examples)
