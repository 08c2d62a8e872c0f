"""The ``tiny`` base model: built locally, so the whole method runs with no model hub.

A byte-level BPE tokenizer trained on the project's own text, with every digit
its own token (so ``"Predicted Rating: " + "4"`` is the prefix plus one token and
logit-weighted decoding reads one position), a chat template, and a small
Llama-architecture model briefly pre-trained as a causal LM on the same text so
the adapters start from a model that knows the vocabulary.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from reason4rec.llm.training import encode_text, fingerprint, fit, training_arguments

logger = logging.getLogger(__name__)

BOS, EOT, PAD = "<|bos|>", "<|eot|>", "<|pad|>"
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]

# One turn: role token, newline, content, end-of-turn. The generation prompt
# ends with the assistant role token and a newline.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}<|eot|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer whose digits are single tokens."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOT, *ROLE_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOT,
        pad_token=PAD,
        additional_special_tokens=ROLE_TOKENS,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(tokenizer: PreTrainedTokenizerFast, architecture: dict[str, Any], seed: int) -> LlamaForCausalLM:
    """A small Llama from a config (``hidden_size``, ``num_hidden_layers``, ``num_attention_heads``,
    ``intermediate_size``, ``max_position_embeddings``)."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=architecture["hidden_size"],
        intermediate_size=architecture["intermediate_size"],
        num_hidden_layers=architecture["num_hidden_layers"],
        num_attention_heads=architecture["num_attention_heads"],
        num_key_value_heads=architecture.get("num_key_value_heads", architecture["num_attention_heads"]),
        max_position_embeddings=architecture["max_position_embeddings"],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,  # the reward model trains lm_head as its own module
    )
    return LlamaForCausalLM(config)


def build_tiny_base(texts: Sequence[str], params: dict[str, Any]) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast, dict[str, Any]]:
    """Tokenizer, model and metadata of the tiny base, pre-trained on ``texts``."""
    tokenizer = train_tokenizer(texts, params["vocab_size"])
    tokenizer.padding_side = "left"
    model = build_tiny_model(tokenizer, params["architecture"], params["seed"])
    examples = [encode_text(tokenizer, text, params["architecture"]["max_position_embeddings"]) for text in texts]
    trainer, curve = fit(model, tokenizer, examples, training_arguments(params["pretraining"], "tiny-pretraining"), run_name="tiny-pretraining")
    model = trainer.model
    final_loss = float(curve["loss"].iloc[-1])
    logger.info("Pre-trained the tiny base: final loss %.3f", final_loss)
    return model.eval(), tokenizer, {"build_id": fingerprint(list(texts), params), "final_loss": final_loss, **params}
