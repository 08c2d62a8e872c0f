"""One expert's SFT in processes of its own: both sides of the launch.

``llm.launcher`` with more than one process (or an accelerate config file) makes
the training node call :func:`launch_training`, which writes the examples and
settings to a scratch folder and starts, so that CUDA is never initialized in the
Kedro process and no node runs on every rank::

    torchrun --standalone --nproc_per_node 2 -m reason4rec.training_launch --base BASE --examples EXAMPLES.parquet \\
        --expert predictor --settings EXPERT.json --out ADAPTER_FOLDER
    accelerate launch --num_processes 2 [--config_file FSDP.yaml] -m reason4rec.training_launch ...

Every rank runs the same :func:`~reason4rec.llm.training.train_adapter` (:func:`main`):
the Trainer gives each rank its share of every batch and averages the gradients
(DDP, or FSDP from accelerate's config; gloo on the CPU, NCCL on GPUs). Rank 0
alone writes the adapter folder (PEFT's format, as ``AdapterDataset`` writes one)
and its loss curve; the node reads them back and returns them as the in-process
training does, so the catalog writes the versioned adapter once. Checkpoints go
where the expert's ``training.output_dir`` says, so a killed launch resumes as
in-process training does.

With ``--per_device_train_batch_size b`` on N ranks the step sees N x b examples,
as one process with batch N x b does, and trains the same adapter (tested on
the CPU with 2 ranks: ``tests/test_training_launch.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from reason4rec.datasets.model_folders import read_adapter_folder, read_base_folder, write_adapter_folder, write_base_folder
from reason4rec.llm.artifacts import AdapterArtifact, BaseModelArtifact
from reason4rec.parameters import Launcher

logger = logging.getLogger(__name__)

LOSS_CURVE_FILE = "loss_curve.parquet"


def launch_training(
    base: BaseModelArtifact, examples: pd.DataFrame, expert_params: dict[str, Any], expert: str, launcher: Launcher
) -> tuple[AdapterArtifact, pd.DataFrame]:
    """Train ``expert`` under ``launcher`` and return rank 0's adapter and loss curve."""
    with tempfile.TemporaryDirectory(prefix=f"reason4rec-{expert}-") as scratch_dir:
        scratch = Path(scratch_dir)
        if base.folder is None:  # a reference to a hub model, or a base built in this process
            write_base_folder(base, scratch / "base")
        examples[["prompt", "response"]].to_parquet(scratch / "examples.parquet", index=False)
        (scratch / "settings.json").write_text(json.dumps(expert_params))
        out = scratch / "adapter"
        module = [
            "-m", __name__, "--base", base.folder or str(scratch / "base"), "--examples", str(scratch / "examples.parquet"),
            "--expert", expert, "--settings", str(scratch / "settings.json"), "--out", str(out),
        ]  # fmt: skip
        command = launcher_command(launcher) + module
        logger.info("Training the %s adapter in %d processes: %s", expert, launcher.processes, shlex.join(command))
        result = subprocess.run(command, env={**os.environ, **_tracking_environment()})
        if result.returncode != 0 or not (out / LOSS_CURVE_FILE).exists():
            raise RuntimeError(f"the launched training of {expert} failed (exit status {result.returncode}); its processes' output is above. Command: {shlex.join(command)}")
        return read_adapter_folder(out), pd.read_parquet(out / LOSS_CURVE_FILE)


def launcher_command(launcher: Launcher) -> list[str]:
    """The launcher's command line up to the module it starts (run by this interpreter, so the same environment)."""
    if launcher.command == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(launcher.processes), *launcher.arguments]
    config = ["--config_file", launcher.config_file] if launcher.config_file else []
    return [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(launcher.processes), *config, *launcher.arguments]


def _tracking_environment() -> dict[str, str]:
    """The MLflow run the node logs into (``TrackRuns`` opened it), for rank 0's Trainer to log into too.
    mlflow is imported only in a tracked run, so its absence from ``sys.modules`` means no run."""
    mlflow = sys.modules.get("mlflow")
    run = mlflow.active_run() if mlflow is not None else None
    return {"MLFLOW_RUN_ID": run.info.run_id, "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri()} if run else {}


def main(argv: Sequence[str] | None = None) -> None:
    from accelerate import PartialState

    from reason4rec.llm.training import train_adapter

    parser = argparse.ArgumentParser(prog=f"python -m {__name__}", description="Train one expert's adapter on every rank; rank 0 writes it.")
    parser.add_argument("--base", required=True, type=Path, help="a base folder as the base_model catalog entry saves it")
    parser.add_argument("--examples", required=True, type=Path, help="Parquet with prompt and response columns")
    parser.add_argument("--expert", required=True, help="the expert's name (summarizer, reward_model, reasoner, predictor, ...)")
    parser.add_argument("--settings", required=True, type=Path, help="the expert's llm.experts block as JSON")
    parser.add_argument("--out", required=True, type=Path, help="the adapter folder to write (rank 0)")
    args = parser.parse_args(argv)
    adapter, curve = train_adapter(read_base_folder(args.base), pd.read_parquet(args.examples), json.loads(args.settings.read_text()), args.expert)
    if PartialState().is_main_process:
        args.out.mkdir(parents=True, exist_ok=True)
        write_adapter_folder(adapter, args.out)
        curve.to_parquet(args.out / LOSS_CURVE_FILE, index=False)


if __name__ == "__main__":
    main()
