import pandas as pd

from reason4rec import contexts as ctx
from reason4rec.data.synthetic import generate_review_world
from tests.helpers import PROMPTING


def world_pool(smoke_world):
    world = generate_review_world(smoke_world)
    return world, ctx.history_pool(world, world.iloc[:0], world.iloc[:0])


def test_samples_are_disjoint_deterministic_and_have_history(smoke_world):
    train, pool = world_pool(smoke_world)
    first = ctx.sample_pairs(train, pool, {"reward": 50, "reasoner": 80}, seed=1)
    again = ctx.sample_pairs(train, pool, {"reward": 50, "reasoner": 80}, seed=1)
    other = ctx.sample_pairs(train, pool, {"reward": 50, "reasoner": 80}, seed=2)
    keys = {name: set(zip(s["user_id"], s["item_id"])) for name, s in first.items()}
    assert len(keys["reward"]) == 50 and len(keys["reasoner"]) == 80 and not keys["reward"] & keys["reasoner"]
    for name in first:
        pd.testing.assert_frame_equal(first[name], again[name])
    assert not first["reward"].equals(other["reward"])
    contexts = ctx.build_contexts(first["reward"], pool, pd.DataFrame(columns=["user_id", "item_id", "positive", "negative", "preferences"]), {**PROMPTING, "history_length": 10})
    assert contexts["user_history"].map(len).min() >= 1 and contexts["item_history"].map(len).min() >= 1


def test_contexts_show_summaries_and_fall_back_to_none(smoke_world):
    train, pool = world_pool(smoke_world)
    target = train.iloc[[-1]]
    summaries = pool[["user_id", "item_id"]].assign(positive="Melody", negative="None", preferences="Melody").iloc[:-50]
    context = ctx.build_contexts(target, pool, summaries, {**PROMPTING, "history_length": 3}).iloc[0]
    history = list(context["user_history"])
    assert 1 <= len(history) <= 3 and all(set(entry) == {"title", "positive", "negative", "preferences", "rating"} for entry in history)
    prompt = ctx.predictor_prompt(context, PROMPTING, "because")
    assert "### Personalized Recommendation Analysis ###\nbecause" in prompt
    assert context["user_mean_rating"] == train[(train["user_id"] == target["user_id"].iloc[0]) & (train["timestamp"] < target["timestamp"].iloc[0])]["rating"].mean()


def test_the_history_pool_holds_train_only_unless_all_splits_are_asked_for(smoke_world):
    world = generate_review_world(smoke_world)
    n = len(world)
    train, valid, test = world.iloc[: n - 40], world.iloc[n - 40 : n - 20], world.iloc[n - 20 :]
    # A test row whose user also has an earlier valid or test row.
    later = world.iloc[n - 40 :]
    target = test.loc[[i for i in test.index if ((later["user_id"] == test.at[i, "user_id"]) & (later["timestamp"] < test.at[i, "timestamp"])).any()][-1:]]
    assert len(target) == 1
    only_train = ctx.build_contexts(target, ctx.history_pool(train, valid, test, "train"), world.iloc[:0].assign(positive=None, negative=None, preferences=None), {**PROMPTING, "history_length": 1000})
    every_split = ctx.build_contexts(target, ctx.history_pool(train, valid, test, "all"), world.iloc[:0].assign(positive=None, negative=None, preferences=None), {**PROMPTING, "history_length": 1000})
    user = target["user_id"].iloc[0]
    earlier = world[(world["user_id"] == user) & (world["timestamp"] < target["timestamp"].iloc[0])]
    in_train = earlier[earlier.index < n - 40]
    assert len(only_train.iloc[0]["user_history"]) == len(in_train) and only_train.iloc[0]["user_mean_rating"] == in_train["rating"].mean()
    assert len(every_split.iloc[0]["user_history"]) == len(earlier) > len(in_train)
