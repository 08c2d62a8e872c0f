"""GPTScore (Table 3): a judge model scores 0..100 how well each reason aligns with the user's review."""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from reason4rec import prompts
from reason4rec.completions import CompletionClient, CompletionRequest
from reason4rec.parameters import Evaluate, Prompting, prompting_of
from reason4rec.typed_config import typed_block


def judge_reasons(test_predictions: pd.DataFrame, interactions_test: pd.DataFrame, teacher: CompletionClient, prompting: Prompting, params: dict[str, Any]) -> dict[str, Any]:
    """GPTScore as the paper reports it, averaged over the rows. The judge is
    ``evaluate.gptscore_judge`` (GPT-4o in the paper) on the teacher's API, or the
    teacher's own model; its answers go to the teacher's cache and usage. Only with an
    LLM teacher: the rules teacher cannot judge."""
    if teacher.backend.name == "rules":
        return {"gptscore": None, "note": "needs an LLM teacher (teacher.backend: openai)"}
    judge_model = typed_block(Evaluate, params, "evaluate").gptscore_judge
    if judge_model and judge_model != teacher.backend.model:
        teacher = dataclasses.replace(teacher, backend=teacher.backend.for_model(judge_model))
    domain = prompting_of(prompting).domain
    joined = test_predictions.merge(interactions_test[["user_id", "item_id", "review"]], on=["user_id", "item_id"])
    requests = [CompletionRequest(prompts.gptscore_prompt(domain, r.review, r.reason), temperature=0.0, max_tokens=8) for r in joined.itertuples()]
    scores = [prompts.parse_score(a.text) if a.ok else None for a in teacher.complete(requests, stage="gptscore")]
    valid = [s for s in scores if s is not None]
    return {"gptscore": float(sum(valid) / len(valid)) if valid else None, "judged": len(valid), "unjudged": len(scores) - len(valid), "judge": teacher.backend.model}
