"""A minimal client for OpenAI-compatible chat endpoints (judge and oracle).

Works with a local vLLM server of a larger model or a hosted model. The API
key is read from an environment variable whose *name* is a parameter; it is
never stored in a file. Plain `requests` with retries on connection errors
and 5xx answers; no SDK dependency.
"""

from __future__ import annotations

import os
import time


class EndpointError(RuntimeError):
    """The endpoint could not be reached or answered with an error."""


def chat_completion(base_url: str | None, model: str | None, api_key_env: str, messages: list[dict], *,
                    max_tokens: int = 512, temperature: float = 0.0, n: int = 1, timeout_s: float = 120.0,
                    retries: int = 3) -> str | list[str]:
    """The assistant's reply (a list of n replies when n > 1)."""
    import requests

    if not base_url or not model:
        raise EndpointError("an OpenAI-compatible endpoint needs both base_url and model "
                            "(e.g. base_url: http://127.0.0.1:8000/v1, model: Qwen/Qwen3-32B)")
    headers = {"Content-Type": "application/json"}
    key = os.environ.get(api_key_env or "")
    if key:
        headers["Authorization"] = f"Bearer {key}"
    url = base_url.rstrip("/") + "/chat/completions"
    body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature, "n": n}
    last = None
    for attempt in range(retries):
        try:
            r = requests.post(url, json=body, headers=headers, timeout=timeout_s)
            if r.status_code < 500:
                if r.status_code >= 400:
                    raise EndpointError(f"{url} answered {r.status_code}: {r.text[:300]}")
                texts = [c["message"]["content"] or "" for c in r.json()["choices"]]
                return texts if n > 1 else texts[0]
            last = f"{r.status_code}: {r.text[:300]}"
        except requests.RequestException as e:
            last = str(e)
        time.sleep(min(2 ** attempt, 10))
    raise EndpointError(f"{url} failed after {retries} attempts: {last}")
