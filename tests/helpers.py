"""What the tests share: the smoke configuration (conf/smoke, as ``-e smoke`` reads it) and small helpers."""

import copy
import os
import subprocess
import sys
import types
from pathlib import Path

import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = PROJECT_ROOT.parent / "shared" / "data" / "real"
MUSICAL_INSTRUMENTS = REAL_DATA / "amazon_musical_instruments_5core_2014" / "reviews_Musical_Instruments_5.json.gz"


def scratch_project(root: Path) -> Path:
    """A copy of the project's configuration in ``root`` (the package itself is installed), without ``conf/local``."""
    import shutil

    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    (root / "src").mkdir()
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copy(PROJECT_ROOT / ".telemetry", root / ".telemetry")
    return root


def _smoke_configuration() -> tuple[dict, dict]:
    """conf/smoke merged into conf/base as a run of ``-e smoke`` sees it: the tests' one smoke configuration."""
    from kedro.config import OmegaConfigLoader

    from reason4rec.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(conf_source=str(PROJECT_ROOT / "conf"), **{**CONFIG_LOADER_ARGS, "default_run_env": "smoke"})
    return loader["parameters"], loader["globals"]


SMOKE_PARAMS, SMOKE_GLOBALS = _smoke_configuration()
SMOKE_WORLD = SMOKE_GLOBALS["synthetic_world"]
PROMPTING = SMOKE_PARAMS["prompting"]
# The smoke base, pre-trained longer: the tests' small adapters then learn their task in a few steps.
TINY_BASE_PARAMS = {**SMOKE_PARAMS["llm"]["base"], "tiny": {**SMOKE_PARAMS["llm"]["base"]["tiny"], "pretraining": {**SMOKE_PARAMS["llm"]["base"]["tiny"]["pretraining"], "num_train_epochs": 3}}}


def smoke_expert(name: str = "predictor", lora: dict | None = None, **training) -> dict:
    """conf/smoke's ``llm.experts.<name>`` block, with no checkpoints written and the given
    ``training`` settings (TrainingArguments names) and ``lora`` settings changed."""
    block = copy.deepcopy(SMOKE_PARAMS["llm"]["experts"][name])
    block["training"] = {**block["training"], "output_dir": None, **training}
    block["lora"] = {**block["lora"], **(lora or {})}
    return block


# An adapter that has to learn its task in a test: more epochs than the smoke run gives it.
LEARNING = {"num_train_epochs": 6}


def run_pipeline(pipeline, inputs: dict, outputs: list[str]) -> dict:
    """Run ``pipeline`` on in-memory ``inputs`` (datasets and ``params:`` entries); return ``outputs``,
    intermediate ones included (the runner would release those once consumed)."""
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.runner import SequentialRunner

    class Kept(MemoryDataset):
        def _release(self) -> None:
            pass

    if "params:llm.launcher" in pipeline.inputs():  # the experts train in this process, as conf/smoke has it
        inputs = {"params:llm.launcher": SMOKE_PARAMS["llm"]["launcher"], **inputs}
    catalog = DataCatalog({name: MemoryDataset(value, copy_mode="assign") for name, value in inputs.items()})
    catalog["engine"] = MemoryDataset(copy_mode="assign")  # as conf/base/catalog.yml has it: the engine is shared, never copied
    for name in outputs:
        catalog[name] = Kept(copy_mode="assign")
    SequentialRunner().run(pipeline, catalog)
    return {name: catalog.load(name) for name in outputs}


def rating_examples(n=96):
    """A learnable task: the word in the prompt decides the rating."""
    from reason4rec.llm.chat import RATING_PREFIX

    words = {1: "awful", 2: "poor", 3: "okay", 4: "good", 5: "superb"}
    rows = [(f"The album is {words[1 + i % 5]}. Rate it.", f"{RATING_PREFIX}{1 + i % 5}.0") for i in range(n)]
    return pd.DataFrame(rows, columns=["prompt", "response"])


def generate_dag(project: Path, target: Path, env: str = "smoke") -> Path:
    """``kedro airflow create --group-by namespace -j deploy/airflow_dag.j2`` in ``project``; the DAG file's path."""
    command = [sys.executable, "-m", "kedro", "airflow", "create", "-e", env, "--group-by", "namespace", "-j", str(PROJECT_ROOT / "deploy" / "airflow_dag.j2"), "-t", str(target)]
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=300, env={"KEDRO_DISABLE_TELEMETRY": "1", **os.environ})
    assert result.returncode == 0, result.stderr[-3000:]
    (dag,) = target.glob("*.py")
    return dag


def load_dag_module(dag: Path) -> types.ModuleType:
    """The DAG file as a module, with Airflow's ``dag`` and ``task`` decorators stubbed (Airflow is not installed here):
    ``module.tasks`` maps each task id to the function the task runs."""
    sdk = types.ModuleType("airflow.sdk")
    registered = {}

    class Task:
        def __rshift__(self, other):
            return other

    def task(task_id):
        def wrap(function):
            registered[task_id] = function
            return Task

        return wrap

    sdk.task = task
    sdk.dag = lambda **_: (lambda function: function)
    sys.modules.setdefault("airflow", types.ModuleType("airflow"))
    sys.modules["airflow.sdk"] = sdk
    try:
        module = types.ModuleType("generated_dag")
        exec(compile(dag.read_text(), str(dag), "exec"), module.__dict__)
    finally:
        del sys.modules["airflow.sdk"]
    module.tasks = registered
    return module


def rules_answer(body: dict) -> tuple[str, int, int]:
    """The rules teacher's answer to a chat-completions request body: a fake server that
    answers with it (``FakeBatchServer(answer=rules_answer)``) gives the pipelines answers they parse."""
    from reason4rec.completions import CompletionRequest
    from reason4rec.teacher.rules import RulesBackend

    return RulesBackend().call(CompletionRequest(body["messages"][-1]["content"], temperature=body["temperature"], max_tokens=body["max_tokens"]))


def batch_teacher_config(base_url: str, cache_path: Path) -> dict:
    """conf/smoke's ``teacher:`` block in batch mode against a local fake of the OpenAI Batch API."""
    return {
        **SMOKE_GLOBALS["teacher"], "backend": "openai", "model": "gpt-test", "base_url": base_url, "cache_path": str(cache_path),
        "mode": "batch", "batch": {**SMOKE_GLOBALS["teacher"]["batch"], "poll_interval_s": 0.01},
    }  # fmt: skip
