"""GRPO for both roles on TRL's GRPOTrainer.

What it does
- `train_challenger(...)`: GRPO for the Challenger against a frozen Solver.
  The reward function (`ChallengerReward`) parses each completion's
  `<question>`, has the Solver sample m answers per question in one batch
  through the generation interface, votes, and returns `challenger_rewards`
  for the whole batch (the repetition penalty is over the batch). It logs its
  components (uncertainty, penalty, format-failure rate, p̂) into the
  trainer's metrics and writes every question it scored to a JSONL file.
- `train_solver(...)`: GRPO for the Solver on (question, pseudo-label) pairs
  with `solver_rewards` (1 when the boxed answer is equivalent to the label;
  optional 0.1 format term; optional per-question weight from a Verifier).
- Both: full fine-tune or LoRA, every paper hyper-parameter set explicitly,
  CPU or GPU; they write the model (or adapter) as a Hugging Face folder and
  the trainer's log history as JSONL.

How the paper's batch shapes map onto TRL
- a paper "step" (one generation round of `batch_size` prompts ×
  `group_size` completions) = TRL `steps_per_generation` micro-steps;
- an optimizer update covers `mini_batch_size` prompts (default: the whole
  step, i.e. on-policy); TRL `max_steps` counts optimizer updates.

Simplifications
- Optimizer state is fresh every phase and no mid-phase checkpoints are
  kept: a crashed training stage is re-run from its start model.
- The KL reference is the phase's start model (TRL loads it from the start
  folder; with LoRA it is the base with the adapter disabled).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rzero_lib.answers import extract_boxed, parse_challenger_output
from rzero_lib.config import ChallengerTrainingParams, EngineParams, GRPOParams, SolverTrainingParams
from rzero_lib.generation import Generator, SamplingConfig
from rzero_lib.prompts import PromptSpec, has_chat_template, render_plain, solver_messages
from rzero_lib.rewards import challenger_reward_components, solver_rewards
from rzero_lib.voting import majority_vote_many

# run_grpo works under `accelerate launch` with several processes
# (rzero_lib.train_entry refuses more than one process without this).
SUPPORTS_ACCELERATE_LAUNCH = True


@dataclass
class TrainingResult:
    model_dir: Path
    log_history_path: Path
    log_history: list[dict] = field(default_factory=list)
    optimizer_steps: int = 0
    seconds: float = 0.0
    parameter_change: float = 0.0  # relative L2 change of the trainable parameters
    trainable_parameters: int = 0

    def summary(self) -> dict:
        return {"model_dir": str(self.model_dir), "optimizer_steps": self.optimizer_steps,
                "seconds": round(self.seconds, 2), "parameter_change": self.parameter_change,
                "trainable_parameters": self.trainable_parameters}


def completion_text(completion) -> str:
    """TRL gives strings for text prompts and message lists for chat prompts."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[0], dict):
        return "".join(str(m.get("content", "")) for m in completion)
    return str(completion)


def trl_prompt(tokenizer, messages):
    """A prompt TRL tokenises exactly as `TransformersGenerator` does.

    Chat messages when the tokenizer has a template (TRL applies it without
    adding special tokens twice); plain rendered text otherwise.
    """
    return list(messages) if has_chat_template(tokenizer) else render_plain(messages)


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


def grpo_config(params: GRPOParams, work_dir: Path, *, seed: int, device: str, dtype: str,
                num_processes: int = 1, disable_tqdm: bool = False):
    from trl import GRPOConfig

    s = schedule(params, num_processes)
    on_gpu = device.startswith("cuda")
    bf16 = on_gpu and dtype in ("auto", "bfloat16")
    return GRPOConfig(
        output_dir=str(work_dir),
        max_steps=s.max_steps,
        per_device_train_batch_size=s.per_device_batch,
        gradient_accumulation_steps=s.gradient_accumulation,
        steps_per_generation=s.steps_per_generation,
        num_generations=params.group_size,
        num_iterations=1,
        learning_rate=params.learning_rate,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=params.weight_decay,
        max_grad_norm=params.max_grad_norm,
        beta=params.beta,
        epsilon=params.epsilon,
        loss_type=params.loss_type,
        scale_rewards=params.scale_rewards,
        temperature=params.temperature,
        top_p=params.top_p,
        top_k=params.top_k or 0,
        max_completion_length=params.max_new_tokens,
        gradient_checkpointing=params.gradient_checkpointing,
        bf16=bf16,
        fp16=False,
        use_cpu=not on_gpu,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=seed,
        data_seed=seed,
        shuffle_dataset=True,
        remove_unused_columns=False,
        log_completions=False,
        disable_tqdm=disable_tqdm,
        dataloader_num_workers=0,
        use_vllm=params.use_vllm,
        vllm_mode=params.vllm_mode,
        vllm_gpu_memory_utilization=params.vllm_gpu_memory_utilization,
    )


def lora_config(params: GRPOParams):
    if not params.lora.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(r=params.lora.r, lora_alpha=params.lora.alpha, lora_dropout=params.lora.dropout,
                      target_modules=params.lora.target_modules, task_type="CAUSAL_LM")


# --------------------------------------------------------------------------
# reward functions
# --------------------------------------------------------------------------


class ChallengerRewardFunction:
    """Reward for a batch of Challenger completions, scored by a frozen Solver."""

    __name__ = "challenger_reward"

    def __init__(self, solver: Generator, solver_prompt: PromptSpec, sampling: SamplingConfig, *,
                 form: str = "paper", penalty_threshold: float = 0.5, penalty_weight: float = 1.0,
                 record_path: str | Path | None = None, equivalence_timeout_s: float | None = None) -> None:
        self.solver = solver
        self.solver_prompt = solver_prompt
        self.sampling = sampling
        self.form = form
        self.penalty_threshold = penalty_threshold
        self.penalty_weight = penalty_weight
        self.record_path = Path(record_path) if record_path else None
        self.timeout_s = equivalence_timeout_s
        self.calls = 0

    def score(self, texts: Sequence[str]) -> list[dict]:
        """Components and reward for each completion text (no TRL needed)."""
        parsed = [parse_challenger_output(t) for t in texts]
        questions = [p.question for p in parsed]
        unique = list(dict.fromkeys(q for q in questions if q is not None))
        p_by_question: dict[str, tuple[float, str | None]] = {}
        if unique:
            sampling = SamplingConfig(**{**self.sampling.__dict__, "seed": self.sampling.seed + self.calls})
            outputs = self.solver.generate([solver_messages(self.solver_prompt, q) for q in unique], sampling,
                                           progress=False)
            votes = majority_vote_many([[extract_boxed(o) for o in outs] for outs in outputs],
                                       timeout_s=self.timeout_s)
            p_by_question = {q: (v.p_hat, v.answer) for q, v in zip(unique, votes)}
        p_hats = [p_by_question[q][0] if q is not None else None for q in questions]
        # Under `accelerate launch` each process holds a slice of the step's batch:
        # the repetition penalty is over the whole batch, so gather it, score it,
        # and keep this process's slice (p̂ stays local: the Solver calls are not repeated).
        all_questions, all_p_hats, offset = _gather_batch(questions, p_hats)
        components = challenger_reward_components(all_questions, all_p_hats, form=self.form,
                                                  penalty_threshold=self.penalty_threshold,
                                                  penalty_weight=self.penalty_weight)
        components = components[offset: offset + len(questions)]
        rows = []
        for text_parse, q, c in zip(parsed, questions, components):
            rows.append({"question": q, "failure": text_parse.failure, "challenger_answer": text_parse.answer,
                         "p_hat": p_by_question[q][0] if q is not None else None,
                         "solver_majority": p_by_question[q][1] if q is not None else None,
                         "uncertainty": c.uncertainty, "penalty": c.penalty, "reward": c.reward})
        self.calls += 1
        return rows

    def __call__(self, prompts, completions, log_metric=None, trainer_state=None, **kwargs) -> list[float]:
        rows = self.score([completion_text(c) for c in completions])
        n = len(rows)
        parsed = [r for r in rows if r["question"] is not None]
        metrics = {
            "challenger/format_failure_rate": 1 - len(parsed) / n if n else 0.0,
            "challenger/uncertainty": _mean(r["uncertainty"] for r in parsed),
            "challenger/penalty": _mean(r["penalty"] for r in parsed),
            "challenger/p_hat": _mean(r["p_hat"] for r in parsed),
        }
        if log_metric is not None:
            for k, v in metrics.items():
                if not math.isnan(v):
                    log_metric(k, v)
        if self.record_path is not None:
            step = getattr(trainer_state, "global_step", None)
            with self.record_path.open("a") as f:
                for r in rows:
                    f.write(json.dumps({"step": step, **r}) + "\n")
        return [r["reward"] for r in rows]


class SolverRewardFunction:
    """Reward for Solver completions against pseudo-labels (dataset column `label`)."""

    __name__ = "solver_reward"

    def __init__(self, format_weight: float = 0.0) -> None:
        self.format_weight = format_weight

    def __call__(self, prompts, completions, label, weight=None, log_metric=None, **kwargs) -> list[float]:
        texts = [completion_text(c) for c in completions]
        rewards = solver_rewards(texts, list(label), format_weight=self.format_weight)
        if log_metric is not None:
            log_metric("solver/boxed_rate", _mean(extract_boxed(t) is not None for t in texts))
        if weight is not None:
            rewards = [r * float(w) for r, w in zip(rewards, weight)]
        return rewards


def _gather_batch(questions: list, p_hats: list) -> tuple[list, list, int]:
    """(the whole batch's questions, their p̂, this process's offset) across training processes."""
    try:
        import torch.distributed as dist
    except ImportError:
        return questions, p_hats, 0
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return questions, p_hats, 0
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, (questions, p_hats))
    rank = dist.get_rank()
    offset = sum(len(g[0]) for g in gathered[:rank])
    return ([q for g in gathered for q in g[0]], [p for g in gathered for p in g[1]], offset)


def _mean(values) -> float:
    values = [float(v) for v in values if v is not None]
    return sum(values) / len(values) if values else float("nan")


# --------------------------------------------------------------------------
# the training loop shared by both roles
# --------------------------------------------------------------------------


def _snapshot(model) -> dict:
    return {n: p.detach().to("cpu", copy=True).float() for n, p in model.named_parameters() if p.requires_grad}


def _relative_change(before: dict, model) -> float:
    import torch

    num, den = 0.0, 0.0
    after = dict(model.named_parameters())
    for name, old in before.items():
        new = after[name].detach().to("cpu").float()
        num += torch.sum((new - old) ** 2).item()
        den += torch.sum(old ** 2).item()
    return math.sqrt(num) / math.sqrt(den) if den > 0 else math.sqrt(num)


def _load_start_model(start_model: str, params: GRPOParams, engine: EngineParams, work_dir: Path, state,
                      device: str):
    """Load the phase's start model. Full fine-tuning from a LoRA chain needs a
    merged folder on disk, because TRL loads the KL reference from the path."""
    from rzero_lib.models import is_adapter, load_model, resolve_model_path, save_model

    model, tokenizer = load_model(start_model, dtype=engine.dtype, device=device)
    if not params.lora.enabled and params.beta > 0 and is_adapter(resolve_model_path(start_model)):
        merged = work_dir / "start_model"
        if state.is_main_process:
            save_model(model, tokenizer, merged, base_model=start_model, kind="full")
        state.wait_for_everyone()
        model, tokenizer = load_model(str(merged), dtype=engine.dtype, device=device)
    return model, tokenizer


def run_grpo(*, start_model: str, dataset_rows: list[dict], reward_func, params: GRPOParams,
             engine: EngineParams, output_dir: str | Path, seed: int = 0, disable_tqdm: bool = False,
             track_change: bool = True) -> TrainingResult:
    """Train `start_model` with GRPO on `dataset_rows` (each has `prompt`) and save it."""
    from accelerate import PartialState
    from datasets import Dataset
    from trl import GRPOTrainer

    from rzero_lib.models import resolve_device, save_model

    # One process in-process; several under `accelerate launch`. Only the main
    # process touches the output folder; the others wait at the barriers.
    device = resolve_device(engine.device)
    state = PartialState(cpu=not device.startswith("cuda"))  # the first call fixes the process layout
    world = state.num_processes
    sharded = state.distributed_type.name in ("DEEPSPEED", "FSDP") and world > 1
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    work_dir = output_dir / "_trl_work"
    if state.is_main_process:
        if work_dir.exists():
            shutil.rmtree(work_dir)
        work_dir.mkdir()
    state.wait_for_everyone()
    t0 = time.perf_counter()
    # Each rank loads onto its own device (all ranks on cuda:0 would OOM).
    load_device = str(state.device) if world > 1 else engine.device
    model, tokenizer = _load_start_model(start_model, params, engine, work_dir, state, load_device)
    config = grpo_config(params, work_dir, seed=seed, device=device, dtype=engine.dtype,
                         num_processes=world, disable_tqdm=disable_tqdm)
    # TRL samples `batch_size` distinct prompts per step; a smaller set is repeated.
    rows = list(dataset_rows)
    if not rows:
        raise ValueError("GRPO needs at least one training prompt (the training set is empty)")
    while len(rows) < params.batch_size:
        rows = rows + dataset_rows[: params.batch_size - len(rows)]
    dataset = Dataset.from_list(rows)
    trainer = GRPOTrainer(model=model, reward_funcs=[reward_func], args=config, train_dataset=dataset,
                          processing_class=tokenizer, peft_config=lora_config(params))
    track_change = track_change and not sharded  # sharded ranks hold only slices of the weights
    before = _snapshot(trainer.model) if track_change else {}
    trainer.train()
    change = _relative_change(before, trainer.model) if track_change else float("nan")
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    kind = "lora" if params.lora.enabled else "full"
    # ZeRO-3 / FSDP: gather the full weights; a collective call, so every rank makes it.
    state_dict = trainer.accelerator.get_state_dict(trainer.model_wrapped) if sharded else None
    model_dir = output_dir / "model"
    log_path = output_dir / "log_history.jsonl"
    history = [dict(h) for h in trainer.state.log_history]
    if state.is_main_process:
        save_model(trainer.model, tokenizer, model_dir, base_model=start_model, kind=kind,
                   extra={"trained_with": "trl.GRPOTrainer", "steps": params.steps}, state_dict=state_dict)
        tmp = log_path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(h) + "\n" for h in history))
        os.replace(tmp, log_path)
    state.wait_for_everyone()
    del trainer, model, state_dict
    if state.is_main_process:
        shutil.rmtree(work_dir, ignore_errors=True)
    return TrainingResult(model_dir=model_dir, log_history_path=log_path, log_history=history,
                          optimizer_steps=schedule(params, world).max_steps, seconds=time.perf_counter() - t0,
                          parameter_change=change, trainable_parameters=trainable)


def train_solver(start_model: str, questions: Sequence[str], labels: Sequence[str], *,
                 params: SolverTrainingParams, solver_prompt: PromptSpec, output_dir: str | Path,
                 engine: EngineParams | None = None, seed: int = 0, weights: Sequence[float] | None = None,
                 disable_tqdm: bool = False) -> TrainingResult:
    """GRPO for the Solver on questions with (pseudo-)labels; returns where the model went."""
    from rzero_lib.models import load_tokenizer

    engine = engine or EngineParams()
    if len(questions) != len(labels):
        raise ValueError(f"questions ({len(questions)}) and labels ({len(labels)}) differ in length")
    if not questions:
        raise ValueError("the Solver's training set is empty: no question passed the voting filters "
                         "(widen voting.band_delta, raise question_generation.num_questions, or check the "
                         "voting notebook's drop reasons)")
    tokenizer = load_tokenizer(start_model)
    rows = []
    for i, (q, y) in enumerate(zip(questions, labels)):
        row = {"prompt": trl_prompt(tokenizer, solver_messages(solver_prompt, q)), "label": str(y)}
        if weights is not None:
            row["weight"] = float(weights[i])
        rows.append(row)
    return run_grpo(start_model=start_model, dataset_rows=rows, reward_func=SolverRewardFunction(params.format_weight),
                    params=params, engine=engine, output_dir=output_dir, seed=seed, disable_tqdm=disable_tqdm)


def train_challenger(start_model: str, solver: Generator, *, params: ChallengerTrainingParams,
                     challenger_prompt: PromptSpec, solver_prompt: PromptSpec, num_solver_samples: int,
                     output_dir: str | Path, engine: EngineParams | None = None, seed: int = 0,
                     equivalence_timeout_s: float | None = None, disable_tqdm: bool = False) -> TrainingResult:
    """GRPO for the Challenger against the frozen `solver` (any Generator)."""
    from rzero_lib.models import load_tokenizer

    engine = engine or EngineParams()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(start_model)
    prompt = trl_prompt(tokenizer, challenger_prompt.messages())
    rows = [{"prompt": prompt} for _ in range(params.batch_size)]
    sampling = SamplingConfig(n=num_solver_samples, temperature=params.solver_temperature,
                              top_p=params.solver_top_p, top_k=params.solver_top_k,
                              max_new_tokens=params.solver_max_new_tokens, seed=seed)
    record = output_dir / "challenger_questions.jsonl"
    tmp_record = record.with_suffix(".jsonl.partial")
    tmp_record.unlink(missing_ok=True)
    reward = ChallengerRewardFunction(solver, solver_prompt, sampling, form=params.reward_form,
                              penalty_threshold=params.penalty_threshold, penalty_weight=params.penalty_weight,
                              record_path=tmp_record, equivalence_timeout_s=equivalence_timeout_s)
    result = run_grpo(start_model=start_model, dataset_rows=rows, reward_func=reward, params=params,
                      engine=engine, output_dir=output_dir, seed=seed, disable_tqdm=disable_tqdm)
    from accelerate import PartialState

    if PartialState().is_main_process and tmp_record.exists():  # every rank appended its own rows
        os.replace(tmp_record, record)
    return result
