"""Aspect-preference summaries of reviews (the paper's section 3.1) as a table, from the
teacher's answers or the trained summarizer's: shared by ``summarize`` and the
:class:`~reason4rec.recommender.Recommender`, which summarizes reviews given in a call."""

from __future__ import annotations

import pandas as pd

from reason4rec import prompts
from reason4rec.completions import CompletionClient, CompletionRequest, complete_with_guard
from reason4rec.llm.artifacts import AdapterArtifact
from reason4rec.llm.engine import InferenceEngine
from reason4rec.parameters import SummaryGeneration, SummaryTeacher

SUMMARY_COLUMNS = ["user_id", "item_id", "positive", "negative", "preferences", "summary_text", "parsed", "truncated", "source"]


def summary_table(interactions: pd.DataFrame, texts: list[str | None], truncated: list[bool], source: str) -> pd.DataFrame:
    """One row per interaction; an answer that does not parse keeps ``None`` fields,
    and ``truncated`` says whether it was cut at the token budget."""
    rows = []
    for (user_id, item_id), text, cut in zip(interactions[["user_id", "item_id"]].itertuples(index=False), texts, truncated):
        fields = prompts.parse_summary(text or "")
        rows.append(
            {
                "user_id": user_id,
                "item_id": item_id,
                **(fields or {"positive": prompts.NONE_MARK, "negative": prompts.NONE_MARK, "preferences": prompts.NONE_MARK}),
                "summary_text": text or "",
                "parsed": fields is not None,
                "truncated": fields is None and cut,
                "source": source,
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def summarizer_table(interactions: pd.DataFrame, engine: InferenceEngine, adapter: AdapterArtifact, domain: str, generation: SummaryGeneration) -> pd.DataFrame:
    """The trained summarizer's summary of each interaction (``title``, ``rating``, ``review``), batched and greedy."""
    engine.load_adapters({"summarizer": adapter})
    summary_prompts = [prompts.summarizer_prompt(domain, r.title, r.rating, r.review) for r in interactions.itertuples()]
    outputs = engine.generate(summary_prompts, "summarizer", max_new_tokens=generation.max_new_tokens, desc="summarizing")
    return summary_table(interactions, [o["text"] for o in outputs], [o["truncated"] for o in outputs], "summarizer")


def teacher_summary_table(interactions: pd.DataFrame, teacher: CompletionClient, domain: str, asked: SummaryTeacher, stage: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The teacher's summary of each interaction, and every attempt: an answer that does not
    parse into the three fields is asked again, up to ``asked.max_attempts``."""
    requests = [
        CompletionRequest(prompts.summarizer_prompt(domain, r.title, r.rating, r.review), temperature=asked.temperature, max_tokens=asked.max_tokens)
        for r in interactions.itertuples()
    ]
    answers, attempts = complete_with_guard(teacher, requests, lambda text: prompts.parse_summary(text) is not None, asked.max_attempts, stage)
    truncated = attempts.sort_values("attempt").groupby("request")["outcome"].last() == "truncated"
    return summary_table(interactions, [a.text for a in answers], truncated.reindex(range(len(requests)), fill_value=False).tolist(), "teacher"), attempts
