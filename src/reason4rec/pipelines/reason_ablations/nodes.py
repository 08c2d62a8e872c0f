"""Nodes of ``reason_ablations``: the reasoner's supervision for each of Table 4's alternatives, and the table."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from reason4rec import contexts as ctx
from reason4rec.completions import CompletionClient, CompletionRequest
from reason4rec.distillation import usable_reason
from reason4rec.evaluation.gptscore import judge_reasons
from reason4rec.evaluation.metrics import accuracy_table
from reason4rec.evaluation.report import markdown_table
from reason4rec.parameters import DistillReasons, Prompting
from reason4rec.typed_config import typed_block

logger = logging.getLogger(__name__)

# Table 4's alternatives to Algorithm 1's reasons (section 4.3.2), by the name the table gives them.
SUPERVISIONS = {
    "review_guided": "Review-guided Reason",
    "review_inferred": "Review-inferred Reason",
    "history_inferred": "History-inferred Reason",
}
# Algorithm 1's statuses of a first reason that came back whole and states no rating.
USABLE_STATUSES = ("accepted", "rejected_by_reward")


def ablation_reasoner_sft_examples(
    reasoner_contexts: pd.DataFrame,
    distilled_reasons: pd.DataFrame,
    teacher: CompletionClient,
    prompting: Prompting,
    distill_params: dict[str, Any],
    supervision: str,
) -> pd.DataFrame:
    """The reasoner prompt answered by another supervision than Algorithm 1's accepted reason.

    ``review_guided``: the target review itself. ``review_inferred``: the
    teacher's reason inferred from the target review (written as Algorithm 1
    writes candidates; an answer that failed, was cut short or states the
    rating is left out). ``history_inferred``: the teacher's first reason from
    the histories, Algorithm 1's first attempt, kept whatever the reward model
    said of it (no filter).
    """
    if supervision not in SUPERVISIONS:
        raise ValueError(f"unknown reason_ablations supervision {supervision!r}: expected one of {sorted(SUPERVISIONS)}")
    if supervision == "review_guided":
        answered = reasoner_contexts.assign(reason=reasoner_contexts["review"])
    elif supervision == "review_inferred":
        distill = typed_block(DistillReasons, distill_params, "distill_reasons")
        requests = [CompletionRequest(ctx.review_inferred_prompt(r, prompting), temperature=distill.temperature, max_tokens=distill.max_tokens) for r in reasoner_contexts.to_dict("records")]
        answers = teacher.complete(requests, stage="reason_ablations", desc="teacher review-inferred reasons")
        usable = [usable_reason(a, distill.max_tokens) for a in answers]
        answered = reasoner_contexts.assign(reason=[a.text for a in answers])[usable]
    else:
        first = distilled_reasons[(distilled_reasons["attempt"] == 0) & distilled_reasons["status"].isin(USABLE_STATUSES)]
        answered = reasoner_contexts.merge(first[["user_id", "item_id", "reason"]], on=["user_id", "item_id"], how="inner")
    logger.info("%s: %d of %d reasoner pairs supervised", SUPERVISIONS[supervision], len(answered), len(reasoner_contexts))
    rows = answered.to_dict("records")
    return pd.DataFrame({"prompt": [ctx.reasoner_prompt(r, prompting) for r in rows], "response": [r["reason"] for r in rows]})


def stack_reasoned_predictions(test_predictions: pd.DataFrame, **ablation_predictions: pd.DataFrame) -> pd.DataFrame:
    """The test predictions of Reason4Rec and of each alternative supervision, in one long table with a ``method`` column."""
    reasoned = {"Reason4Rec (Algorithm 1)": test_predictions, **{SUPERVISIONS[name]: ablation_predictions[name] for name in SUPERVISIONS}}
    return pd.concat([frame.assign(method=method) for method, frame in reasoned.items()], ignore_index=True)


def compile_reason_ablations(
    reasoned_predictions: pd.DataFrame,
    no_reason_predictions: pd.DataFrame,
    interactions_test: pd.DataFrame,
    teacher: CompletionClient,
    prompting: Prompting,
    evaluate_params: dict[str, Any],
) -> pd.DataFrame:
    """Table 4: MAE, RMSE and Pearson of Reason4Rec, "Without Reason" and each alternative, on the
    same test rows, and each reason-producing row's GPTScore (with an LLM teacher; see ``judge_reasons``)."""
    columns = ["user_id", "item_id", "rating", "prediction", "method"]
    long = pd.concat([no_reason_predictions.assign(method="Without Reason")[columns], reasoned_predictions[columns]], ignore_index=True)
    table = accuracy_table(long)
    scores = {
        method: judge_reasons(frame, interactions_test, teacher, prompting, evaluate_params)["gptscore"]
        for method, frame in reasoned_predictions.groupby("method", sort=False)
    }
    table["gptscore"] = table["method"].map(scores)
    logger.info("Table 4 on %d test rows:\n%s", table["rows"].iloc[0], table.to_string(index=False, float_format="%.4f"))
    return table


def reason_ablations_report(table: pd.DataFrame) -> str:
    """Table 4 as Markdown, beside ``evaluate``'s report."""
    return "\n".join(
        [
            "# Effect of the reason generation approach (Table 4)",
            "",
            f"Test rows: {int(table['rows'].iloc[0])}, the rows `evaluate` scores. Each alternative trains the reasoner on other answers "
            "than Algorithm 1's accepted reasons, then the predictor on that reasoner's reasons, with the same settings.",
            "",
            markdown_table(table),
            "",
        ]
    )
