"""The LLM side: the tiny base model and the engine for LoRA experts."""
