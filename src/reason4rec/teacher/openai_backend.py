"""The OpenAI-compatible backend: OpenAI, Azure OpenAI's v1 endpoint, vLLM, Ollama, llama.cpp.

Built on the official ``openai`` client with its own retries switched off:
the ``Teacher`` retries, so that every attempt is counted and ``Retry-After``
is honoured the same way for every server.
"""

from __future__ import annotations

import os
from typing import Any

import openai

from reason4rec.teacher.core import RetryableError, TeacherRequest


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

    def call(self, request: TeacherRequest) -> tuple[str, int, int]:
        try:
            response = self._client.chat.completions.create(
                model=self.model,
                messages=request.messages(),
                temperature=request.temperature,
                max_tokens=request.max_tokens,
            )
        except (openai.APITimeoutError, openai.APIConnectionError) as error:
            raise RetryableError(f"{type(error).__name__}: {error}") from error
        except openai.APIStatusError as error:
            if error.status_code == 429 or error.status_code >= 500:
                raise RetryableError(f"HTTP {error.status_code}: {error.message}", _retry_after(error)) from error
            raise
        text = response.choices[0].message.content or ""
        usage = response.usage
        return text, (usage.prompt_tokens if usage else 0), (usage.completion_tokens if usage else 0)

    def __repr__(self) -> str:  # never the key
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r})"


def _retry_after(error: openai.APIStatusError) -> float | None:
    value = error.response.headers.get("retry-after") if error.response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
