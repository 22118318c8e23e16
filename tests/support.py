"""What several test packages share: paths, the tiny model's spec and prompts, a scripted generator, a fake
Solver, a local chat-completions endpoint, and a pipeline run failed on purpose then resumed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rzero_lib.pipeline.driver import PipelineError, run_pipeline
from rzero_lib.prompts import PromptSpec
from rzero_lib.sampling import GenerationStats, Generator

REPO_ROOT = Path(__file__).resolve().parent.parent
PARAMS = REPO_ROOT / "params"
NOTEBOOKS = REPO_ROOT / "notebooks"
TINY = "builtin:tiny-random"
SMOKE = PARAMS / "smoke.yaml"

# Prompts among those the tiny model's format warm-up used (`rzero_lib.engine.builtins.tiny_random.format_warmup`).
SOLVER_PROMPT = PromptSpec("Solve. Put the answer in \\boxed{}.", "{question}")
CHALLENGER_PROMPT = PromptSpec("Write a question in <question></question>.", "Write a new problem.")


def trl_declared_vllm():
    """The vLLM range the installed TRL declares for its `vllm` extra (a packaging Requirement)."""
    import importlib.metadata

    from packaging.requirements import Requirement

    return next(r for r in map(Requirement, importlib.metadata.requires("trl") or [])
                if r.name == "vllm" and r.marker is not None and r.marker.evaluate({"extra": "vllm"}))


def gpu_extra_vllm_pin():
    """pyproject's `gpu` extra's vLLM requirement (environment.yml mirrors it: tests/test_repository.py)."""
    import tomllib

    from packaging.requirements import Requirement

    gpu = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["gpu"]
    return next(Requirement(r) for r in gpu if Requirement(r).name == "vllm")


def file_mtimes(run_dir: Path) -> dict[str, float]:
    return {str(p.relative_to(run_dir)): p.stat().st_mtime for p in run_dir.rglob("*") if p.is_file()}


def fail_then_resume(params, run_dir: Path, stage_key: str) -> dict:
    """Run the pipeline made to fail at `stage_key` (RZERO_FAIL_STAGE), then resume it; returns the run
    directory, the parameters, the failure message and the file times before the resume."""
    os.environ["RZERO_FAIL_STAGE"] = stage_key
    try:
        with pytest.raises(PipelineError) as failure:
            run_pipeline(params, run_dir, progress=False)
    finally:
        del os.environ["RZERO_FAIL_STAGE"]
    before = file_mtimes(run_dir)
    run_pipeline(params, run_dir, progress=False)
    return {"dir": run_dir, "params": params, "failure": str(failure.value), "before": before}


class ScriptedGenerator(Generator):
    """Returns the given completions for every prompt; records what it was asked."""

    def __init__(self, completions: list[str]):
        super().__init__(backend_name="scripted")
        self.completions = completions
        self.calls: list[tuple[int, object]] = []
        self.closed = False

    def generate(self, prompts, sampling, progress=True):
        self.calls.append((len(prompts), sampling))
        return [self.completions[: sampling.n] for _ in prompts]

    def close(self):
        self.closed = True


class FakeSolver(Generator):
    """Answers `\\boxed{<x>}` where x = answer_fn(question, sample index)."""

    def __init__(self, answer_fn):
        super().__init__(backend_name="fake", stats=GenerationStats())
        self.answer_fn = answer_fn

    def generate(self, prompts, sampling, progress=False):
        out = []
        for p in prompts:
            question = p[-1]["content"] if isinstance(p, list) else str(p)
            out.append([f"\\boxed{{{self.answer_fn(question, k)}}}" for k in range(sampling.n)])
        return out


class ChatEndpoint:
    """A chat-completions endpoint on 127.0.0.1 that replies from `reply(body)`."""

    def __init__(self, reply, status: int = 200):
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                endpoint.requests.append(body)
                endpoint.headers.append(dict(self.headers))
                if self.path != "/v1/chat/completions":
                    self.send_response(404)
                    self.end_headers()
                    return
                payload = json.dumps({"id": "x", "object": "chat.completion", "model": body["model"],
                                      "choices": [{"index": i, "message": {"role": "assistant", "content": text},
                                                   "finish_reason": "stop"} for i, text in enumerate(reply(body))]})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(payload.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def run_parent(script: str) -> tuple[subprocess.Popen, list[str]]:
    """A parent process running `script`; returns it and the first line it prints, split."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE, text=True,
                            cwd=REPO_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    line = proc.stdout.readline().split()
    assert line, "the parent printed nothing"
    return proc, line


class EchoHeadersEndpoint:
    """An endpoint on 127.0.0.1 that answers every POST with 401 and the request's headers in its error body
    (some proxies do): a key that reaches an error message would show."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                self.rfile.read(int(self.headers["Content-Length"]))
                body = json.dumps({"error": {"message": "invalid key", "request_headers": dict(self.headers),
                                             "raw": f"Authorization: {self.headers.get('Authorization')}"}})
                self.send_response(401)
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()
