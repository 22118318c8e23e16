"""This project's minimal OpenAI-compatible completions server over the transformers backend.

`/v1/completions`, `/v1/models` and `/health` on the standard library's
`http.server`; one request runs at a time (a lock around the model), so the
client sends whole batches per request. It knows how many sequences of a
request were truncated but not which: the count is `usage.truncated` (an
extension field) and a per-choice `finish_reason` is set only when it is the
same for every choice. No authentication: it listens on 127.0.0.1.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from rzero_lib.engine.prompt_tokens import encode_prompt, is_token_ids
from rzero_lib.engine.solver_server.protocol import HOST, RZERO_OWNER
from rzero_lib.engine.transformers_backend import TransformersGenerator
from rzero_lib.model_specs import validate_model_spec
from rzero_lib.processes import watch_parent
from rzero_lib.sampling import SamplingConfig


def normalise_prompts(prompt) -> list:
    """OpenAI `prompt`: a string, a list of strings, token ids, or a list of token-id lists."""
    if isinstance(prompt, str):
        return [prompt]
    if is_token_ids(prompt):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) or is_token_ids(p) for p in prompt):
        return list(prompt)
    raise ValueError("prompt must be a string, a list of strings, a list of token ids or a list of such lists")


def make_handler(holder, model_name: str, batch_size: int):
    """The request handler class. `holder.generator` is None while the model loads
    (503 on /health and /v1/completions), then one generator serves one
    request at a time."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        server_version = "rzero-solver/1"

        def _send(self, code: int, body: dict | str) -> None:
            data = (json.dumps(body) if isinstance(body, dict) else body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json" if isinstance(body, dict) else "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, code: int, message: str) -> None:
            self._send(code, {"error": {"message": message, "type": "invalid_request_error", "code": code}})

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/health":
                if holder.generator is None:
                    self._send(503, "loading")
                else:
                    self._send(200, "ok")
            elif self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{
                    "id": model_name, "object": "model", "created": int(time.time()), "owned_by": RZERO_OWNER,
                    "rzero_batch_size": batch_size}]})
            else:
                self._error(404, f"no route {self.path}")

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/v1/completions":
                self._error(404, f"no route {self.path}")
                return
            generator = holder.generator
            if generator is None:
                self._error(503, "the model is still loading")
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                req = json.loads(self.rfile.read(length) or b"{}")
                prompts = normalise_prompts(req.get("prompt"))
                sampling = SamplingConfig(
                    n=int(req.get("n") or 1), temperature=float(req.get("temperature", 1.0)),
                    top_p=float(req.get("top_p") or 1.0), top_k=(int(req["top_k"]) if req.get("top_k") else None),
                    max_new_tokens=int(req.get("max_tokens") or 16), seed=int(req.get("seed") or 0))
            except (ValueError, TypeError, KeyError, json.JSONDecodeError) as e:
                self._error(400, str(e))
                return
            try:
                with lock:
                    before = (generator.stats.generated_tokens, generator.stats.truncated)
                    groups = generator.generate(prompts, sampling, progress=False)
                    tokens = generator.stats.generated_tokens - before[0]
                    truncated = generator.stats.truncated - before[1]
            except Exception as e:  # noqa: BLE001 - report to the client, keep serving
                self._error(500, f"{type(e).__name__}: {e}")
                return
            total = len(prompts) * sampling.n
            finish = "length" if truncated == total else "stop" if truncated == 0 else None
            choices = [{"index": i * sampling.n + j, "text": text, "logprobs": None, "finish_reason": finish}
                       for i, group in enumerate(groups) for j, text in enumerate(group)]
            prompt_tokens = sum(len(encode_prompt(generator.tokenizer, p)) for p in prompts)
            self._send(200, {"id": f"cmpl-{time.time_ns()}", "object": "text_completion",
                             "created": int(time.time()), "model": model_name, "choices": choices,
                             "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": tokens,
                                       "total_tokens": prompt_tokens + tokens, "truncated": truncated}})

        def log_message(self, fmt: str, *args) -> None:
            sys.stderr.write(f"{self.address_string()} {time.strftime('%H:%M:%S')} {fmt % args}\n")

    return Handler


def serve(model: str, host: str = HOST, port: int = 8000, dtype: str = "auto", device: str = "auto",
          batch_size: int = 64) -> None:
    """Load the model with the transformers backend and serve until terminated."""
    validate_model_spec(model)  # a bad spec fails in milliseconds, before torch loads
    holder = types.SimpleNamespace(generator=None)
    # Bind before loading: a port in use fails at once; /health says 503 while loading.
    httpd = ThreadingHTTPServer((host, port), make_handler(holder, model_name=model, batch_size=batch_size))
    httpd.daemon_threads = True

    def _terminate(signum, frame):  # SIGTERM → clean exit (finally blocks, flushed logs)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _terminate)
    watch_parent()  # the owner died without stopping us (SIGKILL): exit, freeing the port and the memory
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    print(f"rzero solver server listening on http://{host}:{port} (loading {model})", flush=True)
    try:
        t0 = time.perf_counter()
        # Prompts may arrive as token ids: `encode_prompt` uses them as given.
        holder.generator = TransformersGenerator.from_spec(model, dtype=dtype, device=device, batch_size=batch_size)
        print(f"loaded {model} in {time.perf_counter() - t0:.1f} s; ready", flush=True)
        while thread.is_alive():
            thread.join(1.0)  # wakes up for signals
    finally:
        httpd.shutdown()
        httpd.server_close()
        print("rzero solver server stopped", flush=True)
