"""Inference on the shared base: batched generation and logit-weighted rating scoring
with named LoRA adapters switched per call.

:func:`load_engine` builds the engine a run's inference nodes share (the
``engine`` catalog entry, one per run): the base loaded once, each node adding
the adapters it uses. Both backends, this process's :class:`Engine` and the
server's :class:`~reason4rec.llm.served.ServedEngine`, implement
:class:`InferenceEngine`.

The local engine's answers (ratings, and greedy generations) are kept in
``llm.inference.cache_path``, keyed by the adapter's run (a fingerprint of its
base, settings and training data) and the prompt: a prompt asked twice
is computed once. That makes a rerun after a crash skip finished work, and
Algorithm 1 free where it asks the same thing again: the reward check's "Without
Reason" prompts are distillation's baselines, and a deterministic teacher's
repeated hinted candidate is scored once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Protocol

import torch
from peft import PeftModel, get_peft_model, set_peft_model_state_dict
from tqdm.auto import tqdm

from reason4rec.completions.cache import AnswerCache
from reason4rec.llm.artifacts import AdapterArtifact, BaseModelArtifact
from reason4rec.llm.chat import RATING_PREFIX, chat_prompt, end_of_turn_ids, expected_rating, rating_token_ids
from reason4rec.llm.loading import load_model, use_bf16
from reason4rec.llm.served import ServedEngine
from reason4rec.parameters import Inference
from reason4rec.typed_config import typed_block

logger = logging.getLogger(__name__)


class InferenceEngine(Protocol):
    """What an inference node needs of an engine, wherever the experts run."""

    batch_size: int  # prompts per forward pass

    def load_adapters(self, adapters: dict[str, AdapterArtifact]) -> None:
        """Make each adapter callable by its name (replacing an older version of it)."""

    def generate(
        self, prompts: Sequence[str], adapter: str | None, max_new_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
        batch_size: int | None = None, seed: int = 0, desc: str = "generating",
    ) -> list[dict[str, Any]]:  # fmt: skip
        """``{"text", "new_tokens", "truncated"}`` per prompt, in order."""

    def score_ratings(self, prompts: Sequence[str], adapter: str | None, batch_size: int | None = None, desc: str = "scoring") -> list[float]:
        """The logit-weighted rating of each prompt, in [1, 5]."""

    def rating_distributions(self, prompts: Sequence[str], adapter: str | None, batch_size: int | None = None, desc: str = "scoring") -> list[list[float]]:
        """Each prompt's probabilities of the ratings 1..5 (summing to 1), whose expectation is its rating."""

    def uncached(self) -> AbstractContextManager[InferenceEngine]:
        """Within it, every answer is computed afresh and none is kept (timing)."""


def load_engine(base_model: BaseModelArtifact, inference: dict[str, Any]) -> InferenceEngine:
    """The engine on ``base_model`` that ``llm.inference`` asks for: in this process
    (``local``) or on an OpenAI-compatible server (``server``). No adapter is
    loaded yet: each node loads the ones it uses."""
    config = typed_block(Inference, inference, "llm.inference")
    if config.backend == "server":
        return ServedEngine(base_model, config)
    return Engine(base_model, cache=AnswerCache(config.cache_path), batch_size=config.batch_size)


class Engine:
    """One loaded base model with any number of named adapters, switched per call.

    ``adapter=None`` runs the bare base model. With a ``cache``, ratings and
    greedy generations are looked up there first and stored once computed; an
    adapter without a run id in its metadata is never cached.
    """

    def __init__(self, base: BaseModelArtifact, adapters: dict[str, AdapterArtifact] | None = None, cache: AnswerCache | None = None, batch_size: int = 16):
        self.model, self.tokenizer = load_model(base)
        self.cache = cache
        self.batch_size = batch_size
        # What an answer depends on besides the prompt: the base and how it is loaded, then the adapter's run.
        self.identities: dict[str | None, str | None] = {None: json.dumps([base.name, base.metadata.get("build_id"), base.loading], sort_keys=True, default=str)}
        self.model.eval()
        self.device = next(self.model.parameters()).device
        self.bf16 = use_bf16(base.loading.get("bf16", "auto"))
        self.stop_ids = end_of_turn_ids(self.tokenizer)
        self.rating_ids = rating_token_ids(self.tokenizer)
        self._loaded: dict[str, AdapterArtifact] = {}
        self.load_adapters(adapters or {})

    def load_adapters(self, adapters: dict[str, AdapterArtifact]) -> None:
        """Add each adapter under its name, or replace the weights of the one already there
        (nothing to do when it is this very artifact: a service calls this per batch)."""
        for name, adapter in adapters.items():
            if self._loaded.get(name) is adapter:
                continue
            if not isinstance(self.model, PeftModel):
                self.model = get_peft_model(self.model, adapter.config, adapter_name=name)
            elif name not in self.model.peft_config:
                self.model.add_adapter(name, adapter.config)
            elif _shape(self.model.peft_config[name]) != _shape(adapter.config):
                self.model.delete_adapter(name)
                self.model.add_adapter(name, adapter.config)
            set_peft_model_state_dict(self.model, adapter.state_dict, adapter_name=name)
            self._loaded[name] = adapter
            run = adapter.metadata.get("run")
            self.identities[name] = None if run is None else f"{self.identities[None]} {run}"
            logger.info("Adapter %s loaded (%s)", name, adapter.metadata.get("run", "no run id"))
        self.model.eval()

    def _activate(self, adapter: str | None):
        if adapter is None:
            return self.model.disable_adapter() if isinstance(self.model, PeftModel) else nullcontext()
        if not isinstance(self.model, PeftModel) or adapter not in self.model.peft_config:
            raise KeyError(f"no adapter named {adapter!r} is loaded")
        self.model.set_adapter(adapter)
        return nullcontext()

    @contextmanager
    def uncached(self):
        """Compute every answer afresh and keep none (timing one prediction at a time)."""
        kept, self.cache = self.cache, None
        try:
            yield self
        finally:
            self.cache = kept

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def generate(self, prompts: Sequence[str], adapter: str | None, **settings: Any) -> list[dict[str, Any]]:
        """Batched chat completion of ``prompts`` (each put in the chat template);
        ``settings`` are ``generate_encoded``'s. Returns, in order, ``{"text", "new_tokens", "truncated"}``."""
        encoded = [self.tokenizer(chat_prompt(self.tokenizer, p), add_special_tokens=False)["input_ids"] for p in prompts]
        return self.generate_encoded(encoded, adapter, **settings)

    @torch.inference_mode()
    def generate_encoded(
        self,
        encoded: Sequence[Sequence[int]],
        adapter: str | None,
        max_new_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        batch_size: int | None = None,
        seed: int = 0,
        desc: str = "generating",
    ) -> list[dict[str, Any]]:
        """Batched generation from token ids already in the chat template (what a
        server receives), left-padded, greedy at temperature 0, stopping at end of turn.

        Returns, in order, ``{"text", "new_tokens", "truncated"}`` per prompt.
        """
        torch.manual_seed(seed)
        results: list[dict[str, Any] | None] = [None] * len(encoded)
        # Sampled generations depend on the batch they were drawn in: only greedy ones are kept.
        keys = self._keys(adapter, "generate", [list(e) for e in encoded], max_new_tokens) if temperature == 0 else [None] * len(encoded)
        todo = self._recall(keys, results)
        with self._activate(adapter), self._autocast():
            for batch in _progress([[todo[i] for i in b] for b in length_sorted_batches([encoded[i] for i in todo], batch_size or self.batch_size)], desc):
                ids, mask = pad_left([encoded[i] for i in batch], self.tokenizer.pad_token_id)
                output = self.model.generate(
                    input_ids=ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    max_new_tokens=max_new_tokens,
                    do_sample=temperature > 0,
                    temperature=temperature if temperature > 0 else None,
                    top_p=top_p if temperature > 0 else None,
                    eos_token_id=self.stop_ids,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
                for index, row in zip(batch, output[:, ids.shape[1] :].tolist()):
                    end = next((i for i, t in enumerate(row) if t in self.stop_ids), len(row))
                    results[index] = {
                        "text": self.tokenizer.decode(row[:end], skip_special_tokens=True).strip(),
                        "new_tokens": min(end + 1, len(row)),
                        "truncated": end == len(row),  # no end of turn within max_new_tokens
                    }
                    self._keep(keys[index], results[index])
        return results  # type: ignore[return-value]

    def score_ratings(self, prompts: Sequence[str], adapter: str | None, batch_size: int | None = None, desc: str = "scoring") -> list[float]:
        return [expected_rating(d) for d in self.rating_distributions(prompts, adapter, batch_size, desc)]

    @torch.inference_mode()
    def rating_distributions(self, prompts: Sequence[str], adapter: str | None, batch_size: int | None = None, desc: str = "scoring") -> list[list[float]]:
        """Logit-weighted rating decoding (the paper's section 3.3).

        The chat prompt plus the fixed answer prefix ``Predicted Rating: `` is
        read in one forward pass; the logits of the tokens "1".."5" at the last
        position, softmaxed among themselves, are the rating's distribution.
        """
        prefix = self.tokenizer(RATING_PREFIX, add_special_tokens=False)["input_ids"]
        encoded = [self.tokenizer(chat_prompt(self.tokenizer, p), add_special_tokens=False)["input_ids"] + prefix for p in prompts]
        distributions: list[Any] = [None] * len(prompts)
        keys = self._keys(adapter, "rating distribution", list(prompts))
        todo = self._recall(keys, distributions)
        with self._activate(adapter), self._autocast():
            for batch in _progress([[todo[i] for i in b] for b in length_sorted_batches([encoded[i] for i in todo], batch_size or self.batch_size)], desc):
                ids, mask = pad_left([encoded[i] for i in batch], self.tokenizer.pad_token_id)
                positions = (mask.cumsum(-1) - 1).clamp(min=0)
                logits = self.model(
                    input_ids=ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    position_ids=positions.to(self.device),
                    logits_to_keep=1,
                ).logits[:, -1, :]
                for index, distribution in zip(batch, torch.softmax(logits.float().cpu()[:, self.rating_ids], dim=-1).tolist()):
                    distributions[index] = distribution
                    self._keep(keys[index], distribution)
        return distributions

    def _keys(self, adapter: str | None, kind: str, prompts: Sequence[Any], *settings: Any) -> list[str | None]:
        identity = self.identities.get(adapter)
        if self.cache is None or identity is None:
            return [None] * len(prompts)
        head = json.dumps([kind, identity, *settings], default=str)
        return [hashlib.sha256(f"{head} {json.dumps(p)}".encode()).hexdigest() for p in prompts]

    def _recall(self, keys: list[str | None], answers: list[Any]) -> list[int]:
        """Fill ``answers`` from the cache; return the indices still to compute."""
        todo = []
        for index, key in enumerate(keys):
            found = self.cache.get(key) if key is not None else None  # type: ignore[union-attr]
            if found is None:
                todo.append(index)
            else:
                answers[index] = json.loads(found[0])
        if len(todo) < len(keys):
            logger.info("%d of %d answers from the inference cache", len(keys) - len(todo), len(keys))
        return todo

    def _keep(self, key: str | None, answer: Any) -> None:
        if key is not None:
            self.cache.put(key, json.dumps(answer), 0, 0, "local")  # type: ignore[union-attr]


def _shape(config: Any) -> dict[str, Any]:
    """What makes two LoRA configs different adapters (not the base's name or the inference flag)."""
    return {k: v for k, v in config.to_dict().items() if k not in ("base_model_name_or_path", "revision", "inference_mode")}


def pad_left(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad to one length (the answer starts at the same column in every row)."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, width - len(sequence) :] = torch.tensor(sequence, dtype=torch.long)
        mask[row, width - len(sequence) :] = 1
    return ids, mask


def length_sorted_batches(sequences: Sequence[Sequence[int]], batch_size: int) -> list[list[int]]:
    """Indices of ``sequences`` in batches of similar length, longest first.

    Prompts of one batch are left-padded to its longest; batching neighbours in
    length keeps that padding (compute spent on nothing) small, and longest
    first makes an out-of-memory batch fail at once. Callers put results back
    by index, so the output order is the input order.
    """
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def _progress(batches: list[list[int]], desc: str):
    return tqdm(batches, desc=desc, unit="batch", disable=len(batches) <= 1)
