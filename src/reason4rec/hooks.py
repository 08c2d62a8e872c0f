"""Project hooks: check the configuration before anything runs; print the accuracy table when a run that produced it ends."""

from __future__ import annotations

import re
from typing import Any

from kedro.config import OmegaConfigLoader
from kedro.framework.hooks import hook_impl
from omegaconf import OmegaConf

from reason4rec.parameters import check_configuration

# ``${runtime_params:teacher.model,...}``: a key a catalog entry reads from ``--params``.
_CATALOG_RUNTIME_KEY = re.compile(r"\$\{runtime_params:([\w.]+)")

# Blocks of globals.yml that the catalog reads (and ``--params`` may override).
GLOBAL_BLOCKS = ("dataset", "synthetic_world", "teacher")


class CheckConfiguration:
    """Stops a run before any work when a setting would be ignored or is malformed.

    - A ``--params`` key must name a parameter or a setting the catalog reads:
      Kedro adds an unknown one to the parameters, where nothing reads it, and
      the run would go on with the default.
    - Every parameter and global block must have the shape of its dataclass in
      :mod:`reason4rec.parameters`: a misspelt key in YAML is as dangerous as
      one on the command line, and found here it costs nothing.
    """

    @hook_impl
    def after_context_created(self, context) -> None:  # noqa: ANN001 - Kedro's hook signature
        runtime = context._runtime_params or {}
        self._refuse_unknown_runtime_params(context, runtime)
        parameters = {key: value for key, value in context.params.items() if key not in GLOBAL_BLOCKS}
        overrides = {key: runtime[key] for key in GLOBAL_BLOCKS if key in runtime}
        globals_ = OmegaConf.to_container(OmegaConf.merge(context.config_loader["globals"], overrides))
        check_configuration(parameters, globals_)

    @staticmethod
    def _refuse_unknown_runtime_params(context, runtime: dict[str, Any]) -> None:  # noqa: ANN001 - a Kedro context
        if not runtime:
            return
        loader = context.config_loader
        plain = OmegaConfigLoader(
            conf_source=loader.conf_source, env=loader.env, base_env=loader.base_env, default_run_env=loader.default_run_env, merge_strategy=loader.merge_strategy
        )
        known = set(_flat_keys(plain["parameters"], leaves_only=False))
        catalog_text = "\n".join(path.read_text() for path in sorted(context.project_path.joinpath(loader.conf_source).glob("*/catalog*.yml")))
        catalog_keys = set(_CATALOG_RUNTIME_KEY.findall(catalog_text))
        unknown = [key for key in _flat_keys(runtime) if key not in known and key not in catalog_keys and not any(key.startswith(k + ".") for k in catalog_keys)]
        if unknown:
            raise ValueError(
                f"--params names {', '.join(sorted(unknown))}, which no parameter or catalog entry reads; "
                "check the spelling against conf/base/parameters*.yml and conf/base/globals.yml"
            )


def _flat_keys(tree: Any, prefix: str = "", leaves_only: bool = True) -> list[str]:
    """Dotted paths to the keys of a nested mapping: its leaves, or every key."""
    keys = []
    for key, value in (tree or {}).items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            keys += ([] if leaves_only else [path]) + _flat_keys(value, path + ".", leaves_only)
        else:
            keys.append(path)
    return keys


class PrintAccuracyTable:
    @hook_impl
    def after_pipeline_run(self, run_params, pipeline, catalog) -> None:  # noqa: ANN001 - Kedro's hook signature
        if "accuracy_table" not in pipeline.all_outputs():
            return
        table = catalog.load("accuracy_table")
        print("\nRating accuracy on the test split (lower is better):")
        print(table.to_string(index=False, float_format="%.4f"))
        print("Report: data/08_reporting/report/report.md\n")
