"""The served engine against a server in vLLM's shape that wraps the in-process engine."""

import math

import pytest

from reason4rec.llm.engine import Engine, load_engine
from reason4rec.llm.chat import expected_rating
from reason4rec.llm.served import ServedEngine, distribution_from_logprobs
from reason4rec.parameters import Inference
from tests.llm.vllm_like_server import VLLMLikeServer

PROMPTS = [f"The album is {word}. Rate it." for word in ("awful", "poor", "okay", "good", "superb", "good, mostly")]


@pytest.fixture(scope="module")
def local(tiny_base, predictor, echo):
    return Engine(tiny_base, {"predictor": predictor[0], "echo": echo})


@pytest.fixture
def server(local):
    with VLLMLikeServer(local, base_name="tiny") as running:
        yield running


def served_engine(tiny_base, server, predictor, echo, **settings):
    engine = ServedEngine(tiny_base, Inference(backend="server", base_url=server.base_url, cache_path=None, **settings))
    engine.load_adapters({"predictor": predictor[0], "echo": echo})
    return engine


def test_served_ratings_equal_in_process_scoring(tiny_base, local, server, predictor, echo):
    served = served_engine(tiny_base, server, predictor, echo)
    assert served.score_ratings(PROMPTS, "predictor") == pytest.approx(local.score_ratings(PROMPTS, "predictor"), abs=1e-4)
    assert served.score_ratings(PROMPTS[:2], None) == pytest.approx(local.score_ratings(PROMPTS[:2], None), abs=1e-4)  # the bare base
    assert served.missing_digits == 0 and server.requests["predictor"] == len(PROMPTS) and server.requests["tiny"] == 2


def test_served_generation_is_identical_at_temperature_zero(tiny_base, local, server, predictor, echo):
    served = served_engine(tiny_base, server, predictor, echo)
    prompts = ["Say something.", "Say something else, at more length than the first."]
    for adapter in ("echo", "predictor"):
        ours, theirs = served.generate(prompts, adapter, max_new_tokens=8), local.generate(prompts, adapter, max_new_tokens=8)
        assert [(o["text"], o["new_tokens"]) for o in ours] == [(o["text"], o["new_tokens"]) for o in theirs]
    # An answer cut at the token budget is flagged by both.
    assert [o["truncated"] for o in served.generate(prompts, "echo", max_new_tokens=2)] == [o["truncated"] for o in local.generate(prompts, "echo", max_new_tokens=2)] == [True, True]


def test_answers_are_cached_per_adapter_run_and_retried_through_5xx(tiny_base, server, predictor, echo):
    served = served_engine(tiny_base, server, predictor, echo, concurrency=2)
    served._teacher("predictor").retry.backoff_base_s = 0.0
    server.fail_next = [503, 500]
    first = served.score_ratings(PROMPTS, "predictor")
    asked = server.requests["predictor"]
    assert served.score_ratings(PROMPTS, "predictor") == first and server.requests["predictor"] == asked  # from the cache
    retrained = type(predictor[0])(predictor[0].config, predictor[0].state_dict, {**predictor[0].metadata, "run": "another-run"})
    served.load_adapters({"predictor": retrained})
    served.score_ratings(PROMPTS, "predictor")
    assert server.requests["predictor"] == 2 * asked  # another run of the adapter is asked again


def test_an_adapter_the_server_does_not_serve_is_a_clear_error(tiny_base, server, predictor, echo):
    served = served_engine(tiny_base, server, predictor, echo, served_names={"predictor": "predictor-v2"})
    with pytest.raises(RuntimeError, match=r"6 of 6 requests to http://127.0.0.1:\d+/v1 for predictor failed.*predictor-v2` does not exist"):
        served.score_ratings(PROMPTS, "predictor")
    with pytest.raises(KeyError, match="no adapter named 'reasoner'"):
        served.generate(PROMPTS, "reasoner", max_new_tokens=4)


def test_missing_digits_are_counted_and_the_expectation_is_over_those_present(tiny_base, server, predictor, echo, caplog):
    served = served_engine(tiny_base, server, predictor, echo, top_logprobs=2)
    with caplog.at_level("WARNING", logger="reason4rec.llm.served"):
        ratings = served.score_ratings(PROMPTS[:1], "predictor")
    assert 3 <= served.missing_digits <= 4 and "were not among the top 2 tokens" in caplog.text
    assert 1.0 <= ratings[0] <= 5.0
    # Five digits present: exactly the softmax expectation; fewer: renormalized among those present.
    assert distribution_from_logprobs([0.0] * 5) == pytest.approx([0.2] * 5)
    assert distribution_from_logprobs([None, None, None, math.log(0.3), math.log(0.1)]) == pytest.approx([0, 0, 0, 0.75, 0.25])
    assert expected_rating(distribution_from_logprobs([None, None, None, math.log(0.3), math.log(0.1)])) == pytest.approx(4.25)


def test_load_engine_picks_the_backend_from_llm_inference(tiny_base, server):
    served = load_engine(tiny_base, {"backend": "server", "base_url": server.base_url, "cache_path": None, "batch_size": 4})
    assert isinstance(served, ServedEngine) and served.batch_size == 4
    assert isinstance(load_engine(tiny_base, {"cache_path": None}), Engine)
    with pytest.raises(ValueError, match="backend: server needs llm.inference.base_url"):
        load_engine(tiny_base, {"backend": "server"})
    with pytest.raises(ValueError, match=r"unknown llm.inference setting\(s\) base_ulr"):
        load_engine(tiny_base, {"backend": "server", "base_ulr": "http://x"})
