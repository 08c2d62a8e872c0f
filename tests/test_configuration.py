"""Configuration a user sets takes effect or fails loudly: ``--params`` for catalog
settings, unknown keys refused, environments that change only what they name."""

import shutil

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import DatasetError
from kedro.validation.exceptions import ParameterValidationError

from reason4rec.datasets.teacher import TeacherDataset
from reason4rec.llm.training import train_adapter
from reason4rec.parameters import ExpertConfig, ReasonerRLConfig
from reason4rec.typed_config import typed_block
from tests.helpers import PROJECT_ROOT, scratch_project, smoke_expert


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return scratch_project(tmp_path_factory.mktemp("project"))


def context(project, monkeypatch, env=None, **runtime_params):
    monkeypatch.chdir(project)
    bootstrap_project(project)
    return KedroSession.create(project_path=project, env=env, runtime_params=runtime_params or None).load_context()


def test_params_reach_the_teacher_and_the_synthetic_world(project, monkeypatch):
    loaded = context(project, monkeypatch, teacher={"backend": "openai", "model": "my-model", "base_url": "http://127.0.0.1:9/v1", "concurrency": 3}, synthetic_world={"n_users": 11})
    description = loaded.catalog.get("teacher")._describe()
    assert (description["backend"], description["model"], description["base_url"], description["concurrency"]) == ("openai", "my-model", "http://127.0.0.1:9/v1", 3)
    assert description["max_retries"] == 6  # the rest stays as globals.yml has it
    assert loaded.catalog.get("raw_reviews")._synthetic["n_users"] == 11


def test_batch_mode_params_reach_the_teacher(project, monkeypatch):
    teacher = {"backend": "openai", "model": "my-model", "mode": "batch", "batch": {"poll_interval_s": 5}}
    description = context(project, monkeypatch, teacher=teacher).catalog.get("teacher")._describe()
    assert description["mode"] == "batch" and description["batch"]["poll_interval_s"] == 5
    assert description["batch"]["max_rounds"] == 3 and description["batch"]["price_factor"] == 0.5  # a partial block: the rest as globals.yml has them
    with pytest.raises(ValueError, match=r"unknown teacher.batch setting\(s\) poll_every"):
        context(project, monkeypatch, teacher={**teacher, "batch": {"poll_every": 5}})


def test_a_misspelt_param_stops_the_run_and_is_named(project, monkeypatch):
    with pytest.raises(ValueError, match=r"unknown teacher setting\(s\) bakend"):
        context(project, monkeypatch, teacher={"bakend": "openai"})
    with pytest.raises(ValueError, match=r"unknown llm.experts.reasoner setting\(s\) epochs"):
        context(project, monkeypatch, llm={"experts": {"reasoner": {"epochs": 1}}})
    with pytest.raises(ValueError, match=r"unknown llm.experts.predictor.training setting\(s\) weight_decy: TrainingArguments has no such field"):
        context(project, monkeypatch, llm={"experts": {"predictor": {"training": {"weight_decy": 0.05}}}})
    with pytest.raises(ValueError, match=r"unknown llm.experts.predictor.lora setting\(s\) rank: LoraConfig has no such field"):
        context(project, monkeypatch, llm={"experts": {"predictor": {"lora": {"rank": 4}}}})
    # Kedro builds a parameter typed as a dataclass in a node's signature (Prompting) itself, and names the key it refuses.
    with pytest.raises(ParameterValidationError, match=r"Prompting for parameter 'prompting'.*domian"):
        context(project, monkeypatch, prompting={"domian": "Book"})
    # A TrainingArguments field the YAML does not set is still a setting: it passes through.
    training = context(project, monkeypatch, llm={"experts": {"predictor": {"training": {"weight_decay": 0.05}}}}).params["llm"]["experts"]["predictor"]["training"]
    assert training["weight_decay"] == 0.05 and training["learning_rate"] == 1.0e-3


def test_paper_environment_changes_only_the_teacher_keys_it_names(project, monkeypatch):
    description = context(project, monkeypatch, env="paper").catalog.get("teacher")._describe()
    assert (description["backend"], description["model"]) == ("openai", "gpt-3.5-turbo")
    assert description["cache_path"] == "data/02_intermediate/teacher_cache.sqlite"


def test_unknown_teacher_setting_is_refused():
    with pytest.raises(DatasetError, match="unknown teacher setting.*concurency"):
        TeacherDataset({"backend": "rules", "concurency": 4})


def test_a_recommender_refuses_a_batch_teacher(tmp_path):
    from reason4rec import Recommender

    teacher = {"backend": "openai", "model": "gpt-4o-mini", "mode": "batch"}
    with pytest.raises(ValueError, match="must be mode: sync, not batch"):
        Recommender.from_bundle(tmp_path / "no-bundle-needed", teacher=teacher)


def test_musical_instruments_environment_reads_the_real_file(project, monkeypatch):
    loaded = context(project, monkeypatch, env="musical_instruments")
    source = loaded.catalog.get("raw_reviews")
    assert source._source == "amazon" and source._reviews_path.endswith("reviews_Musical_Instruments_5.json.gz")
    assert loaded.params["prompting"].domain == "Musical Instrument" and loaded.params["llm"]["base"]["base_model"] == "smollm2-135m-instruct"


@pytest.mark.parametrize("env", [None, "smoke", "paper", "musical_instruments"])
def test_every_shipped_expert_block_is_well_formed(project, monkeypatch, env):
    experts = context(project, monkeypatch, env=env).params["llm"]["experts"]
    for name in ("summarizer", "reward_model", "reasoner", "predictor"):
        typed_block(ExpertConfig, experts[name], name)
    typed_block(ReasonerRLConfig, experts["reasoner_rl"], "reasoner_rl")


def test_a_misspelt_expert_setting_in_yaml_stops_training_and_is_named(tiny_base):
    rows = pd.DataFrame({"prompt": ["Rate it."], "response": ["Predicted Rating: 4.0"]})
    with pytest.raises(ValueError, match=r"unknown llm.experts \(reasoner\) setting\(s\) top_layer\b"):
        train_adapter(tiny_base, rows, {**smoke_expert(), "top_layer": 2}, "reasoner")
    with pytest.raises(ValueError, match="no_such_optimizer"):  # the optimizer name reaches transformers, which refuses it
        train_adapter(tiny_base, rows, smoke_expert(optim="no_such_optimizer"), "reasoner")
    with pytest.raises(ValueError, match="needs lora"):
        train_adapter(tiny_base, rows, {k: v for k, v in smoke_expert().items() if k != "lora"}, "reasoner")
    with pytest.raises(ValueError, match="loss_on must be"):
        train_adapter(tiny_base, rows, {**smoke_expert(), "loss_on": "digits"}, "reasoner")


def test_an_environment_changes_only_the_parameters_it_names(project, monkeypatch):
    base, paper = context(project, monkeypatch).params, context(project, monkeypatch, env="paper").params
    named = ("baseline", "max_attempts", "temperature", "chunk_size", "max_tokens")
    assert [paper["distill_reasons"][k] for k in named] == ["none", 11, 1.0, 256, 4096]
    assert {k: v for k, v in paper["distill_reasons"].items() if k not in named} == {
        k: v for k, v in base["distill_reasons"].items() if k not in named
    }
    assert paper["summarize"]["teacher"] == {**base["summarize"]["teacher"], "temperature": 0.2, "max_tokens": 4096} and paper["evaluate"]["seed"] == base["evaluate"]["seed"]
    assert paper["train_predictor"]["pairs"] == "accepted" and base["train_predictor"]["pairs"] == "all"
    assert paper["llm"]["experts"]["predictor"]["lora"]["modules_to_save"] == ["lm_head"]
    assert paper["llm"]["experts"]["reward_model"]["top_layers"] is None and paper["llm"]["experts"]["reward_model"]["training"]["learning_rate"] == 3.0e-6
    # A training block merges key by key too: base's warmup and logging are replaced, its output_dir kept.
    assert paper["llm"]["experts"]["reasoner"]["training"]["output_dir"] == base["llm"]["experts"]["reasoner"]["training"]["output_dir"]


@pytest.mark.parametrize(
    ("file", "text", "named"),
    [
        ("parameters.yml", "summarize:\n  teacher:\n    max_atempts: 2\n", r"unknown summarize.teacher setting\(s\) max_atempts"),
        ("parameters.yml", "histroy_length: 5\n", r"unknown top-level setting\(s\) histroy_length"),
        ("parameters.yml", "llm:\n  experts:\n    reasoner:\n      training:\n        num_train_epoch: 2\n", r"unknown llm.experts.reasoner.training setting\(s\) num_train_epoch"),
        ("parameters.yml", "llm:\n  experts:\n    reasoner:\n      training:\n        bf16: maybe\n", "llm.experts.reasoner.training.bf16 must be true, false or auto"),
        ("parameters.yml", "llm:\n  inference:\n    batch_sise: 8\n", r"unknown llm.inference setting\(s\) batch_sise"),
        ("parameters.yml", "distill_reasons:\n  baseline: reviews\n", "distill_reasons.baseline must be one of 'none', 'review', not 'reviews'"),
        ("parameters.yml", "prompting:\n  wording: code\n", "prompting.wording must be one of 'paper', 'published', not 'code'"),
        ("parameters.yml", "llm:\n  experts:\n    predictor:\n      lora_rank: 4\n", r"unknown llm.experts.predictor setting\(s\) lora_rank"),
        ("parameters.yml", "llm:\n  experts:\n    reasoner_rl:\n      training:\n        num_generation: 8\n", r"unknown llm.experts.reasoner_rl.training setting\(s\) num_generation: GRPOConfig has no such field"),
        ("parameters.yml", "llm:\n  experts:\n    reasoner_rl:\n      penalti: 2\n", r"unknown llm.experts.reasoner_rl setting\(s\) penalti"),
        ("globals.yml", "synthetic_world:\n  n_user: 5\n", r"unknown synthetic_world setting\(s\) n_user"),
    ],
)
def test_a_misspelt_yaml_setting_stops_the_run_before_any_work(project, monkeypatch, file, text, named):
    env = project / "conf" / "typo"
    shutil.rmtree(env, ignore_errors=True)
    env.mkdir()
    (env / file).write_text(text)
    with pytest.raises((ValueError, ParameterValidationError), match=named):
        context(project, monkeypatch, env="typo")


def test_paper_environment_sets_the_published_training_scripts_values(project, monkeypatch):
    """Peter-Fy/Reason4Rec's *_train.sh and 4_distilling_possible_reason.py, value by value."""
    paper = context(project, monkeypatch, env="paper").params
    experts = {name: typed_block(ExpertConfig, paper["llm"]["experts"][name], name) for name in ("summarizer", "reward_model", "reasoner", "predictor")}
    published = {  # rank, alpha, dropout, epochs, batch, lr, warmup, last layer
        "summarizer": (16, 32, 0.0, 5, 16, 3e-4, 100, None),
        "reward_model": (8, 16, 0.0, 3, 16, 3e-6, 0.1, ["lm_head"]),
        "reasoner": (16, 32, 0.1, 3, 32, 3e-4, 100, None),
        "predictor": (8, 16, 0.0, 3, 16, 3e-5, 0.1, ["lm_head"]),
    }
    for name, expert in experts.items():
        lora, training = expert.lora, expert.training
        ours = (lora["r"], lora["lora_alpha"], lora["lora_dropout"], training["num_train_epochs"], training["per_device_train_batch_size"], training["learning_rate"], training["warmup_steps"], lora.get("modules_to_save"))
        assert ours == published[name], name
        assert (training["gradient_accumulation_steps"], training["seed"], training["optim"], training["lr_scheduler_type"], expert.max_length) == (1, 42, "adamw_8bit", "linear", 4096)
        assert expert.top_layers is None and expert.loss_on == "response"
    assert (paper["distill_reasons"]["max_attempts"], paper["distill_reasons"]["temperature"], paper["distill_reasons"]["tau"]) == (11, 1.0, 0.1)
    assert paper["ingest"]["history_pool"] == "train"  # test histories from the training split, as 3_generate_predict_for_test.py builds them
    summarize = paper["summarize"]  # 1_Summarizer: the teacher summarizes every training review at 0.2; the summarizer writes every summary
    assert (summarize["teacher_sample_size"], summarize["use_teacher_summaries"], summarize["teacher"]["temperature"]) == (None, False, 0.2)
    assert (summarize["teacher"]["max_tokens"], summarize["generation"]["max_new_tokens"], paper["reason_generation"]["max_new_tokens"]) == (4096, 1024, 1024)
    assert paper["distill_reasons"]["max_tokens"] == 4096
    assert paper["evaluate"]["gptscore_judge"] == "gpt-4o"  # the paper's GPTScore judge (section 4.1)
    assert paper["evaluate"]["timed_rows"] == 100  # Table 6: 100 data points, timed one at a time
    assert (paper["prompting"].wording, paper["prompting"].history_length) == ("published", 10)  # the scripts' words around the histories (the paper's boxes are `paper`)


def test_paper_environment_sets_the_grpo_fork_s_values(project, monkeypatch):
    """innocentbai/Reason4Rec-GRPO's GRPOConfig for the reasoner, value by value."""
    refined = typed_block(ReasonerRLConfig, context(project, monkeypatch, env="paper").params["llm"]["experts"]["reasoner_rl"], "reasoner_rl")
    training = refined.training
    assert training["num_generations"] == 16
    assert training["beta"] == 0.01
    assert training["learning_rate"] == 5.0e-7
    assert training["temperature"] == 0.8
    assert training["max_completion_length"] == 256
    assert training["loss_type"] == "bnpo"
    assert training["bf16"] is True and training["max_steps"] == -1  # base's CPU step cap undone: the epoch decides


@pytest.mark.parametrize(
    "preset, source, domain, window, tau",
    [("music", "amazon", "Digital Music", None, 0.1), ("books", "amazon", "Book", 60, 0.2), ("yelp", "yelp", "business", 182, 0.04)],
)
def test_dataset_presets_are_run_configurations_of_the_paper_environment(project, monkeypatch, preset, source, domain, window, tau):
    """``kedro run --config conf/presets/<name>.yml``: parsed by Kedro's own ``run`` command."""
    from kedro.framework.cli.project import run

    options = run.make_context("run", ["--config", str(PROJECT_ROOT / "conf" / "presets" / f"{preset}.yml")]).params
    assert options["env"] == "paper"
    loaded = context(project, monkeypatch, env=options["env"], **options["params"])
    reviews = loaded.catalog.get("raw_reviews")
    assert reviews._source == source and reviews._reviews_path.startswith("data/01_raw/")
    assert (loaded.params["prompting"].domain, loaded.params["ingest"]["time_window_days"], loaded.params["distill_reasons"]["tau"]) == (domain, window, tau)
    assert loaded.params["llm"]["base"]["base_model"] == "meta-llama/Meta-Llama-3-8B-Instruct"
