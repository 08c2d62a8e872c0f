"""Algorithm 1 of the paper: generation-then-filter distillation of reasons.

For each reasoner pair, the teacher writes a first reason without hint; the
reward model scores it; while it is not accepted and fewer than T attempts
were made, the teacher samples again with the rating hint appended (and
nothing else changed). A reason containing a forbidden word is rejected
unscored. A reason is accepted when

    s_eval = |r - r_reason| - |r - r_baseline| < tau

where ``r_reason`` is the reward model's rating given the reason and
``r_baseline`` its rating given the target review (the paper) or no reason
(the published code). Every attempt is kept, so tau can be re-decided later
without a teacher call.

Pairs run in chunks; after each attempt round of a chunk its rows are
appended to a journal (JSON lines, fsynced), so a killed run restarts where
it stopped: finished pairs are not redone and (with the teacher's cache) no
teacher call is repeated.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from reason4rec import contexts as ctx
from reason4rec.completions import CompletionAnswer, CompletionRequest
from reason4rec.parameters import DistillReasons, Prompting
from reason4rec.prompts import reveals_rating

logger = logging.getLogger(__name__)

ATTEMPT_COLUMNS = [
    "pair_id", "user_id", "item_id", "rating", "attempt", "hinted", "reason", "status",
    "r_reason", "r_baseline", "s_eval", "accepted", "teacher_error",
]  # fmt: skip

class AttemptJournal:
    """Append-only, fsynced JSON lines of attempt rows; ``None`` path keeps nothing."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None

    def read(self) -> list[dict[str, Any]]:
        if not self.path or not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut by a crash: everything after it is redone
        return rows

    def append(self, rows: list[dict[str, Any]]) -> None:
        if not self.path or not rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as handle:
            handle.write("".join(json.dumps(row) + "\n" for row in rows))
            handle.flush()
            os.fsync(handle.fileno())

def usable_reason(answer: CompletionAnswer, max_tokens: int) -> bool:
    """A teacher reason that came back whole and states no rating: what Algorithm 1 scores,
    and what Table 4 and 5's teacher reasons must be."""
    return answer.ok and not answer.cut_at(max_tokens) and not reveals_rating(answer.text)

def pair_id(row: dict | pd.Series) -> str:
    return f"{row['user_id']}|{row['item_id']}"

def distill_reasons(
    contexts: pd.DataFrame,
    generate: Callable[[list[CompletionRequest]], list[CompletionAnswer]],
    score: Callable[[list[str]], list[float]],
    config: DistillReasons,
    journal: AttemptJournal,
    prompting: Prompting,
    cost: Callable[[], float] = lambda: 0.0,
) -> pd.DataFrame:
    """Run Algorithm 1 over ``contexts`` and return every attempt (``ATTEMPT_COLUMNS``);
    ``prompting`` says what the prompts show and in which words."""
    done = journal.read()
    by_pair: dict[str, list[dict]] = {}
    for row in done:
        by_pair.setdefault(row["pair_id"], []).append(row)
    records = contexts.to_dict("records")
    pending = [r for r in records if not _finished(by_pair.get(pair_id(r), []), config.max_attempts)]
    if done:
        logger.info("distill_reasons: resuming, %d of %d pairs already finished", len(records) - len(pending), len(records))

    progress = tqdm(total=len(records), initial=len(records) - len(pending), desc="distill_reasons", unit="pair")
    for start in range(0, len(pending), config.chunk_size):
        chunk = pending[start : start + config.chunk_size]
        _distill_chunk(chunk, by_pair, generate, score, config, journal, prompting)
        progress.update(len(chunk))
        accepted = sum(any(a["accepted"] for a in attempts) for attempts in by_pair.values())
        progress.set_postfix(accepted=f"{accepted / max(1, len(by_pair)):.0%}", cost=f"${cost():.4f}")
    progress.close()

    wanted = {pair_id(r) for r in records}
    rows = [row for pid, attempts in by_pair.items() if pid in wanted for row in sorted(attempts, key=lambda a: a["attempt"])]
    table = pd.DataFrame(rows, columns=ATTEMPT_COLUMNS)
    _log_summary(table, len(records))
    return table

def _finished(attempts: Sequence[dict], max_attempts: int) -> bool:
    return any(a["accepted"] for a in attempts) or len(attempts) >= max_attempts

def _distill_chunk(chunk, by_pair, generate, score, config: DistillReasons, journal: AttemptJournal, prompting: Prompting) -> None:
    baseline_reason = (lambda r: r["review"]) if config.baseline == "review" else (lambda r: None)
    baselines = dict(zip([pair_id(r) for r in chunk], score([ctx.predictor_prompt(r, prompting, baseline_reason(r)) for r in chunk])))
    while True:
        active = [r for r in chunk if not _finished(by_pair.get(pair_id(r), []), config.max_attempts)]
        if not active:
            return
        attempt_of = {pair_id(r): len(by_pair.get(pair_id(r), [])) for r in active}
        requests = [
            CompletionRequest(
                ctx.reasoner_prompt(r, prompting, hint=attempt_of[pair_id(r)] > 0),
                temperature=config.temperature,
                max_tokens=config.max_tokens,
                sample_index=attempt_of[pair_id(r)],
            )
            for r in active
        ]
        answers = generate(requests)
        rows, to_score = [], []
        for r, answer in zip(active, answers):
            pid = pair_id(r)
            row = {
                "pair_id": pid, "user_id": r["user_id"], "item_id": r["item_id"], "rating": float(r["rating"]),
                "attempt": attempt_of[pid], "hinted": attempt_of[pid] > 0, "reason": answer.text, "status": "",
                "r_reason": None, "r_baseline": float(baselines[pid]), "s_eval": None, "accepted": False,
                "teacher_error": answer.error,
            }  # fmt: skip
            if not answer.ok:
                row["status"] = "teacher_failed"
            elif answer.cut_at(config.max_tokens):  # a reason cut mid-sentence is not judged: raise distill_reasons.max_tokens
                row["status"] = "truncated"
            elif reveals_rating(answer.text):
                row["status"] = "forbidden_word"
            else:
                to_score.append((row, r))
            rows.append(row)
        scored = score([ctx.predictor_prompt(r, prompting, row["reason"]) for row, r in to_score]) if to_score else []
        for (row, r), r_reason in zip(to_score, scored):
            s_eval = abs(row["rating"] - r_reason) - abs(row["rating"] - row["r_baseline"])
            row.update(r_reason=float(r_reason), s_eval=float(s_eval), accepted=bool(s_eval < config.tau))
            row["status"] = "accepted" if row["accepted"] else "rejected_by_reward"
        journal.append(rows)
        for row in rows:
            by_pair.setdefault(row["pair_id"], []).append(row)

def _log_summary(table: pd.DataFrame, n_pairs: int) -> None:
    if table.empty:
        logger.warning("distill_reasons: no attempts")
        return
    accepted = table.groupby("pair_id")["accepted"].any().sum()
    statuses = table["status"].value_counts().to_dict()
    logger.info("distill_reasons: %d of %d pairs got an accepted reason in %d attempts; statuses %s", accepted, n_pairs, len(table), statuses)

def accepted_reasons(attempts: pd.DataFrame, tau: float | None = None) -> pd.DataFrame:
    """The accepted reason of each pair: as decided in the run, or re-decided for another ``tau``.

    With a new ``tau``, the first attempt (in order) whose ``s_eval`` is below it
    wins; attempts after the one accepted in the run were never made, so a larger
    tau can only pick earlier attempts, never invent later ones.
    """
    keep = attempts["accepted"] if tau is None else attempts["s_eval"].lt(tau).fillna(False)
    return attempts[keep].sort_values(["pair_id", "attempt"]).drop_duplicates("pair_id")[["pair_id", "user_id", "item_id", "rating", "attempt", "reason"]].reset_index(drop=True)
