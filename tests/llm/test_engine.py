import math

import pytest
import torch

from reason4rec.llm.chat import RATING_PREFIX, chat_prompt, expected_rating, rating_token_ids
from reason4rec.llm.engine import Engine, length_sorted_batches, load_engine


def test_trained_predictor_ranks_ratings(tiny_base, predictor):
    engine = Engine(tiny_base, {"predictor": predictor[0]})
    scores = engine.score_ratings(["The album is awful. Rate it.", "The album is superb. Rate it."], "predictor")
    assert scores[0] + 1.0 < scores[1]


def test_rating_digits_are_single_tokens_after_the_prefix(tiny_base):
    ids = rating_token_ids(tiny_base.tokenizer)
    assert len(set(ids)) == 5
    assert [tiny_base.tokenizer.decode([i]) for i in ids] == ["1", "2", "3", "4", "5"]


def test_logit_weighted_decoding_is_the_softmax_expectation(tiny_base, predictor):
    weights = [math.exp(v) for v in [2.0, -1.0, 0.5, 1.5, 3.0]]
    by_hand = sum(k * w for k, w in zip(range(1, 6), weights)) / sum(weights)
    assert expected_rating([w / sum(weights) for w in weights]) == pytest.approx(by_hand)
    # The engine's distribution is the softmax over the five rating tokens' logits; its rating is the expectation.
    engine = Engine(tiny_base, {"predictor": predictor[0]})
    prompts = ["The album is awful. Rate it.", "The album is superb. Rate it."]
    distributions = engine.rating_distributions(prompts, "predictor")
    with torch.inference_mode():
        encoded = engine.tokenizer(chat_prompt(engine.tokenizer, prompts[0]) + RATING_PREFIX, add_special_tokens=False, return_tensors="pt")
        logits = engine.model(**encoded).logits[0, -1, engine.rating_ids]
    assert distributions[0] == pytest.approx(torch.softmax(logits.float(), -1).tolist(), abs=1e-4)
    assert [sum(d) for d in distributions] == pytest.approx([1.0, 1.0])
    assert engine.score_ratings(prompts, "predictor") == pytest.approx([expected_rating(d) for d in distributions])


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


def test_load_engine_builds_one_engine_that_every_node_loads_its_adapters_into(tiny_base, predictor, echo, caplog):
    with caplog.at_level("INFO", logger="reason4rec.llm.loading"):
        engine = load_engine(tiny_base, {"cache_path": None, "batch_size": 3})
        engine.load_adapters({"predictor": predictor[0]})
        engine.load_adapters({"echo": echo})
    assert isinstance(engine, Engine) and engine.batch_size == 3 and caplog.text.count("Loaded the base") == 1
    alone = Engine(tiny_base, {"predictor": predictor[0]})
    prompt = ["The album is superb. Rate it."]
    assert engine.score_ratings(prompt, "predictor") == pytest.approx(alone.score_ratings(prompt, "predictor"), abs=1e-6)
    # The same name again with other weights replaces them.
    engine.load_adapters({"predictor": echo})
    assert engine.generate(["Say something."], "predictor", max_new_tokens=8) == engine.generate(["Say something."], "echo", max_new_tokens=8)
    with pytest.raises(ValueError, match="unknown llm.inference setting"):
        load_engine(tiny_base, {"batch_sise": 3})


def test_answers_are_computed_once_per_adapter_run_and_kept_across_engines(tiny_base, predictor, echo, tmp_path):
    from reason4rec.completions.cache import AnswerCache

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
    from reason4rec.completions.cache import AnswerCache

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
