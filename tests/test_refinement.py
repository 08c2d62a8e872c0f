"""GRPO on the reasoner (reason4rec.refinement): the reward, and the refined adapter on the tiny base."""

import math

import pandas as pd
import pytest
import torch

from reason4rec import contexts as ctx
from reason4rec.llm.chat import end_of_turn_ids
from reason4rec.llm.engine import Engine
from reason4rec.refinement import REASON_SLOT, PredictorReward, fill_reason, refine_reasoner, refinement_examples
from reason4rec.teacher.rules import VERDICTS, verdict_of
from tests.helpers import PROMPTING, SMOKE_PARAMS

# The tiny predictor (conftest's ``predictor``) rates "The album is <word>. Rate it." by the word.
ALBUM = f"The album is {REASON_SLOT}. Rate it."


def album_examples(ratings=(5.0, 1.0)) -> pd.DataFrame:
    return pd.DataFrame(
        {"user_id": [f"U{i}" for i in range(len(ratings))], "item_id": "I0", "rating": list(ratings), "prompt": "Say something.", "predictor_prompt": ALBUM}
    )


@pytest.fixture(scope="module")
def rating_engine(tiny_base, predictor):
    return Engine(tiny_base, {"predictor": predictor[0]}, batch_size=4)


def reward_on(engine, examples=None, penalty=1.0) -> PredictorReward:
    return PredictorReward(engine, "predictor", album_examples() if examples is None else examples, penalty, end_of_turn_ids(engine.tokenizer))


def test_the_examples_fill_to_the_predictor_prompt_with_the_reason(pair_contexts):
    prompting = {**PROMPTING, "history_length": 3}
    examples = refinement_examples(pair_contexts, prompting)
    row = pair_contexts.iloc[2]
    assert fill_reason(examples["predictor_prompt"].iloc[2], "Overall, the user will probably enjoy it.") == ctx.predictor_prompt(
        row, prompting, "Overall, the user will probably enjoy it."
    )
    assert examples["prompt"].iloc[2] == ctx.reasoner_prompt(row, prompting)
    assert examples["rating"].tolist() == pair_contexts["rating"].astype(float).tolist()
    clash = pair_contexts.copy()
    clash.loc[0, "title"] = f"Song {REASON_SLOT}"
    with pytest.raises(ValueError, match="context row 0"):
        refinement_examples(clash, prompting)


def test_a_reason_that_moves_the_predictor_toward_the_truth_earns_more(rating_engine):
    reward = reward_on(rating_engine)
    scores = reward.score([0, 0, 1, 1], ["superb", "awful", "superb", "awful"], [False] * 4)
    assert scores["prediction"][0] > scores["prediction"][1]  # the predictor reads the reason
    assert scores["reward"][0] > scores["reward"][1]  # truth 5: "superb" is closer
    assert scores["reward"][3] > scores["reward"][2]  # truth 1: "awful" is closer
    assert scores["reward"].tolist() == pytest.approx((-(scores["prediction"] - scores["rating"]).abs()).tolist())
    assert not scores["penalised"].any()


@pytest.mark.parametrize("reason", ["superb, 5.0", "superb, a rating of five", "superb 5 stars.", "superb, rated it a 5"])
def test_a_reason_that_states_the_rating_is_penalised(rating_engine, reason):
    scores = reward_on(rating_engine, penalty=0.75).score([0], [reason], [False])
    assert scores["stated_rating"][0] and scores["penalised"][0]
    assert scores["reward"][0] == pytest.approx(-scores["error"][0] - 0.75)


def test_a_reason_cut_short_is_penalised_and_the_parts_are_logged(rating_engine):
    reward = reward_on(rating_engine)
    stop = end_of_turn_ids(rating_engine.tokenizer)[0]
    ids = rating_engine.tokenizer("superb", add_special_tokens=False)["input_ids"]
    completions = [[{"role": "assistant", "content": "superb"}]] * 2
    logged = {}
    rewards = reward(prompts=[None] * 2, completions=completions, completion_ids=[ids + [stop], ids], example=[0, 0], log_metric=logged.__setitem__)
    assert rewards[1] == pytest.approx(rewards[0] - 1.0)  # the same reason, without its end of turn
    assert logged["refine/cut_short"] == 0.5 and logged["refine/penalised"] == 0.5 and logged["refine/stated_rating"] == 0.0
    assert logged["refine/spread_within_groups"] == pytest.approx(0.5)  # rewards r and r - 1 in one group
    assert logged["refine/verdict/other"] == 1.0 and set(logged) >= {f"refine/verdict/{v}" for v in VERDICTS}


class FailingEngine:
    batch_size = 4

    def __init__(self, answer):
        self.answer = answer

    def score_ratings(self, prompts, adapter, batch_size=None, desc=""):
        if isinstance(self.answer, Exception):
            raise self.answer
        return [self.answer] * len(prompts)


@pytest.mark.parametrize("answer", [ConnectionError("server down"), math.nan])
def test_a_scoring_failure_raises_rather_than_rewarding_zero(answer):
    reward = PredictorReward(FailingEngine(answer), "predictor", album_examples(), 1.0, [0])
    with pytest.raises((ConnectionError, RuntimeError)):
        reward.score([0], ["superb"], [False])


def test_a_reason_s_verdict_is_read_from_its_closing_sentence():
    assert verdict_of("Other reviewers praise its vocals. Overall, the user will very likely love it.") == "love"
    assert verdict_of("Still, the user may have mixed feelings about it.") == "mixed"
    assert verdict_of("Melody melody melody.") == "other"


def test_grpo_starts_from_the_sft_reasoner_and_changes_it(tiny_base, echo, predictor, rating_engine):
    settings = {**SMOKE_PARAMS["llm"]["experts"]["reasoner_rl"]}
    settings["training"] = {**settings["training"], "output_dir": None}
    refined, log = refine_reasoner(tiny_base, echo, predictor[0], rating_engine, album_examples(), settings)
    assert set(refined.state_dict) == set(echo.state_dict)
    changed = [k for k, v in refined.state_dict.items() if not torch.equal(v, echo.state_dict[k])]
    assert changed  # two steps moved the weights
    assert refined.metadata["parent_run"] == echo.metadata["run"] and refined.metadata["expert"] == "reasoner_rl"
    assert refined.metadata["training_arguments"]["num_generations"] == 4 and refined.metadata["reward"]["penalty"] == 1.0
    assert len(log) == 2 and {"reward", "refine/spread_within_groups", "refine/penalised", "refine/verdict/love"} <= set(log.columns)
