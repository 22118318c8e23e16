"""Stage 1: GRPO for the Challenger against the frozen Solver of the previous iteration.

The frozen Solver runs in this process, or as a server (`solver_service:
vllm_server`, and always when the training is launched on several processes).
`challenger_training.enabled: false` is the untrained-Challenger baseline: the
stage passes its start model through.
"""

from __future__ import annotations

import pandas as pd

from rzero_lib.engine.solver_server.process import SolverServer
from rzero_lib.pipeline.context import StageContext, StageResult
from rzero_lib.pipeline.stages.grpo_phase import (
    curve_summary,
    launched_training,
    launches,
    load_training,
    questions_table,
    training_engine_record,
)
from rzero_lib.training.roles import train_challenger
from rzero_lib.voting import vote_rules_of


def run_challenger_training(ctx: StageContext, recompute: bool = False) -> StageResult:
    p = ctx.params.challenger_training
    k = ctx.iteration
    start = ctx.run.challenger_model(k - 1)
    solver_spec = ctx.run.solver_model(k - 1)
    if ctx.done and not recompute:
        return load_training(ctx, "challenger_questions.jsonl")
    if not p.enabled:
        summary = {"trained": False, "note": "challenger_training.enabled is false: the untrained-Challenger "
                                             "baseline keeps the start weights"}
        ctx.finish(inputs={"start_model": start}, outputs=[], summary=summary, extra={"model": start})
        return StageResult(summary, {})
    challenger_prompt, solver_prompt = ctx.prompts()
    launched = launches(p)
    arguments = dict(params=p, challenger_prompt=challenger_prompt, solver_prompt=solver_prompt,
                     num_solver_samples=p.solver_samples, output_dir=ctx.folder,
                     engine=ctx.params.engine, seed=ctx.seed("grpo"),
                     equivalence_timeout_s=ctx.params.voting.equivalence_timeout_s,
                     vote_rules=vote_rules_of(ctx.params.voting), domain=ctx.params.domain)
    # The frozen Solver: a vLLM (or transformers) server on its own GPUs, which a
    # launched multi-process training also needs; else in this process.
    service = None
    if p.solver_service == "vllm_server" or launched:
        engine = ctx.params.engine
        if p.solver_server_gpu_memory_utilization is not None:
            engine = engine.model_copy(update={"gpu_memory_utilization": p.solver_server_gpu_memory_utilization})
        service = SolverServer.start(solver_spec, log_dir=ctx.folder, gpus=p.solver_server_gpus, engine=engine)
    try:
        if launched:
            result = launched_training(ctx, "challenger", start_model=start, solver_url=service.base_url,
                                       solver_model=solver_spec, **arguments)
            backend = "openai_server"
        else:
            solver = service.generator() if service is not None else ctx.generator(solver_spec)
            try:
                result = train_challenger(start, solver, **arguments)
            finally:
                solver.close()
            backend = solver.backend_name
    finally:
        if service is not None:
            service.stop()
    history = pd.DataFrame(result.log_history)
    # The frozen Solver: a server (its engine: vllm or transformers) or an in-process backend.
    frozen_solver = {"service": "server", "backend": service.backend} if service is not None else \
        {"service": "in_process", "backend": backend}
    summary = {"trained": True, **result.summary(), **curve_summary(history, "reward"),
               "solver_backend": backend, "launched": launched,
               "engine": {**training_engine_record(p, result, launched), "solver": frozen_solver}}
    outputs = ["model", "log_history.jsonl"] + (["challenger_questions.jsonl"]
                                                if (ctx.folder / "challenger_questions.jsonl").exists() else [])
    ctx.finish(inputs={"start_model": start, "frozen_solver": solver_spec}, outputs=outputs, summary=summary,
               extra={"model": str(result.model_dir)})
    return StageResult(summary, {"log_history": history, **questions_table(ctx, "challenger_questions.jsonl")})
