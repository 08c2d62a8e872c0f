import pandas as pd
import pytest

from reason4rec.data.synthetic import generate_review_world
from reason4rec.pipelines.evaluate import create_pipeline
from reason4rec.pipelines.evaluate.nodes import compile_accuracy, sample_test_rows
from tests.conftest import SMOKE_WORLD


def test_test_rows_are_a_fixed_seed_sample_in_time_order():
    test = generate_review_world(SMOKE_WORLD)
    first, again = sample_test_rows(test, {"test_rows": 20, "seed": 0}), sample_test_rows(test, {"test_rows": 20, "seed": 0})
    pd.testing.assert_frame_equal(first, again)
    assert len(first) == 20 and first["timestamp"].is_monotonic_increasing
    assert not first.equals(sample_test_rows(test, {"test_rows": 20, "seed": 1}))
    assert len(sample_test_rows(test, {"test_rows": None, "seed": 0})) == len(test)


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
