"""Nodes of ``distill_reasons``: Algorithm 1 with the teacher and the reward model."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from reason4rec.completions import CompletionClient
from reason4rec.distillation import AttemptJournal, distill_reasons
from reason4rec.llm.artifacts import AdapterArtifact
from reason4rec.llm.engine import InferenceEngine
from reason4rec.llm.training import fingerprint
from reason4rec.parameters import DistillReasons, Prompting, prompting_of
from reason4rec.typed_config import typed_block


def distill(
    reasoner_contexts: pd.DataFrame,
    engine: InferenceEngine,
    reward_adapter: AdapterArtifact,
    teacher: CompletionClient,
    prompting: Prompting,
    params: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every attempt for every reasoner pair, and the teacher's usage.

    The attempt journal lives in ``journal_dir`` under a fingerprint of the
    reward model, the teacher and the settings, so a rerun of the same job
    resumes it and a changed job starts a new one.
    """
    config, prompt_settings = typed_block(DistillReasons, params, "distill_reasons"), prompting_of(prompting)
    engine.load_adapters({"reward_model": reward_adapter})
    settings = {**{k: v for k, v in asdict(config).items() if k != "journal_dir"}, "domain": prompt_settings.domain, "wording": prompt_settings.wording}
    job = fingerprint(reward_adapter.metadata.get("run"), teacher.backend.identity(), settings, reasoner_contexts[["user_id", "item_id"]].values.tolist())
    journal = AttemptJournal(Path(config.journal_dir) / f"{job}.jsonl" if config.journal_dir else None)
    attempts = distill_reasons(
        reasoner_contexts,
        generate=lambda requests: teacher.complete(requests, stage="distill_reasons", desc="teacher reasons"),
        score=lambda prompts: engine.score_ratings(prompts, "reward_model", desc="reward scoring"),
        config=config,
        journal=journal,
        prompting=prompt_settings,
        cost=lambda: teacher.cost("distill_reasons"),
    )
    return attempts, teacher.usage_table()
