"""The whole method, smoke-sized (conf/smoke), through Kedro sessions, in a scratch copy of the project."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from reason4rec import prompts
from tests.helpers import PROJECT_ROOT, generate_dag, load_dag_module, scratch_project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The scratch project, its runs tracked by kedro-mlflow into a local store (conf/mlflow.yml, as docs/tracking.md says)."""
    root = scratch_project(tmp_path_factory.mktemp("project"))
    shutil.copy(PROJECT_ROOT / "conf" / "mlflow.yml", root / "conf" / "smoke" / "mlflow.yml")
    return root


def run(project: Path, monkeypatch, pipeline: str = "__default__", **runtime_params) -> None:
    monkeypatch.chdir(project)
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="smoke", runtime_params=runtime_params or None) as session:
        session.run(pipeline_names=[pipeline])


def latest(project: Path, relative: str) -> pd.DataFrame:
    return pd.read_parquet(sorted((project / relative).glob("*/*"))[-1])


@pytest.mark.slow
def test_every_pipeline_runs_and_distillation_resumes_without_teacher_calls(project, monkeypatch, capsys):
    # `kedro run -e smoke --params "llm.experts.predictor.training.weight_decay=0.05"`: a TrainingArguments
    # field the YAML does not set reaches the predictor's Trainer (and the "w/o reason" one, which trains from its block).
    run(project, monkeypatch, llm={"experts": {"predictor": {"training": {"weight_decay": 0.05}}}})
    assert "Rating accuracy on the test split" in capsys.readouterr().out

    attempts = latest(project, "data/07_model_output/distilled_reasons.parquet")
    pairs = latest(project, "data/05_model_input/reasoner_pairs.parquet")
    assert set(attempts["pair_id"]) == {f"{u}|{i}" for u, i in zip(pairs["user_id"], pairs["item_id"])}
    assert set(attempts["status"]) <= {"accepted", "rejected_by_reward", "forbidden_word", "teacher_failed", "truncated"}
    assert not attempts.loc[attempts["attempt"] == 0, "hinted"].any() and attempts.loc[attempts["attempt"] > 0, "hinted"].all()
    assert attempts.groupby("pair_id").size().max() <= 3

    metrics = json.loads(sorted((project / "data/08_reporting/evaluation_metrics.json").glob("*/*"))[-1].read_text())
    methods = {row["method"] for row in metrics["accuracy"]}
    assert methods == {"Reason4Rec", "Reason4Rec w/o reason", "Global mean", "BaselineOnly", "SVD (biased MF)", "SVD++", "DeepCoNN"}
    assert len({row["rows"] for row in metrics["accuracy"]}) == 1
    assert {"embedding_cosine", "rouge_l", "aspect_precision", "aspect_recall"} <= set(metrics["reason_quality"])
    assert {"aspect_precision", "aspect_recall"} <= set(metrics["teacher_reason_aspects"])
    assert all("pearson" in row for row in metrics["accuracy"])
    report = project / "data/08_reporting/report"
    assert (report / "report.md").read_text().startswith("# reason4rec evaluation")
    assert {p.name for p in report.glob("*.png")} == {
        "error_by_method.png", "predicted_vs_true.png", "s_eval_distribution.png", "acceptance_by_attempt.png", "counterfactual_shift.png", "reliability.png"
    }  # fmt: skip
    for expert in ("summarizer", "reward_model", "reasoner", "predictor", "predictor_no_reason"):
        versions = list((project / f"data/06_models/{expert}_adapter").glob("*/*/adapter_model.safetensors"))
        assert len(versions) == 1
        trained_with = json.loads((versions[0].parent / "training_metadata.json").read_text())["training_arguments"]
        assert trained_with["weight_decay"] == (0.05 if expert.startswith("predictor") else 0.0), expert

    # The method's data flow: no NaN prediction, the reasoner learns only accepted
    # reasons, the ablation's predictor never sees a reason.
    predictions = latest(project, "data/07_model_output/test_predictions.parquet")
    assert predictions["prediction"].notna().all() and predictions["prediction"].between(1, 5).all()
    assert latest(project, "data/07_model_output/test_predictions_no_reason.parquet")["prediction"].notna().all()
    reasoner_data = latest(project, "data/05_model_input/reasoner_sft_data.parquet")
    accepted = set(attempts.loc[attempts["accepted"], "reason"])
    assert len(reasoner_data) == attempts.loc[attempts["accepted"], "pair_id"].nunique()
    assert set(reasoner_data["response"]) <= accepted
    ablation_prompts = latest(project, "data/05_model_input/predictor_no_reason_sft_data.parquet")["prompt"]
    assert not ablation_prompts.str.contains(prompts.ANALYSIS_HEADER, regex=False).any()
    assert latest(project, "data/05_model_input/predictor_sft_data.parquet")["prompt"].str.contains(prompts.ANALYSIS_HEADER, regex=False).all()
    assert set(latest(project, "data/08_reporting/summarizer_check.parquet")["field"]) == {"positive", "negative", "preferences"}
    # Table 5's five rows on the same pairs; Table 6 timed one at a time and batched on the same rows.
    check = latest(project, "data/08_reporting/reward_check.parquet")
    assert check["reason_type"].tolist() == ["Review-guided Reason", "Review-inferred Reason", "Hint-inferred Reason", "History-inferred Reason", "Without Reason"]
    assert check["rows"].nunique() == 1
    assert len(latest(project, "data/08_reporting/test_timings.parquet")) == 4
    assert metrics["inference_cost"]["one_at_a_time"]["rows"] == metrics["inference_cost"]["batched"]["rows"] == 2
    # Does the rating follow the reason? Every test row rescored with a donor reason (none when the predictions do not split), and the calibration.
    counterfactual = latest(project, "data/07_model_output/counterfactual_predictions.parquet")
    assert metrics["counterfactual_reasons"]["rows"] == len(counterfactual) in (0, len(predictions))
    assert metrics["counterfactual_reasons"]["rows"] == 0 or set(counterfactual["direction"]) == {1, -1}
    assert metrics["calibration"]["rows"] == len(predictions) == sum(b["rows"] for b in metrics["calibration"]["bins"])
    assert 0 <= metrics["calibration"]["observed_coverage"] <= 1 and "## Does the rating follow the reason?" in (report / "report.md").read_text()

    check_tracked_run(project, metrics)

    # Tasks of the Airflow DAG (docs/deployment.md) run on their own: what their nodes read in memory is built inside the task.
    dag = load_dag_module(generate_dag(project, project / "dags"))
    dag.tasks["distill-reasons"]()
    rejects = latest(project, "data/08_reporting/ingest_rejects.parquet")
    dag.tasks["collect-rejects"]()  # the ingest's last step: its DuckDB relations come from the steps before it, run again in the task
    pd.testing.assert_frame_equal(latest(project, "data/08_reporting/ingest_rejects.parquet"), rejects)
    pd.testing.assert_frame_equal(latest(project, "data/07_model_output/distilled_reasons.parquet"), attempts)

    # Table 4 after the run, from the catalog: each alternative's reasoner and predictor, scored on the same rows.
    run(project, monkeypatch, "reason_ablations")
    table4 = latest(project, "data/08_reporting/reason_ablation_accuracy.parquet")
    assert set(table4["method"]) == {"Reason4Rec (Algorithm 1)", "Without Reason", "Review-guided Reason", "Review-inferred Reason", "History-inferred Reason"}
    assert table4["rows"].nunique() == 1 and table4["rows"].iloc[0] == len(predictions)
    assert list((project / "data/06_models/review_inferred.reasoner_adapter").glob("*/*/adapter_model.safetensors"))
    assert (project / "data/08_reporting/report/reason_ablations.md").read_text().startswith("# Effect of the reason generation approach")

    # GRPO after the run, from the catalog: the refined reasoner scored on the same rows beside Reason4Rec.
    run(project, monkeypatch, "refine_reasoner")
    refined = latest(project, "data/08_reporting/refinement_accuracy.parquet")
    assert set(refined["method"]) == {"Reason4Rec + GRPO", "Reason4Rec", "Reason4Rec w/o reason"} and (refined["rows"] == len(predictions)).all()
    assert list((project / "data/06_models/reasoner_rl_adapter").glob("*/*/adapter_model.safetensors"))
    assert (report / "refinement.md").read_text().startswith("# Reason4Rec + GRPO") and (report / "refinement_rewards.png").is_file()

    # Run distill_reasons again: the journal and the teacher cache answer everything.
    run(project, monkeypatch, "distill_reasons")
    usage = latest(project, "data/08_reporting/teacher_usage/distill_reasons.parquet")
    assert usage["calls"].sum() == 0 or usage.empty
    again = latest(project, "data/07_model_output/distilled_reasons.parquet")
    pd.testing.assert_frame_equal(again.reset_index(drop=True), attempts.reset_index(drop=True))


def check_tracked_run(project: Path, metrics: dict) -> None:
    """The default run left one MLflow run with its parameters, metrics and report, and one nested run per trained expert with its loss curve."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("reason4rec").experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.run_name == "__default__" and parent.info.status == "FINISHED"
    assert parent.data.params["llm.experts.predictor.training.weight_decay"] == "0.05" and parent.data.params["distill_reasons.tau"]
    for row in metrics["accuracy"]:
        key = {"Reason4Rec w/o reason": "Reason4Rec_w_o_reason", "SVD (biased MF)": "SVD_biased_MF", "SVD++": "SVDpp", "Global mean": "Global_mean"}.get(row["method"], row["method"])
        assert abs(parent.data.metrics[f"mae.{key}"] - row["mae"]) < 1e-9, row["method"]
    assert "report/evaluation_report.md" in {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    nested = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(nested) == {"summarizer", "reward_model", "reasoner", "predictor", "predictor_no_reason"}
    for expert, run_ in nested.items():
        curve = latest(project, f"data/08_reporting/loss_curves/{expert}_loss_curve.parquet")
        logged = client.get_metric_history(run_.info.run_id, "loss")
        assert [m.step for m in logged] == curve["step"].tolist() and run_.info.status == "FINISHED", expert
        assert run_.data.params["learning_rate"] and run_.data.params["weight_decay"] == ("0.05" if expert.startswith("predictor") else "0.0")


@pytest.mark.slow
def test_notebook_runs_over_the_smoke_catalog(project, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    if not (project / "data/08_reporting/evaluation_metrics.json").exists():
        run(project, monkeypatch)
    monkeypatch.setenv("REASON4REC_PROJECT", str(project))
    monkeypatch.setenv("REASON4REC_ENV", "smoke")
    notebook = nbformat.read(PROJECT_ROOT / "notebooks" / "inspect_run.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), "commit the notebook without outputs"
    NotebookClient(notebook, timeout=300, kernel_name="python3", allow_errors=True).execute()
    errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, "\n".join(f"{e['ename']}: {e['evalue']}" for e in errors)
    printed = "".join(o.get("text", "") for cell in notebook.cells for o in cell.get("outputs", []))
    assert "pairs accepted" in printed and "true review:" in printed


def test_kedro_viz_build_lists_every_pipeline_and_dataset(project):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "kedro", "viz", "build"], cwd=project, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    main = json.loads((project / "build" / "api" / "main").read_text())
    pipelines = {p["id"] for p in main["pipelines"]}
    assert {"ingest_5core", "summarize", "reward_model", "distill_reasons", "train_reasoner", "train_predictor", "evaluate", "reason_ablations"} <= pipelines
    datasets = {n["name"] for n in main["nodes"] if n["type"] in ("data", "parameters")}
    for name in ("raw_reviews", "interactions_train", "summaries", "reward_model_adapter", "distilled_reasons", "test_predictions", "evaluation_metrics", "teacher"):
        assert name in datasets
    layers = {n.get("layer") for n in main["nodes"]}
    assert {"raw", "intermediate", "primary", "models", "model_output", "reporting"} <= layers
    assert "sk-" not in (project / "build" / "api" / "main").read_text()
