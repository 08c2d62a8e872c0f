import math

import pandas as pd
import pytest
from kedro.io import Version
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import ParquetDataset

from reason4rec.evaluation import results_page


MACHINE = {"cpu": "Test CPU 9000", "cores": "2", "avx512_bf16": "yes", "platform": "Linux-test", "python": "3.11.7"}


def evaluation_metrics(reason4rec_mae: float) -> dict:
    """``evaluation_metrics`` as ``compile_metrics`` writes it, on three test rows."""
    return {
        "test_rows": 3,
        "accuracy": [
            {"method": "SVD++", "mae": 0.5423, "rmse": 0.7082, "pearson": 0.413, "rows": 3},
            {"method": "Reason4Rec", "mae": reason4rec_mae, "rmse": 0.7885, "pearson": 0.399, "rows": 3},
            {"method": "Global mean", "mae": 0.6671, "rmse": 0.7790, "pearson": math.nan, "rows": 3},
        ],
        "reason_quality": {"embedding_cosine": 0.41, "rouge_l": 0.12, "rows": 3, "aspect_precision": 0.66, "aspect_recall": 0.34, "aspects_named_per_reason": 2.0, "gptscore": None},
        "teacher_reason_aspects": {"aspect_precision": 0.75, "aspect_recall": 0.64, "aspects_named_per_reason": 2.5},
        "gptscore": {"gptscore": None, "note": "needs an LLM teacher (teacher.backend: openai)"},
        "reward_check": [
            {"reason_type": "Review-guided Reason", "mae": 0.513, "rmse": 0.637, "rows": 3},
            {"reason_type": "Without Reason", "mae": 0.739, "rmse": 0.884, "rows": 3},
        ],
        "distillation": {
            "pairs": 4, "pairs_accepted": 3, "attempts": 9, "first_attempt_acceptance": 0.5, "hinted_attempts": 5,
            "hinted_accepted": 1, "mean_attempts_per_pair": 2.25, "statuses": {"scored": 8, "forbidden_word": 1},
        },  # fmt: skip
        "counterfactual_reasons": {
            "rows": 3, "mean_shift_toward_reason": 0.25, "share_toward_reason": 0.6667, "share_against_reason": 0.0, "mean_absolute_shift": 0.3,
            "moved_at_least": 0.01, "note": "each row rescored with the reason of the row at the mirrored rank",
        },
        "calibration": {
            "rows": 3, "interval_mass": 0.8, "expected_coverage": 0.93, "observed_coverage": 0.6667, "mean_interval_ratings": 2.0, "brier_score": 0.41,
            "bins": [{"bin": "[3.5, 4)", "rows": 1, "mean_predicted": 3.8, "mean_true": 4.0}, {"bin": "[4, 4.5)", "rows": 2, "mean_predicted": 4.2, "mean_true": 4.5}],
        },  # fmt: skip
        "inference_cost": {
            "hardware": "CPU (x86_64, 2 threads)",
            "one_at_a_time": {"rows": 2, "seconds_per_prediction": 2.52, "generated_tokens_per_prediction": 26.0, "note": "the paper's way"},
            "batched": {"rows": 3, "seconds_per_prediction": 1.28, "generated_tokens_per_prediction": 26.0, "note": "batched"},
        },
    }


def test_the_page_is_written_from_the_latest_report_with_its_command_and_machine(tmp_path, monkeypatch):
    report = tmp_path / "08_reporting"
    metrics_path = str(report / "evaluation_metrics.json")
    JSONDataset(filepath=metrics_path, version=Version(None, "2026-12-01T10.00.00.000Z")).save(evaluation_metrics(0.9999))
    JSONDataset(filepath=metrics_path, version=Version(None, "2026-12-02T18.00.00.000Z")).save(evaluation_metrics(0.6595))
    stats = pd.DataFrame(
        {"split": ["train", "test"], "rows": [2880, 3], "users": [400, 3], "items": [150, 3], "mean_rating": [4.2, 4.43], "first_timestamp": [0, 5], "last_timestamp": [4, 6]}
    )
    ParquetDataset(filepath=str(report / "dataset_stats.parquet"), version=Version(None, "2026-12-02T17.30.00.000Z")).save(stats)
    monkeypatch.setattr(results_page, "machine", lambda: MACHINE)

    page_path = tmp_path / "results.md"
    results_page.main([str(report), str(page_path)])
    page = page_path.read_text()

    assert f"`python -m reason4rec.evaluation.results_page {report} {page_path}`" in page
    assert "version 2026-12-02T18.00.00.000Z" in page
    assert "| CPU | Test CPU 9000 (2 cores), AVX512-BF16: yes |" in page
    assert "| platform | Linux-test, Python 3.11.7 |" in page
    assert "| Reason4Rec | 0.6595 | 0.7885 | 0.3990 | 3 |" in page and "0.9999" not in page  # the latest version only
    assert "| Global mean | 0.6671 | 0.7790 | n/a (constant) | 3 |" in page
    assert page.index("| SVD++ |") < page.index("| Reason4Rec |") < page.index("| Global mean |")  # the report's order: best MAE first
    assert "| train | 2880 | 400 | 150 | 4.2000 |" in page
    assert "| Review-guided Reason | 0.5130 | 0.6370 | 3 |" in page
    assert "3 of 4 pairs got an accepted reason in 9 attempts; 50% of first reasons accepted, 1 of 5 hinted attempts accepted." in page
    assert "## Does the rating follow the reason?" in page
    assert "| 3 | 0.2500 | 0.6667 | 0.0000 | 0.3000 |" in page  # counterfactual reasons
    assert "| 3 | 0.8000 | 0.9300 | 0.6667 | 2.0000 | 0.4100 |" in page and "| [4, 4.5) | 2 | 4.2000 | 4.5000 |" in page  # calibration
    assert "| one at a time | 2 | 2.5200 | 26.0000 |" in page
    assert "Table 4" not in page  # reason_ablations never ran here


def page_of(metrics: dict) -> str:
    return results_page.results_page(metrics, command="c", run_command="kedro run", machine=MACHINE, date="2026-12-02", report_version="v")


def test_a_counterfactual_check_without_a_split_says_so_and_older_metrics_have_no_such_section():
    metrics = evaluation_metrics(0.6595)
    metrics["counterfactual_reasons"] = {"rows": 0, "mean_shift_toward_reason": None, "share_toward_reason": None, "share_against_reason": None,
                                         "mean_absolute_shift": None, "moved_at_least": 0.01, "note": "not measurable: no test prediction is above the median"}  # fmt: skip
    assert "Rows: 0 (not measurable: no test prediction is above the median)." in page_of(metrics)
    older = {key: value for key, value in evaluation_metrics(0.6595).items() if key not in ("counterfactual_reasons", "calibration")}
    assert "Does the rating follow the reason?" not in page_of(older) and "| Reason4Rec | 0.6595 |" in page_of(older)


def test_a_report_dir_without_metrics_stops_with_its_path(tmp_path):
    with pytest.raises(SystemExit, match="evaluation_metrics.json: no saved version"):
        results_page.main([str(tmp_path), str(tmp_path / "results.md")])


def test_machine_names_the_cpu_and_its_bf16():
    machine = results_page.machine()
    assert machine["cpu"] and machine["python"] and machine["avx512_bf16"] in {"yes", "no", "unknown"}
