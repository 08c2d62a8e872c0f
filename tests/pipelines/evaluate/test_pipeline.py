import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from reason4rec import contexts as ctx
from reason4rec.contexts import rating_sft_examples
from reason4rec.data.synthetic import generate_review_world
from reason4rec.distillation import ATTEMPT_COLUMNS
from reason4rec.evaluation.faithfulness import COUNTERFACTUAL_COLUMNS
from reason4rec.evaluation.report import PLOT_FILES
from reason4rec.llm.training import train_adapter
from reason4rec.pipelines.evaluate import create_pipeline
from reason4rec.pipelines.evaluate.nodes import compile_accuracy, sample_test_rows
from reason4rec.completions import CompletionClient
from reason4rec.completions.cache import AnswerCache
from reason4rec.teacher.rules import RulesBackend
from tests.helpers import PROMPTING, SMOKE_PARAMS, SMOKE_WORLD, run_pipeline, smoke_expert


def test_test_rows_are_a_fixed_seed_sample_in_time_order():
    test = generate_review_world(SMOKE_WORLD)
    first, again = sample_test_rows(test, {"test_rows": 20, "seed": 0, "report_examples": 2, "timed_rows": 2}), sample_test_rows(test, {"test_rows": 20, "seed": 0, "report_examples": 2, "timed_rows": 2})
    pd.testing.assert_frame_equal(first, again)
    assert len(first) == 20 and first["timestamp"].is_monotonic_increasing
    assert not first.equals(sample_test_rows(test, {"test_rows": 20, "seed": 1, "report_examples": 2, "timed_rows": 2}))
    assert len(sample_test_rows(test, {"test_rows": None, "seed": 0, "report_examples": 2, "timed_rows": 2})) == len(test)


def test_every_method_is_scored_on_the_same_rows():
    truth = pd.DataFrame({"user_id": ["u1", "u2", "u3", "u4"], "item_id": ["i1", "i2", "i3", "i4"], "rating": [5.0, 4.0, 2.0, 1.0]})
    reason4rec = truth.assign(prediction=[5.0, 4.0, 2.0, 1.0], reason="r")
    ablation = truth.assign(prediction=[4.0, 4.0, 3.0, 3.0])
    baselines = truth.assign(method="Global mean", prediction=3.0)
    table = compile_accuracy(reason4rec, ablation, baselines).set_index("method")
    assert (table["rows"] == 4).all()
    assert table.loc["Reason4Rec", "mae"] == 0.0 and table.loc["Reason4Rec", "pearson"] == pytest.approx(1.0)
    assert table.loc["Reason4Rec w/o reason", "mae"] == pytest.approx(1.0) and table.loc["Global mean", "mae"] == pytest.approx(1.5)


def test_evaluate_trains_nothing():
    """Every adapter it reads comes from train_reasoner or train_predictor."""
    pipeline = create_pipeline()
    assert not any("train" in node.name for node in pipeline.nodes)
    assert {"reasoner_adapter", "predictor_adapter", "predictor_no_reason_adapter"} <= pipeline.inputs()


def test_pipeline_scores_every_method_on_the_same_test_rows_and_reports(tiny_base, pair_contexts):
    """The whole pipeline on in-memory inputs: trained adapters, the reward check and the attempts come from upstream."""
    world = generate_review_world(SMOKE_WORLD)
    pool = ctx.history_pool(world, world.iloc[:0], world.iloc[:0])
    summaries = pool[["user_id", "item_id"]].assign(positive="Melody", negative="None", preferences="Melody")
    reasoner, _ = train_adapter(tiny_base, pd.DataFrame({"prompt": ["Say something."] * 8, "response": ["Melody melody melody."] * 8}), smoke_expert(num_train_epochs=1), "reasoner")
    rating_sft = rating_sft_examples(pair_contexts, PROMPTING, [None] * len(pair_contexts))
    predictor, _ = train_adapter(tiny_base, rating_sft, {**smoke_expert(num_train_epochs=1), "loss_on": "rating"}, "predictor")
    user, item = pair_contexts["user_id"].iloc[0], pair_contexts["item_id"].iloc[0]
    attempts = pd.DataFrame(
        [{"pair_id": f"{user}|{item}", "user_id": user, "item_id": item, "rating": 4.0, "attempt": k, "hinted": k > 0, "reason": "r", "status": "scored",
          "r_reason": 4.0, "r_baseline": 4.0, "s_eval": 0.5 - k, "accepted": k == 1, "teacher_error": None} for k in (0, 1)],
        columns=ATTEMPT_COLUMNS,
    )  # fmt: skip
    reward_check = pd.DataFrame({"reason_type": ["Review-guided Reason", "Without Reason"], "mae": [0.5, 0.8], "rmse": [0.7, 1.0], "rows": [4, 4]})
    test = world.sample(10, random_state=0)
    out = run_pipeline(
        create_pipeline(),
        {
            "interactions_test": test, "interactions_train": world, "history_pool": pool, "summaries": summaries, "base_model": tiny_base,
            "reasoner_adapter": reasoner, "predictor_adapter": predictor, "predictor_no_reason_adapter": predictor,
            "teacher": CompletionClient(RulesBackend(), AnswerCache(None), concurrency=2), "reward_check": reward_check, "distilled_reasons": attempts,
            "params:evaluate": {"test_rows": 6, "seed": 0, "report_examples": 2, "timed_rows": 2, "aspect_vocabulary": SMOKE_PARAMS["evaluate"]["aspect_vocabulary"]},
            "params:prompting": {**PROMPTING, "history_length": 3}, "params:reason_generation": {"max_new_tokens": 6, "temperature": 0.0},
            "params:llm.inference": {"cache_path": None, "batch_size": 8}, "params:distill_reasons.tau": 0.1,
            "params:baselines": {"deepconn": {"seed": 0, "vocab_size": 200, "doc_tokens": 16, "embedding_dim": 8, "filters": 4, "kernel": 3, "latent": 4,
                                              "epochs": 1, "batch_size": 64, "learning_rate": 0.01}, "svd": {"n_factors": 2, "n_epochs": 2}},
        },
        ["test_predictions", "test_predictions_no_reason", "accuracy_table", "evaluation_metrics", "evaluation_report", "test_timings", "counterfactual_predictions",
         *(f"plot_{name}" for name in PLOT_FILES)],
    )  # fmt: skip
    predictions = out["test_predictions"]
    assert len(predictions) == 6 and predictions["prediction"].between(1, 5).all() and (predictions["reason"].str.len() > 0).all()
    assert out["test_predictions_no_reason"]["prediction"].between(1, 5).all()
    table = out["accuracy_table"]
    assert {"Reason4Rec", "Reason4Rec w/o reason", "Global mean", "SVD (biased MF)", "DeepCoNN"} <= set(table["method"]) and (table["rows"] == 6).all()
    metrics = out["evaluation_metrics"]
    assert metrics["distillation"]["first_attempt_acceptance"] == 0.0 and metrics["distillation"]["hinted_accepted"] == 1
    assert "Reason4Rec" in out["evaluation_report"]
    # Table 6: the same two rows timed one at a time and in one batch.
    timings = out["test_timings"]
    assert timings["mode"].value_counts().to_dict() == {"one_at_a_time": 2, "batched": 2}
    assert (timings["seconds"] > 0).all() and (timings["new_tokens"] >= 2).all()
    cost = metrics["inference_cost"]
    assert cost["one_at_a_time"]["rows"] == 2 and cost["batched"]["rows"] == 2
    assert "one at a time" in out["evaluation_report"] and "batched" in out["evaluation_report"]
    # Does the rating follow the reason? Every row rescored with a reason from the other side of the median, or none when the predictions do not split.
    counterfactual, follows = out["counterfactual_predictions"], metrics["counterfactual_reasons"]
    assert list(counterfactual.columns) == COUNTERFACTUAL_COLUMNS and follows["rows"] == len(counterfactual)
    if len(counterfactual):
        own = predictions.set_index(["user_id", "item_id"])["prediction"]
        assert len(counterfactual) == 6 and counterfactual["counterfactual_prediction"].between(1, 5).all()
        assert set(counterfactual["direction"]) == {1, -1} and (counterfactual["direction"] == np.where(counterfactual["prediction"] > own.median(), -1, 1)).all()
        assert np.allclose(counterfactual["shift"], counterfactual["counterfactual_prediction"] - counterfactual["prediction"])
        assert 0 <= follows["share_toward_reason"] + follows["share_against_reason"] <= 1 and follows["mean_absolute_shift"] >= abs(follows["mean_shift_toward_reason"])
    else:
        assert not (predictions["prediction"] > predictions["prediction"].median()).any() and follows["note"].startswith("not measurable")
    calibration = metrics["calibration"]
    assert predictions["distribution"].map(lambda d: abs(sum(d) - 1) < 1e-6 and len(d) == 5).all()
    assert calibration["rows"] == 6 and sum(b["rows"] for b in calibration["bins"]) == 6
    assert 0 <= calibration["observed_coverage"] <= 1 and calibration["interval_mass"] <= calibration["expected_coverage"] <= 1 and 0 <= calibration["brier_score"] <= 2
    assert "## Does the rating follow the reason?" in out["evaluation_report"] and "reliability.png" in out["evaluation_report"]
    assert all(isinstance(out[f"plot_{name}"], plt.Figure) for name in PLOT_FILES)


def test_a_constant_prediction_has_no_correlation_even_when_its_float_is_not_exact():
    from reason4rec.evaluation.metrics import pearson

    truth = np.array([5.0, 4.0, 3.0, 5.0, 1.0] * 26)
    mean = np.full(len(truth), truth.mean())
    assert mean.std() > 0  # rounding noise: what made the global mean's Pearson print as a number
    assert np.isnan(pearson(truth, mean)) and pearson(truth, truth) == pytest.approx(1.0)
