"""The method's inference steps on contexts (reason4rec.inference), on an engine that records what it is asked."""

from contextlib import nullcontext

import pandas as pd
import pytest

from reason4rec import prompts
from reason4rec.llm.chat import expected_rating
from reason4rec.inference import PREDICTION_COLUMNS, generate_reasons, predict_with_reasons, predictor_sft_examples, score_ratings
from tests.helpers import PROMPTING


class RecordingEngine:
    """Answers every reasoner prompt with its position and every rating prompt with 4.5 (3.0 without a reason):
    probability one half on 4 and on 5 (on 3 without a reason)."""

    batch_size = 7

    def __init__(self):
        self.calls, self.adapters = [], {}

    def load_adapters(self, adapters):
        self.adapters.update(adapters)

    def generate(self, prompts_, adapter, max_new_tokens, temperature=0.0, top_p=1.0, batch_size=None, seed=0, desc=""):
        self.calls.append(("generate", adapter, len(prompts_), max_new_tokens, temperature, batch_size))
        return [{"text": f"reason {i}", "new_tokens": 3, "truncated": i == 0} for i in range(len(prompts_))]

    def score_ratings(self, prompts_, adapter, batch_size=None, desc=""):
        return [expected_rating(d) for d in self.rating_distributions(prompts_, adapter, batch_size, desc)]

    def rating_distributions(self, prompts_, adapter, batch_size=None, desc=""):
        self.calls.append(("score", adapter, len(prompts_), batch_size))
        return [[0, 0, 0, 0.5, 0.5] if prompts.ANALYSIS_HEADER in p else [0, 0, 1.0, 0, 0] for p in prompts_]

    def uncached(self):
        return nullcontext(self)


def test_reasons_are_generated_in_one_call_with_the_generation_settings(pair_contexts, caplog):
    engine = RecordingEngine()
    with caplog.at_level("WARNING", logger="reason4rec.inference"):
        reasons = generate_reasons(engine, pair_contexts, "reasoner", PROMPTING, {"max_new_tokens": 9, "temperature": 0.5})
    assert engine.calls == [("generate", "reasoner", len(pair_contexts), 9, 0.5, None)]  # None: the engine's own batch size
    assert reasons["reason"].tolist() == [f"reason {i}" for i in range(len(pair_contexts))]
    assert (reasons[["user_id", "item_id"]].to_numpy() == pair_contexts[["user_id", "item_id"]].to_numpy()).all()
    assert f"1 of {len(pair_contexts)} reasons were cut at reason_generation.max_new_tokens (9)" in caplog.text
    with pytest.raises(ValueError, match=r"unknown reason_generation setting\(s\) max_tokens"):
        generate_reasons(engine, pair_contexts, "reasoner", PROMPTING, {"max_tokens": 9})


def test_ratings_read_the_reason_when_given_and_the_bare_prompt_otherwise(pair_contexts):
    engine = RecordingEngine()
    with_reason, _ = score_ratings(engine, pair_contexts, pd.Series(["because"] * len(pair_contexts)), "predictor", PROMPTING)
    without, _ = score_ratings(engine, pair_contexts, None, "predictor", PROMPTING, batch_size=1)
    assert set(with_reason) == {4.5} and set(without) == {3.0}
    assert engine.calls[-1] == ("score", "predictor", len(pair_contexts), 1)


def test_prediction_with_reasons_loads_both_experts_and_keeps_the_rows(pair_contexts, predictor, echo):
    engine = RecordingEngine()
    table = predict_with_reasons(pair_contexts, engine, echo, predictor[0], PROMPTING, {"max_new_tokens": 4})
    assert engine.adapters == {"reasoner": echo, "predictor": predictor[0]}
    assert list(table.columns) == PREDICTION_COLUMNS and len(table) == len(pair_contexts)
    assert (table["prediction"] == 4.5).all() and (table["new_tokens"] == 4).all()  # the reason's tokens and the rating token
    assert table["distribution"].map(list).tolist() == [[0, 0, 0, 0.5, 0.5]] * len(table)
    assert table["rating"].tolist() == pair_contexts["rating"].astype(float).tolist()


def test_predictor_examples_pair_each_context_with_its_own_reason(pair_contexts):
    reasons = pair_contexts[["user_id", "item_id"]].assign(reason=[f"because {i}" for i in range(len(pair_contexts))])
    examples = predictor_sft_examples(pair_contexts, reasons.iloc[::-1], PROMPTING)
    assert all(f"because {i}" in prompt for i, prompt in enumerate(examples["prompt"]))
    assert examples["response"].str.startswith("Predicted Rating: ").all()
    with pytest.raises(pd.errors.MergeError):
        predictor_sft_examples(pair_contexts, pd.concat([reasons, reasons]), PROMPTING)
