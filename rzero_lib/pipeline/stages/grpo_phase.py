"""What the two GRPO stages share: in-process or `accelerate launch`, their curves and their reloading."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rzero_lib.engine.device import cuda_device_count
from rzero_lib.pipeline.context import StageContext, StageResult
from rzero_lib.pipeline.run_tables import LOG_HISTORY, read_log_history
from rzero_lib.training.grpo import TrainingResult
from rzero_lib.training.launch import (
    accelerate_config_path,
    default_num_processes,
    launch_training,
    make_payload,
    read_result,
    should_launch,
)


def launches(params) -> bool:
    """Whether this GRPO phase runs under `accelerate launch` (several GPUs or nodes)."""
    return should_launch(params, cuda_device_count())


def launched_training(ctx: StageContext, role: str, **arguments) -> TrainingResult:
    """Run the GRPO phase under `accelerate launch` and read its result. `arguments` are those of
    `train_solver` / `train_challenger` (`params` among them), as the in-process call takes them."""
    params = arguments["params"]
    config = accelerate_config_name(params)
    accelerate_config_path(config)  # fail early on an unknown config name
    launch_training(role, make_payload(role, **arguments), config=config,
                    num_processes=default_num_processes(params), log_path=ctx.folder / "accelerate.log")
    out = read_result(ctx.folder)
    history = read_log_history(ctx.folder / LOG_HISTORY)
    return TrainingResult(model_dir=Path(out["model_dir"]), log_history_path=ctx.folder / LOG_HISTORY,
                          log_history=history, optimizer_steps=out.get("optimizer_steps", 0),
                          seconds=out.get("seconds", 0.0), parameter_change=out.get("parameter_change", float("nan")),
                          trainable_parameters=out.get("trainable_parameters", 0), engine=out.get("engine", {}))


def accelerate_config_name(params) -> str:
    return params.accelerate_config or "zero2"


def training_engine_record(params, result: TrainingResult, launched: bool) -> dict:
    """How a GRPO stage ran, for its manifest: the trainer's own record (device, processes, rollouts, weight
    sync, LoRA) and how it was started."""
    launcher = ({"launcher": "accelerate", "accelerate_config": accelerate_config_name(params)} if launched
                else {"launcher": "in_process"})
    return {**result.engine, **launcher}


def curve_summary(history, column: str) -> dict:
    if history is None or history.empty or column not in history:
        return {}
    values = history[column].dropna()
    if values.empty:
        return {}
    return {f"{column}_first": float(values.iloc[0]), f"{column}_last": float(values.iloc[-1])}


def questions_table(ctx: StageContext, name: str) -> dict:
    path = ctx.folder / name
    return {"questions": pd.read_json(path, lines=True)} if path.exists() and path.stat().st_size else {}


def load_training(ctx: StageContext, questions_file: str | None = None) -> StageResult:
    history = pd.DataFrame(read_log_history(ctx.folder / LOG_HISTORY))
    tables = {"log_history": history}
    if questions_file:
        tables.update(questions_table(ctx, questions_file))
    return StageResult(ctx.manifest.get("summary", {}), tables, loaded=True)
