"""Nodes of ``distill_reasons``: Algorithm 1 with the teacher and the reward model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from reason4rec.distillation import AttemptJournal, DistillConfig, distill_reasons
from reason4rec.llm.artifacts import AdapterArtifact, BaseModelArtifact
from reason4rec.llm.engine import engine_for
from reason4rec.llm.training import fingerprint
from reason4rec.teacher import Teacher


def distill(
    reasoner_contexts: pd.DataFrame,
    base_model: BaseModelArtifact,
    reward_adapter: AdapterArtifact,
    teacher: Teacher,
    domain: str,
    params: dict[str, Any],
    batch_size: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every attempt for every reasoner pair, and the teacher's usage.

    The attempt journal lives in ``journal_dir`` under a fingerprint of the
    reward model, the teacher and the settings, so a rerun of the same job
    resumes it and a changed job starts a new one.
    """
    config = DistillConfig(
        max_attempts=params["max_attempts"], tau=params["tau"], baseline=params["baseline"], temperature=params["temperature"],
        max_tokens=params["max_tokens"], domain=domain, chunk_size=params["chunk_size"],
    )  # fmt: skip
    engine = engine_for(base_model, {"reward_model": reward_adapter})
    job = fingerprint(reward_adapter.metadata.get("run"), teacher.backend.identity(), vars(config), reasoner_contexts[["user_id", "item_id"]].values.tolist())
    journal = AttemptJournal(Path(params["journal_dir"]) / f"{job}.jsonl" if params.get("journal_dir") else None)
    attempts = distill_reasons(
        reasoner_contexts,
        generate=lambda requests: teacher.complete(requests, stage="distill_reasons", desc="teacher reasons"),
        score=lambda prompts: engine.score_ratings(prompts, "reward_model", batch_size=batch_size, desc="reward scoring"),
        config=config,
        journal=journal,
        cost=lambda: teacher.cost("distill_reasons"),
    )
    return attempts, teacher.usage_table()
