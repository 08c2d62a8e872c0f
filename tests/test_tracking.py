"""Tracking is off unless configured: with kedro-mlflow installed and no mlflow.yml, a run writes and contacts nothing.
(A tracked run is checked in tests/pipelines/test_full_run.py.)"""

import os
import subprocess
import sys

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from tests.helpers import PROJECT_ROOT, scratch_project


def test_a_run_without_mlflow_yml_tracks_nothing(tmp_path):
    project = scratch_project(tmp_path)
    # A tracking server that would refuse every connection: a run that contacted it would fail.
    env = {**os.environ, "MLFLOW_TRACKING_URI": "http://127.0.0.1:9", "KEDRO_DISABLE_TELEMETRY": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "kedro", "run", "-e", "smoke", "--pipelines", "ingest_5core", "--to-outputs", "interactions_train"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (project / "mlruns").exists() and not (project / "mlflow.db").exists()
    assert "mlflow run" not in (result.stdout + result.stderr).lower()


def test_mlflow_yml_without_kedro_mlflow_says_what_to_install(tmp_path, monkeypatch):
    project = scratch_project(tmp_path)
    (project / "conf" / "smoke" / "mlflow.yml").write_text((PROJECT_ROOT / "conf" / "mlflow.yml").read_text())
    monkeypatch.chdir(project)
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="smoke") as session:
        monkeypatch.setitem(sys.modules, "kedro_mlflow.framework.hooks", None)  # as if not installed
        with pytest.raises(ImportError, match=r"pip install -e '\.\[tracking\]'"):
            session.load_context()
