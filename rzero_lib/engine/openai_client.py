"""A minimal client for OpenAI-compatible chat endpoints (judge and oracle).

Works with a local vLLM server of a larger model or a hosted model. The API
key is read from an environment variable whose *name* is a parameter; it is
never stored in a file, and `redact_secrets` removes it (and anything that
looks like a credential) from every error message before it is raised, so an
endpoint that echoes request headers in its error body cannot put the key
into a notebook, a log or the terminal. Plain `requests` with retries on
connection errors and 5xx answers; no SDK dependency.
"""

from __future__ import annotations

import os
import re
import time

REDACTED = "[REDACTED]"
_SECRET_PATTERNS = (
    # Authorization: Bearer <token> / Basic <token>, in headers, JSON or repr()s of header dicts
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}"), rf"\1 {REDACTED}"),
    (re.compile(r"(?i)(authorization|x-api-key|api-key|proxy-authorization)(['\"]?\s*[:=]\s*['\"]?)"
                r"(?!bearer\b|basic\b)[^'\"\s,;}&]+"), rf"\1\2{REDACTED}"),
    # key=value / "key": "value" for common credential names (query strings, JSON bodies)
    (re.compile(r"(?i)(api[_-]?key|access[_-]?token|secret|password|token)(['\"]?\s*[:=]\s*['\"]?)"
                r"[^'\"\s,;}&]+"), rf"\1\2{REDACTED}"),
    # OpenAI-style keys anywhere
    (re.compile(r"\bsk-[A-Za-z0-9_-]{6,}"), f"sk-{REDACTED}"),
    # credentials in URLs: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), rf"\1{REDACTED}@"),
)


def redact_secrets(text: str, secrets: tuple[str | None, ...] = ()) -> str:
    """`text` with every given secret value and anything shaped like a credential replaced by [REDACTED]."""
    text = str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


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
    shown_url = redact_secrets(url, (key,))
    last = None
    for attempt in range(retries):
        try:
            r = requests.post(url, json=body, headers=headers, timeout=timeout_s)
            if r.status_code < 500:
                if r.status_code >= 400:
                    # redacted before the slice: a cut-off key must not survive half-visible
                    error = redact_secrets(r.text, (key,))[:300]
                    raise EndpointError(f"{shown_url} answered {r.status_code}: {error}")
                texts = [c["message"]["content"] or "" for c in r.json()["choices"]]
                return texts if n > 1 else texts[0]
            last = f"{r.status_code}: {redact_secrets(r.text, (key,))[:300]}"
        except requests.RequestException as e:
            last = redact_secrets(str(e), (key,))
        time.sleep(min(2 ** attempt, 10))
    raise EndpointError(f"{shown_url} failed after {retries} attempts: {last}") from None
