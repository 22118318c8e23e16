"""Supervised fine-tuning on worked solutions with TRL's SFTTrainer (the supervised stage's `method: sft`).

Each row is the Solver's prompt for a question and the labelled solution as the
completion; the loss is on the completion only. A step is one optimizer update
over `batch_size` rows (`micro_batch_size` per forward pass, the rest
accumulated); full fine-tune or LoRA like the GRPO phases, and the same model
folder, log history and parameter-change measurement (`training.grpo`). One
process: SFT is not launched under `accelerate launch`.
"""

from __future__ import annotations

import time
from pathlib import Path

from rzero_lib.config import EngineParams, SupervisedTrainingParams
from rzero_lib.engine.models import load_model
from rzero_lib.training.grpo import (
    TrainingResult,
    finish_phase,
    lora_config,
    prepare_work_dir,
    snapshot_trainable,
    tracking_run_name,
    trainer_arguments,
    training_precision,
    training_state,
)


def sft_config(params: SupervisedTrainingParams, work_dir: Path, *, seed: int, device: str, dtype: str,
               disable_tqdm: bool = False, run_name: str | None = None):
    from trl import SFTConfig

    micro = min(params.micro_batch_size or params.batch_size, params.batch_size)
    if params.batch_size % micro:
        raise ValueError(f"supervised_training.batch_size ({params.batch_size}) must be a multiple of "
                         f"micro_batch_size ({micro}) for SFT")
    return SFTConfig(
        **trainer_arguments(params, work_dir, seed=seed, device=device, dtype=dtype, disable_tqdm=disable_tqdm,
                            run_name=run_name),
        max_steps=params.steps,
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=params.batch_size // micro,
        max_length=params.sft_max_length,
        completion_only_loss=True,
        packing=False,
        activation_checkpointing=params.gradient_checkpointing,  # transformers' current name
    )


def run_sft(*, start_model: str, prompts: list, completions: list, params: SupervisedTrainingParams,
            engine: EngineParams, output_dir: str | Path, seed: int = 0, disable_tqdm: bool = False) -> TrainingResult:
    """Train `start_model` on (prompt, completion) pairs and save it.

    A prompt is chat messages or rendered text (`engine.prompt_tokens.trl_prompt`); a completion
    is an assistant message list for chat prompts, else text (TRL appends the EOS token)."""
    from datasets import Dataset

    if not prompts or len(prompts) != len(completions):
        raise ValueError(f"SFT needs as many completions as prompts, at least one ({len(prompts)} prompts, "
                         f"{len(completions)} completions)")
    state, device, sharded = training_state(engine)
    output_dir = Path(output_dir)
    work_dir = prepare_work_dir(output_dir, state, params.report_to)
    from trl import SFTTrainer  # after prepare_work_dir (the tracker's folder)

    t0 = time.perf_counter()
    weights = training_precision(params, engine.dtype, device).weights  # fp32 masters, as in GRPO
    model, tokenizer = load_model(start_model, dtype=weights, device=engine.device)
    model.train()
    dataset = Dataset.from_list([{"prompt": p, "completion": c} for p, c in zip(prompts, completions)])
    config = sft_config(params, work_dir, seed=seed, device=device, dtype=engine.dtype, disable_tqdm=disable_tqdm,
                        run_name=tracking_run_name(output_dir))
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=lora_config(params))
    before = snapshot_trainable(trainer.model) if not sharded else {}
    trainer.train()
    return finish_phase(trainer, tokenizer, start_model=start_model, params=params, engine=engine, device=device,
                        output_dir=output_dir, work_dir=work_dir, state=state, sharded=sharded, before=before,
                        trained_with="trl.SFTTrainer", optimizer_steps=params.steps, started=t0)
