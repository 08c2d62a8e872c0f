"""Project settings (Kedro defaults except for the hooks and one warning filter)."""

import warnings

from reason4rec.hooks import CheckConfiguration, PrintAccuracyTable

HOOKS = (CheckConfiguration(), PrintAccuracyTable())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment changes only the keys it names, at any depth (conf/paper
    # switches the teacher's backend and model and keeps the rest of base's
    # teacher block; its distill_reasons block names four keys, not seven).
    "merge_strategy": {"globals": "soft", "parameters": "soft"},
}

# Kedro 1.7 itself calls OmegaConf's deprecated register_new_resolver on every
# config load; the warning is not actionable for a project.
warnings.filterwarnings("ignore", message=".*register_new_resolver.*", category=UserWarning)
