"""Project hooks: check the configuration before anything runs; print the accuracy table when a run that
produced it ends; track runs with kedro-mlflow where the configuration has an ``mlflow.yml``."""

from __future__ import annotations

import copy
from typing import Any

from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl
import pandas as pd
from omegaconf import OmegaConf

from reason4rec.parameters import check_configuration

# Blocks of globals.yml that the catalog reads (and ``--params`` may override).
GLOBAL_BLOCKS = ("dataset", "synthetic_world", "teacher")


class CheckConfiguration:
    """Stops a run before any work when a setting would be ignored or is malformed.

    Every parameter and global block must have the shape of its dataclass in
    :mod:`reason4rec.parameters` (and an expert's ``lora`` and ``training``
    blocks the fields of peft's and transformers' classes): a misspelt key in
    YAML is as dangerous as one on the command line, and found here it costs
    nothing. ``--params`` reaches both: Kedro merges it into the parameters,
    and a key under a global block the catalog reads (``teacher.model``)
    overrides that global, so it is checked with the globals.
    """

    @hook_impl
    def after_context_created(self, context) -> None:  # noqa: ANN001 - Kedro's hook signature
        runtime = context.config_loader.runtime_params or {}
        parameters = {key: value for key, value in context.params.items() if key not in GLOBAL_BLOCKS}
        overrides = {key: runtime[key] for key in GLOBAL_BLOCKS if key in runtime}
        globals_ = OmegaConf.to_container(OmegaConf.merge(context.config_loader["globals"], overrides))
        check_configuration(parameters, globals_)


class PrintAccuracyTable:
    @hook_impl
    def after_pipeline_run(self, run_params, pipeline, catalog) -> None:  # noqa: ANN001 - Kedro's hook signature
        if "accuracy_table" not in pipeline.all_outputs():
            return
        table = catalog.load("accuracy_table")
        print("\nRating accuracy on the test split (lower is better):")
        print(table.to_string(index=False, float_format="%.4f"))
        print("Report: data/08_reporting/report/report.md\n")


ACCURACY_METRICS = ("mae", "rmse", "pearson")
# An expert's hyperparameters reach its training node as this parameter (``llm.experts.<expert>``).
EXPERT_PARAMETERS = "params:llm.experts."


class TrackRuns:
    """kedro-mlflow's tracking, switched on by an ``mlflow.yml`` in the configuration (``kedro mlflow init``
    writes one to ``conf/local/``; docs/tracking.md has the recommended settings).

    Installed, kedro-mlflow would track every run into ``./mlruns`` whether configured or not, so
    ``settings.py`` keeps its own hook from registering and this one runs it only when the
    configuration asks: without an ``mlflow.yml`` nothing is imported, written or contacted.

    A tracked run gets, beyond what kedro-mlflow logs (each node's parameters in the run named after
    the pipeline): the accuracy table as metrics (``mae.<method>``, ``rmse.<method>``, ...) and the
    evaluation report as an artifact; and each expert's training a nested run named after the expert,
    into which its Trainer logs the loss curve and its training arguments (``report_to: mlflow``
    added to an expert's training block that names no ``report_to`` of its own).
    """

    def __init__(self) -> None:
        self._mlflow_hook: Any = None

    @hook_impl
    def after_context_created(self, context) -> None:  # noqa: ANN001 - Kedro's hook signature
        self._mlflow_hook = None  # one instance serves every session of the process (settings.HOOKS)
        try:
            context.config_loader["mlflow"]
        except MissingConfigException:
            return
        try:
            from kedro_mlflow.framework.hooks import MlflowHook
        except ImportError as error:
            raise ImportError("the configuration has an mlflow.yml but kedro-mlflow is not installed: pip install -e '.[tracking]', or remove the file") from error
        self._mlflow_hook = MlflowHook()
        self._mlflow_hook.after_context_created(context)

    @hook_impl
    def after_catalog_created(self, catalog, conf_catalog, conf_creds, parameters, save_version, load_versions) -> None:  # noqa: ANN001, PLR0913
        if self._mlflow_hook:
            self._mlflow_hook.after_catalog_created(catalog, conf_catalog, conf_creds, parameters, save_version, load_versions)

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:  # noqa: ANN001
        if self._mlflow_hook:
            self._mlflow_hook.before_pipeline_run(run_params, pipeline, catalog)

    @hook_impl
    def before_node_run(self, node, catalog, inputs, is_async) -> dict[str, Any] | None:  # noqa: ANN001
        if not self._tracking():
            return None
        import mlflow

        self._mlflow_hook.before_node_run(node, catalog, inputs, is_async)
        expert = next((name for name in inputs if name.startswith(EXPERT_PARAMETERS)), None)
        if expert is None:
            return None
        # The node's namespace names the expert (predictor_no_reason trains from the predictor's block).
        mlflow.start_run(run_name=node.namespace or expert.removeprefix(EXPERT_PARAMETERS), nested=True)
        settings = copy.deepcopy(inputs[expert])
        settings.setdefault("training", {}).setdefault("report_to", "mlflow")
        return {expert: settings}

    @hook_impl
    def after_node_run(self, node, inputs) -> None:  # noqa: ANN001
        if self._tracking() and any(name.startswith(EXPERT_PARAMETERS) for name in inputs):
            import mlflow

            mlflow.end_run()

    @hook_impl
    def on_node_error(self, node, inputs) -> None:  # noqa: ANN001
        if self._tracking() and any(name.startswith(EXPERT_PARAMETERS) for name in inputs):
            import mlflow

            mlflow.end_run("FAILED")

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        if not self._tracking():
            return
        import mlflow

        if dataset_name == "accuracy_table":
            rows = data.to_dict("records")
            mlflow.log_metrics({f"{metric}.{_metric_key(row['method'])}": float(row[metric]) for row in rows for metric in ACCURACY_METRICS if pd.notna(row[metric])})
        elif dataset_name.endswith("report") and isinstance(data, str):
            mlflow.log_text(data, f"report/{dataset_name}.md")

    @hook_impl
    def after_pipeline_run(self, run_params, pipeline, catalog) -> None:  # noqa: ANN001
        if self._mlflow_hook:
            self._mlflow_hook.after_pipeline_run(run_params, pipeline, catalog)

    @hook_impl
    def on_pipeline_error(self, error, run_params, pipeline, catalog) -> None:  # noqa: ANN001
        if self._mlflow_hook:
            self._mlflow_hook.on_pipeline_error(error, run_params, pipeline, catalog)

    def _tracking(self) -> bool:
        """Configured, and not switched off for this pipeline (``disable_tracking.pipelines``)."""
        return self._mlflow_hook is not None and self._mlflow_hook._is_mlflow_enabled


def _metric_key(method: str) -> str:
    """A method's name as MLflow accepts it in a metric key: "SVD (biased MF)" -> "SVD_biased_MF", "SVD++" -> "SVDpp"."""
    return "_".join("".join(c if c.isalnum() else " " for c in method.replace("++", "pp")).split())
