"""One expert's SFT in processes of its own, as a launcher starts it on every rank::

    torchrun --nproc_per_node 2 -m reason4rec.training_launch --base BASE --examples EXAMPLES.parquet \\
        --expert predictor --settings EXPERT.json --out ADAPTER_FOLDER
    accelerate launch --num_processes 2 -m reason4rec.training_launch ...

Every rank runs the same :func:`~reason4rec.llm.training.train_adapter`: the
Trainer gives each rank its share of every batch and averages the gradients
(DDP; gloo on the CPU, NCCL on GPUs). Rank 0 alone writes the adapter folder
(PEFT's format, as ``AdapterDataset`` writes one) and its loss curve. The base
is a folder as the ``base_model`` catalog entry saves it; ``--settings`` is the
expert's ``llm.experts`` block as JSON.

With ``--per_device_train_batch_size b`` on N ranks the step sees N x b examples,
as one process with batch N x b does, and trains the same adapter (tested on
the CPU with 2 ranks: ``tests/test_training_launch.py``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from accelerate import PartialState

from reason4rec.datasets.model_folders import read_base_folder, write_adapter_folder
from reason4rec.llm.training import train_adapter


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m reason4rec.training_launch", description=__doc__.splitlines()[0])
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
        curve.to_parquet(args.out / "loss_curve.parquet", index=False)


if __name__ == "__main__":
    main()
