"""The training steps every LoRA expert shares, written once and instantiated per expert.

``expert_training_pipeline("reasoner")`` reads ``base_model`` and
``reasoner_sft_data`` and writes ``reasoner_adapter``, ``reasoner_loss_curve``
and ``reasoner_loss_plot``, with hyperparameters from ``llm.experts.reasoner``
(the kedro-viz demo project's pattern: one template, one namespace per variant).
"""

from __future__ import annotations

from functools import partial, update_wrapper

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from kedro.pipeline import Node, Pipeline  # noqa: E402

from reason4rec.llm.artifacts import AdapterArtifact, BaseModelArtifact  # noqa: E402
from reason4rec.llm.training import train_adapter  # noqa: E402
from reason4rec.parameters import Launcher  # noqa: E402
from reason4rec.training_launch import launch_training  # noqa: E402
from reason4rec.typed_config import typed_block  # noqa: E402

# Expert -> the ``llm.experts`` entry holding its hyperparameters. The
# "Without Reason" ablation's predictor trains exactly like the predictor.
EXPERTS = {
    "summarizer": "summarizer",
    "reward_model": "reward_model",
    "reasoner": "reasoner",
    "predictor": "predictor",
    "predictor_no_reason": "predictor",
}


def train_expert(
    base: BaseModelArtifact, examples: pd.DataFrame, expert_params: dict, launcher_params: dict, expert: str
) -> tuple[AdapterArtifact, pd.DataFrame]:
    """The expert's adapter and loss curve, trained in this process or, per ``llm.launcher``, in processes of their own."""
    launcher = typed_block(Launcher, launcher_params, "llm.launcher")
    if launcher.in_process:
        return train_adapter(base, examples, expert_params, expert)
    return launch_training(base, examples, expert_params, expert, launcher)


def plot_loss_curve(curve: pd.DataFrame, expert: str) -> plt.Figure:
    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot(curve["step"], curve["loss"], marker=".")
    axis.set(xlabel="step", ylabel="training loss (response tokens)", title=f"{expert} adapter")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def bound(function, **fixed):
    """``function`` with keyword arguments fixed, keeping its name, docstring and type hints (kedro-viz shows them; Kedro reads the hints):
    a template node's per-instance setting."""
    return update_wrapper(partial(function, **fixed), function)


def expert_training_pipeline(expert: str) -> Pipeline:
    if expert not in EXPERTS:
        raise ValueError(f"unknown expert {expert!r}: expected one of {sorted(EXPERTS)}")

    return Pipeline(
        [
            Node(bound(train_expert, expert=expert), ["base_model", "sft_data", "params:expert", "params:launcher"], ["adapter", "loss_curve"], name="train_adapter"),
            Node(bound(plot_loss_curve, expert=expert), "loss_curve", "loss_plot", name="plot_loss_curve"),
        ],
        namespace=expert,
        inputs={"base_model": "base_model", "sft_data": f"{expert}_sft_data"},
        outputs={"adapter": f"{expert}_adapter", "loss_curve": f"{expert}_loss_curve", "loss_plot": f"{expert}_loss_plot"},
        parameters={"params:expert": f"params:llm.experts.{EXPERTS[expert]}", "params:launcher": "params:llm.launcher"},
        tags=["training", expert],
    )
