import numpy as np
import pandas as pd
import pytest

from reason4rec import prompts
from reason4rec.evaluation.baselines import deepconn_predictions, surprise_predictions
from reason4rec.parameters import DeepCoNNSettings
from reason4rec.evaluation.metrics import accuracy_table
from reason4rec.evaluation.reason_quality import aspect_recovery, rouge_l
from reason4rec.evaluation.gptscore import judge_reasons
from reason4rec.completions import CompletionClient
from reason4rec.completions.cache import AnswerCache
from reason4rec.teacher.rules import RulesBackend
from tests.helpers import PROMPTING


def test_accuracy_table_refuses_methods_scored_on_different_rows():
    rows = pd.DataFrame({"user_id": ["u", "v"], "item_id": ["i", "j"], "rating": [5.0, 1.0]})
    both = pd.concat([rows.assign(method="a", prediction=[4.0, 2.0]), rows.assign(method="b", prediction=[5.0, 1.0])])
    table = accuracy_table(both)
    assert table["method"].tolist() == ["b", "a"] and table.loc[1, "mae"] == 1.0 and table.loc[1, "rmse"] == 1.0
    with pytest.raises(ValueError, match="different rows"):
        accuracy_table(pd.concat([both, rows.iloc[:1].assign(method="c", prediction=3.0)]))


def test_aspect_recovery_and_rouge():
    result = aspect_recovery(["the vocals and the melody", "value"], [["vocals"], ["energy"]], ["vocals", "melody", "value", "energy"])
    assert result["aspect_precision"] == pytest.approx(1 / 3) and result["aspect_recall"] == pytest.approx(1 / 2)
    assert rouge_l(["great vocals"], ["great vocals"])[0] == pytest.approx(1.0)


def ratings_world(smoke_world):
    from reason4rec.data.synthetic import generate_review_world

    world = generate_review_world(smoke_world)
    return world.iloc[: int(len(world) * 0.8)], world.iloc[int(len(world) * 0.8) :]


def test_baselines_score_every_row_and_beat_nothing_by_luck(smoke_world):
    train, test = ratings_world(smoke_world)
    svd = surprise_predictions(train, test, "SVD", {"n_factors": 4, "n_epochs": 5, "random_state": 0})
    assert len(svd) == len(test) and np.isfinite(svd).all()
    unknown = pd.DataFrame({"user_id": ["nobody"], "item_id": ["nothing"], "rating": [3.0], "review": [""], "timestamp": [0]})
    assert surprise_predictions(train, unknown, "BaselineOnly", {})[0] == pytest.approx(train["rating"].mean())  # documented fallback
    params = DeepCoNNSettings(**{"seed": 0, "vocab_size": 300, "doc_tokens": 32, "embedding_dim": 8, "filters": 4, "kernel": 3, "latent": 4, "epochs": 1, "batch_size": 64, "learning_rate": 0.01})
    deepconn = deepconn_predictions(train, pd.concat([test, unknown]), params)
    assert len(deepconn) == len(test) + 1 and ((deepconn >= 1) & (deepconn <= 5)).all()


def test_gptscore_needs_an_llm_teacher_and_asks_the_named_judge_on_the_papers_scale():
    predictions = pd.DataFrame({"user_id": ["u"], "item_id": ["i"], "reason": ["likes the vocals"]})
    test = pd.DataFrame({"user_id": ["u"], "item_id": ["i"], "review": ["Great vocals."]})
    assert judge_reasons(predictions, test, CompletionClient(RulesBackend(), AnswerCache(None)), PROMPTING, {})["gptscore"] is None

    class Judge:
        name = "openai"

        def __init__(self, model):
            self.model = model

        def identity(self):
            return {"backend": self.name, "model": self.model}

        def for_model(self, model):
            return Judge(model)

        def call(self, request):
            assert "Great vocals." in request.prompt and "likes the vocals" in request.prompt and "0 (no alignment) to 100" in request.prompt
            return ("Score: 70" if self.model == "gpt-4o" else "35"), 1, 1

    teacher = CompletionClient(Judge("gpt-3.5-turbo"), AnswerCache(None))
    judged = judge_reasons(predictions, test, teacher, PROMPTING, {"seed": 0, "report_examples": 1, "timed_rows": 1, "gptscore_judge": "gpt-4o"})
    assert (judged["gptscore"], judged["judge"]) == (70.0, "gpt-4o")
    assert judge_reasons(predictions, test, teacher, PROMPTING, {"seed": 0, "report_examples": 1, "timed_rows": 1, "gptscore_judge": None})["gptscore"] == 35.0
    assert [prompts.parse_score(t) for t in ("100", "Score: 0", "7/100", "none")] == [100, 0, 7, None]
