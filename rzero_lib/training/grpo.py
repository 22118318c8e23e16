"""One GRPO phase on TRL's GRPOTrainer: the paper's batch shapes, the TRL config, train and save.

A paper "step" (one generation round of `batch_size` prompts × `group_size`
completions) is TRL's `steps_per_generation` micro-steps; an optimizer update
covers `mini_batch_size` prompts; TRL `max_steps` counts updates (so
TRL's generation batch is the step's rollout batch and a step makes
batch_size / mini_batch_size updates, as EasyR1's rollout vs. global batch).
Full fine-tune or LoRA, CPU or GPU, one process or several under `accelerate
launch` (only the main process writes the output folder). A full fine-tune in
a half-precision engine dtype keeps fp32 master weights (`training_precision`).
Optimizer state is fresh every phase and no mid-phase checkpoints are kept; the
KL reference is the phase's start model. TRL 1.16 facts this relies on:
docs/notes.md, "TRL 1.16 GRPOTrainer".
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from rzero_lib.atomic_files import write_text_atomic
from rzero_lib.config import EngineParams, GRPOParams
from rzero_lib.engine.device import dtype_name, resolve_device
from rzero_lib.engine.models import is_adapter, load_model, resolve_model_path, save_model
from rzero_lib.training.vllm_rollouts import (
    pick_rendezvous_port,
    prepare_weight_sync,
    rollout_engine,
    vllm_config_fields,
)


@dataclass
class TrainingResult:
    model_dir: Path
    log_history_path: Path
    log_history: list[dict] = field(default_factory=list)
    optimizer_steps: int = 0
    seconds: float = 0.0
    parameter_change: float = 0.0  # relative L2 change of the trainable parameters
    trainable_parameters: int = 0
    engine: dict = field(default_factory=dict)  # how it ran: `training_engine`

    def summary(self) -> dict:
        return {"model_dir": str(self.model_dir), "optimizer_steps": self.optimizer_steps,
                "seconds": round(self.seconds, 2), "parameter_change": self.parameter_change,
                "trainable_parameters": self.trainable_parameters, "engine": self.engine}



# --------------------------------------------------------------------------
# batch shapes and the TRL config
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    per_device_batch: int  # completions per forward pass
    gradient_accumulation: int
    steps_per_generation: int
    max_steps: int  # optimizer updates
    prompts_per_step: int


def schedule(params: GRPOParams, num_processes: int = 1) -> Schedule:
    """TRL batch settings that realise the paper's steps / batch / mini-batch."""
    g = params.group_size
    mini = params.mini_batch_size or params.batch_size
    micro = params.micro_batch_size or g
    per_update, per_step = mini * g, params.batch_size * g
    if per_update % (micro * num_processes):
        raise ValueError(f"mini_batch_size*group_size ({per_update}) must be divisible by "
                         f"micro_batch_size*num_processes ({micro}*{num_processes})")
    return Schedule(
        per_device_batch=micro,
        gradient_accumulation=per_update // (micro * num_processes),
        steps_per_generation=per_step // (micro * num_processes),
        max_steps=params.steps * (params.batch_size // mini),
        prompts_per_step=params.batch_size,
    )


@dataclass(frozen=True)
class Precision:
    weights: str  # dtype the trained model is loaded in (its optimizer state follows)
    compute: str  # dtype of the forward passes
    bf16: bool  # TRL/accelerate mixed precision flags
    fp16: bool


def training_precision(params: GRPOParams, dtype: str, device: str) -> Precision:
    """Weights and compute dtypes for a GRPO phase.

    A full fine-tune whose engine dtype is bf16/fp16 keeps fp32 master weights
    and computes under autocast (`master_weights: float32`), as EasyR1's FSDP
    mixed precision does: AdamW steps at lr 1e-6 are ~1e-6 while bf16 resolves
    only ~2^-8 of a weight, so pure-bf16 training (`master_weights: engine`)
    loses most updates (tests/training/test_training.py shows it). LoRA keeps
    the frozen base in the engine dtype (PEFT keeps adapters in fp32). Mixed
    precision flags are set on GPU only (CPU bf16 autocast is slow without AVX-512).
    """
    compute = dtype_name(dtype, device)
    on_gpu = device.startswith("cuda")
    half = compute in ("bfloat16", "float16")
    master = half and not params.lora.enabled and params.master_weights == "float32"
    return Precision(weights="float32" if master else compute, compute=compute,
                     bf16=on_gpu and compute == "bfloat16", fp16=on_gpu and master and compute == "float16")


def trainer_arguments(params: GRPOParams, work_dir: Path, *, seed: int, device: str, dtype: str,
                      disable_tqdm: bool = False, run_name: str | None = None) -> dict:
    """The transformers TrainingArguments every phase shares (GRPO and SFT): constant learning rate, no
    warm-up, no checkpoints, a log line per step, mixed precision per `training_precision`, the tracker."""
    precision = training_precision(params, dtype, device)
    return dict(output_dir=str(work_dir), learning_rate=params.learning_rate, lr_scheduler_type="constant",
                warmup_steps=0, weight_decay=params.weight_decay, max_grad_norm=params.max_grad_norm,
                bf16=precision.bf16, fp16=precision.fp16, use_cpu=not device.startswith("cuda"), logging_steps=1,
                save_strategy="no", report_to=[] if params.report_to == "none" else [params.report_to],
                project=TRACKING_PROJECT, run_name=run_name, seed=seed, data_seed=seed, disable_tqdm=disable_tqdm,
                dataloader_num_workers=0)


def grpo_config(params: GRPOParams, work_dir: Path, *, seed: int, device: str, engine: EngineParams,
                num_processes: int = 1, disable_tqdm: bool = False, run_name: str | None = None):
    from trl import GRPOConfig

    s = schedule(params, num_processes)
    precision = training_precision(params, engine.dtype, device)
    # TRL builds the KL reference in the policy's dtype unless told: keep it in the compute dtype
    # (frozen, so fp32 would only cost memory). TRL logs that model_init_kwargs are ignored for an
    # instantiated policy; it still reads them for the reference (trl 1.16 grpo_trainer.py:993-1003).
    ref_kwargs = {"dtype": precision.compute} if precision.weights != precision.compute else None
    return GRPOConfig(
        **trainer_arguments(params, work_dir, seed=seed, device=device, dtype=engine.dtype, disable_tqdm=disable_tqdm,
                            run_name=run_name),
        max_steps=s.max_steps,
        per_device_train_batch_size=s.per_device_batch,
        gradient_accumulation_steps=s.gradient_accumulation,
        steps_per_generation=s.steps_per_generation,
        num_generations=params.group_size,
        num_iterations=1,
        beta=params.beta,
        use_bias_correction_kl=params.kl_bias_correction,
        epsilon=params.epsilon,
        epsilon_high=params.epsilon_high,
        delta=params.delta,
        loss_type=params.loss_type,
        scale_rewards=params.scale_rewards,
        temperature=params.temperature,
        top_p=params.top_p,
        top_k=params.top_k or 0,
        max_completion_length=params.max_new_tokens,
        gradient_checkpointing=params.gradient_checkpointing,
        model_init_kwargs=ref_kwargs,
        shuffle_dataset=True,
        remove_unused_columns=False,
        log_completions=False,
        **vllm_config_fields(params, engine, num_processes),
    )


TRACKING_PROJECT = "rzero"  # trackio's project name (its database is trackio/rzero.db in the stage folder)


def tracking_run_name(output_dir: Path) -> str:
    """The name the curves carry: the stage's place in the run ("iter_01/solver_training")."""
    return f"{output_dir.parent.name}/{output_dir.name}"


def prepare_tracking(report_to: str, output_dir: Path, *, main_process: bool = True) -> Path | None:
    """Point TRL's logger at `<output_dir>/tensorboard` or `<output_dir>/trackio`, offline; returns that folder.

    Both folders are read from the environment: TensorBoard's when the trainer is built, trackio's when
    trackio is first imported, which `from trl import GRPOTrainer` does (so this runs before that import;
    a kernel that already imported it keeps its first folder: we warn). A trackio Space or server named
    in the environment is ignored, so nothing leaves the machine. A rerun starts the folder afresh
    (curves of a crashed attempt would otherwise overlap the new ones).
    """
    if report_to == "none":
        return None
    if importlib.util.find_spec(report_to) is None:
        raise ValueError(f"report_to: {report_to} needs the {report_to} package: pip install 'rzero[tracking]'")
    folder = output_dir / report_to
    if main_process:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    if report_to == "tensorboard":
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(folder)
    else:
        for name in ("TRACKIO_SPACE_ID", "TRACKIO_SERVER_URL"):
            if os.environ.pop(name, None) is not None:
                warnings.warn(f"report_to: trackio logs locally into {folder}; {name} is ignored", stacklevel=2)
        os.environ["TRACKIO_DIR"] = str(folder)
        loaded = sys.modules.get("trackio.utils")
        if loaded is not None and Path(loaded.TRACKIO_DIR) != folder:
            warnings.warn(f"trackio was imported earlier in this process and logs into {loaded.TRACKIO_DIR}, "
                          f"not {folder} (restart the kernel to log into the stage folder)", stacklevel=2)
    return folder


def lora_config(params: GRPOParams):
    if not params.lora.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(r=params.lora.r, lora_alpha=params.lora.alpha, lora_dropout=params.lora.dropout,
                      target_modules=params.lora.target_modules, task_type="CAUSAL_LM")



# --------------------------------------------------------------------------
# the training loop shared by both roles
# --------------------------------------------------------------------------


def snapshot_trainable(model) -> dict:
    return {n: p.detach().to("cpu", copy=True).float() for n, p in model.named_parameters() if p.requires_grad}


def relative_change(before: dict, model) -> float:
    import torch

    num, den = 0.0, 0.0
    after = dict(model.named_parameters())
    for name, old in before.items():
        new = after[name].detach().to("cpu").float()
        num += torch.sum((new - old) ** 2).item()
        den += torch.sum(old ** 2).item()
    return math.sqrt(num) / math.sqrt(den) if den > 0 else math.sqrt(num)


def load_start_model(start_model: str, params: GRPOParams, engine: EngineParams, work_dir: Path, state,
                      device: str):
    """Load the phase's start model. Full fine-tuning from a LoRA chain needs a
    merged folder on disk, because TRL loads the KL reference from the path."""
    dtype = training_precision(params, engine.dtype, resolve_device(device)).weights
    model, tokenizer = load_model(start_model, dtype=dtype, device=device)
    if not params.lora.enabled and params.beta > 0 and is_adapter(resolve_model_path(start_model)):
        merged = work_dir / "start_model"
        if state.is_main_process:
            save_model(model, tokenizer, merged, base_model=start_model, kind="full")
        state.wait_for_everyone()
        model, tokenizer = load_model(str(merged), dtype=dtype, device=device)
    return model, tokenizer


def training_state(engine: EngineParams):
    """(accelerate's PartialState, the device, whether weights are sharded across ranks) of a training phase.

    One process in-process; several under `accelerate launch`. Only the main process touches the output
    folder; the others wait at the barriers."""
    from accelerate import PartialState

    device = resolve_device(engine.device)
    state = PartialState(cpu=not device.startswith("cuda"))  # the first call fixes the process layout
    sharded = state.distributed_type.name in ("DEEPSPEED", "FSDP") and state.num_processes > 1
    return state, device, sharded


def prepare_work_dir(output_dir: Path, state, report_to: str) -> Path:
    """An empty scratch folder for the trainer inside `output_dir` (made by the main process), and the tracker's
    folder. Call it before importing a TRL trainer: that import imports trackio, which reads TRACKIO_DIR then."""
    output_dir.mkdir(parents=True, exist_ok=True)
    work_dir = output_dir / "_trl_work"
    if state.is_main_process:
        if work_dir.exists():
            shutil.rmtree(work_dir)
        work_dir.mkdir()
    prepare_tracking(report_to, output_dir, main_process=state.is_main_process)
    state.wait_for_everyone()
    return work_dir


def finish_phase(trainer, tokenizer, *, start_model: str, params: GRPOParams, engine: EngineParams, device: str,
                 output_dir: Path, work_dir: Path, state, sharded: bool, before: dict, trained_with: str,
                 optimizer_steps: int, started: float, engine_record: dict | None = None) -> TrainingResult:
    """Measure the parameter change, save the model (or adapter) in the engine dtype and the log history, and
    clean up (GRPO and SFT)."""
    change = relative_change(before, trainer.model) if before else float("nan")
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    kind = "lora" if params.lora.enabled else "full"
    # ZeRO-3 / FSDP: gather the full weights; a collective call, so every rank makes it.
    state_dict = trainer.accelerator.get_state_dict(trainer.model_wrapped) if sharded else None
    precision = training_precision(params, engine.dtype, device)
    if precision.weights != precision.compute:  # fp32 masters: save in the engine dtype, as the base came
        import torch

        half = getattr(torch, precision.compute)
        if state_dict is not None:
            state_dict = {k: v.to(half) if v.is_floating_point() else v for k, v in state_dict.items()}
        else:
            trainer.model.to(half)
    model_dir = output_dir / "model"
    log_path = output_dir / "log_history.jsonl"
    history = [dict(h) for h in trainer.state.log_history]
    if state.is_main_process:
        save_model(trainer.model, tokenizer, model_dir, base_model=start_model, kind=kind,
                   extra={"trained_with": trained_with, "steps": params.steps}, state_dict=state_dict)
        write_text_atomic(log_path, "".join(json.dumps(h) + "\n" for h in history))
    state.wait_for_everyone()
    del state_dict
    if state.is_main_process:
        shutil.rmtree(work_dir, ignore_errors=True)
    return TrainingResult(model_dir=model_dir, log_history_path=log_path, log_history=history,
                          optimizer_steps=optimizer_steps, seconds=time.perf_counter() - started,
                          parameter_change=change, trainable_parameters=trainable, engine=engine_record or {})


def run_grpo(*, start_model: str, dataset_rows: list[dict], reward_func, params: GRPOParams,
             engine: EngineParams, output_dir: str | Path, seed: int = 0, disable_tqdm: bool = False,
             track_change: bool = True) -> TrainingResult:
    """Train `start_model` with GRPO on `dataset_rows` (each has `prompt`) and save it."""
    from datasets import Dataset

    state, device, sharded = training_state(engine)
    world = state.num_processes
    output_dir = Path(output_dir)
    work_dir = prepare_work_dir(output_dir, state, params.report_to)
    from trl import GRPOTrainer  # after prepare_work_dir (the tracker's folder)

    t0 = time.perf_counter()
    # Each rank loads onto its own device (all ranks on cuda:0 would OOM).
    load_device = str(state.device) if world > 1 else engine.device
    model, tokenizer = load_start_model(start_model, params, engine, work_dir, state, load_device)
    config = grpo_config(params, work_dir, seed=seed, device=device, engine=engine,
                         num_processes=world, disable_tqdm=disable_tqdm, run_name=tracking_run_name(output_dir))
    # TRL samples `batch_size` distinct prompts per step; a smaller set is repeated.
    rows = list(dataset_rows)
    if not rows:
        raise ValueError("GRPO needs at least one training prompt (the training set is empty)")
    while len(rows) < params.batch_size:
        rows = rows + dataset_rows[: params.batch_size - len(rows)]
    dataset = Dataset.from_list(rows)
    if params.use_vllm:
        pick_rendezvous_port()
    trainer = GRPOTrainer(model=model, reward_funcs=[reward_func], args=config, train_dataset=dataset,
                          processing_class=tokenizer, peft_config=lora_config(params))
    weight_sync = prepare_weight_sync(trainer, params)
    track_change = track_change and not sharded  # sharded ranks hold only slices of the weights
    before = snapshot_trainable(trainer.model) if track_change else {}
    del model  # the trainer holds it
    trainer.train()
    return finish_phase(trainer, tokenizer, start_model=start_model, params=params, engine=engine, device=device,
                        output_dir=output_dir, work_dir=work_dir, state=state, sharded=sharded, before=before,
                        trained_with="trl.GRPOTrainer", optimizer_steps=schedule(params, world).max_steps,
                        started=t0, engine_record=training_engine(params, device=device, processes=world,
                                                                  weight_sync=weight_sync,
                                                                  distributed=state.distributed_type.name))


def training_engine(params: GRPOParams, *, device: str, processes: int, weight_sync: str | None,
                    distributed: str) -> dict:
    """How a GRPO phase ran, for its stage's manifest: device, processes, rollouts and their weight sync."""
    return {"device": device, "processes": processes, "distributed": distributed,
            "rollouts": rollout_engine(params), "weight_sync": weight_sync, "lora": params.lora.enabled}
