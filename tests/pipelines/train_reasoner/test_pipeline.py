import pandas as pd
from matplotlib.figure import Figure

from reason4rec import prompts
from reason4rec.distillation import ATTEMPT_COLUMNS
from reason4rec.pipelines.train_reasoner import create_pipeline
from reason4rec.pipelines.train_reasoner.nodes import reasoner_sft_examples
from tests.helpers import PROMPTING, run_pipeline, smoke_expert


def attempts(contexts: pd.DataFrame) -> pd.DataFrame:
    """Algorithm 1's journal: every pair's first reason rejected, a hinted second one accepted,
    except the last pair, which ran out of attempts."""
    rows = []
    for pair_id, pair in enumerate(contexts.itertuples()):
        common = {"pair_id": pair_id, "user_id": pair.user_id, "item_id": pair.item_id, "rating": pair.rating, "status": "ok", "r_baseline": 4.0, "teacher_error": None}
        rows.append({**common, "attempt": 1, "hinted": False, "reason": f"Rejected reason {pair_id}.", "r_reason": 2.0, "s_eval": 0.9, "accepted": False})
        if pair_id < len(contexts) - 1:
            rows.append({**common, "attempt": 2, "hinted": True, "reason": f"Others praise its melody, pair {pair_id}.", "r_reason": 4.0, "s_eval": 0.0, "accepted": True})
    return pd.DataFrame(rows, columns=ATTEMPT_COLUMNS)


def test_sft_data_is_the_accepted_reasons_under_prompts_without_the_hint(pair_contexts):
    sft = reasoner_sft_examples(attempts(pair_contexts), pair_contexts, PROMPTING)
    assert len(sft) == len(pair_contexts) - 1
    assert sft["response"].str.startswith("Others praise its melody").all()
    assert not sft["prompt"].str.contains("Hint:").any() and sft["prompt"].str.contains(prompts.WORDINGS["paper"].reasoner_task[:30]).all()


def test_pipeline_trains_the_reasoner_on_accepted_reasons_only(tiny_base, pair_contexts):
    out = run_pipeline(
        create_pipeline(),
        {"distilled_reasons": attempts(pair_contexts), "reasoner_contexts": pair_contexts, "base_model": tiny_base, "params:prompting": PROMPTING, "params:llm.experts.reasoner": smoke_expert("reasoner", num_train_epochs=1)},
        ["reasoner_sft_data", "reasoner_adapter", "reasoner_loss_curve", "reasoner_loss_plot"],
    )
    adapter = out["reasoner_adapter"]
    assert adapter.metadata["expert"] == "reasoner" and adapter.metadata["training_examples"] == len(pair_contexts) - 1
    assert len(out["reasoner_loss_curve"]) > 0 and isinstance(out["reasoner_loss_plot"], Figure)
