"""GRPO for each role: the Challenger against a frozen Solver, the Solver on (pseudo-)labelled questions;
and SFT of the Solver on worked solutions (the supervised stage's `method: sft`).

Both write the model (or LoRA adapter) as a Hugging Face folder and the
trainer's log history as JSONL into `output_dir`; the Challenger also writes
every question it scored (`challenger_questions.jsonl`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rzero_lib.config import (
    ChallengerTrainingParams,
    EngineParams,
    SolverTrainingParams,
    SupervisedTrainingParams,
)
from rzero_lib.domains import get_domain
from rzero_lib.engine.models import load_tokenizer
from rzero_lib.engine.prompt_tokens import trl_prompt
from rzero_lib.prompts import PromptSpec, solver_messages
from rzero_lib.sampling import Generator, SamplingConfig
from rzero_lib.training.grpo import TrainingResult, run_grpo
from rzero_lib.training.reward_functions import ChallengerRewardFunction, SolverRewardFunction
from rzero_lib.training.sft import run_sft
from rzero_lib.voting import VoteRules


def train_solver(start_model: str, questions: Sequence[str], labels: Sequence[str], *,
                 params: SolverTrainingParams, solver_prompt: PromptSpec, output_dir: str | Path,
                 engine: EngineParams | None = None, seed: int = 0, weights: Sequence[float] | None = None,
                 disable_tqdm: bool = False) -> TrainingResult:
    """GRPO for the Solver on questions with (pseudo-)labels; returns where the model went."""
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


def train_solver_sft(start_model: str, questions: Sequence[str], solutions: Sequence[str], *,
                     params: SupervisedTrainingParams, solver_prompt: PromptSpec, output_dir: str | Path,
                     engine: EngineParams | None = None, seed: int = 0, disable_tqdm: bool = False) -> TrainingResult:
    """SFT of the Solver on worked solutions, with the same prompt its GRPO and its evaluation use."""
    if len(questions) != len(solutions):
        raise ValueError(f"questions ({len(questions)}) and solutions ({len(solutions)}) differ in length")
    tokenizer = load_tokenizer(start_model)
    prompts = [trl_prompt(tokenizer, solver_messages(solver_prompt, q)) for q in questions]
    completions = [[{"role": "assistant", "content": s}] if isinstance(p, list) else s
                   for p, s in zip(prompts, solutions)]
    return run_sft(start_model=start_model, prompts=prompts, completions=completions, params=params,
                   engine=engine or EngineParams(), output_dir=output_dir, seed=seed, disable_tqdm=disable_tqdm)


def train_challenger(start_model: str, solver: Generator, *, params: ChallengerTrainingParams,
                     challenger_prompt: PromptSpec, solver_prompt: PromptSpec, num_solver_samples: int,
                     output_dir: str | Path, engine: EngineParams | None = None, seed: int = 0,
                     equivalence_timeout_s: float | None = None, vote_rules: VoteRules = VoteRules(),
                     domain: str | None = None, disable_tqdm: bool = False) -> TrainingResult:
    """GRPO for the Challenger against the frozen `solver` (any Generator); `vote_rules` are the voting's;
    `domain` (a run's `domain`) supplies the question check, if it has one."""
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
    # Every rank appends its rows to one partial file during training; the main process renames it at the end.
    tmp_record = record.with_suffix(".jsonl.partial")
    tmp_record.unlink(missing_ok=True)
    reward = ChallengerRewardFunction(solver, solver_prompt, sampling, form=params.reward_form,
                              penalty_threshold=params.penalty_threshold, penalty_weight=params.penalty_weight,
                              record_path=tmp_record, equivalence_timeout_s=equivalence_timeout_s,
                              vote_rules=vote_rules, answer_gate=params.answer_gate,
                              question_form=get_domain(domain).question_form if domain else None)
    result = run_grpo(start_model=start_model, dataset_rows=rows, reward_func=reward, params=params,
                      engine=engine, output_dir=output_dir, seed=seed, disable_tqdm=disable_tqdm)
    from accelerate import PartialState

    if PartialState().is_main_process and tmp_record.exists():  # every rank appended its own rows
        os.replace(tmp_record, record)
    return result
