"""A trained smoke run used: predict, recommend, export_bundle, and the bundle in a fresh process with no Kedro project."""

import json
import os
import shutil
import subprocess
import sys
import time

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
        "reviews = [{'title': 'Blue Train', 'rating': 5, 'review': 'The melody stays with you.'}, {'title': 'Noise', 'rating': 2, 'review': 'Harsh mix.'}]\n"
        "new = model.predict_from_histories(reviews, reviews[:1], title='Kind of Blue')\n"
        f"taught = Recommender.from_bundle({str(bundle)!r}, teacher={{'backend': 'rules'}})\n"
        "by_teacher = taught.predict_from_histories(reviews, reviews[:1], title='Kind of Blue')\n"
        "print(json.dumps({'predict': table[['user_id', 'item_id', 'status', 'reason', 'rating']].to_dict('records'),"
        " 'recommend': ranked[['item_id', 'rank', 'rating']].to_dict('records'),"
        " 'new': [new[k] for k in ('status', 'rating', 'user_history_size', 'item_history_size')],"
        " 'by_teacher': [by_teacher[k] for k in ('status', 'rating', 'user_history_size', 'item_history_size')],"
        " 'teacher_calls': int(taught.teacher.usage_table()['calls'].sum())}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    for row, expected in zip(answers["predict"][:4], test.head(4).itertuples()):
        assert (row["reason"], row["status"]) == (expected.reason, "ok") and row["rating"] == pytest.approx(expected.prediction, abs=1e-6)
    assert answers["predict"][4]["status"] == "cold_user"
    assert [r["item_id"] for r in answers["recommend"]] == first["item_id"].tolist()
    assert [r["rating"] for r in answers["recommend"]] == pytest.approx(first["prediction"].tolist(), abs=1e-6)
    # A pair described by its reviews: summarized by the bundle's summarizer, or by a teacher when given one (3 reviews, 3 calls).
    for status, rating, user_history, item_history in (answers["new"], answers["by_teacher"]):
        assert (status, user_history, item_history) == ("ok", 2, 1) and 1 <= rating <= 5
    assert answers["teacher_calls"] == 3

    # A changed file is refused, naming it.
    from reason4rec.bundle import read_bundle

    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    (copy / "summaries.parquet").write_bytes(b"not the summaries")
    with pytest.raises(ValueError, match="summaries.parquet does not match its checksum"):
        read_bundle(copy)
    with pytest.raises(FileNotFoundError, match="not a reason4rec bundle"):
        read_bundle(tmp_path)


@pytest.mark.slow
def test_the_service_answers_32_concurrent_requests_as_the_pipeline_and_survives_bad_ones(trained, tmp_path):
    """``reason4rec serve`` in its own process, on a free loopback port, on the run's bundle."""
    import socket
    from concurrent.futures import ThreadPoolExecutor

    from tests.test_service import BAD_PREDICT_REQUESTS, call

    root, latest = trained
    bundle = root / "data/06_models/bundle"
    if not (bundle / "manifest.json").is_file():
        kedro(root, "run", "-e", "smoke", "--pipelines", "export_bundle")
    interactions = pd.read_parquet(bundle / "interactions.parquet")
    users, items = sorted(interactions["user_id"].unique()), sorted(interactions["item_id"].unique())
    pairs = [(users[(7 * n) % len(users)], items[(5 * n) % len(items)]) for n in range(30)] + [("NEW-USER", items[0]), (users[0], "NEW-ITEM")]
    (root / "data/01_raw").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(pairs, columns=["user_id", "item_id"]).to_csv(root / "data/01_raw/prediction_requests.csv", index=False)
    kedro(root, "run", "-e", "smoke", "--pipelines", "predict")
    expected = latest(root, "data/07_model_output/predictions.parquet")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "serve.log", "w")
    token, auth = "tok-4c0ffee", {"authorization": "Bearer tok-4c0ffee"}
    server = subprocess.Popen(
        [sys.executable, "-m", "reason4rec", "serve", "--bundle", str(bundle), "--port", str(port)],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "REASON4REC_API_TOKEN": token},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if call(f"{url}/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.5)
        with ThreadPoolExecutor(32) as pool:
            replies = list(pool.map(lambda pair: call(f"{url}/v1/predict", {"user_id": pair[0], "item_id": pair[1]}, headers=auth), pairs))
        for (status, reply), row in zip(replies, expected.itertuples()):
            assert status == 200 and (reply["user_id"], reply["item_id"]) == (row.user_id, row.item_id)
            assert (reply["reason"], reply["status"]) == (row.reason, row.status)
            assert reply["rating"] == pytest.approx(row.prediction, abs=1e-6)
            assert reply["distribution"] == pytest.approx(list(row.distribution), abs=1e-6)
        assert call(f"{url}/healthz")[1]["batches"] < 32  # gathered into batches
        for body, field in BAD_PREDICT_REQUESTS:
            status, reply = call(f"{url}/v1/predict", body, headers=auth)
            assert status == 422 and field in reply["error"], (body, reply)
            assert call(f"{url}/v1/predict", {"user_id": pairs[0][0], "item_id": pairs[0][1]}, headers=auth)[1]["reason"] == expected["reason"].iloc[0]
        assert call(f"{url}/v1/predict", {"user_id": pairs[0][0], "item_id": pairs[0][1]})[0] == 401
        status, reply = call(f"{url}/v1/recommend", {"user_id": pairs[0][0], "k": 2}, headers=auth)
        assert status == 200 and [item["rank"] for item in reply["items"]] == [1, 2]
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    assert token not in (tmp_path / "serve.log").read_text()
