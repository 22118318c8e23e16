"""The work of each pipeline stage, callable from its notebook or from Python.

Each `run_<stage>(ctx)` reads only the artifacts it names, writes only inside
its own stage folder (atomically), writes `manifest.json` last, and returns a
`StageResult` (a summary dict and the tables a notebook shows). Called again
on a finished stage it loads the artifacts instead of recomputing (pass
`recompute=True` to redo the work), so a researcher can open any stage's
notebook in JupyterLab against an existing run directory.

The notebooks in `notebooks/` are thin: parameters, one call here, displays.

Failure injection for tests: `RZERO_FAIL_STAGE=iter_01/voting` makes that
stage raise before doing any work.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from rzero_lib.config import RunParams, params_hash
from rzero_lib.rundir import RunDir, clean_partials, iteration_dir_name, write_manifest, write_parquet_atomic

FAIL_ENV = "RZERO_FAIL_STAGE"
MAX_STORED_RESPONSE_CHARS = 1500  # raw model text kept per sample in tables (the end holds the answer)


class StageError(RuntimeError):
    """A stage cannot do its work; the message says why and what to change."""


@dataclass
class StageResult:
    summary: dict
    tables: dict = field(default_factory=dict)  # name -> pandas DataFrame
    loaded: bool = False  # True when read back from a finished stage


@dataclass
class StageContext:
    run: RunDir
    iteration: int | None
    stage: str
    params: RunParams
    folder: Path
    started_at: float

    @classmethod
    def open(cls, run_dir: str | Path, iteration: int | None, stage: str) -> StageContext:
        run = RunDir.at(run_dir)
        params = run.load_params()
        folder = run.report_dir if stage == "analysis" else run.stage_dir(int(iteration), stage)
        folder.mkdir(parents=True, exist_ok=True)
        clean_partials(folder)
        ctx = cls(run, iteration, stage, params, folder, time.time())
        if os.environ.get(FAIL_ENV) and os.environ[FAIL_ENV] == ctx.key:
            raise StageError(f"failing stage {ctx.key} on purpose ({FAIL_ENV} is set)")
        return ctx

    @property
    def key(self) -> str:
        return "report" if self.stage == "analysis" else f"{iteration_dir_name(self.iteration)}/{self.stage}"

    @property
    def done(self) -> bool:
        return self.run.is_done(self.folder)

    @property
    def manifest(self) -> dict | None:
        return self.run.manifest_of(self.folder)

    def prompts(self):
        from rzero_lib.domains import resolve_prompts

        return resolve_prompts(self.params)

    def seed(self, offset: int = 0) -> int:
        return self.params.seed * 1000 + (self.iteration or 0) * 10 + offset

    def finish(self, *, inputs: dict, outputs: list, summary: dict, extra: dict | None = None) -> dict:
        manifest = write_manifest(self.folder, stage=self.stage, iteration=self.iteration, inputs=inputs,
                                  outputs=outputs, params_hash=params_hash(self.params), started_at=self.started_at,
                                  summary=summary, extra=extra)
        self.run.update_state(self.key, manifest)
        return manifest


def _generator(ctx: StageContext, spec: str):
    from rzero_lib.generation import make_generator

    e = ctx.params.engine
    return make_generator(spec, backend=e.backend, dtype=e.dtype, device=e.device, batch_size=e.generation_batch_size,
                          tensor_parallel_size=e.tensor_parallel_size, data_parallel_size=e.data_parallel_size,
                          gpu_memory_utilization=e.gpu_memory_utilization, max_model_len=e.max_model_len,
                          enforce_eager=e.enforce_eager, seed=ctx.params.seed, **vllm_cluster_kwargs(e))


def vllm_cluster_kwargs(engine) -> dict:
    """vLLM's multi-node settings, passed only when set (the defaults leave vLLM's own choice)."""
    kwargs = {}
    if engine.pipeline_parallel_size > 1:
        kwargs["pipeline_parallel_size"] = engine.pipeline_parallel_size
    if engine.distributed_executor_backend != "auto":
        kwargs["distributed_executor_backend"] = engine.distributed_executor_backend
    return kwargs


def _bounded(text: str) -> str:
    return text[-MAX_STORED_RESPONSE_CHARS:] if len(text) > MAX_STORED_RESPONSE_CHARS else text


def _loaded(ctx: StageContext, **files: str) -> StageResult:
    """The result of a finished stage, read back from its Parquet tables."""
    import pandas as pd

    return StageResult(ctx.manifest["summary"], {name: pd.read_parquet(ctx.folder / f) for name, f in files.items()},
                       loaded=True)


def _solver_train_table(rows, label_column: str, weight):
    """The Solver's training table (TRAIN_COLUMNS) from the kept rows of a vote or verdict table."""
    import pandas as pd

    return pd.DataFrame({"question_id": rows["question_id"], "question": rows["question"],
                         "label": rows[label_column], "p_hat": rows["p_hat"], "weight": weight},
                        columns=TRAIN_COLUMNS)


def _read_log_history(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


# --------------------------------------------------------------------------
# 1. Challenger training
# --------------------------------------------------------------------------


def run_challenger_training(ctx: StageContext, recompute: bool = False) -> StageResult:
    import pandas as pd

    p = ctx.params.challenger_training
    k = ctx.iteration
    start = ctx.run.challenger_model(k - 1)
    solver_spec = ctx.run.solver_model(k - 1)
    if ctx.done and not recompute:
        return _load_training(ctx, "challenger_questions.jsonl")
    if not p.enabled:
        summary = {"trained": False, "note": "challenger_training.enabled is false: the untrained-Challenger "
                                             "baseline keeps the start weights"}
        ctx.finish(inputs={"start_model": start}, outputs=[], summary=summary, extra={"model": start})
        return StageResult(summary, {})
    challenger_prompt, solver_prompt = ctx.prompts()
    launched = _launches(p)
    arguments = dict(params=p, challenger_prompt=challenger_prompt, solver_prompt=solver_prompt,
                     num_solver_samples=ctx.params.solver_samples_for_reward, output_dir=ctx.folder,
                     engine=ctx.params.engine, seed=ctx.seed(),
                     equivalence_timeout_s=ctx.params.voting.equivalence_timeout_s)
    # The frozen Solver: a vLLM (or transformers) server on its own GPUs, which a
    # launched multi-process training also needs; else in this process.
    service = None
    if p.solver_service == "vllm_server" or launched:
        from rzero_lib.solver_service import SolverServer

        engine = ctx.params.engine
        if p.solver_server_gpu_memory_utilization is not None:
            engine = engine.model_copy(update={"gpu_memory_utilization": p.solver_server_gpu_memory_utilization})
        service = SolverServer.start(solver_spec, log_dir=ctx.folder, gpus=p.solver_server_gpus, engine=engine)
    try:
        if launched:
            result = _launched_training(ctx, "challenger", p, start_model=start, solver_url=service.base_url,
                                        solver_model=solver_spec, **arguments)
            backend = "openai_server"
        else:
            from rzero_lib.training import train_challenger

            solver = service.generator() if service is not None else _generator(ctx, solver_spec)
            try:
                result = train_challenger(start, solver, **arguments)
            finally:
                solver.close()
            backend = solver.backend_name
    finally:
        if service is not None:
            service.stop()
    history = pd.DataFrame(result.log_history)
    summary = {"trained": True, **result.summary(), **_curve_summary(history, "reward"),
               "solver_backend": backend, "launched": launched}
    outputs = ["model", "log_history.jsonl"] + (["challenger_questions.jsonl"]
                                                if (ctx.folder / "challenger_questions.jsonl").exists() else [])
    ctx.finish(inputs={"start_model": start, "frozen_solver": solver_spec}, outputs=outputs, summary=summary,
               extra={"model": str(result.model_dir)})
    return StageResult(summary, {"log_history": history, **_questions_table(ctx, "challenger_questions.jsonl")})


def _launches(params) -> bool:
    from rzero_lib.launch import cuda_device_count, should_launch

    return should_launch(params, cuda_device_count())


def _launched_training(ctx: StageContext, role: str, params, **arguments):
    """Run the GRPO phase under `accelerate launch` (several GPUs or nodes) and read its result."""
    from rzero_lib.launch import (
        accelerate_config_path,
        default_num_processes,
        launch_training,
        make_payload,
        read_result,
    )
    from rzero_lib.training import TrainingResult

    config = params.accelerate_config or "zero2"
    accelerate_config_path(config)  # fail early on an unknown config name
    launch_training(role, make_payload(role, **arguments), config=config,
                    num_processes=default_num_processes(params), log_path=ctx.folder / "accelerate.log")
    out = read_result(ctx.folder)
    history = _read_log_history(ctx.folder / "log_history.jsonl")
    return TrainingResult(model_dir=Path(out["model_dir"]), log_history_path=ctx.folder / "log_history.jsonl",
                          log_history=history, optimizer_steps=out.get("optimizer_steps", 0),
                          seconds=out.get("seconds", 0.0), parameter_change=out.get("parameter_change", float("nan")),
                          trainable_parameters=out.get("trainable_parameters", 0))


def _curve_summary(history, column: str) -> dict:
    if history is None or history.empty or column not in history:
        return {}
    values = history[column].dropna()
    if values.empty:
        return {}
    return {f"{column}_first": float(values.iloc[0]), f"{column}_last": float(values.iloc[-1])}


def _questions_table(ctx: StageContext, name: str) -> dict:
    import pandas as pd

    path = ctx.folder / name
    return {"questions": pd.read_json(path, lines=True)} if path.exists() and path.stat().st_size else {}


def _load_training(ctx: StageContext, questions_file: str | None = None) -> StageResult:
    import pandas as pd

    history = pd.DataFrame(_read_log_history(ctx.folder / "log_history.jsonl"))
    tables = {"log_history": history}
    if questions_file:
        tables.update(_questions_table(ctx, questions_file))
    return StageResult(ctx.manifest.get("summary", {}), tables, loaded=True)


# --------------------------------------------------------------------------
# 2. Question generation
# --------------------------------------------------------------------------


def run_question_generation(ctx: StageContext, recompute: bool = False) -> StageResult:
    import pandas as pd

    from rzero_lib.answers import parse_challenger_output
    from rzero_lib.generation import SamplingConfig

    out_file = ctx.folder / "questions.parquet"
    if ctx.done and not recompute:
        return _loaded(ctx, questions="questions.parquet")
    p = ctx.params.question_generation
    k = ctx.iteration
    challenger = ctx.run.challenger_model(k)
    challenger_prompt, _ = ctx.prompts()
    gen = _generator(ctx, challenger)
    try:
        sampling = SamplingConfig(n=p.num_questions, temperature=p.temperature, top_p=p.top_p, top_k=p.top_k,
                                  max_new_tokens=p.max_new_tokens, seed=ctx.seed(1))
        outputs = gen.generate([challenger_prompt.messages()], sampling, progress="challenger writing questions")[0]
        stats = gen.stats.as_dict()
    finally:
        gen.close()
    rows, seen = [], set()
    for i, text in enumerate(outputs):
        parsed = parse_challenger_output(text)
        reason = None if parsed.ok else f"unparseable:{parsed.failure}"
        if parsed.ok and p.drop_duplicates:
            if parsed.question in seen:
                reason = "duplicate"
            seen.add(parsed.question)
        rows.append({"question_id": f"it{k:02d}-q{i:05d}", "iteration": k, "output": _bounded(text),
                     "question": parsed.question, "challenger_answer": parsed.answer,
                     "parse_failure": parsed.failure, "drop_reason": reason, "kept": reason is None})
    df = pd.DataFrame(rows)
    write_parquet_atomic(df, out_file)
    n = len(df)
    parsed_n = int(df["parse_failure"].isna().sum())
    summary = {"challenger_model": challenger, "generated": n, "parsed": parsed_n,
               "parse_rate": parsed_n / n if n else 0.0,
               "challenger_boxed_rate": float(df["challenger_answer"].notna().mean()) if n else 0.0,
               "duplicates": int((df["drop_reason"] == "duplicate").sum()), "kept": int(df["kept"].sum()),
               "generation": stats}
    if summary["kept"] == 0:
        raise StageError(
            f"The Challenger produced no parseable question ({parsed_n} of {n} outputs contain "
            "<question>...</question>). A small model usually needs format demonstrations "
            "(prompts.challenger.num_demonstrations: 3) or more max_new_tokens; see questions.parquet "
            f"in {ctx.folder} for what it wrote.")
    ctx.finish(inputs={"challenger_model": challenger}, outputs=["questions.parquet"], summary=summary)
    return StageResult(summary, {"questions": df})


# --------------------------------------------------------------------------
# 3. Voting
# --------------------------------------------------------------------------

VOTE_COLUMNS = ["question_id", "iteration", "question", "challenger_answer", "responses", "answers",
                "majority_answer", "p_hat", "majority_count", "num_answered", "group_answers", "group_counts",
                "drop_reason", "kept"]
TRAIN_COLUMNS = ["question_id", "question", "label", "p_hat", "weight"]


def run_voting(ctx: StageContext, recompute: bool = False) -> StageResult:
    import pandas as pd

    from rzero_lib.answers import extract_boxed
    from rzero_lib.generation import SamplingConfig
    from rzero_lib.prompts import solver_messages
    from rzero_lib.voting import FilterSettings, drop_reason, majority_vote_many

    votes_file, train_file = ctx.folder / "votes.parquet", ctx.folder / "solver_train.parquet"
    if ctx.done and not recompute:
        return _loaded(ctx, votes="votes.parquet", solver_train="solver_train.parquet")
    p = ctx.params.voting
    k = ctx.iteration
    questions_file = ctx.run.stage_dir(k, "question_generation") / "questions.parquet"
    questions = pd.read_parquet(questions_file)
    questions = questions[questions["kept"]].reset_index(drop=True)
    solver_spec = ctx.run.solver_model(k - 1)
    _, solver_prompt = ctx.prompts()
    gen = _generator(ctx, solver_spec)
    try:
        sampling = SamplingConfig(n=p.num_samples, temperature=p.temperature, top_p=p.top_p, top_k=p.top_k,
                                  max_new_tokens=p.max_new_tokens, seed=ctx.seed(2))
        responses = gen.generate([solver_messages(solver_prompt, q) for q in questions["question"]], sampling,
                                 progress=f"solver voting (m={p.num_samples})")
        stats = gen.stats.as_dict()
    finally:
        gen.close()
    answers = [[extract_boxed(r) for r in group] for group in responses]
    votes = majority_vote_many(answers, timeout_s=p.equivalence_timeout_s)
    settings = FilterSettings(band_delta=p.band_delta, band_bounds=p.band_bounds, apply_band=p.apply_band,
                              drop_proof_questions=p.drop_proof_questions, drop_empty_majority=p.drop_empty_majority,
                              drop_text_answers=p.drop_text_answers)
    rows = []
    for (_, q), group, ans, vote in zip(questions.iterrows(), responses, answers, votes):
        reason = drop_reason(q["question"], vote, settings)
        rows.append({"question_id": q["question_id"], "iteration": k, "question": q["question"],
                     "challenger_answer": q["challenger_answer"], "responses": [_bounded(r) for r in group],
                     "answers": ans, "majority_answer": vote.answer, "p_hat": vote.p_hat,
                     "majority_count": vote.majority_count, "num_answered": vote.num_answered,
                     "group_answers": [g.answer for g in vote.groups], "group_counts": [g.count for g in vote.groups],
                     "drop_reason": reason, "kept": reason is None})
    df = pd.DataFrame(rows, columns=VOTE_COLUMNS)
    train = _solver_train_table(df[df["kept"]], "majority_answer", 1.0)
    write_parquet_atomic(df, votes_file)
    write_parquet_atomic(train, train_file)
    n_samples = sum(len(a) for a in answers)
    summary = {"solver_model": solver_spec, "questions": len(df), "m": p.num_samples,
               "boxed_rate": sum(a is not None for group in answers for a in group) / n_samples if n_samples else 0.0,
               "mean_p_hat": float(df["p_hat"].mean()) if len(df) else 0.0, "kept": len(train),
               "kept_fraction": len(train) / len(df) if len(df) else 0.0,
               "drop_reasons": {str(r): int(c) for r, c in df["drop_reason"].value_counts().items()},
               "generation": stats}
    if len(train) == 0:
        raise StageError(
            f"No question passed the voting filters ({len(df)} voted; drops: {summary['drop_reasons']}). "
            "Widen voting.band_delta, raise question_generation.num_questions, or check the Solver's boxed-answer "
            f"rate ({summary['boxed_rate']:.0%}); votes.parquet in {ctx.folder} has every question.")
    ctx.finish(inputs={"questions": str(questions_file), "solver_model": solver_spec},
               outputs=["votes.parquet", "solver_train.parquet"], summary=summary)
    return StageResult(summary, {"votes": df, "solver_train": train})


# --------------------------------------------------------------------------
# 4. Solver training
# --------------------------------------------------------------------------


def solver_training_set(ctx: StageContext):
    """The Solver's training table for this iteration: the Verifier's when it ran, else the vote's."""
    import pandas as pd

    k = ctx.iteration
    verified = ctx.run.stage_dir(k, "verification") / "solver_train.parquet"
    source = verified if ctx.params.verifier.enabled else ctx.run.stage_dir(k, "voting") / "solver_train.parquet"
    if not source.exists():
        raise StageError(f"the Solver's training set {source} does not exist yet; run the earlier stages first")
    return pd.read_parquet(source), source


def run_solver_training(ctx: StageContext, recompute: bool = False) -> StageResult:
    from rzero_lib.training import train_solver

    if ctx.done and not recompute:
        return _load_training(ctx)
    p = ctx.params.solver_training
    k = ctx.iteration
    train, source = solver_training_set(ctx)
    label_note = "majority vote"
    if p.label_source == "oracle":
        train, label_note = _oracle_labels(ctx, train)
    if p.max_questions is not None and len(train) > p.max_questions:
        train = train.sample(n=p.max_questions, random_state=ctx.seed(3)).reset_index(drop=True)
    if train.empty:
        raise StageError(f"the Solver's training set is empty ({source}); see the voting stage's drop reasons")
    start = ctx.run.solver_model(k - 1)
    _, solver_prompt = ctx.prompts()
    weights = train["weight"].tolist() if "weight" in train and (train["weight"] != 1.0).any() else None
    arguments = dict(params=p, solver_prompt=solver_prompt, output_dir=ctx.folder, engine=ctx.params.engine,
                     seed=ctx.seed(4), weights=weights)
    if _launches(p):
        result = _launched_training(ctx, "solver", p, start_model=start, questions=train["question"].tolist(),
                                    labels=train["label"].tolist(), **arguments)
    else:
        result = train_solver(start, train["question"].tolist(), train["label"].tolist(), **arguments)
    import pandas as pd

    history = pd.DataFrame(result.log_history)
    summary = {**result.summary(), "training_questions": len(train), "labels": label_note,
               **_curve_summary(history, "reward")}
    ctx.finish(inputs={"start_model": start, "training_set": str(source)}, outputs=["model", "log_history.jsonl"],
               summary=summary, extra={"model": str(result.model_dir)})
    return StageResult(summary, {"log_history": history, "train": train})


def _oracle_labels(ctx: StageContext, train):
    """Ablation `solver_training.label_source: oracle`: replace pseudo-labels by the oracle's answers."""
    from rzero_lib.oracle import make_oracle

    with make_oracle(ctx.params, ctx.params.analysis.oracle) as oracle:  # a model oracle frees its model
        answers = oracle.answer_many(train["question"].tolist())
        name = oracle.name
    train = train.assign(label=answers)
    covered = train["label"].notna()
    return train[covered].reset_index(drop=True), f"oracle ({name}; {int(covered.sum())}/{len(covered)} covered)"


# --------------------------------------------------------------------------
# 5. Evaluation
# --------------------------------------------------------------------------


def evaluation_model(ctx: StageContext) -> str:
    """Iteration 0 evaluates the base model; iteration k the Solver of iteration k."""
    return ctx.run.solver_model(ctx.iteration)


def run_evaluation(ctx: StageContext, recompute: bool = False) -> StageResult:

    from rzero_lib.evaluation import cross_iteration_table, evaluate_model, load_scores

    scores_file, samples_file = ctx.folder / "scores.parquet", ctx.folder / "samples.parquet"
    if ctx.done and not recompute:
        if not scores_file.exists():  # evaluation was disabled
            return StageResult(ctx.manifest["summary"], {}, loaded=True)
        result = _loaded(ctx, scores="scores.parquet", samples="samples.parquet")
        result.tables["table"] = cross_iteration_table(load_scores(ctx.run.path))
        return result
    p = ctx.params.evaluation
    model = evaluation_model(ctx)
    _, solver_prompt = ctx.prompts()
    if not p.enabled or not p.benchmarks:
        summary = {"model": model, "skipped": "evaluation.enabled is false or no benchmarks are configured"}
        ctx.finish(inputs={"model": model}, outputs=[], summary=summary)
        return StageResult(summary, {})
    gen = _generator(ctx, model)
    try:
        scores, samples = evaluate_model(gen, p.benchmarks, p, solver_prompt, seed=ctx.params.seed)
        stats = gen.stats.as_dict()
    finally:
        gen.close()
    write_parquet_atomic(scores, scores_file)
    write_parquet_atomic(samples, samples_file)
    summary = {"model": model, "accuracy": {r.benchmark: round(float(r.accuracy), 4) for r in scores.itertuples()},
               "limit": p.limit, "generation": stats}
    ctx.finish(inputs={"model": model}, outputs=["scores.parquet", "samples.parquet"], summary=summary)
    return StageResult(summary, {"scores": scores, "samples": samples,
                                 "table": cross_iteration_table(load_scores(ctx.run.path))})


# --------------------------------------------------------------------------
# 3b. Verification (optional)
# --------------------------------------------------------------------------

VERDICT_COLUMNS = ["question_id", "question", "majority_answer", "p_hat", "solution", "verdicts", "yes", "no",
                   "unparsed", "confidence", "kept", "weight", "drop_reason"]


def verifier_model(ctx: StageContext) -> str:
    v = ctx.params.verifier
    if v.kind == "model":
        if not v.model:
            raise StageError("verifier.kind is 'model' but verifier.model is not set")
        return v.model
    return ctx.run.solver_model(ctx.iteration - 1)  # self-verification: the Solver that voted


def run_verification(ctx: StageContext, recompute: bool = False) -> StageResult:
    import pandas as pd

    from rzero_lib.verifier import apply_policy, confidence_of, supporting_response, verify_labels

    verdicts_file, train_file = ctx.folder / "verdicts.parquet", ctx.folder / "solver_train.parquet"
    if ctx.done and not recompute:
        return _loaded(ctx, verdicts="verdicts.parquet", solver_train="solver_train.parquet")
    v = ctx.params.verifier
    k = ctx.iteration
    votes_file = ctx.run.stage_dir(k, "voting") / "votes.parquet"
    votes = pd.read_parquet(votes_file)
    kept = votes[votes["kept"]].reset_index(drop=True)
    solutions = [supporting_response(list(r.responses), list(r.answers), r.majority_answer) or
                 f"The answer is \\boxed{{{r.majority_answer}}}." for r in kept.itertuples()]
    spec = verifier_model(ctx)
    gen = _generator(ctx, spec)
    try:
        verdicts = verify_labels(gen, kept["question"].tolist(), solutions, samples=v.samples,
                                 temperature=v.temperature, max_new_tokens=v.max_new_tokens, seed=ctx.seed(5),
                                 system=v.system, user=v.user)
        stats = gen.stats.as_dict()
    finally:
        gen.close()
    rows = []
    for r, solution, vs in zip(kept.itertuples(), solutions, verdicts):
        decision = apply_policy(confidence_of(vs), v.policy, v.threshold)
        rows.append({"question_id": r.question_id, "question": r.question, "majority_answer": r.majority_answer,
                     "p_hat": r.p_hat, "solution": _bounded(solution), "verdicts": [str(x) for x in vs],
                     "yes": sum(x is True for x in vs), "no": sum(x is False for x in vs),
                     "unparsed": sum(x is None for x in vs), "confidence": decision.confidence,
                     "kept": decision.kept, "weight": decision.weight, "drop_reason": decision.reason})
    df = pd.DataFrame(rows, columns=VERDICT_COLUMNS)
    train_rows = df[df["kept"]]
    train = _solver_train_table(train_rows, "majority_answer", train_rows["weight"])
    write_parquet_atomic(df, verdicts_file)
    write_parquet_atomic(train, train_file)
    n_verdicts = int(df[["yes", "no", "unparsed"]].to_numpy().sum()) if len(df) else 0
    summary = {"verifier_model": spec, "kind": v.kind, "policy": v.policy, "threshold": v.threshold,
               "questions": len(df), "kept": len(train), "mean_confidence": float(df["confidence"].mean())
               if len(df) else 0.0, "verdict_parse_rate": 1 - df["unparsed"].sum() / n_verdicts
               if n_verdicts else 0.0, "generation": stats}
    if train.empty:
        raise StageError(f"The Verifier kept none of the {len(df)} labels (policy {v.policy}, threshold "
                         f"{v.threshold}, verdict parse rate {summary['verdict_parse_rate']:.0%}). Lower "
                         "verifier.threshold, use verifier.policy: weight, or check verdicts.parquet.")
    ctx.finish(inputs={"votes": str(votes_file), "verifier_model": spec},
               outputs=["verdicts.parquet", "solver_train.parquet"], summary=summary)
    return StageResult(summary, {"verdicts": df, "solver_train": train})
