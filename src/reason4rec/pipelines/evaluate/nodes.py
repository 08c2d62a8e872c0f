"""Nodes of ``evaluate``: Tables 2, 3, 5 and 6 on the test split, and the report."""

from __future__ import annotations

import dataclasses
import logging
import platform
import time
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import torch

from reason4rec import prompts
from reason4rec.data.synthetic import MUSIC_ASPECTS
from reason4rec.evaluation import baselines
from reason4rec.evaluation.metrics import accuracy_table
from reason4rec.distillation import accepted_reasons
from reason4rec.evaluation.reason_quality import aspect_recovery, reason_quality
from reason4rec.evaluation.report import markdown_report, plots
from reason4rec.inference import generate_reasons, score_ratings
from reason4rec.llm.artifacts import AdapterArtifact, BaseModelArtifact
from reason4rec.llm.engine import engine_for
from reason4rec.parameters import Baselines, Evaluate
from reason4rec.teacher import Teacher, TeacherRequest
from reason4rec.teacher.rules import ASPECT_KEYWORDS
from reason4rec.typed_config import typed_block

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS = ["user_id", "item_id", "rating", "reason", "prediction", "seconds", "new_tokens"]


def sample_test_rows(interactions_test: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """The test rows every method scores: a fixed-seed sample of ``test_rows`` (all when null), in time order."""
    config = typed_block(Evaluate, params, "evaluate")
    if config.test_rows is None or config.test_rows >= len(interactions_test):
        return interactions_test.reset_index(drop=True)
    return interactions_test.sample(config.test_rows, random_state=config.seed).sort_index().reset_index(drop=True)


def predict_with_reasons(
    test_contexts: pd.DataFrame,
    base_model: BaseModelArtifact,
    reasoner_adapter: AdapterArtifact,
    predictor_adapter: AdapterArtifact,
    domain: str,
    wording: str,
    generation: dict[str, Any],
    batch_size: int,
    inference: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Reason4Rec on the test rows: the reasoner writes a reason (``reason_generation``: greedy by default), the
    predictor scores the rating. ``seconds`` is this row's share of the batched
    reason generation plus rating scoring."""
    engine = engine_for(base_model, {"reasoner": reasoner_adapter, "predictor": predictor_adapter}, inference)
    reasons = generate_reasons(engine, test_contexts, "reasoner", domain, wording, generation, batch_size)
    ratings, scoring_seconds = score_ratings(engine, test_contexts, reasons["reason"], "predictor", domain, wording, batch_size)
    return pd.DataFrame(
        {
            "user_id": test_contexts["user_id"],
            "item_id": test_contexts["item_id"],
            "rating": test_contexts["rating"].astype(float),
            "reason": reasons["reason"].to_numpy(),
            "prediction": ratings,
            "seconds": reasons["seconds"].to_numpy() + scoring_seconds,
            "new_tokens": reasons["new_tokens"].to_numpy() + 1,  # the rating token
        }
    )[PREDICTION_COLUMNS]


def time_one_at_a_time(
    test_contexts: pd.DataFrame,
    base_model: BaseModelArtifact,
    reasoner_adapter: AdapterArtifact,
    predictor_adapter: AdapterArtifact,
    domain: str,
    wording: str,
    generation: dict[str, Any],
    params: dict[str, Any],
    inference: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Table 6 as the paper timed it: one prediction at a time (the reason, then the
    rating), nothing answered from the inference cache, on the first
    ``evaluate.timed_rows`` test rows. The batched figure of ``test_predictions``
    is what a whole test set costs; this is what one user waits."""
    rows = typed_block(Evaluate, params, "evaluate").timed_rows
    engine = engine_for(base_model, {"reasoner": reasoner_adapter, "predictor": predictor_adapter}, inference)
    timed = []
    with engine.uncached():
        for _, context in test_contexts.head(rows).iterrows():
            one = context.to_frame().T
            began = time.perf_counter()
            reason = generate_reasons(engine, one, "reasoner", domain, wording, generation, batch_size=1)
            score_ratings(engine, one, reason["reason"], "predictor", domain, wording, batch_size=1)
            timed.append({"user_id": context["user_id"], "item_id": context["item_id"], "seconds": time.perf_counter() - began, "new_tokens": int(reason["new_tokens"].iloc[0]) + 1})
    return pd.DataFrame(timed, columns=["user_id", "item_id", "seconds", "new_tokens"])


def predict_without_reasons(
    test_contexts: pd.DataFrame,
    base_model: BaseModelArtifact,
    adapter: AdapterArtifact,
    domain: str,
    wording: str,
    batch_size: int,
    inference: dict[str, Any] | None = None,
) -> pd.DataFrame:
    engine = engine_for(base_model, {"predictor_no_reason": adapter}, inference)
    ratings, _ = score_ratings(engine, test_contexts, None, "predictor_no_reason", domain, wording, batch_size)
    return test_contexts[["user_id", "item_id", "rating"]].assign(prediction=ratings)


def baseline_predictions(interactions_train: pd.DataFrame, interactions_test: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Every baseline's prediction for every test row (long format)."""
    config = typed_block(Baselines, params, "baselines")
    test = interactions_test.reset_index(drop=True)
    methods = {
        "Global mean": lambda: baselines.global_mean_predictions(interactions_train, test),
        "BaselineOnly": lambda: baselines.surprise_predictions(interactions_train, test, "BaselineOnly", config.baseline_only),
        "SVD (biased MF)": lambda: baselines.surprise_predictions(interactions_train, test, "SVD", config.svd),
        "SVD++": lambda: baselines.surprise_predictions(interactions_train, test, "SVD++", config.svdpp),
        "DeepCoNN": lambda: baselines.deepconn_predictions(interactions_train, test, config.deepconn),
    }
    frames = []
    for name, predict in methods.items():
        logger.info("baseline %s", name)
        frames.append(test[["user_id", "item_id", "rating"]].assign(method=name, prediction=predict()))
    return pd.concat(frames, ignore_index=True)


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


def judge_reasons(test_predictions: pd.DataFrame, interactions_test: pd.DataFrame, teacher: Teacher, domain: str, params: dict[str, Any]) -> dict[str, Any]:
    """GPTScore as the paper reports it (Table 3): a judge model scores 0..100 how well
    each reason aligns with the user's review, averaged. The judge is
    ``evaluate.gptscore_judge`` (GPT-4o in the paper) on the teacher's API, or the
    teacher's own model; its answers go to the teacher's cache and usage. Only with an
    LLM teacher: the rules teacher cannot judge."""
    if teacher.backend.name == "rules":
        return {"gptscore": None, "note": "needs an LLM teacher (teacher.backend: openai)"}
    judge_model = typed_block(Evaluate, params, "evaluate").gptscore_judge
    if judge_model and judge_model != teacher.backend.model:
        teacher = dataclasses.replace(teacher, backend=teacher.backend.for_model(judge_model))
    joined = test_predictions.merge(interactions_test[["user_id", "item_id", "review"]], on=["user_id", "item_id"])
    requests = [TeacherRequest(prompts.gptscore_prompt(domain, r.review, r.reason), temperature=0.0, max_tokens=8) for r in joined.itertuples()]
    scores = [prompts.parse_score(a.text) if a.ok else None for a in teacher.complete(requests, stage="gptscore")]
    valid = [s for s in scores if s is not None]
    return {"gptscore": float(sum(valid) / len(valid)) if valid else None, "judged": len(valid), "unjudged": len(scores) - len(valid), "judge": teacher.backend.model}


def compile_metrics(
    accuracy: pd.DataFrame,
    test_predictions: pd.DataFrame,
    interactions_test: pd.DataFrame,
    interactions_train: pd.DataFrame,
    reward_check: pd.DataFrame,
    distilled_reasons: pd.DataFrame,
    gptscore: dict[str, Any],
    timings: pd.DataFrame,
) -> dict[str, Any]:
    """``evaluation_metrics``: accuracy per method, reason quality (the reasoner's test
    reasons, and with ground truth the teacher's accepted reasons it learned from),
    reward check, distillation and cost."""
    vocabulary = sorted(set(MUSIC_ASPECTS) | set(ASPECT_KEYWORDS))
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
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
        "test_rows": int(len(test_predictions)),
        "accuracy": accuracy.to_dict("records"),
        "reason_quality": {**reason_quality(test_predictions, interactions_test, vocabulary), "gptscore": gptscore.get("gptscore")},
        "teacher_reason_aspects": teacher_aspects,
        "gptscore": gptscore,
        "reward_check": reward_check.to_dict("records"),
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
        "inference_cost": {
            "hardware": device,
            "one_at_a_time": {
                "rows": int(len(timings)),
                "seconds_per_prediction": float(timings["seconds"].mean()) if len(timings) else None,
                "generated_tokens_per_prediction": float(timings["new_tokens"].mean()) if len(timings) else None,
                "note": "the paper's way (Table 6): each row's reason, then its rating, alone and uncached",
            },
            "batched": {
                "rows": int(len(test_predictions)),
                "seconds_per_prediction": float(test_predictions["seconds"].mean()),
                "generated_tokens_per_prediction": float(test_predictions["new_tokens"].mean()),
                "note": "batched reason generation plus rating scoring, wall time shared equally among the rows",
            },
        },
    }


def build_report(
    metrics: dict[str, Any], accuracy: pd.DataFrame, test_predictions: pd.DataFrame, interactions_test: pd.DataFrame,
    reward_check: pd.DataFrame, distilled_reasons: pd.DataFrame, params: dict[str, Any], tau: float,
) -> tuple[str, plt.Figure, plt.Figure, plt.Figure, plt.Figure]:  # fmt: skip
    examples = test_predictions.merge(interactions_test[["user_id", "item_id", "review"]], on=["user_id", "item_id"]).sample(
        min(typed_block(Evaluate, params, "evaluate").report_examples, len(test_predictions)), random_state=0
    )
    figures = plots(accuracy, test_predictions, distilled_reasons, tau)
    text = markdown_report(metrics, accuracy, reward_check, distilled_reasons, examples)
    return text, figures["error_by_method"], figures["predicted_vs_true"], figures["s_eval_distribution"], figures["acceptance_by_attempt"]
