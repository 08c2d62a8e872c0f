"""Plots and the Markdown report of ``evaluate``."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reason4rec.evaluation.calibration import reliability_bins  # noqa: E402

PLOT_FILES = {
    "error_by_method": "error_by_method.png",
    "predicted_vs_true": "predicted_vs_true.png",
    "s_eval_distribution": "s_eval_distribution.png",
    "acceptance_by_attempt": "acceptance_by_attempt.png",
    "counterfactual_shift": "counterfactual_shift.png",
    "reliability": "reliability.png",
}


def plots(accuracy: pd.DataFrame, predictions: pd.DataFrame, distilled: pd.DataFrame, tau: float, counterfactual: pd.DataFrame) -> dict[str, plt.Figure]:
    figures = {}

    figure, axis = plt.subplots(figsize=(7, 3.8))
    positions = np.arange(len(accuracy))
    axis.bar(positions - 0.2, accuracy["mae"], 0.4, label="MAE")
    axis.bar(positions + 0.2, accuracy["rmse"], 0.4, label="RMSE")
    axis.set_xticks(positions, accuracy["method"], rotation=30, ha="right")
    axis.set(ylabel="error (stars)", title="Rating error per method (test split)")
    axis.legend(loc="lower right")
    figures["error_by_method"] = figure

    figure, axis = plt.subplots(figsize=(4.5, 4))
    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(predictions))
    axis.scatter(predictions["rating"] + jitter, predictions["prediction"], s=8, alpha=0.4)
    axis.plot([1, 5], [1, 5], color="grey", linewidth=1)
    axis.set(xlabel="true rating (jittered)", ylabel="Reason4Rec prediction", xlim=(0.5, 5.5), ylim=(0.5, 5.5), title="Predicted vs true")
    figures["predicted_vs_true"] = figure

    figure, axis = plt.subplots(figsize=(5.5, 3.5))
    scored = distilled["s_eval"].dropna()
    if len(scored):
        axis.hist(scored, bins=40)
    axis.axvline(tau, color="red", linestyle="--", label=f"tau = {tau}")
    axis.set(xlabel="s_eval = |r - r_reason| - |r - r_baseline|", ylabel="candidate reasons", title="distill_reasons: s_eval of every scored candidate")
    axis.legend()
    figures["s_eval_distribution"] = figure

    figure, axis = plt.subplots(figsize=(5.5, 3.5))
    by_attempt = distilled.groupby("attempt").agg(candidates=("accepted", "size"), accepted=("accepted", "sum"))
    axis.bar(by_attempt.index, by_attempt["candidates"], label="candidates")
    axis.bar(by_attempt.index, by_attempt["accepted"], label="accepted")
    axis.set(xlabel="attempt (0 = no hint)", ylabel="pairs", title="distill_reasons: acceptance per attempt")
    axis.legend()
    figures["acceptance_by_attempt"] = figure

    figure, axis = plt.subplots(figsize=(4.5, 4))
    for direction, label in ((1, "donor reason points up"), (-1, "donor reason points down")):
        rows = counterfactual[counterfactual["direction"] == direction]
        axis.scatter(rows["prediction"], rows["counterfactual_prediction"], s=10, alpha=0.5, label=label)
    if counterfactual.empty:
        axis.text(3, 3, "not measurable:\nno prediction above the median", ha="center", va="center")
    axis.plot([1, 5], [1, 5], color="grey", linewidth=1, label="reason ignored")
    axis.set(xlabel="rating with its own reason", ylabel="rating with the donor's reason", xlim=(0.8, 5.2), ylim=(0.8, 5.2), title="Counterfactual reasons")
    axis.legend(loc="upper left", fontsize="small")
    figures["counterfactual_shift"] = figure

    figure, axis = plt.subplots(figsize=(4.5, 4))
    bins = reliability_bins(predictions)
    axis.plot([1, 5], [1, 5], color="grey", linewidth=1, label="calibrated")
    axis.plot(bins["mean_predicted"], bins["mean_true"], marker="o", label="per bin of the prediction")
    for row in bins.itertuples():
        axis.annotate(f"n={row.rows}", (row.mean_predicted, row.mean_true), textcoords="offset points", xytext=(4, -10), fontsize="small")
    axis.set(xlabel="mean predicted rating", ylabel="mean true rating", xlim=(0.8, 5.2), ylim=(0.8, 5.2), title="Reliability of the predicted rating")
    axis.legend(loc="upper left", fontsize="small")
    figures["reliability"] = figure

    for figure in figures.values():
        figure.tight_layout()
    return figures


def markdown_report(metrics: dict[str, Any], accuracy: pd.DataFrame, reward_check: pd.DataFrame, distilled: pd.DataFrame, examples: pd.DataFrame) -> str:
    acceptance = distilled.groupby("pair_id")["accepted"].any()
    lines = [
        "# reason4rec evaluation",
        "",
        f"Test rows: {metrics['test_rows']}. Hardware: {metrics['inference_cost']['hardware']}.",
        "",
        "## Rating accuracy (Table 2)",
        "",
        markdown_table(accuracy),
        "",
        "![error per method](" + PLOT_FILES["error_by_method"] + ")",
        "![predicted vs true](" + PLOT_FILES["predicted_vs_true"] + ")",
        "",
        "## Reason quality against the target review (Table 3, offline)",
        "",
        markdown_table(pd.DataFrame([metrics["reason_quality"]])),
        "",
        *(
            ["Aspects named by the teacher's accepted reasons (what the reasoner learned from), against the same ground truth:", "", markdown_table(pd.DataFrame([metrics["teacher_reason_aspects"]])), ""]
            if metrics.get("teacher_reason_aspects")
            else []
        ),
        "## Reward model check (Table 5 rows)",
        "",
        markdown_table(reward_check),
        "",
        "## Reason distillation (Algorithm 1)",
        "",
        f"{int(acceptance.sum())} of {len(acceptance)} pairs got an accepted reason in {len(distilled)} attempts.",
        "",
        markdown_table(acceptance_by_attempt(distilled)),
        "",
        markdown_table(distilled["status"].value_counts().rename_axis("status").reset_index()),
        "",
        "![s_eval distribution](" + PLOT_FILES["s_eval_distribution"] + ")",
        "![acceptance per attempt](" + PLOT_FILES["acceptance_by_attempt"] + ")",
        "",
        *reason_following_section(metrics),
        "![counterfactual reasons](" + PLOT_FILES["counterfactual_shift"] + ")",
        "![reliability](" + PLOT_FILES["reliability"] + ")",
        "",
        "## Inference cost (Table 6)",
        "",
        markdown_table(_cost_table(metrics["inference_cost"])),
        "",
        "## Worked examples",
        "",
    ]
    for row in examples.itertuples():
        lines += [f"- **{row.user_id} / {row.item_id}**: true {row.rating:.1f}, predicted {row.prediction:.2f}", f"  - reason: {row.reason}", f"  - review: {row.review}"]
    return "\n".join(lines) + "\n"


def reason_following_section(metrics: dict[str, Any]) -> list[str]:
    """"Does the rating follow the reason?": the counterfactual reasons and the calibration of the
    rating distribution, as Markdown lines (the report's and docs/results.md's)."""
    counterfactual, calibration = metrics["counterfactual_reasons"], metrics["calibration"]
    lines = [
        "## Does the rating follow the reason?",
        "",
        "**Counterfactual reasons.** Each test row scored again with the reason of a row on the other side of the median prediction "
        "(the reason's verdict, read from the rating it led to). A predictor that ignored its reason would show no shift and no row moved.",
        "",
    ]
    if counterfactual["rows"]:
        shown = {key: counterfactual[key] for key in ("rows", "mean_shift_toward_reason", "share_toward_reason", "share_against_reason", "mean_absolute_shift")}
        lines += [markdown_table(pd.DataFrame([shown])), "", f"Pairing: {counterfactual['note']}. A row counts as moved at {counterfactual['moved_at_least']} stars or more.", ""]
    else:
        lines += [f"Rows: 0 ({counterfactual['note']}).", ""]
    coverage = {key: calibration[key] for key in ("rows", "interval_mass", "expected_coverage", "observed_coverage", "mean_interval_ratings", "brier_score")}
    lines += [
        f"**Calibration of the rating distribution.** The share of true ratings inside each distribution's central {calibration['interval_mass']:.0%} interval, "
        "beside the nominal mass and the mass the intervals hold (a discrete interval holds at least the nominal); the Brier score of the true rating (0 is best, 2 worst).",
        "",
        markdown_table(pd.DataFrame([coverage])),
        "",
        "Expected (mean predicted) against observed (mean true) rating per bin of the prediction:",
        "",
        markdown_table(pd.DataFrame(calibration["bins"], columns=["bin", "rows", "mean_predicted", "mean_true"])),
        "",
    ]
    return lines


def _cost_table(cost: dict[str, Any]) -> pd.DataFrame:
    """Seconds and generated tokens per prediction, one at a time (the paper's way) and batched."""
    return pd.DataFrame(
        [
            {"timing": name.replace("_", " "), "rows": cost[name]["rows"], "seconds_per_prediction": cost[name]["seconds_per_prediction"],
             "generated_tokens_per_prediction": cost[name]["generated_tokens_per_prediction"], "hardware": cost["hardware"]}
            for name in ("one_at_a_time", "batched")
        ]
    )  # fmt: skip


def acceptance_by_attempt(distilled: pd.DataFrame) -> pd.DataFrame:
    """Per attempt (0 = first, without the hint): candidates, accepted, and the acceptance rate."""
    table = distilled.groupby("attempt").agg(hinted=("hinted", "first"), candidates=("accepted", "size"), accepted=("accepted", "sum")).reset_index()
    table["accepted"] = table["accepted"].astype(int)
    table["rate"] = table["accepted"] / table["candidates"]
    return table


def markdown_table(frame: pd.DataFrame) -> str:
    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])
