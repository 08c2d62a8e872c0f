import pandas as pd
import pytest

from reason4rec import prompts
from reason4rec.distillation import ATTEMPT_COLUMNS
from reason4rec.llm.training import train_adapter
from reason4rec.pipelines.train_predictor import create_pipeline
from reason4rec.inference import predictor_sft_examples
from reason4rec.pipelines.train_predictor.nodes import no_reason_sft_examples, predictor_pairs
from tests.helpers import PROMPTING, run_pipeline, smoke_expert

RATING_EXPERT = {**smoke_expert(num_train_epochs=1), "loss_on": "rating"}


def test_the_ablation_never_sees_a_reason_and_the_predictor_always_does(pair_contexts):
    reasons = pair_contexts[["user_id", "item_id"]].assign(reason="Others praise its melody.")
    with_reason = predictor_sft_examples(pair_contexts, reasons, PROMPTING)
    without = no_reason_sft_examples(pair_contexts, PROMPTING)
    assert len(with_reason) == len(without) == len(pair_contexts)
    assert with_reason["prompt"].str.contains(f"{prompts.ANALYSIS_HEADER}\nOthers praise its melody.").all()
    assert not without["prompt"].str.contains(prompts.ANALYSIS_HEADER).any()
    expected = [prompts.rating_answer(r) for r in pair_contexts["rating"]]
    assert with_reason["response"].tolist() == without["response"].tolist() == expected


def test_pipeline_trains_the_predictor_on_the_reasoners_own_reasons_and_the_ablation_beside_it(tiny_base, pair_contexts):
    reasoner_sft = pd.DataFrame({"prompt": ["Say something."] * 8, "response": ["Melody melody melody."] * 8})
    reasoner, _ = train_adapter(tiny_base, reasoner_sft, smoke_expert(num_train_epochs=1), "reasoner")
    out = run_pipeline(
        create_pipeline(),
        {
            "reasoner_contexts": pair_contexts, "distilled_reasons": pd.DataFrame(columns=ATTEMPT_COLUMNS), "params:train_predictor": {"pairs": "all"},
            "base_model": tiny_base, "reasoner_adapter": reasoner, "params:prompting": {**PROMPTING, "wording": "published"},
            "params:reason_generation": {"max_new_tokens": 6, "temperature": 0.0}, "params:llm.inference": {"cache_path": None, "batch_size": 8},
            "params:llm.experts.predictor": RATING_EXPERT,
        },
        ["reasoner_pair_reasons", "predictor_sft_data", "predictor_no_reason_sft_data", "predictor_adapter", "predictor_no_reason_adapter"],
    )  # fmt: skip
    reasons = out["reasoner_pair_reasons"]
    assert len(reasons) == len(pair_contexts) and (reasons["new_tokens"] <= 6).all()
    for reason, prompt in zip(reasons["reason"], out["predictor_sft_data"]["prompt"]):
        assert f"{prompts.ANALYSIS_HEADER}\n{reason}" in prompt
    assert not out["predictor_no_reason_sft_data"]["prompt"].str.contains(prompts.ANALYSIS_HEADER).any()
    published = prompts.WORDINGS["published"]  # params:prompting.wording took effect in every prompt built
    for table in (out["predictor_sft_data"], out["predictor_no_reason_sft_data"]):
        assert table["prompt"].str.startswith("Here is information about a user").all() and table["prompt"].str.contains(published.user_ratings_header).all()
    for name in ("predictor", "predictor_no_reason"):
        metadata = out[f"{name}_adapter"].metadata
        assert metadata["expert"] == name and metadata["training_examples"] == len(pair_contexts) and metadata["loss_on"] == "rating"


def test_pairs_accepted_keeps_only_pairs_with_an_accepted_reason(pair_contexts):
    keys = list(zip(pair_contexts["user_id"], pair_contexts["item_id"]))
    attempts = pd.DataFrame(
        [{"pair_id": f"{u}|{i}", "user_id": u, "item_id": i, "attempt": 0, "reason": "r", "rating": 4.0, "accepted": n < 5} for n, (u, i) in enumerate(keys)]
    )
    kept = predictor_pairs(pair_contexts, attempts, {"pairs": "accepted"})
    assert list(zip(kept["user_id"], kept["item_id"])) == keys[:5]
    assert predictor_pairs(pair_contexts, attempts, {"pairs": "all"}) is pair_contexts
    with pytest.raises(ValueError, match="train_predictor.pairs must be one of 'all', 'accepted', not 'some'"):
        predictor_pairs(pair_contexts, attempts, {"pairs": "some"})
