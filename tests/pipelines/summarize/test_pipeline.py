import pandas as pd
import pytest

from reason4rec import contexts as ctx
from reason4rec import prompts
from reason4rec.data.synthetic import generate_review_world
from reason4rec.pipelines.summarize import create_pipeline
from reason4rec.pipelines.summarize.nodes import request_teacher_summaries
from reason4rec.summaries import summary_table
from reason4rec.completions import CompletionClient
from reason4rec.completions.cache import AnswerCache
from reason4rec.completions.fake_server import FakeBatchServer
from reason4rec.datasets.teacher import TeacherDataset
from reason4rec.teacher.rules import RulesBackend
from tests.helpers import PROMPTING, SMOKE_WORLD, batch_teacher_config, rules_answer, run_pipeline, smoke_expert

SUMMARIZE = {
    "seed": 11, "teacher_sample_size": 12, "check_size": 4, "teacher": {"temperature": 0.0, "max_tokens": 128, "max_attempts": 2},
    "use_teacher_summaries": False, "generation": {"max_new_tokens": 8},
}  # fmt: skip
# ``engine`` among the outputs: kept as is (copy_mode assign, as conf/base/catalog.yml declares it), never deep-copied.
OUTPUTS = ["teacher_summaries", "summarizer_sft_data", "summarizer_adapter", "summaries", "summarizer_check", "reward_contexts", "reasoner_contexts"]


def world_and_pairs():
    world = generate_review_world(SMOKE_WORLD)
    pool = ctx.history_pool(world, world.iloc[:0], world.iloc[:0])
    pairs = ctx.sample_pairs(world, pool, {"reward": 6, "reasoner": 4}, seed=0)
    return world, pool, pairs


def run_summarize(tiny_base, teacher=None, **overrides):
    world, pool, pairs = world_and_pairs()
    return pool, pairs, run_pipeline(
        create_pipeline(),
        {
            "interactions_train": world, "history_pool": pool, "reward_pairs": pairs["reward"], "reasoner_pairs": pairs["reasoner"],
            "teacher": teacher or CompletionClient(RulesBackend(), AnswerCache(None), concurrency=2), "base_model": tiny_base,
            "params:prompting": {**PROMPTING, "history_length": 3}, "params:summarize": {**SUMMARIZE, **overrides},
            "params:llm.experts.summarizer": smoke_expert("summarizer", num_train_epochs=1), "params:llm.inference": {"cache_path": None, "batch_size": 16},
        },
        OUTPUTS,
    )  # fmt: skip


def test_pipeline_distills_the_summarizer_and_summarizes_every_interaction_with_it(tiny_base):
    pool, pairs, out = run_summarize(tiny_base)
    teacher = out["teacher_summaries"]
    assert (teacher["split"] == "train").sum() == len(out["summarizer_sft_data"]) == 12 and (teacher["split"] == "check").sum() == 4
    assert out["summarizer_adapter"].metadata["training_examples"] == 12
    summaries = out["summaries"]
    assert len(summaries) == len(pool) and (summaries["source"] == "summarizer").all()
    check = out["summarizer_check"]
    assert list(check["field"]) == ["positive", "negative", "preferences"] and (check["rows"] == 4).all()
    # Each pair's context: the pair itself, and histories that read the summaries just written.
    fields = ["positive", "negative", "preferences"]
    for name, key in (("reward_contexts", "reward"), ("reasoner_contexts", "reasoner")):
        contexts = out[name]
        assert list(zip(contexts["user_id"], contexts["item_id"])) == list(zip(pairs[key]["user_id"], pairs[key]["item_id"]))
        for row in contexts.itertuples():
            assert 0 < len(row.user_history) <= 3 and 0 < len(row.item_history) <= 3
            written = set(summaries.loc[summaries["user_id"] == row.user_id, fields].itertuples(index=False, name=None))
            assert {tuple(entry[f] for f in fields) for entry in row.user_history} <= written


def test_with_teacher_summaries_the_teacher_summarizes_every_interaction(tiny_base):
    pool, _, out = run_summarize(tiny_base, use_teacher_summaries=True)
    assert len(out["summaries"]) == len(pool) and (out["summaries"]["source"] == "teacher").all()
    assert out["summaries"]["parsed"].all()


def test_in_batch_mode_every_teacher_summary_comes_through_the_batch_api_once(tiny_base, tmp_path):
    with FakeBatchServer(answer=rules_answer) as server:
        teacher = TeacherDataset(batch_teacher_config(server.base_url, tmp_path / "teacher_cache.sqlite"), credentials={"api_key": "dummy"}).load()
        pool, _, out = run_summarize(tiny_base, teacher=teacher, use_teacher_summaries=True)
    assert len(out["summaries"]) == len(pool) and (out["summaries"]["source"] == "teacher").all() and out["summaries"]["parsed"].all()
    assert len(out["teacher_summaries"]) == SUMMARIZE["teacher_sample_size"] + SUMMARIZE["check_size"]
    # One batch for the sample, one for every interaction (the rules' summaries all parse: no second attempt); no line twice.
    assert len(server.batches) == 2 and set(server.submitted.values()) == {1} and server.requests == {}
    usage = teacher.usage_table().set_index("stage")
    assert (usage["batch_calls"] == usage["calls"]).all() and usage.loc["summarize_all", "calls"] == len(pool) - usage.loc["summarize_all", "cache_hits"]


def test_a_misspelt_summarize_setting_is_named_with_its_path():
    world, _, _ = world_and_pairs()
    teacher = CompletionClient(RulesBackend(), AnswerCache(None), concurrency=2)
    with pytest.raises(ValueError, match=r"unknown summarize.teacher setting\(s\) max_atempts"):
        request_teacher_summaries(world, teacher, PROMPTING, {**SUMMARIZE, "teacher": {"temperature": 0.0, "max_tokens": 128, "max_atempts": 2}})


def test_an_unparsed_summary_cut_at_its_budget_is_marked_truncated():
    pairs = pd.DataFrame({"user_id": ["u1", "u2", "u3"], "item_id": ["i1", "i2", "i3"]})
    whole = prompts.format_summary(["Melody"], [], ["Melody"])
    table = summary_table(pairs, ["Positive Aspects: Mel", "no fields", whole], [True, False, True], "summarizer")
    assert table["parsed"].tolist() == [False, False, True]
    assert table["truncated"].tolist() == [True, False, False]  # a complete summary that used its whole budget is not cut
