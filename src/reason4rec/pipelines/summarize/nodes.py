"""Nodes of ``summarize``: preference distillation (the paper's section 3.1)."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from reason4rec import prompts
from reason4rec.completions import CompletionClient
from reason4rec.llm.artifacts import AdapterArtifact
from reason4rec.llm.engine import InferenceEngine
from reason4rec.parameters import Prompting, Summarize, prompting_of
from reason4rec.summaries import summarizer_table, teacher_summary_table
from reason4rec.typed_config import typed_block

logger = logging.getLogger(__name__)

def request_teacher_summaries(
    interactions_train: pd.DataFrame, teacher: CompletionClient, prompting: Prompting, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Teacher summaries for a fixed-seed sample of training interactions:
    ``teacher_sample_size`` to train the summarizer on (``split`` = ``train``;
    ``null``: every training interaction but the held-out ones, as the published
    scripts do), then ``check_size`` held out to check it against (``split`` = ``check``).

    An answer that does not parse into the three fields is a rejected attempt
    (asked again up to ``teacher.max_attempts``), never a stored summary.
    """
    config = typed_block(Summarize, params, "summarize")
    for_training = len(interactions_train) - config.check_size if config.teacher_sample_size is None else config.teacher_sample_size
    sample = interactions_train.sample(min(for_training + config.check_size, len(interactions_train)), random_state=config.seed)
    summaries, attempts = teacher_summary_table(sample, teacher, prompting_of(prompting).domain, config.teacher, stage="summarize")
    summaries["split"] = ["train" if position < for_training else "check" for position in range(len(summaries))]
    outcomes = attempts["outcome"].value_counts()
    logger.info(
        "teacher summaries: %d stored; attempts rejected by the format guard %d, cut at summarize.teacher.max_tokens %d, failed %d",
        summaries["parsed"].sum(), outcomes.get("rejected_by_guard", 0), outcomes.get("truncated", 0), outcomes.get("failed", 0),
    )  # fmt: skip
    return summaries[summaries["parsed"]].reset_index(drop=True), teacher.usage_table()


def summarizer_sft_examples(teacher_summaries: pd.DataFrame, interactions_train: pd.DataFrame, prompting: Prompting) -> pd.DataFrame:
    """(prompt, response) pairs: the summarizer prompt and the teacher's three-field summary."""
    joined = teacher_summaries[teacher_summaries["split"] == "train"].merge(interactions_train, on=["user_id", "item_id"], how="inner")
    domain = prompting_of(prompting).domain
    return pd.DataFrame(
        {
            "prompt": [prompts.summarizer_prompt(domain, r.title, r.rating, r.review) for r in joined.itertuples()],
            "response": [prompts.format_summary(*(_items(v) for v in (r.positive, r.negative, r.preferences))) for r in joined.itertuples()],
        }
    )


def _items(field: str) -> list[str]:
    return [] if field == prompts.NONE_MARK else [i.strip() for i in field.split(",") if i.strip()]


def summarize_interactions(
    history_pool: pd.DataFrame,
    engine: InferenceEngine,
    summarizer_adapter: AdapterArtifact,
    teacher: CompletionClient,
    prompting: Prompting,
    params: dict[str, Any],
) -> pd.DataFrame:
    """Offline summarization of every interaction that later prompts read.

    By default the trained summarizer writes them (batched, greedy); with
    ``use_teacher_summaries`` the teacher does, as for its training sample, and
    the summarizer is only checked (``check_summarizer``): generating a summary
    of every interaction is the costliest step on a CPU. A summary that does
    not parse keeps ``None`` fields and ``parsed=False``; the count is logged.
    """
    config, domain = typed_block(Summarize, params, "summarize"), prompting_of(prompting).domain
    if config.use_teacher_summaries:
        summaries, _ = teacher_summary_table(history_pool, teacher, domain, config.teacher, stage="summarize_all")
    else:
        summaries = summarizer_table(history_pool, engine, summarizer_adapter, domain, config.generation)
    unparsed = int((~summaries["parsed"]).sum())
    if unparsed:
        logger.warning(
            "%d of %d summaries do not parse into the three fields (%d of them cut at the token budget: raise summarize.generation.max_new_tokens "
            "or summarize.teacher.max_tokens); their fields are 'None'", unparsed, len(summaries), int(summaries["truncated"].sum()),
        )  # fmt: skip
    return summaries


def check_summarizer(
    teacher_summaries: pd.DataFrame,
    interactions_train: pd.DataFrame,
    engine: InferenceEngine,
    summarizer_adapter: AdapterArtifact,
    prompting: Prompting,
    params: dict[str, Any],
) -> pd.DataFrame:
    """The trained summarizer against the teacher on held-out interactions: how
    often its answer parses, and per field the F1 of its aspects against the teacher's."""
    held_out = teacher_summaries[teacher_summaries["split"] == "check"]
    if held_out.empty:
        return pd.DataFrame(columns=["field", "f1", "parsed", "rows"])
    targets = held_out[["user_id", "item_id"]].merge(interactions_train, on=["user_id", "item_id"], how="left")
    written = summarizer_table(targets, engine, summarizer_adapter, prompting_of(prompting).domain, typed_block(Summarize, params, "summarize").generation)
    rows = []
    for field in ("positive", "negative", "preferences"):
        scores = [_aspect_f1(_items(ours), _items(theirs)) for ours, theirs in zip(written[field], held_out[field])]
        rows.append({"field": field, "f1": float(sum(scores) / len(scores)), "parsed": float(written["parsed"].mean()), "rows": len(scores)})
    table = pd.DataFrame(rows)
    logger.info("summarizer vs teacher on %d held-out reviews:\n%s", len(held_out), table.to_string(index=False, float_format="%.3f"))
    return table


def _aspect_f1(ours: list[str], theirs: list[str]) -> float:
    """F1 of two aspect lists (case-insensitive); two empty lists agree."""
    a, b = {x.lower() for x in ours}, {x.lower() for x in theirs}
    if not a and not b:
        return 1.0
    hits = len(a & b)
    return 2 * hits / (len(a) + len(b))
