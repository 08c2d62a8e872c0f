import matplotlib.pyplot as plt
import pytest
import torch

from reason4rec.completions import CompletionClient
from reason4rec.completions.cache import AnswerCache
from reason4rec.pipelines.refine_reasoner import create_pipeline
from reason4rec.refinement import REFINEMENT_COLUMNS
from reason4rec.teacher.rules import VERDICTS, RulesBackend
from tests.helpers import PROMPTING, SMOKE_PARAMS, run_pipeline


def test_pipeline_refines_the_reasoner_and_scores_it_beside_reason4rec(tiny_base, pair_contexts, echo, predictor):
    prompting = {**PROMPTING, "history_length": 3}
    settings = SMOKE_PARAMS["llm"]["experts"]["reasoner_rl"]
    test_contexts = pair_contexts.iloc[:6].reset_index(drop=True)
    supervised = test_contexts[["user_id", "item_id", "rating"]].assign(prediction=4.0, reason="Overall, " + VERDICTS["love"])
    no_reason = test_contexts[["user_id", "item_id", "rating"]].assign(prediction=3.5)
    out = run_pipeline(
        create_pipeline(),
        {
            "base_model": tiny_base, "reasoner_contexts": pair_contexts, "reasoner_adapter": echo, "predictor_adapter": predictor[0],
            "params:prompting": prompting, "params:llm.inference": {"cache_path": None, "batch_size": 8},
            "params:llm.experts.reasoner_rl": {**settings, "training": {**settings["training"], "output_dir": None}},
            "test_contexts": test_contexts, "test_predictions": supervised, "test_predictions_no_reason": no_reason,
            "teacher": CompletionClient(RulesBackend(), AnswerCache(None)), "params:reason_generation": SMOKE_PARAMS["reason_generation"],
            "params:distill_reasons": SMOKE_PARAMS["distill_reasons"],
        },  # fmt: skip
        ["reasoner_rl_data", "reasoner_rl_adapter", "reasoner_rl_log", "test_predictions_rl", "test_teacher_verdicts", "refinement_accuracy", "refinement_report", "plot_refinement_rewards"],
    )
    data, refined = out["reasoner_rl_data"], out["reasoner_rl_adapter"]
    assert list(data.columns) == REFINEMENT_COLUMNS and len(data) == len(pair_contexts)
    assert refined.metadata["parent_run"] == echo.metadata["run"] and refined.metadata["training_prompts"] == len(pair_contexts)
    assert any(not torch.equal(v, echo.state_dict[k]) for k, v in refined.state_dict.items())
    assert len(out["reasoner_rl_log"]) == settings["training"]["max_steps"]

    # The refined reasoner on the test rows, beside Reason4Rec and the ablation, the same rows for each.
    rl = out["test_predictions_rl"]
    assert list(zip(rl["user_id"], rl["item_id"])) == list(zip(test_contexts["user_id"], test_contexts["item_id"])) and rl["prediction"].between(1, 5).all()
    verdicts = out["test_teacher_verdicts"]
    assert len(verdicts) == 6 and set(verdicts["verdict"]) <= {*VERDICTS, "other"} and (verdicts["verdict"] != "other").all()
    table = out["refinement_accuracy"].set_index("method")
    assert set(table.index) == {"Reason4Rec + GRPO", "Reason4Rec", "Reason4Rec w/o reason"} and (table["rows"] == 6).all()
    assert table.loc["Reason4Rec", "mae"] == pytest.approx((test_contexts["rating"] - 4.0).abs().mean())
    assert table.loc["Reason4Rec", "verdicts"] == "6 love"
    assert table.loc["Reason4Rec", "teacher_agreement"] == pytest.approx((verdicts["verdict"] == "love").mean())
    assert table["teacher_agreement"].isna().tolist() == [method == "Reason4Rec w/o reason" for method in table.index]
    assert "| Reason4Rec + GRPO |" in out["refinement_report"] and "refinement_rewards.png" in out["refinement_report"]
    assert isinstance(out["plot_refinement_rewards"], plt.Figure)
