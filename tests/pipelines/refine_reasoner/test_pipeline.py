import torch

from reason4rec.pipelines.refine_reasoner import create_pipeline
from reason4rec.refinement import REFINEMENT_COLUMNS
from tests.helpers import PROMPTING, SMOKE_PARAMS, run_pipeline


def test_pipeline_refines_the_reasoner_on_the_reasoner_pairs(tiny_base, pair_contexts, echo, predictor):
    prompting = {**PROMPTING, "history_length": 3}
    settings = SMOKE_PARAMS["llm"]["experts"]["reasoner_rl"]
    out = run_pipeline(
        create_pipeline(),
        {
            "base_model": tiny_base, "reasoner_contexts": pair_contexts, "reasoner_adapter": echo, "predictor_adapter": predictor[0],
            "params:prompting": prompting, "params:llm.inference": {"cache_path": None, "batch_size": 8},
            "params:llm.experts.reasoner_rl": {**settings, "training": {**settings["training"], "output_dir": None}},
        },  # fmt: skip
        ["reasoner_rl_data", "reasoner_rl_adapter", "reasoner_rl_log"],
    )
    data, refined = out["reasoner_rl_data"], out["reasoner_rl_adapter"]
    assert list(data.columns) == REFINEMENT_COLUMNS and len(data) == len(pair_contexts)
    assert refined.metadata["parent_run"] == echo.metadata["run"] and refined.metadata["training_prompts"] == len(pair_contexts)
    assert any(not torch.equal(v, echo.state_dict[k]) for k, v in refined.state_dict.items())
    assert len(out["reasoner_rl_log"]) == settings["training"]["max_steps"]
