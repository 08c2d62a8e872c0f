"""The LLM side: artifacts, the base model, LoRA training and the inference engine.

Layers, lowest first (a module imports only those below it):

- ``artifacts``: the base-model and adapter artifacts (no torch import); ``chat``: the chat turn and the rating tokens;
- ``loading``: a fresh copy of the base on the best device, in the precision the hardware computes best;
- ``training``: supervised fine-tuning of LoRA experts (``TrainingArguments`` and ``LoraConfig`` from configuration);
- ``tiny``: the locally built test base (pre-trained through ``training``); ``base``: choosing and building the base;
- ``served`` and ``engine``: generation and logit-weighted scoring on a server or in this process, one engine per run.
"""
