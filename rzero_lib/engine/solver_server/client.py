"""A `Generator` over an OpenAI-compatible `/v1/completions` endpoint (the Solver server, or any vLLM server).

Prompts are tokenised here with the served model's tokenizer
(`rzero_lib.engine.prompt_tokens.encode_prompt`) and sent as token ids, so the
server applies no chat template and both sides see identical tokens. Requests
run on a thread pool (64 in flight for vLLM, 4 whole batches for this
project's transformers server); the request starting at prompt k gets the seed
`derive_seed(sampling.seed, "request", k)`. Connection errors and 5xx answers
are retried; the final error names the server and, for a managed server, its
log tail. Token counts come from `usage` (plus `usage.truncated` from our server).
"""

from __future__ import annotations

import threading
import time
import urllib.error
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from rzero_lib.engine.models import load_tokenizer
from rzero_lib.engine.prompt_tokens import encode_prompt
from rzero_lib.engine.solver_server.protocol import RZERO_OWNER, SolverServerError, http_json, log_tail
from rzero_lib.sampling import GenerationStats, Generator, Prompt, SamplingConfig, check_prompts, progress_bar
from rzero_lib.seeds import derive_seed


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
        self.server = None  # the SolverServer that made this client, if any (for its log in errors)
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, base_url: str, tokenizer_spec: str, *, concurrency: int | None = None,
                prompts_per_request: int | None = None, timeout_s: float = 900.0, retries: int = 3,
                connect_timeout_s: float = 60.0) -> OpenAIServerGenerator:
        """Connect to a running server; `tokenizer_spec` is the served model's spec (for its tokenizer)."""
        base = base_url.rstrip("/").removesuffix("/v1")
        deadline = time.monotonic() + connect_timeout_s
        while True:
            try:
                models = http_json(f"{base}/v1/models", timeout=10)
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
                return http_json(url, payload, timeout=self.timeout_s)
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
        check_prompts(prompts)
        if len(prompts) == 0:
            return []
        t0 = time.perf_counter()
        ids = [encode_prompt(self.tokenizer, p) for p in prompts]
        k = self.chunk_size(sampling)
        chunks = [(start, ids[start:start + k]) for start in range(0, len(ids), k)]
        copies = sampling.n if sampling.greedy else 1
        per_prompt = 1 if sampling.greedy else sampling.n
        out: list[list[str] | None] = [None] * len(prompts)
        bar = progress_bar(len(prompts) * sampling.n, progress, "solver server")

        def run(chunk: tuple[int, list[list[int]]]) -> None:
            start, chunk_ids = chunk
            resp = self._post(self._payload(chunk_ids, sampling, derive_seed(sampling.seed, "request", start)))
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
