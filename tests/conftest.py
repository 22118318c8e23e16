"""Shared fixtures: the real tiny model (built once, cached), the smoke run, a scripted
generator and a local chat-completions endpoint, and a quiet environment."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rzero_lib.generation import Generator
from rzero_lib.prompts import PromptSpec

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY = "builtin:tiny-random"
SMOKE = REPO_ROOT / "params" / "smoke.yaml"

# Prompts among those the tiny model's format warm-up used (`rzero_lib.models._format_warmup`).
SOLVER_PROMPT = PromptSpec("Solve. Put the answer in \\boxed{}.", "{question}")
CHALLENGER_PROMPT = PromptSpec("Write a question in <question></question>.", "Write a new problem.")


def pytest_collection_modifyitems(config, items):
    """GPU tests are skipped, with the reason, where there is no CUDA device."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none on this machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model_path() -> str:
    from rzero_lib.models import resolve_model_path

    return resolve_model_path(TINY)


@pytest.fixture(scope="session")
def tiny_generator(tiny_model_path):
    from rzero_lib.generation import TransformersGenerator

    return TransformersGenerator.from_spec(TINY, batch_size=16)



@pytest.fixture(scope="session")
def format_model_path(tiny_model_path) -> str:
    """The tiny model writes noise in the roles' formats (see `models._format_warmup`)."""
    return tiny_model_path


def _mtimes(run_dir: Path) -> dict[str, float]:
    return {str(p.relative_to(run_dir)): p.stat().st_mtime for p in run_dir.rglob("*") if p.is_file()}


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The whole chain on params/smoke.yaml through the real driver and papermill,
    made to fail at iter_01/voting first (RZERO_FAIL_STAGE) and then resumed."""
    from rzero_lib.config import load_params
    from rzero_lib.pipeline import PipelineError, run_pipeline

    run_dir = tmp_path_factory.mktemp("runs") / "smoke"
    params = load_params(SMOKE)
    os.environ["RZERO_FAIL_STAGE"] = "iter_01/voting"
    try:
        with pytest.raises(PipelineError) as failure:
            run_pipeline(params, run_dir, progress=False)
    finally:
        del os.environ["RZERO_FAIL_STAGE"]
    before = _mtimes(run_dir)
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
