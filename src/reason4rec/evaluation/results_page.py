"""``docs/results.md``, written from what ``evaluate`` saved, so the page's figures are a run's and not a copy.

    python -m reason4rec.evaluation.results_page data/08_reporting docs/results.md [--run "kedro run"]

It reads the latest version of ``evaluation_metrics.json`` (and ``dataset_stats``,
and ``reason_ablation_accuracy`` when ``reason_ablations`` has run) and writes the
command that made the page, the machine it runs on, the date and the tables.
Run it on the machine that made the report: the CPU line describes this machine.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import Version
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import ParquetDataset

from reason4rec.evaluation.report import markdown_table, reason_following_section

PAGE_COMMAND = "python -m reason4rec.evaluation.results_page {report_dir} {page}"


def results_page(
    metrics: dict[str, Any], *, command: str, run_command: str, machine: dict[str, str], date: str, report_version: str,
    dataset_stats: pd.DataFrame | None = None, ablations: tuple[pd.DataFrame, str] | None = None,
) -> str:  # fmt: skip
    """The page: provenance first, then Tables 1, 2, 3, 5, Algorithm 1, whether the rating follows the reason, 6, and Table 4 when
    ``ablations`` (the table and its version) is given: it comes from a separate pipeline, so
    its version is printed beside it."""
    distillation = metrics["distillation"]
    cost = metrics["inference_cost"]
    lines = [
        f"# Results of `{run_command}`",
        "",
        f"Written by `{command}` from what `{run_command}` saved in `data/08_reporting` "
        f"(`evaluation_metrics` version {report_version}). Do not edit it by hand: rerun the command after a run. "
        "The analysis of these figures is in [results-notes.md](results-notes.md).",
        "",
        "| | |",
        "|---|---|",
        f"| run | `{run_command}` |",
        f"| CPU | {machine['cpu']} ({machine['cores']} cores), AVX512-BF16: {machine['avx512_bf16']} |",
        f"| platform | {machine['platform']}, Python {machine['python']} |",
        f"| inference hardware, as the report records it | {cost['hardware']} |",
        f"| page written | {date} |",
        "",
    ]
    if dataset_stats is not None:
        lines += ["## The splits (Table 1)", "", markdown_table(dataset_stats[["split", "rows", "users", "items", "mean_rating"]]), ""]
    accuracy = pd.DataFrame(metrics["accuracy"])
    accuracy["pearson"] = [_pearson(value) for value in accuracy["pearson"]]
    accuracy = accuracy[["method", "mae", "rmse", "pearson", "rows"]].rename(columns={"mae": "MAE", "rmse": "RMSE", "pearson": "Pearson"})
    lines += [f"## Rating accuracy on {metrics['test_rows']} test rows (Table 2)", "", markdown_table(accuracy), ""]
    quality = {key: "n/a" if value is None else value for key, value in metrics["reason_quality"].items()}
    lines += ["## Reason quality against the target review (Table 3, offline)", "", markdown_table(pd.DataFrame([quality])), ""]
    if metrics.get("teacher_reason_aspects"):
        lines += ["The teacher's accepted reasons (what the reasoner learned from), against the same ground truth:", "", markdown_table(pd.DataFrame([metrics["teacher_reason_aspects"]])), ""]
    reward_check = pd.DataFrame(metrics["reward_check"]).rename(columns={"reason_type": "reason given to the reward model", "mae": "MAE", "rmse": "RMSE"})
    lines += ["## The reward model given each kind of reason (Table 5)", "", markdown_table(reward_check), ""]
    lines += [
        "## Reason distillation (Algorithm 1)",
        "",
        f"{distillation['pairs_accepted']} of {distillation['pairs']} pairs got an accepted reason in {distillation['attempts']} attempts; "
        f"{distillation['first_attempt_acceptance']:.0%} of first reasons accepted, "
        f"{distillation['hinted_accepted']} of {distillation['hinted_attempts']} hinted attempts accepted.",
        "",
        markdown_table(pd.DataFrame(sorted(distillation["statuses"].items()), columns=["status", "attempts"])),
        "",
    ]
    if "counterfactual_reasons" in metrics:  # evaluation_metrics saved before the check have none
        lines += reason_following_section(metrics)
    timings = pd.DataFrame(
        [{"timing": name.replace("_", " "), **{key: value for key, value in cost[name].items() if key != "note"}} for name in ("one_at_a_time", "batched")]
    )
    lines += ["## Inference cost per prediction (Table 6)", "", markdown_table(timings), ""]
    if ablations is not None:
        table, ablations_version = ablations
        lines += [
            "## How the reasoner was supervised (Table 4)",
            "",
            f"From `kedro run --pipelines reason_ablations` (`reason_ablation_accuracy` version {ablations_version}).",
            "",
            markdown_table(table),
            "",
        ]
    return "\n".join(lines)


def _pearson(value: Any) -> Any:
    """A constant prediction has no Pearson correlation (``metrics.pearson`` gives NaN, JSON null)."""
    return "n/a (constant)" if value is None or value != value else value


def machine() -> dict[str, str]:
    """This machine as the page names it: the CPU model and whether it has native bf16 (from ``lscpu``)."""
    try:
        fields = dict(line.split(":", 1) for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines() if ":" in line)
    except (OSError, subprocess.CalledProcessError):
        fields = {}
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    return {
        "cpu": fields.get("Model name") or platform.processor() or platform.machine(),
        "cores": str(os.cpu_count()),
        "avx512_bf16": "yes" if "avx512_bf16" in fields.get("Flags", "").split() else ("no" if "Flags" in fields else "unknown"),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def _latest(dataset: JSONDataset | ParquetDataset) -> tuple[Any, str] | None:
    """The latest saved version of a versioned catalog entry and its version string, or None if never saved."""
    if not dataset.exists():
        return None
    return dataset.load(), dataset.resolve_load_version()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report_dir", type=Path, help="where evaluate wrote its outputs (data/08_reporting)")
    parser.add_argument("page", type=Path, help="the Markdown page to write (docs/results.md)")
    parser.add_argument("--run", default="kedro run", help="the command that produced the report (default: kedro run)")
    args = parser.parse_args(argv)

    latest = _latest(JSONDataset(filepath=str(args.report_dir / "evaluation_metrics.json"), version=Version(None, None)))
    if latest is None:
        raise SystemExit(f"{args.report_dir / 'evaluation_metrics.json'}: no saved version; run the evaluate pipeline first")
    metrics, version = latest
    stats = _latest(ParquetDataset(filepath=str(args.report_dir / "dataset_stats.parquet"), version=Version(None, None)))
    ablations = _latest(ParquetDataset(filepath=str(args.report_dir / "reason_ablation_accuracy.parquet"), version=Version(None, None)))
    command = PAGE_COMMAND.format(report_dir=args.report_dir, page=args.page) + (f' --run "{args.run}"' if args.run != "kedro run" else "")
    page = results_page(
        metrics,
        command=command,
        run_command=args.run,
        machine=machine(),
        date=datetime.date.today().isoformat(),
        report_version=version,
        dataset_stats=stats[0] if stats else None,
        ablations=ablations,
    )
    args.page.write_text(page)
    print(f"wrote {args.page} from evaluation_metrics {version}")


if __name__ == "__main__":
    main()
