"""The Airflow DAG that docs/deployment.md generates: one task per expert's training, acyclic, runnable without the
in-memory engine crossing tasks. (A generated task is run after a smoke run in tests/pipelines/test_full_run.py.)"""

import graphlib
import re

import pytest

from tests.helpers import PROJECT_ROOT, generate_dag, load_dag_module

pytest.importorskip("kedro_airflow")


def test_each_expert_trains_in_one_task_of_an_acyclic_dag(tmp_path):
    dag = generate_dag(PROJECT_ROOT, tmp_path)
    text = dag.read_text()
    for expert in ("summarizer", "reward_model", "reasoner", "predictor", "predictor_no_reason"):
        assert f'_run_kedro_node(namespaces=["{expert}"])' in text, expert
    edges = re.findall(r'tasks\["([\w-]+)"\] >> tasks\["([\w-]+)"\]', text)
    graph = graphlib.TopologicalSorter()
    for upstream, downstream in edges:
        graph.add(downstream, upstream)
    order = list(graph.static_order())  # raises CycleError on a cycle
    assert order.index("build-summarizer-sft-data") < order.index("summarizer") < order.index("summarize-interactions")
    assert order.index("reward-model") < order.index("distill-reasons") < order.index("reasoner")
    assert set(load_dag_module(dag).tasks) == set(order)
