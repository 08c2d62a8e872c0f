"""Refining the trained reasoner by reinforcement: GRPO with the frozen predictor's error as the reward.

Supervised fine-tuning spreads its signal over every token of a reason, while
the verdict that decides the rating is a few of them. Here the reasoner
samples a group of reasons per prompt, the trained predictor (frozen, on the
run's engine) rates each one by logit-weighted decoding, and the reward is
minus that rating's absolute error, minus ``penalty`` for a reason that states
the rating (``prompts.reveals_rating``, the filter Algorithm 1 applies) or is
cut short. The fork innocentbai/Reason4Rec-GRPO uses the same reward; unlike
it, the adapter is continued trainable (``reason4rec.llm.reinforcement``) and
a reason that cannot be scored stops the run instead of earning 0.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from reason4rec import contexts as ctx
from reason4rec.completions import CompletionClient, CompletionRequest
from reason4rec.evaluation.metrics import accuracy_table
from reason4rec.evaluation.report import markdown_table
from reason4rec.llm.artifacts import AdapterArtifact, BaseModelArtifact
from reason4rec.llm.chat import end_of_turn_ids
from reason4rec.llm.engine import InferenceEngine
from reason4rec.llm.loading import load_tokenizer
from reason4rec.llm.reinforcement import refine_adapter
from reason4rec.llm.training import fingerprint
from reason4rec.parameters import DistillReasons, Prompting, ReasonerRLConfig, check_library_settings, prompting_of
from reason4rec.prompts import reveals_rating
from reason4rec.teacher.rules import VERDICTS, verdict_of
from reason4rec.typed_config import typed_block

logger = logging.getLogger(__name__)

# Where the sampled reason goes in each example's predictor prompt.
REASON_SLOT = "<|reason|>"
REFINEMENT_COLUMNS = ["user_id", "item_id", "rating", "prompt", "predictor_prompt"]
SCORE_COLUMNS = ["example", "reason", "rating", "prediction", "error", "stated_rating", "cut_short", "penalised", "verdict", "reward"]
# The metrics the reward logs per step (TRL averages them over its logging steps), beside TRL's own ``reward``.
METRIC_PREFIX = "refine/"


def refinement_examples(contexts: pd.DataFrame, prompting: Prompting) -> pd.DataFrame:
    """One example per context: the reasoner prompt (``prompt``, what the policy answers), the true
    ``rating``, and the predictor prompt with ``REASON_SLOT`` where a sampled reason goes
    (``predictor_prompt``), so the reward needs neither the contexts nor the prompt settings."""
    settings, rows = prompting_of(prompting), contexts.to_dict("records")
    templates = [ctx.predictor_prompt(r, settings, REASON_SLOT) for r in rows]
    for index, (row, template) in enumerate(zip(rows, templates)):
        if template.count(REASON_SLOT) != 1:
            raise ValueError(f"context row {index} ({row['user_id']}, {row['item_id']}) already holds {REASON_SLOT!r}: the reason slot would be ambiguous")
    return pd.DataFrame(
        {
            "user_id": contexts["user_id"].to_numpy(),
            "item_id": contexts["item_id"].to_numpy(),
            "rating": contexts["rating"].astype(float).to_numpy(),
            "prompt": [ctx.reasoner_prompt(r, settings) for r in rows],
            "predictor_prompt": templates,
        },
        columns=REFINEMENT_COLUMNS,
    )


def fill_reason(template: str, reason: str) -> str:
    return template.replace(REASON_SLOT, reason, 1)


class PredictorReward:
    """The GRPO reward: minus the absolute error of the frozen predictor's rating given each sampled
    reason, minus ``penalty`` for a reason that states the rating or is cut short.

    ``examples`` is ``refinement_examples``'s table; TRL passes each completion's
    row number as the ``example`` column. Every reason is scored (one batched
    engine call), penalised or not, so the error is logged for all of them.
    A failed or non-finite score raises: a silent 0 would be a reward.
    """

    __name__ = "predictor_error"  # TRL names the reward's log entries after it

    def __init__(self, engine: InferenceEngine, predictor: str, examples: pd.DataFrame, penalty: float, stop_ids: Sequence[int]):
        self.engine, self.predictor, self.penalty = engine, predictor, penalty
        self.templates = examples["predictor_prompt"].tolist()
        self.ratings = examples["rating"].astype(float).tolist()
        self.stop_ids = set(stop_ids)

    def score(self, example: Sequence[int], reasons: Sequence[str], cut_short: Sequence[bool]) -> pd.DataFrame:
        """Each reason's rating, error, penalties, verdict and reward (``SCORE_COLUMNS``)."""
        if not len(example) == len(reasons) == len(cut_short):
            raise ValueError(f"{len(reasons)} reasons for {len(example)} examples and {len(cut_short)} cut-short flags")
        prompts = [fill_reason(self.templates[i], reason) for i, reason in zip(example, reasons)]
        predictions = self.engine.score_ratings(prompts, self.predictor, desc="rewarding")
        if len(predictions) != len(prompts) or not all(isinstance(p, (int, float)) and math.isfinite(p) for p in predictions):
            raise RuntimeError(f"the {self.predictor} adapter returned {len(predictions)} ratings for {len(prompts)} reasons, or a non-finite one: {predictions[:4]}")
        scores = pd.DataFrame({"example": list(example), "reason": list(reasons), "rating": [self.ratings[i] for i in example], "prediction": predictions})
        scores["error"] = (scores["prediction"] - scores["rating"]).abs()
        scores["stated_rating"] = [reveals_rating(r) for r in reasons]
        scores["cut_short"] = list(cut_short)
        scores["penalised"] = scores["stated_rating"] | scores["cut_short"]
        scores["verdict"] = [verdict_of(r) for r in reasons]
        scores["reward"] = -scores["error"] - self.penalty * scores["penalised"]
        return scores[SCORE_COLUMNS]

    def __call__(self, prompts: list, completions: list, completion_ids: list[list[int]], example: list[int], log_metric: Callable | None = None, **_: Any) -> list[float]:
        reasons = [(c[-1]["content"] if isinstance(c, list) else c).strip() for c in completions]
        cut_short = [not ids or ids[-1] not in self.stop_ids for ids in completion_ids]
        scores = self.score(example, reasons, cut_short)
        parts = reward_parts(scores)
        if log_metric is not None:
            for key, value in parts.items():
                log_metric(METRIC_PREFIX + key, value)
        logger.info(
            "GRPO rewards: mean %.3f, spread within groups %.3f, penalised %.0f%%, verdicts %s",
            parts["reward"], parts["spread_within_groups"], 100 * parts["penalised"],
            ", ".join(f"{v} {parts['verdict/' + v]:.0%}" for v in [*VERDICTS, "other"] if parts["verdict/" + v]),
        )  # fmt: skip
        return scores["reward"].tolist()


def reward_parts(scores: pd.DataFrame) -> dict[str, float]:
    """One batch of ``PredictorReward.score``: the mean reward and error, the mean spread of the
    rewards within a prompt's group (0 everywhere: nothing to learn from), the shares penalised,
    stating the rating and cut short, and the share of each verdict among the samples."""
    groups = scores.groupby("example")["reward"]
    parts = {
        "reward": float(scores["reward"].mean()),
        "error": float(scores["error"].mean()),
        "spread_within_groups": float(groups.std(ddof=0).mean()),
        "penalised": float(scores["penalised"].mean()),
        "stated_rating": float(scores["stated_rating"].mean()),
        "cut_short": float(scores["cut_short"].mean()),
    }
    shares = scores["verdict"].value_counts(normalize=True)
    return parts | {f"verdict/{v}": float(shares.get(v, 0.0)) for v in [*VERDICTS, "other"]}


def refine_reasoner(
    base_model: BaseModelArtifact,
    reasoner_adapter: AdapterArtifact,
    predictor_adapter: AdapterArtifact,
    engine: InferenceEngine,
    examples: pd.DataFrame,
    settings: dict[str, Any],
) -> tuple[AdapterArtifact, pd.DataFrame]:
    """GRPO of the trained reasoner on ``examples`` (``refinement_examples``), rewarded by the frozen
    predictor on ``engine``; ``settings`` is the ``llm.experts.reasoner_rl`` block. Returns the
    refined reasoner (``reasoner_rl``) and its per-step log."""
    config = typed_block(ReasonerRLConfig, settings, "llm.experts.reasoner_rl")
    check_library_settings(config.training, "grpo", "llm.experts.reasoner_rl.training")
    engine.load_adapters({"predictor": predictor_adapter})
    reward = PredictorReward(engine, "predictor", examples, config.penalty, end_of_turn_ids(load_tokenizer(base_model)))
    identity = {"reward": {"predictor_run": predictor_adapter.metadata.get("run"), "penalty": config.penalty, "examples": fingerprint(examples.to_dict("list"))}}
    return refine_adapter(
        base_model, reasoner_adapter, examples[["prompt"]].assign(example=range(len(examples))), reward, config.training, "reasoner_rl", identity
    )


def teacher_verdicts(test_contexts: pd.DataFrame, teacher: CompletionClient, prompting: Prompting, distill_params: dict[str, Any]) -> pd.DataFrame:
    """The verdict the teacher gives each test row, asked as Algorithm 1 first asks it (no hint):
    what a reasoner that follows the evidence as the teacher does would say. Only the rules
    teacher closes its reasons with ``VERDICTS``; another teacher's are ``other`` unless it copies them."""
    config = typed_block(DistillReasons, distill_params, "distill_reasons")
    settings, rows = prompting_of(prompting), test_contexts.to_dict("records")
    requests = [CompletionRequest(ctx.reasoner_prompt(r, settings), temperature=config.temperature, max_tokens=config.max_tokens) for r in rows]
    answers = teacher.complete(requests, stage="teacher_verdicts")
    failed = [index for index, answer in enumerate(answers) if not answer.ok]
    if failed:
        raise RuntimeError(f"the teacher did not answer {len(failed)} of {len(requests)} test rows (first: row {failed[0]}): no verdict agreement without them")
    return test_contexts[["user_id", "item_id"]].assign(verdict=[verdict_of(a.text) for a in answers]).reset_index(drop=True)


def compare_refined_reasoner(refined: pd.DataFrame, supervised: pd.DataFrame, no_reason: pd.DataFrame, verdicts: pd.DataFrame) -> pd.DataFrame:
    """Reason4Rec + GRPO beside Reason4Rec and its "w/o reason" ablation on the same test rows:
    MAE, RMSE, Pearson, and for the two reasoners the verdict mix of their reasons and how often
    their verdict is the teacher's (``teacher_verdicts``)."""
    columns = ["user_id", "item_id", "rating", "prediction"]
    methods = {"Reason4Rec + GRPO": refined, "Reason4Rec": supervised, "Reason4Rec w/o reason": no_reason}
    table = accuracy_table(pd.concat([frame[columns].assign(method=name) for name, frame in methods.items()], ignore_index=True))
    teacher = verdicts.set_index(["user_id", "item_id"])["verdict"]
    mixes, agreements = {}, {}
    for name in ("Reason4Rec + GRPO", "Reason4Rec"):
        frame = methods[name]
        given = pd.Series([verdict_of(r) for r in frame["reason"]], index=pd.MultiIndex.from_frame(frame[["user_id", "item_id"]]))
        counts = given.value_counts()
        mixes[name] = ", ".join(f"{int(counts[v])} {v}" for v in [*VERDICTS, "other"] if v in counts)
        agreements[name] = float((given == teacher.reindex(given.index)).mean())
    constant = teacher.value_counts(normalize=True)
    table["verdicts"] = table["method"].map(mixes)
    table["teacher_agreement"] = table["method"].map(agreements)
    logger.info(
        "Reason4Rec + GRPO on %d test rows (a constant verdict agrees with the teacher at most %.0f%%):\n%s",
        int(table["rows"].iloc[0]), 100 * float(constant.max()), table.to_string(index=False, float_format="%.4f"),
    )  # fmt: skip
    return table


def refinement_report(table: pd.DataFrame, log: pd.DataFrame) -> str:
    """The comparison as Markdown beside ``evaluate``'s report, with the reward curve."""
    steps = len(log)
    first, last = (float(log["reward"].iloc[0]), float(log["reward"].iloc[-1])) if steps else (float("nan"), float("nan"))
    shown = table.assign(teacher_agreement=table["teacher_agreement"].map(lambda v: "" if v != v else f"{v:.0%}"), verdicts=table["verdicts"].fillna(""))
    return "\n".join(
        [
            "# Reason4Rec + GRPO: the reasoner refined against the frozen predictor",
            "",
            f"Test rows: {int(table['rows'].iloc[0])}, the rows `evaluate` scores, with the same predictor. "
            f"GRPO ran {steps} logged steps; the mean reward (minus the predictor's absolute error, minus the penalty) went from {first:.3f} to {last:.3f}. "
            "`teacher_agreement`: how often a reason's verdict is the one the teacher gives that row.",
            "",
            markdown_table(shown),
            "",
            "![reward per step](refinement_rewards.png)",
            "",
        ]
    )


def plot_refinement(log: pd.DataFrame) -> plt.Figure:
    """Per step: the mean reward and the predictor's mean error, and the verdict mix of the sampled reasons."""
    figure, (rewards, verdicts) = plt.subplots(1, 2, figsize=(10, 3.6))
    steps = log["step"] if "step" in log else pd.Series(range(1, len(log) + 1))
    rewards.plot(steps, log["reward"], label="mean reward")
    if f"{METRIC_PREFIX}error" in log:
        rewards.plot(steps, log[f"{METRIC_PREFIX}error"], label="mean |error|")
    rewards.set(xlabel="step", title="GRPO reward")
    rewards.legend()
    shares = [log.get(f"{METRIC_PREFIX}verdict/{v}", pd.Series(0.0, index=log.index)).fillna(0.0) for v in [*VERDICTS, "other"]]
    verdicts.stackplot(steps, *shares, labels=[*VERDICTS, "other"])
    verdicts.set(xlabel="step", ylabel="share of sampled reasons", ylim=(0, 1), title="verdicts sampled")
    verdicts.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    return figure
