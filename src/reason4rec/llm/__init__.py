"""The LLM side: artifacts, the base model, LoRA training and the inference engine.

- ``artifacts``: the base-model and adapter artifacts (no torch import);
- ``base``: building the base once and loading a fresh copy of it;
- ``training``: supervised fine-tuning of LoRA experts;
- ``engine``: batched generation and logit-weighted scoring, one engine per base per process;
- ``chat``: the chat turn and the rating tokens; ``tiny``: the locally built test base.
"""
