"""After a run, ``kedro run --pipelines refine_reasoner``: the trained reasoner continued by GRPO
(TRL's ``GRPOTrainer``) on the reasoner pairs, each sampled reason rewarded by the frozen
predictor's error (``reason4rec.refinement``), with ``llm.experts.reasoner_rl``'s settings.
Its nodes are the library's functions; it reads only what a run has written."""

from kedro.pipeline import Node, Pipeline

from reason4rec.pipelines.engine import engine_pipeline
from reason4rec.refinement import refine_reasoner, refinement_examples


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            engine_pipeline(),
            Node(refinement_examples, ["reasoner_contexts", "params:prompting"], "reasoner_rl_data", name="build_reasoner_rl_data"),
            Node(
                refine_reasoner,
                ["base_model", "reasoner_adapter", "predictor_adapter", "engine", "reasoner_rl_data", "params:llm.experts.reasoner_rl"],
                ["reasoner_rl_adapter", "reasoner_rl_log"],
                name="refine_reasoner",
            ),
        ],
        tags=["refine_reasoner"],
    )
