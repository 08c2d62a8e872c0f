"""The run's inference engine, as a node every pipeline that generates or scores includes.

``engine`` (an in-memory catalog entry) is built once per run from
``base_model`` and ``llm.inference``; the nodes that use it take it as one
input and load the adapters they need. Each pipeline includes this same node,
so ``kedro run --pipelines <one>`` builds it too and the default run builds it
once (Kedro merges identical nodes).
"""

from kedro.pipeline import Node, Pipeline

from reason4rec.llm.engine import load_engine


def engine_pipeline() -> Pipeline:
    return Pipeline([Node(load_engine, ["base_model", "params:llm.inference"], "engine", name="load_engine")])
