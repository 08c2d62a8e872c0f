"""How much of the rating the predictor's own prompt carries, against what the trained predictors make of it.

    kedro run            # or any run that wrote the tables below
    python bench/prompt_rating_signal.py [project_dir] [history_length ...]

On the test rows every method scored (``test_contexts``), it prints MAE and
Pearson of rules that read only numbers the prompt shows (the user's and the
item's average earlier rating, the ratings of the histories shown) next to the
trained predictors with and without a reason. A predictor that does worse than
these rules is not reading its prompt's ratings. Two least-squares fits on the
predictor's own training pairs (``predictor_contexts``) show what a predictor of
the expected rating can reach from the averages alone, and with the rules
teacher's verdict (the evidence balance a reasoner that reproduced the teacher
would hand it).

Given history lengths (for example ``3 5 8``), it also rebuilds the same test
rows and training pairs with that many earlier interactions per side, from the
run's history pool and summaries, and prints the second fit for each: how much
a perfect reasoner could add if the prompts showed that much history.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from reason4rec import contexts as ctx
from reason4rec.teacher.rules import evidence_in


def latest(project: Path, relative: str) -> pd.DataFrame:
    """The newest version of a versioned Parquet table (or the table itself)."""
    path = project / relative
    versions = sorted(path.glob("*/*.parquet")) if path.is_dir() else [path]
    return pd.read_parquet(versions[-1])


def score(name: str, prediction: np.ndarray, truth: np.ndarray) -> dict:
    prediction = np.clip(prediction, 1, 5)
    pearson = float(np.corrcoef(prediction, truth)[0, 1]) if np.ptp(prediction) > 0 else float("nan")  # none for a constant
    return {"method": name, "mae": float(np.abs(prediction - truth).mean()), "pearson": pearson}


def features(contexts: pd.DataFrame, train_mean: float, with_balance: bool) -> np.ndarray:
    """The two averages (the training mean where unknown), and the rules teacher's evidence balance."""
    columns = [contexts["user_mean_rating"].fillna(train_mean), contexts["item_mean_rating"].fillna(train_mean)]
    if with_balance:
        shown = [ctx.reasoner_prompt(r, {"domain": "Digital Music", "wording": "paper", "history_length": 1}) for r in contexts.to_dict("records")]  # domain and wording do not change the evidence
        columns.append(pd.Series([evidence_in(p).balance for p in shown], index=contexts.index))
    return np.column_stack([np.ones(len(contexts)), *columns])


def least_squares(train: pd.DataFrame, test: pd.DataFrame, train_mean: float, with_balance: bool) -> np.ndarray:
    weights, *_ = np.linalg.lstsq(features(train, train_mean, with_balance), train["rating"].to_numpy(float), rcond=None)
    return features(test, train_mean, with_balance) @ weights


def history_ceiling(project: Path, contexts: pd.DataFrame, pairs: pd.DataFrame, train_mean: float, lengths: list[int]) -> pd.DataFrame:
    """The averages + verdict-balance fit with ``length`` history entries per side, and the
    prompts' mean length in the run's base tokenizer: the test rows' reasoner prompt and
    their predictor prompt without its reason, in both wordings (domain "Digital Music")."""
    from transformers import AutoTokenizer

    pool = latest(project, "data/03_primary/history_pool.parquet")
    summaries = latest(project, "data/04_feature/summaries.parquet")
    tokenizer = AutoTokenizer.from_pretrained(sorted((project / "data/06_models/base_model").glob("*/base_model"))[-1])

    def tokens(texts: list[str]) -> int:
        return round(np.mean([len(tokenizer(text)["input_ids"]) for text in texts]))

    rows = []
    for length in lengths:
        test = ctx.build_contexts(contexts, pool, summaries, {"domain": "Digital Music", "wording": "paper", "history_length": length})
        train = ctx.build_contexts(pairs, pool, summaries, {"domain": "Digital Music", "wording": "paper", "history_length": length})
        fit = score(f"history_length {length}", least_squares(train, test, train_mean, True), test["rating"].to_numpy(float))
        records = test.to_dict("records")
        lengths_by_wording = {}
        for wording in ("paper", "published"):
            lengths_by_wording[f"reasoner tokens ({wording})"] = tokens([ctx.reasoner_prompt(r, {"domain": "Digital Music", "wording": wording, "history_length": length}) for r in records])
            lengths_by_wording[f"predictor tokens ({wording})"] = tokens([ctx.predictor_prompt(r, {"domain": "Digital Music", "wording": wording, "history_length": length}, None) for r in records])
        rows.append({**fit, **lengths_by_wording})
    return pd.DataFrame(rows)


def main(project: Path, lengths: list[int]) -> None:
    contexts = latest(project, "data/05_model_input/test_contexts.parquet")
    train_mean = latest(project, "data/03_primary/interactions_train.parquet")["rating"].mean()
    keys = ["user_id", "item_id"]
    with_reason = contexts[keys].merge(latest(project, "data/07_model_output/test_predictions.parquet")[[*keys, "prediction"]], on=keys, how="left")
    without = contexts[keys].merge(latest(project, "data/07_model_output/test_predictions_no_reason.parquet")[[*keys, "prediction"]], on=keys, how="left")
    truth = contexts["rating"].to_numpy(float)
    pairs = latest(project, "data/05_model_input/predictor_contexts.parquet")

    def shown(history) -> float:
        ratings = [entry["rating"] for entry in history]
        return float(np.mean(ratings)) if ratings else train_mean

    user_shown, item_shown = contexts["user_history"].map(shown).to_numpy(), contexts["item_history"].map(shown).to_numpy()
    averages = (contexts["user_mean_rating"].fillna(train_mean) + contexts["item_mean_rating"].fillna(train_mean) - train_mean).to_numpy()
    rows = [
        score("global mean (training split)", np.full(len(truth), train_mean), truth),
        score("prompt: user average + item average - global mean", averages, truth),
        score("prompt: mean of the shown history ratings", (user_shown + item_shown) / 2, truth),
        score(f"least squares on the averages ({len(pairs)} training pairs)", least_squares(pairs, contexts, train_mean, False), truth),
        score("... and the rules teacher's verdict balance", least_squares(pairs, contexts, train_mean, True), truth),
        score("Reason4Rec w/o reason (trained)", without["prediction"].to_numpy(float), truth),
        score("Reason4Rec (trained)", with_reason["prediction"].to_numpy(float), truth),
    ]
    print(f"{len(truth)} test rows")
    print(pd.DataFrame(rows).to_string(index=False, float_format="%.4f"))
    if lengths:
        print(f"\nleast squares on the averages and the rules teacher's verdict balance, {len(pairs)} training pairs, by history length")
        print(history_ceiling(project, contexts, pairs, train_mean, lengths).to_string(index=False, float_format="%.4f"))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("."), [int(length) for length in sys.argv[2:]])
