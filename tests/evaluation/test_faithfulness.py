"""Does the rating follow the reason? The pairing rule by hand, and two engine doubles: one blind to the reason, one that reads it."""

import re
import zlib
from contextlib import nullcontext

import pandas as pd
import pytest

from reason4rec import prompts
from reason4rec.evaluation.faithfulness import COUNTERFACTUAL_COLUMNS, counterfactual_summary, pair_with_donors, score_counterfactual_reasons
from reason4rec.inference import predict_with_reasons
from reason4rec.llm.chat import expected_rating
from tests.helpers import PROMPTING


class ReasonBlindEngine:
    """Writes "verdict k" reasons (k = 1..5 by position) but rates from the context alone:
    all mass on a rating read from a checksum of the prompt before its analysis section."""

    def __init__(self):
        self.adapters, self.scored = {}, []

    def load_adapters(self, adapters):
        self.adapters.update(adapters)

    def generate(self, prompts_, adapter, max_new_tokens, temperature=0.0, top_p=1.0, batch_size=None, seed=0, desc=""):
        return [{"text": f"verdict {1 + i % 5}", "new_tokens": 2, "truncated": False} for i in range(len(prompts_))]

    def rating(self, prompt: str) -> int:
        return 1 + zlib.crc32(prompt.split(prompts.ANALYSIS_HEADER)[0].encode()) % 5

    def rating_distributions(self, prompts_, adapter, batch_size=None, desc=""):
        self.scored.append((adapter, len(prompts_)))
        return [[1.0 if k == self.rating(p) else 0.0 for k in range(1, 6)] for p in prompts_]

    def score_ratings(self, prompts_, adapter, batch_size=None, desc=""):
        return [expected_rating(d) for d in self.rating_distributions(prompts_, adapter, batch_size, desc)]

    def uncached(self):
        return nullcontext(self)


class ReasonReadingEngine(ReasonBlindEngine):
    """The same reasons, but the rating is the reason's verdict."""

    def rating(self, prompt: str) -> int:
        return int(re.search(r"verdict (\d)", prompt.split(prompts.ANALYSIS_HEADER)[1]).group(1))


def predictions(*values: float) -> pd.DataFrame:
    return pd.DataFrame({"user_id": [f"u{i}" for i in range(len(values))], "item_id": [f"i{i}" for i in range(len(values))],
                         "reason": [f"r{i}" for i in range(len(values))], "prediction": list(values)})  # fmt: skip


def test_each_side_takes_the_reasons_of_the_other_from_its_extreme_inwards_cycling():
    # median 3.0: up = u3 (5.0), u1 (4.5); down, lowest first = u4 (1.0), u0 (2.0), u2 (3.0, at the median)
    pairs = pair_with_donors(predictions(2.0, 4.5, 3.0, 5.0, 1.0))
    assert pairs["user_id"].tolist() == ["u0", "u1", "u2", "u3", "u4"]  # test order
    assert pairs["donor_user_id"].tolist() == ["u1", "u0", "u3", "u4", "u3"]
    assert pairs["donor_reason"].tolist() == ["r1", "r0", "r3", "r4", "r3"]
    assert pairs["direction"].tolist() == [1, -1, 1, -1, 1]


@pytest.mark.parametrize("values", [(3.5, 3.5, 3.5), (1.0, 2.0, 2.0)])
def test_predictions_that_do_not_split_at_their_median_are_not_measurable(pair_contexts, values):
    engine = ReasonBlindEngine()
    counterfactual = score_counterfactual_reasons(pair_contexts, predictions(*values), engine, "predictor adapter", PROMPTING)
    assert list(counterfactual.columns) == COUNTERFACTUAL_COLUMNS and counterfactual.empty and not engine.scored
    summary = counterfactual_summary(counterfactual)
    assert summary["rows"] == 0 and summary["mean_shift_toward_reason"] is None and summary["note"].startswith("not measurable")


def counterfactual_of(engine, pair_contexts):
    test_predictions = predict_with_reasons(pair_contexts, engine, "reasoner adapter", "predictor adapter", PROMPTING, {"max_new_tokens": 4})
    assert test_predictions["prediction"].nunique() > 2  # the rows split at their median
    return test_predictions, score_counterfactual_reasons(pair_contexts, test_predictions, engine, "predictor adapter", PROMPTING)


def test_a_predictor_that_ignores_its_reason_scores_zero(pair_contexts):
    test_predictions, counterfactual = counterfactual_of(ReasonBlindEngine(), pair_contexts)
    assert list(counterfactual.columns) == COUNTERFACTUAL_COLUMNS and len(counterfactual) == len(pair_contexts)
    assert (counterfactual["prediction"].to_numpy() == test_predictions["prediction"].to_numpy()).all()
    assert (counterfactual["shift"] == 0).all()
    summary = counterfactual_summary(counterfactual)
    assert summary["rows"] == len(pair_contexts)
    assert summary["mean_shift_toward_reason"] == summary["share_toward_reason"] == summary["share_against_reason"] == summary["mean_absolute_shift"] == 0


def test_a_predictor_that_follows_its_reason_moves_every_row_toward_it(pair_contexts):
    engine = ReasonReadingEngine()
    test_predictions, counterfactual = counterfactual_of(engine, pair_contexts)
    assert engine.adapters == {"reasoner": "reasoner adapter", "predictor": "predictor adapter"} and engine.scored[-1] == ("predictor", len(pair_contexts))
    # the rating is the donor's verdict: the donor's own prediction
    donors = test_predictions.set_index(["user_id", "item_id"])["prediction"]
    assert counterfactual["counterfactual_prediction"].tolist() == donors.loc[list(zip(counterfactual["donor_user_id"], counterfactual["donor_item_id"]))].tolist()
    assert (counterfactual["direction"] * counterfactual["shift"] > 0).all()
    summary = counterfactual_summary(counterfactual)
    assert summary["share_toward_reason"] == 1.0 and summary["share_against_reason"] == 0.0
    assert summary["mean_shift_toward_reason"] == pytest.approx(summary["mean_absolute_shift"]) and summary["mean_shift_toward_reason"] > 0


def test_the_summary_signs_the_shift_toward_the_donor_reason():
    counterfactual = pd.DataFrame({"direction": [1, 1, -1, -1], "shift": [0.5, -0.25, -1.0, 0.005]})
    summary = counterfactual_summary(counterfactual)
    assert summary["rows"] == 4
    assert summary["mean_shift_toward_reason"] == pytest.approx((0.5 - 0.25 + 1.0 - 0.005) / 4)
    assert summary["mean_absolute_shift"] == pytest.approx((0.5 + 0.25 + 1.0 + 0.005) / 4)
    assert summary["share_toward_reason"] == 0.5 and summary["share_against_reason"] == 0.25  # 0.005 stars has not moved


def test_a_prediction_without_its_test_context_is_refused(pair_contexts):
    with pytest.raises(ValueError, match="without a test context"):
        score_counterfactual_reasons(pair_contexts, predictions(1.0, 5.0), ReasonBlindEngine(), "predictor adapter", PROMPTING)
