import logging
import math

import pandas as pd
import pytest
import torch

from reason4rec.llm.chat import RATING_PREFIX, chat_prompt, rating_token_ids
from reason4rec.llm.engine import Engine, engine_for, expected_rating, length_sorted_batches
from reason4rec.llm.training import encode_sft_example, train_adapter
from tests.conftest import LORA_HYPER, rating_examples


def test_training_lowers_the_loss_and_records_metadata(predictor):
    adapter, curve = predictor
    assert curve["loss"].iloc[-1] < 0.5 * curve["loss"].iloc[0]
    assert adapter.metadata["training_examples"] == 96 and adapter.metadata["final_loss"] == pytest.approx(curve["loss"].iloc[-1])
    assert any("lora_A" in key for key in adapter.state_dict)


def test_trained_predictor_ranks_ratings(tiny_base, predictor):
    engine = Engine(tiny_base, {"predictor": predictor[0]})
    scores = engine.score_ratings(["The album is awful. Rate it.", "The album is superb. Rate it."], "predictor")
    assert scores[0] + 1.0 < scores[1]


def test_response_only_masking(tiny_base):
    tokenizer = tiny_base.tokenizer
    example = encode_sft_example(tokenizer, "Rate this.", "Predicted Rating: 4.0", max_length=128)
    prompt_len = len(tokenizer(chat_prompt(tokenizer, "Rate this."), add_special_tokens=False)["input_ids"])
    assert example["labels"][:prompt_len] == [-100] * prompt_len
    assert example["labels"][prompt_len:] == example["input_ids"][prompt_len:]
    assert tokenizer.decode(example["input_ids"][prompt_len:]).startswith("Predicted Rating: 4.0")
    assert example["input_ids"][-2] == tokenizer.eos_token_id  # the end-of-turn token is learned too


def test_over_long_prompts_are_cut_from_the_left_counted_and_reported(tiny_base, caplog):
    tokenizer = tiny_base.tokenizer
    long_prompt = "The album is superb. " * 40 + "Rate it."
    whole = encode_sft_example(tokenizer, long_prompt, "Predicted Rating: 5.0", max_length=1024)
    cut = encode_sft_example(tokenizer, long_prompt, "Predicted Rating: 5.0", max_length=64)
    assert whole["prompt_tokens_cut"] == 0 and len(cut["input_ids"]) == 64
    assert cut["prompt_tokens_cut"] == len(whole["input_ids"]) - 64
    assert cut["input_ids"] == whole["input_ids"][-64:] and cut["labels"] == whole["labels"][-64:]  # the response is whole
    rows = pd.DataFrame({"prompt": [long_prompt, "Rate it."], "response": ["Predicted Rating: 5.0"] * 2})
    with caplog.at_level(logging.WARNING, logger="reason4rec.llm.training"):
        adapter, _ = train_adapter(tiny_base, rows, {**LORA_HYPER, "epochs": 1, "max_length": 64}, "predictor")
    assert adapter.metadata["training_examples_cut"] == 1
    assert "1 of 2 predictor training examples are longer than max_length=64" in caplog.text
    assert "Raise max_length in its llm.experts block" in caplog.text


def test_rating_digits_are_single_tokens_after_the_prefix(tiny_base):
    ids = rating_token_ids(tiny_base.tokenizer)
    assert len(set(ids)) == 5
    assert [tiny_base.tokenizer.decode([i]) for i in ids] == ["1", "2", "3", "4", "5"]


def test_logit_weighted_decoding_is_the_softmax_expectation():
    logits = torch.tensor([[0.1, 2.0, -1.0, 0.5, 1.5, 3.0, 0.0]])
    rating_ids = [1, 2, 3, 4, 5]
    weights = [math.exp(v) for v in [2.0, -1.0, 0.5, 1.5, 3.0]]
    by_hand = sum(k * w for k, w in zip(range(1, 6), weights)) / sum(weights)
    assert expected_rating(logits, rating_ids, torch.arange(1, 6, dtype=torch.float32)).item() == pytest.approx(by_hand, abs=1e-6)


def test_batched_equals_one_by_one(tiny_base, predictor):
    engine = Engine(tiny_base, {"predictor": predictor[0]})
    # Different lengths in no order: real left padding, and batches regrouped by length.
    prompts = [f"The album is {'good ' * n}okay. Rate it." for n in (3, 0, 5, 1, 4, 2)]
    batched = engine.score_ratings(prompts, "predictor", batch_size=4)
    single = [engine.score_ratings([p], "predictor", batch_size=1)[0] for p in prompts]
    assert batched == pytest.approx(single, abs=1e-5)
    generated = engine.generate(prompts, "predictor", max_new_tokens=8, batch_size=4)
    assert generated == [engine.generate([p], "predictor", max_new_tokens=8)[0] for p in prompts]


def test_length_sorted_batches_cover_every_index_once_longest_first():
    sequences = [[0] * n for n in (3, 9, 1, 7, 5)]
    batches = length_sorted_batches(sequences, batch_size=2)
    assert batches == [[1, 3], [4, 0], [2]]


def test_two_adapters_switch_by_name(tiny_base, predictor, echo):
    engine = Engine(tiny_base, {"predictor": predictor[0], "echo": echo})
    prompt = ["Say something."]
    first = engine.generate(prompt, "predictor", max_new_tokens=8)
    assert engine.generate(prompt, "echo", max_new_tokens=8)[0]["text"].lower().startswith("melody")
    assert engine.generate(prompt, "echo", max_new_tokens=8) != first
    assert engine.generate(prompt, "predictor", max_new_tokens=8) == first
    assert engine.score_ratings(prompt, "predictor") != engine.score_ratings(prompt, None)
    with pytest.raises(KeyError, match="no adapter named 'reasoner'"):
        engine.generate(prompt, "reasoner", max_new_tokens=4)


def test_training_does_not_depend_on_what_ran_before(tiny_base):
    examples = rating_examples(16)
    hyper = {**LORA_HYPER, "epochs": 1}
    first, _ = train_adapter(tiny_base, examples, hyper, "predictor")
    torch.rand(1000)  # anything else the process does between two trainings
    second, _ = train_adapter(tiny_base, examples, hyper, "predictor")
    for key, weights in first.state_dict.items():
        assert torch.equal(weights, second.state_dict[key]), key


def test_training_resumes_from_its_last_checkpoint(tiny_base, tmp_path):
    hyper = {**LORA_HYPER, "checkpoint_dir": str(tmp_path), "max_steps": 4, "save_steps": 2, "epochs": 1}
    examples = rating_examples(32)
    _, first = train_adapter(tiny_base, examples, hyper, "predictor")
    runs = list(tmp_path.iterdir())
    assert len(runs) == 1 and (runs[0] / "checkpoint-4").is_dir() and not first.empty
    # The same job again (as after a crash once the last checkpoint was written) resumes there.
    _, again = train_adapter(tiny_base, examples, hyper, "predictor")
    # Resumed at its final step: nothing left to train, and the curve still covers the steps before.
    pd.testing.assert_frame_equal(again, first)
    # A changed configuration is a different run and starts afresh.
    _, other = train_adapter(tiny_base, examples, {**hyper, "learning_rate": 1e-3}, "predictor")
    assert not other.empty and len(list(tmp_path.iterdir())) == 2


def test_hub_style_base_loads_from_a_path_and_4bit_falls_back_on_cpu(tmp_path, tiny_base, caplog):
    from reason4rec.llm.artifacts import BaseModelArtifact
    from reason4rec.llm.base import load_model

    tiny_base.model.save_pretrained(tmp_path)
    tiny_base.tokenizer.save_pretrained(tmp_path)
    reference = BaseModelArtifact(str(tmp_path), {"quantization": "4bit", "bf16": False})
    with caplog.at_level("WARNING"):
        model, tokenizer = load_model(reference)
    if not torch.cuda.is_available():
        assert "quantization=4bit needs CUDA" in caplog.text
    ids = torch.tensor([[1, 7, 9]])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits.cpu(), tiny_base.model(ids).logits, atol=1e-5)
    assert tokenizer.chat_template == tiny_base.tokenizer.chat_template


def test_one_engine_per_base_shared_by_every_caller(tiny_base, predictor, echo, caplog):
    from reason4rec.llm.artifacts import BaseModelArtifact

    base = BaseModelArtifact("tiny", tiny_base.loading, tiny_base.metadata, model=tiny_base.model, tokenizer=tiny_base.tokenizer)
    with caplog.at_level("INFO", logger="reason4rec.llm.base"):
        first = engine_for(base, {"predictor": predictor[0]})
        second = engine_for(base, {"echo": echo})
    assert first is second and caplog.text.count("Loaded the base") == 1
    alone = Engine(tiny_base, {"predictor": predictor[0]})
    prompt = ["The album is superb. Rate it."]
    assert second.score_ratings(prompt, "predictor") == pytest.approx(alone.score_ratings(prompt, "predictor"), abs=1e-6)
    # The same name again with other weights replaces them.
    engine_for(base, {"predictor": echo})
    assert second.generate(["Say something."], "predictor", max_new_tokens=8) == second.generate(["Say something."], "echo", max_new_tokens=8)


def test_rating_only_labels_just_the_digit(tiny_base):
    tokenizer = tiny_base.tokenizer
    example = encode_sft_example(tokenizer, "Rate this.", "Predicted Rating: 4.0", max_length=128, rating_only=True)
    labelled = [(i, t) for i, t in enumerate(example["labels"]) if t != -100]
    assert len(labelled) == 1 and tokenizer.decode([labelled[0][1]]) == "4"
    assert tokenizer.decode(example["input_ids"][: labelled[0][0]]).endswith(RATING_PREFIX)
    with pytest.raises(ValueError, match="rating_only needs a response"):
        encode_sft_example(tokenizer, "Say something.", "Melody melody.", max_length=128, rating_only=True)


def test_answers_are_computed_once_per_adapter_run_and_kept_across_engines(tiny_base, predictor, echo, tmp_path):
    from reason4rec.teacher.cache import AnswerCache

    path = tmp_path / "inference.sqlite"
    prompts = ["The album is superb. Rate it.", "The album is awful. Rate it.", "Say something."]
    engine = Engine(tiny_base, {"predictor": predictor[0], "echo": echo}, cache=AnswerCache(path))
    forwards = []
    engine.model.register_forward_hook(lambda *_: forwards.append(1))
    ratings = engine.score_ratings(prompts, "predictor")
    greedy = engine.generate(prompts, "predictor", max_new_tokens=6)
    computed = len(forwards)
    assert engine.score_ratings(prompts[::-1], "predictor") == ratings[::-1] and engine.generate(prompts, "predictor", max_new_tokens=6) == greedy
    assert len(forwards) == computed  # all from the cache
    engine.score_ratings(prompts, "echo")
    engine.generate(prompts, "predictor", max_new_tokens=7)  # another length is another answer
    engine.generate(prompts, "predictor", max_new_tokens=6, temperature=0.9)  # samples are never kept
    assert len(forwards) > computed
    # A new engine on the same file (a rerun) computes nothing it has already answered...
    rerun = Engine(tiny_base, {"predictor": predictor[0]}, cache=AnswerCache(path))
    rerun.model.register_forward_hook(lambda *_: forwards.append(1))
    before = len(forwards)
    assert rerun.score_ratings(prompts, "predictor") == ratings and len(forwards) == before
    # ...but an adapter of another training run, or one without a run id, is asked again.
    retrained = type(predictor[0])(predictor[0].config, predictor[0].state_dict, {**predictor[0].metadata, "run": "predictor-other"})
    rerun.load_adapters({"predictor": retrained})
    assert rerun.score_ratings(prompts, "predictor") == pytest.approx(ratings) and len(forwards) > before
    before = len(forwards)
    rerun.load_adapters({"predictor": type(predictor[0])(predictor[0].config, predictor[0].state_dict, {})})
    rerun.score_ratings(prompts, "predictor")
    rerun.score_ratings(prompts, "predictor")
    assert len(forwards) == before + 2


def test_uncached_answers_are_computed_afresh_and_not_kept(tiny_base, predictor, tmp_path):
    """Table 6 times predictions one at a time: a cached answer would time nothing."""
    from reason4rec.teacher.cache import AnswerCache

    prompts = ["The album is superb. Rate it.", "The album is awful. Rate it."]
    engine = Engine(tiny_base, {"predictor": predictor[0]}, cache=AnswerCache(tmp_path / "inference.sqlite"))
    ratings = engine.score_ratings(prompts, "predictor")
    forwards = []
    engine.model.register_forward_hook(lambda *_: forwards.append(1))
    with engine.uncached():
        assert engine.score_ratings(prompts, "predictor", batch_size=1) == pytest.approx(ratings, abs=1e-5)
        assert len(forwards) == 2
        engine.score_ratings(["Say something."], "predictor")
    engine.score_ratings(["Say something."], "predictor")  # not kept by the uncached call: computed again
    assert len(forwards) == 4 and engine.cache is not None
