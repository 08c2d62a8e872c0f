"""Project settings (Kedro defaults except for the hooks, the config patterns and one warning filter)."""

import warnings

from reason4rec.hooks import CheckConfiguration, PrintAccuracyTable, TrackRuns

HOOKS = (CheckConfiguration(), PrintAccuracyTable(), TrackRuns())
# kedro-mlflow, once installed, would track every run; TrackRuns runs its hook only where an
# mlflow.yml is in the configuration (its distribution name is spelt both ways across versions).
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow", "kedro_mlflow")

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment changes only the keys it names, at any depth (conf/paper
    # switches the teacher's backend and model and keeps the rest of base's
    # teacher block; its distill_reasons block names four keys, not seven).
    "merge_strategy": {"globals": "soft", "parameters": "soft"},
    # kedro-mlflow's configuration file (TrackRuns reads it; absent, nothing is tracked).
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"]},
}

# Kedro 1.7 itself calls OmegaConf's deprecated register_new_resolver on every
# config load; the warning is not actionable for a project.
warnings.filterwarnings("ignore", message=".*register_new_resolver.*", category=UserWarning)
