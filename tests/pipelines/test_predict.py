"""A trained smoke run used: predict, recommend, export_bundle, and the bundle in a fresh process with no Kedro project."""

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from tests.helpers import scratch_project


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A smoke project after `kedro run -e smoke`, with requests written as a user would."""
    from tests.pipelines.test_full_run import latest

    root = scratch_project(tmp_path_factory.mktemp("trained"))
    kedro(root, "run", "-e", "smoke")
    return root, latest


def kedro(root, *args):
    result = subprocess.run([sys.executable, "-m", "kedro", *args], cwd=root, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.mark.slow
def test_predict_answers_as_evaluate_flags_cold_pairs_and_counts_rejects(trained):
    root, latest = trained
    test = latest(root, "data/07_model_output/test_predictions.parquet")
    known_user, known_item = test["user_id"].iloc[0], test["item_id"].iloc[0]
    requests = pd.concat(
        [
            test[["user_id", "item_id"]].head(4),
            pd.DataFrame(
                {"user_id": ["NEW-USER", known_user, "NEW-USER", "", known_user], "item_id": [known_item, "NEW-ITEM", "NEW-ITEM", known_item, known_item]}
            ),
        ]
    )
    (root / "data/01_raw").mkdir(parents=True, exist_ok=True)
    requests.to_csv(root / "data/01_raw/prediction_requests.csv", index=False)
    log = kedro(root, "run", "-e", "smoke", "--pipelines", "predict")
    predictions = latest(root, "data/07_model_output/predictions.parquet")
    assert len(predictions) == len(requests)
    # The test pairs: the same reasons and ratings as evaluate gave them.
    same = predictions.head(4).merge(test, on=["user_id", "item_id"], suffixes=("", "_evaluate"))
    assert len(same) == 4 and (same["reason"] == same["reason_evaluate"]).all()
    assert same["prediction"].tolist() == pytest.approx(same["prediction_evaluate"].tolist(), abs=1e-9)
    assert same["distribution"].map(sum).tolist() == pytest.approx([1.0] * 4)
    assert predictions["status"].tolist()[4:] == [
        "cold_user", "cold_item", "cold_both", "rejected: missing user_id", "rejected: repeats an earlier request for this pair",
    ]  # fmt: skip
    cold = predictions.iloc[4:7]
    assert cold["prediction"].between(1, 5).all() and cold["reason"].notna().all()
    assert cold["user_history_size"].tolist()[0] == 0 and cold["item_history_size"].tolist()[1] == 0
    assert predictions.iloc[7:]["prediction"].isna().all()
    assert "2 of 9 requests rejected" in log


@pytest.mark.slow
def test_recommend_ranks_as_predicted_and_the_bundle_answers_as_the_pipeline_in_a_fresh_process(trained, tmp_path):
    root, latest = trained
    test = latest(root, "data/07_model_output/test_predictions.parquet")
    user = test["user_id"].iloc[0]
    (root / "data/01_raw").mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"user_id": [user, test["user_id"].iloc[1]], "k": ["3", ""], "candidates": ["", " ".join(test["item_id"].head(4))]}).to_csv(
        root / "data/01_raw/recommendation_requests.csv", index=False
    )
    kedro(root, "run", "-e", "smoke", "--pipelines", "recommend")
    recommendations = latest(root, "data/07_model_output/recommendations.parquet")
    first = recommendations[recommendations["user_id"] == user]
    assert first["rank"].tolist() == [1, 2, 3] and first["prediction"].is_monotonic_decreasing
    assert len(recommendations) == 3 + test["item_id"].head(4).nunique()

    kedro(root, "run", "-e", "smoke", "--pipelines", "export_bundle")
    bundle = root / "data/06_models/bundle"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert set(manifest["adapters"]) == {"summarizer", "reasoner", "predictor"} and manifest["settings"]["prompting"]["history_length"] == 4
    assert all(len(checksum) == 64 for checksum in manifest["files"].values())

    # A fresh interpreter outside any Kedro project: the same answers as the pipelines (the same reasons; ratings
    # to float noise, as batches of other sizes pad differently and the run's inference cache is not in the bundle).
    pairs = test[["user_id", "item_id"]].head(4).values.tolist() + [["NEW-USER", test["item_id"].iloc[0]]]
    script = (
        "import json, sys\nfrom reason4rec import Recommender\n"
        f"model = Recommender.from_bundle({str(bundle)!r})\n"
        f"table = model.predict_many({pairs!r})\n"
        f"ranked = model.recommend({user!r}, k=3)\n"
        "print(json.dumps({'predict': table[['user_id', 'item_id', 'status', 'reason', 'rating']].to_dict('records'),"
        " 'recommend': ranked[['item_id', 'rank', 'rating']].to_dict('records')}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    for row, expected in zip(answers["predict"][:4], test.head(4).itertuples()):
        assert (row["reason"], row["status"]) == (expected.reason, "ok") and row["rating"] == pytest.approx(expected.prediction, abs=1e-6)
    assert answers["predict"][4]["status"] == "cold_user"
    assert [r["item_id"] for r in answers["recommend"]] == first["item_id"].tolist()
    assert [r["rating"] for r in answers["recommend"]] == pytest.approx(first["prediction"].tolist(), abs=1e-6)

    # A changed file is refused, naming it.
    from reason4rec.bundle import read_bundle

    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    (copy / "summaries.parquet").write_bytes(b"not the summaries")
    with pytest.raises(ValueError, match="summaries.parquet does not match its checksum"):
        read_bundle(copy)
    with pytest.raises(FileNotFoundError, match="not a reason4rec bundle"):
        read_bundle(tmp_path)
