"""How much of the rating the rules teacher's unhinted verdict carries, on a finished run's pairs.

    kedro run            # or any run that wrote the contexts below
    python bench/rules_teacher_signal.py [project_dir]

For every reward-model and reasoner pair (``data/05_model_input/*_contexts.parquet``)
it composes the teacher's temperature-0 reason without a hint and prints the mean
true rating per verdict, and the Pearson correlation of the evidence balance
(praised minus faulted interests) with the true rating: the most a reasoner that
reproduced the teacher's verdicts could hand the predictor.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from reason4rec import contexts as ctx
from reason4rec.teacher.rules import evidence_in


def main(project: Path) -> None:
    frames = [pd.read_parquet(project / "data/05_model_input" / f"{name}_contexts.parquet") for name in ("reward", "reasoner")]
    pairs = pd.concat(frames, ignore_index=True)
    rows = []
    for record in pairs.to_dict("records"):
        evidence = evidence_in(ctx.reasoner_prompt(record, {"domain": "Digital Music", "wording": "paper", "history_length": 1}))  # the domain noun and wording do not change the evidence
        rows.append({"rating": record["rating"], "verdict": evidence.verdict(), "balance": evidence.balance})
    table = pd.DataFrame(rows)
    print(f"{len(table)} pairs; mean true rating {table['rating'].mean():.2f}")
    print(table.groupby("verdict")["rating"].agg(["mean", "count"]).reindex(["love", "like", "mixed", "dislike"]).round(2).to_string())
    print(f"Pearson(balance, rating) = {np.corrcoef(table['balance'], table['rating'])[0, 1]:.3f}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
