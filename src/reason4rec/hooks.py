"""Project hooks: check the configuration before anything runs; print the accuracy table when a run that produced it ends."""

from __future__ import annotations

from kedro.framework.hooks import hook_impl
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
