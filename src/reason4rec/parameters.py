"""The shape of every parameter and global block.

Nodes turn the block they read into one of these dataclasses with
:func:`~reason4rec.typed_config.typed_block`, and :func:`check_configuration`
checks the whole tree when a run starts (``hooks.CheckConfiguration``), so a
misspelt key in YAML or in ``--params`` stops the run before any work, with
its dotted path in the message, instead of silently becoming a default.
The LoRA experts' blocks are :class:`ExpertConfig`, whose ``lora`` and
``training`` blocks are checked against peft's ``LoraConfig`` and
transformers' ``TrainingArguments``; the teacher's (a global) is
:class:`TeacherConfig`, checked here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from reason4rec.completions.batch import BatchPolicy
from reason4rec.prompts import WORDINGS
from reason4rec.typed_config import typed_block


def one_of(name: str, value: Any, choices: tuple) -> None:
    """Refuse a setting outside its choices, naming it: ``train_predictor.pairs must be one of 'all', 'accepted', not 'some'``."""
    if value not in choices:
        shown = ", ".join("null" if c is None else repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {shown}, not {value!r}")


@dataclass(frozen=True)
class Ingest:
    k_core: int
    valid_fraction: float
    test_fraction: float
    time_window_days: int | None = None  # the last N days before the latest review (None keeps all)
    history_pool: str = "train"  # where every prompt's history comes from: ``train`` or ``all`` splits

    def __post_init__(self):
        one_of("ingest.history_pool", self.history_pool, ("train", "all"))


@dataclass(frozen=True)
class Pairs:
    """Two disjoint samples of training pairs: the reward model's and the reasoner's."""

    seed: int
    reward_model_size: int
    reasoner_size: int


@dataclass(frozen=True)
class SummaryTeacher:
    temperature: float
    max_tokens: int
    max_attempts: int  # a summary that does not parse is asked again


@dataclass(frozen=True)
class SummaryGeneration:
    max_new_tokens: int


@dataclass(frozen=True)
class Summarize:
    seed: int
    teacher_sample_size: int | None  # interactions the teacher summarizes to train the summarizer (None: every training one but the check's)
    check_size: int  # more, held out, to check the trained summarizer against the teacher
    teacher: SummaryTeacher
    use_teacher_summaries: bool  # the teacher summarizes every interaction; the summarizer is only checked
    generation: SummaryGeneration


@dataclass(frozen=True)
class RewardModel:
    check_pairs: int | None = None  # reasoner pairs the Table 5 check scores (None: all)


@dataclass(frozen=True)
class DistillReasons:
    """Algorithm 1: generation-then-filter."""

    max_attempts: int  # T
    tau: float  # accept when s_eval < tau
    baseline: str  # r_baseline: "none" (the published code) or "review" (the paper's formula)
    temperature: float
    max_tokens: int
    chunk_size: int  # pairs per journaled round
    journal_dir: str | None = None  # None: no journal, so no resume

    def __post_init__(self):
        one_of("distill_reasons.baseline", self.baseline, ("none", "review"))
        if self.max_attempts < 1:
            raise ValueError("distill_reasons.max_attempts must be at least 1")


@dataclass(frozen=True)
class TrainPredictor:
    pairs: str  # "all" reasoner pairs, or only those with an "accepted" reason (the published code)

    def __post_init__(self):
        one_of("train_predictor.pairs", self.pairs, ("all", "accepted"))


@dataclass(frozen=True)
class ReasonGeneration:
    max_new_tokens: int
    temperature: float = 0.0  # 0: greedy


@dataclass(frozen=True)
class Evaluate:
    seed: int
    report_examples: int
    timed_rows: int  # test rows timed one prediction at a time and in one batch, uncached (Table 6; the paper: 100)
    test_rows: int | None = None  # a fixed-seed sample of the test split (None: all)
    gptscore_judge: str | None = None  # the model that scores reasons (GPTScore); None: the teacher's model
    aspect_vocabulary: list[str] = field(default_factory=list)  # aspects a reason may name, scored where the data has true aspects (the synthetic world)


@dataclass(frozen=True)
class DeepCoNNSettings:
    seed: int
    vocab_size: int
    doc_tokens: int
    embedding_dim: int
    filters: int
    kernel: int
    latent: int
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float = 0.0


@dataclass(frozen=True)
class Baselines:
    """Surprise's keyword arguments for the MF baselines (Surprise refuses unknown ones), DeepCoNN's settings."""

    deepconn: DeepCoNNSettings
    baseline_only: dict[str, Any] = field(default_factory=dict)
    svd: dict[str, Any] = field(default_factory=dict)
    svdpp: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExpertConfig:
    """One ``llm.experts.<name>`` block.

    ``lora`` is passed as is to peft's ``LoraConfig`` and ``training`` to
    transformers' ``TrainingArguments`` (``reason4rec.llm.training``), so a
    recipe from the Hugging Face docs pastes in and a new Trainer setting needs
    no code. The other keys are this project's: the longest example, LoRA in
    the last ``top_layers`` decoder layers only, and what the loss covers.
    """

    lora: dict[str, Any]
    training: dict[str, Any]
    max_length: int
    top_layers: int | None = None  # LoRA in the last k decoder layers only (None: all)
    loss_on: str = "response"  # or "rating": the rating digit only

    def __post_init__(self):
        one_of("loss_on", self.loss_on, ("response", "rating"))


@dataclass(frozen=True)
class ReasonerRLConfig:
    """``llm.experts.reasoner_rl``: GRPO on the trained reasoner (the ``refine_reasoner`` pipeline).

    ``training`` is passed as is to TRL's ``GRPOConfig`` (a ``TrainingArguments``
    with GRPO's fields: ``num_generations``, ``beta``, ``temperature``,
    ``max_completion_length``, ``loss_type``, ``use_vllm``, ...), so a TRL
    recipe pastes in. The LoRA shape is the SFT reasoner's, continued. ``penalty``
    is subtracted from the reward of a sampled reason that states the rating
    or is cut short (no end of turn within ``max_completion_length``).
    """

    training: dict[str, Any]
    penalty: float = 1.0

    def __post_init__(self):
        if self.penalty < 0:
            raise ValueError(f"llm.experts.reasoner_rl.penalty must be 0 or more, not {self.penalty}")


# The llm.experts blocks trained by reinforcement rather than SFT, each with its settings class.
RL_BLOCKS = {"reasoner_rl": ReasonerRLConfig}

# TrainingArguments values resolved on the machine that trains (reason4rec.llm.training.training_arguments).
AUTO_TRAINING_SETTINGS = ("bf16", "activation_checkpointing")


def check_library_settings(block: Any, library: str, name: str) -> None:
    """Refuse a key that peft's ``LoraConfig`` (``library="lora"``), transformers'
    ``TrainingArguments`` (``"training"``) or TRL's ``GRPOConfig`` (``"grpo"``)
    does not have, naming its dotted path.

    Checked when a run starts, so a misspelt Trainer setting stops it before
    any work rather than when the expert trains. transformers and peft are
    imported here, not at the top: reading the configuration types must not
    load torch.
    """
    if library == "lora":
        from peft import LoraConfig as settings_class
    elif library == "grpo":
        from trl import GRPOConfig as settings_class
    else:
        from transformers import TrainingArguments as settings_class
    if not isinstance(block, Mapping):
        raise ValueError(f"{name} must be a mapping of {settings_class.__name__} settings, got {block!r}")
    unknown = sorted(set(block) - {f.name for f in fields(settings_class)})
    if unknown:
        raise ValueError(f"unknown {name} setting(s) {', '.join(unknown)}: {settings_class.__name__} has no such field")
    for key in AUTO_TRAINING_SETTINGS if library in ("training", "grpo") else ():
        if isinstance(block.get(key), str) and block[key] != "auto":
            raise ValueError(f"{name}.{key} must be true, false or auto, not {block[key]!r}")


@dataclass(frozen=True)
class TinyBase:
    """``llm.base.tiny``: the small Llama built and pre-trained here (smoke environment, tests)."""

    seed: int
    vocab_size: int
    corpus_size: int  # training interactions whose prompts build its tokenizer and pre-training text
    architecture: dict[str, int]
    pretraining: dict[str, Any]  # TrainingArguments, as an expert's ``training`` block


@dataclass(frozen=True)
class Base:
    base_model: str  # a named base, ``tiny``, or a Hugging Face id / local path
    quantization: str | None = None  # 4bit: NF4 QLoRA on CUDA
    bf16: bool | str = "auto"
    hub_kernels: bool = False  # transformers' kernels from the Hugging Face Hub on CUDA (reason4rec.llm.loading.load_model)
    tiny: TinyBase | None = None

    def __post_init__(self):
        one_of("llm.base.quantization", self.quantization, (None, "4bit"))
        if self.base_model == "tiny" and self.tiny is None:
            raise ValueError("llm.base.base_model: tiny needs an llm.base.tiny block")


@dataclass(frozen=True)
class Inference:
    """``llm.inference``: where the trained experts generate and score.

    ``local`` loads the base and adapters in this process (transformers +
    peft). ``server`` sends every generation and rating to an OpenAI-compatible
    completions server that serves the base with the adapters by name (vLLM
    ``--enable-lora --lora-modules <expert>=<adapter folder> ...``).
    """

    backend: str = "local"
    base_url: str | None = None  # e.g. http://localhost:8000/v1
    served_names: dict[str, str] | None = None  # expert -> model name on the server (default: the expert's name)
    served_base: str | None = None  # the base's model name on the server, for prompts run without an adapter
    api_key_env: str = "INFERENCE_API_KEY"  # environment variable holding the server's key (unset: none)
    concurrency: int = 16
    timeout_s: float = 300.0
    top_logprobs: int = 20  # vLLM's default --max-logprobs; enough for the five digits to be among them
    cache_path: str | None = None  # answers kept across runs (conf/base: data/02_intermediate/inference_cache.sqlite); None: in memory
    batch_size: int = 16  # prompts per forward pass (local); the server batches its own requests

    def __post_init__(self):
        one_of("llm.inference.backend", self.backend, ("local", "server"))
        if self.backend == "server" and not self.base_url:
            raise ValueError("llm.inference.backend: server needs llm.inference.base_url (the server's /v1 address)")


@dataclass(frozen=True)
class Launcher:
    """``llm.launcher``: where an expert's SFT runs.

    One process and no ``config_file``: in the Kedro process (the default).
    Otherwise ``command`` (``torchrun``, or ``accelerate`` with its config file:
    FSDP, DeepSpeed, mixed precision) starts ``processes`` processes of
    :mod:`reason4rec.training_launch`, and the node waits for rank 0's adapter
    (docs/engine.md, "More than one process"). ``arguments`` go to the launcher
    before the module (``--nnodes``, ``--main_process_ip``, ...).
    """

    processes: int = 1
    command: str = "torchrun"
    config_file: str | None = None
    arguments: list[str] = field(default_factory=list)

    def __post_init__(self):
        one_of("llm.launcher.command", self.command, ("torchrun", "accelerate"))
        if self.processes < 1:
            raise ValueError(f"llm.launcher.processes must be at least 1, not {self.processes}")
        if self.config_file and self.command != "accelerate":
            raise ValueError("llm.launcher.config_file is accelerate's configuration: set llm.launcher.command: accelerate")

    @property
    def in_process(self) -> bool:
        return self.processes == 1 and not self.config_file


@dataclass(frozen=True)
class LLM:
    base: Base
    experts: dict[str, Any]  # one ExpertConfig per expert (ReasonerRLConfig for reasoner_rl); keys starting with "_" are YAML anchors
    inference: Inference = Inference()
    launcher: Launcher = Launcher()


@dataclass(frozen=True)
class Prompting:
    """``prompting``: what every reasoner, reward-model and predictor prompt shows, and in which words.

    Nodes declare it as ``prompting: Prompting``, so Kedro builds it from
    ``params:prompting`` in a run (refusing an unknown key); the library's
    functions also take the plain mapping (:func:`prompting_of`), as a node
    called outside a Kedro session receives it.
    """

    domain: str  # the item noun ("Digital Music", "Book", "business")
    wording: str  # the paper's prompt boxes or the published scripts' words (reason4rec.prompts.WORDINGS)
    history_length: int  # earlier interactions shown per side

    def __post_init__(self):
        one_of("prompting.wording", self.wording, tuple(WORDINGS))
        if self.history_length < 1:
            raise ValueError(f"prompting.history_length must be at least 1, not {self.history_length}")


def prompting_of(settings: Prompting | Mapping[str, Any]) -> Prompting:
    """The ``prompting`` block as a :class:`Prompting` (nodes receive it as a plain mapping)."""
    return settings if isinstance(settings, Prompting) else typed_block(Prompting, settings, "prompting")


@dataclass(frozen=True)
class Parameters:
    """Everything ``conf/<env>/parameters*.yml`` may hold."""

    prompting: Prompting
    llm: LLM
    ingest: Ingest
    pairs: Pairs
    summarize: Summarize
    reward_model: RewardModel
    distill_reasons: DistillReasons
    train_predictor: TrainPredictor
    reason_generation: ReasonGeneration
    evaluate: Evaluate
    baselines: Baselines


@dataclass(frozen=True)
class Dataset:
    source: str
    reviews_path: str | None = None
    metadata_path: str | None = None


@dataclass(frozen=True)
class SyntheticWorld:
    seed: int
    n_users: int
    n_items: int
    interactions_per_user: int
    start_timestamp: int
    span_days: int
    noise_sentence_rate: float
    rating_noise: float


TEACHER_BACKENDS = ("rules", "openai")
TEACHER_MODES = ("sync", "batch")


@dataclass(frozen=True)
class TeacherConfig:
    """The ``teacher:`` block of ``globals.yml``; an unknown key is refused, not ignored.

    ``mode: batch`` sends what the cache cannot answer through the OpenAI Batch API,
    as ``batch`` (:class:`~reason4rec.completions.batch.BatchPolicy`) says.
    """

    backend: str = "rules"
    model: str | None = None
    base_url: str | None = None
    concurrency: int = 8
    timeout_s: float = 60.0
    max_retries: int = 6
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    cache_path: str | None = None
    prices_per_million_tokens: dict[str, Any] = field(default_factory=dict)
    mode: str = "sync"
    batch: BatchPolicy = field(default_factory=BatchPolicy)

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> TeacherConfig:
        typed = typed_block(cls, config, "teacher")
        if typed.backend not in TEACHER_BACKENDS:
            raise ValueError(f"teacher.backend must be one of {', '.join(TEACHER_BACKENDS)}, got {typed.backend!r}")
        if typed.backend == "openai" and not typed.model:
            raise ValueError("teacher.model is required for the openai backend")
        one_of("teacher.mode", typed.mode, TEACHER_MODES)
        if typed.mode == "batch" and typed.backend != "openai":
            raise ValueError(f"teacher.mode: batch needs teacher.backend: openai (the {typed.backend} teacher has no Batch API)")
        return typed

    def batch_manifest_path(self) -> str | None:
        """``batch.manifest_path``, or the answer cache's path with ``.batches.json`` (None: kept in memory)."""
        if self.batch.manifest_path or not self.cache_path:
            return self.batch.manifest_path
        return str(Path(self.cache_path).with_suffix(".batches.json"))



# The experts every run trains, each with its llm.experts block.
EXPERT_BLOCKS = ("summarizer", "reward_model", "reasoner", "predictor")


def check_configuration(parameters: dict[str, Any], globals_: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the first unknown, missing or invalid setting in the parameters or globals."""
    typed = typed_block(Parameters, parameters, "")
    for name in EXPERT_BLOCKS:
        if name not in typed.llm.experts:
            raise ValueError(f"llm.experts needs a {name} block")
    for name, block in typed.llm.experts.items():
        if name in RL_BLOCKS:
            refined = typed_block(RL_BLOCKS[name], block, f"llm.experts.{name}")
            check_library_settings(refined.training, "grpo", f"llm.experts.{name}.training")
        elif not name.startswith("_"):
            expert = typed_block(ExpertConfig, block, f"llm.experts.{name}")
            check_library_settings(expert.lora, "lora", f"llm.experts.{name}.lora")
            check_library_settings(expert.training, "training", f"llm.experts.{name}.training")
    if typed.llm.base.tiny is not None:
        check_library_settings(typed.llm.base.tiny.pretraining, "training", "llm.base.tiny.pretraining")
    typed_block(Dataset, globals_.get("dataset", {}), "dataset")
    typed_block(SyntheticWorld, globals_.get("synthetic_world", {}), "synthetic_world")
    TeacherConfig.from_dict(globals_.get("teacher", {}))
