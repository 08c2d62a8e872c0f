"""The OpenAI-compatible backends: chat completions for the teacher (OpenAI, Azure
OpenAI's v1 endpoint, vLLM, Ollama, llama.cpp), and raw completions with
log-probabilities for the trained experts served by vLLM.

Built on the official ``openai`` client with its own retries switched off:
the ``CompletionClient`` retries, so that every attempt is counted and ``Retry-After``
is honoured the same way for every server. The chat backend also reaches the
endpoint's Batch API (``batches``): the same request bodies, at the batch price.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from reason4rec.completions.batch import BatchManifest, BatchPolicy, OpenAIBatches
from reason4rec.completions.client import RetryableError, CompletionRequest


BATCH_API_RETRIES = 5


class OpenAIBackend:
    name = "openai"

    def __init__(self, model: str, api_key: str | None = None, base_url: str | None = None, timeout_s: float = 60.0):
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise ValueError(
                "the openai teacher needs an API key: set OPENAI_API_KEY, or put `openai: {api_key: ...}` in "
                "conf/local/credentials.yml (a local server that needs none still needs a placeholder, e.g. EMPTY)"
            )
        self.model = model
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        self._client = openai.OpenAI(api_key=key, base_url=self.base_url, timeout=timeout_s, max_retries=0)

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model, "base_url": self.base_url}

    def for_model(self, model: str) -> OpenAIBackend:
        """The same endpoint, key and client for another model (GPTScore's judge)."""
        other = copy.copy(self)
        other.model = model
        return other

    def chat_body(self, request: CompletionRequest) -> dict[str, Any]:
        """The chat-completions request body: what ``call`` sends, and a batch line's ``body``."""
        return {"model": self.model, "messages": request.messages(), "temperature": request.temperature, "max_tokens": request.max_tokens}

    def call(self, request: CompletionRequest) -> tuple[str, int, int]:
        with _retryable_errors():
            response = self._client.chat.completions.create(**self.chat_body(request))
        return _chat_answer(response)

    def answer_of(self, body: dict[str, Any]) -> tuple[str, int, int]:
        """A batch output line's response body, read as ``call`` reads a response."""
        return _chat_answer(ChatCompletion.model_validate(body))

    def batches(self, policy: BatchPolicy) -> OpenAIBatches:
        """The Batch API of this endpoint, with this key (``teacher.mode: batch``). Its calls are
        retried by the ``openai`` client: one lost poll must not end a wait of hours."""
        return OpenAIBatches(self._client.with_options(max_retries=BATCH_API_RETRIES), policy, BatchManifest(policy.manifest_path))

    def __repr__(self) -> str:  # never the key
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r})"


class CompletionsBackend:
    """Raw completions (``/v1/completions``) from one model name on an OpenAI-compatible
    server: the prompt is sent as it is (already in the base's chat template).

    A request with ``top_logprobs`` returns, as its text, the JSON object of the
    first generated token's most likely tokens and their log-probabilities.
    ``fingerprint`` names the weights behind the model name (the adapter's
    run), so a retrained adapter never reuses a cached answer.
    """

    name = "completions"

    def __init__(self, model: str, base_url: str, api_key: str | None, timeout_s: float, fingerprint: str):
        self.model = model
        self.base_url = base_url
        self.fingerprint = fingerprint
        self._client = openai.OpenAI(api_key=api_key or "EMPTY", base_url=base_url, timeout=timeout_s, max_retries=0)

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model, "base_url": self.base_url, "weights": self.fingerprint}

    def call(self, request: CompletionRequest) -> tuple[str, int, int]:
        with _retryable_errors():
            response = self._client.completions.create(
                model=self.model,
                prompt=request.prompt,
                temperature=request.temperature,
                max_tokens=request.max_tokens,
                logprobs=request.top_logprobs,
            )
        choice = response.choices[0]
        if request.top_logprobs is None:
            return choice.text or "", *_token_counts(response)
        if choice.logprobs is None or not choice.logprobs.top_logprobs:
            raise ValueError(f"{self.base_url} answered a logprobs request for {self.model!r} without top_logprobs")
        return json.dumps(choice.logprobs.top_logprobs[0]), *_token_counts(response)

    def __repr__(self) -> str:  # never the key
        return f"CompletionsBackend(model={self.model!r}, base_url={self.base_url!r})"


@contextmanager
def _retryable_errors() -> Iterator[None]:
    """Timeouts, lost connections, 429 and 5xx become ``RetryableError`` (with the
    server's ``Retry-After``); any other error is the request's own fault."""
    try:
        yield
    except (openai.APITimeoutError, openai.APIConnectionError) as error:
        raise RetryableError(f"{type(error).__name__}: {error}") from error
    except openai.APIStatusError as error:
        if error.status_code == 429 or error.status_code >= 500:
            raise RetryableError(f"HTTP {error.status_code}: {error.message}", _retry_after(error)) from error
        raise


def _chat_answer(response: ChatCompletion) -> tuple[str, int, int]:
    return response.choices[0].message.content or "", *_token_counts(response)


def _token_counts(response: Any) -> tuple[int, int]:
    usage = response.usage
    return (usage.prompt_tokens if usage else 0), (usage.completion_tokens if usage else 0)


def _retry_after(error: openai.APIStatusError) -> float | None:
    value = error.response.headers.get("retry-after") if error.response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
