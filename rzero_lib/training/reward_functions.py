"""The reward functions TRL calls during GRPO, one per role.

`ChallengerRewardFunction` parses each completion's question, has the frozen
Solver (any `Generator`) sample m answers per distinct question in one batch,
votes (with the run's `VoteRules`, optionally through the authors' 2025 answer
gate), and scores the whole batch with `rzero_lib.rewards` (the repetition
penalty is over the batch, gathered across training processes under
`accelerate launch`); it logs its components and records every scored question.
`SolverRewardFunction` scores answers against the pseudo-labels, optionally
weighted per question (the Verifier's weight policy).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from rzero_lib.answers import extract_boxed, parse_challenger_output
from rzero_lib.prompts import PromptSpec, solver_messages
from rzero_lib.rewards import ANSWER_GATES, authors_2025_gate, challenger_reward_components, solver_rewards
from rzero_lib.sampling import Generator, SamplingConfig
from rzero_lib.seeds import derive_seed
from rzero_lib.voting import VoteRules, majority_vote_many


def completion_text(completion) -> str:
    """TRL gives strings for text prompts and message lists for chat prompts."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[0], dict):
        return "".join(str(m.get("content", "")) for m in completion)
    return str(completion)



class ChallengerRewardFunction:
    """Reward for a batch of Challenger completions, scored by a frozen Solver."""

    __name__ = "challenger_reward"

    def __init__(self, solver: Generator, solver_prompt: PromptSpec, sampling: SamplingConfig, *,
                 form: str = "paper", penalty_threshold: float = 0.5, penalty_weight: float = 1.0,
                 record_path: str | Path | None = None, equivalence_timeout_s: float | None = None,
                 vote_rules: VoteRules = VoteRules(), answer_gate: str = "none",
                 question_form: Callable[[str], bool] | None = None) -> None:
        if answer_gate not in ANSWER_GATES:
            raise ValueError(f"answer_gate must be one of {ANSWER_GATES}, got {answer_gate!r}")
        self.solver = solver
        self.solver_prompt = solver_prompt
        self.sampling = sampling
        self.form = form
        self.penalty_threshold = penalty_threshold
        self.penalty_weight = penalty_weight
        self.record_path = Path(record_path) if record_path else None
        self.timeout_s = equivalence_timeout_s
        self.vote_rules = vote_rules
        self.answer_gate = answer_gate
        self.question_form = question_form  # the domain's question check: off-form questions are format failures
        self.calls = 0

    def score(self, texts: Sequence[str]) -> list[dict]:
        """Components and reward for each completion text (no TRL needed)."""
        parsed = [parse_challenger_output(t, self.question_form) for t in texts]
        questions = [p.question for p in parsed]
        unique = list(dict.fromkeys(q for q in questions if q is not None))
        p_by_question: dict[str, tuple[float, str | None]] = {}
        if unique:
            sampling = dataclasses.replace(self.sampling, seed=derive_seed(self.sampling.seed, "reward call", self.calls))
            outputs = self.solver.generate([solver_messages(self.solver_prompt, q) for q in unique], sampling,
                                           progress=False)
            votes = majority_vote_many([[extract_boxed(o) for o in outs] for outs in outputs],
                                       timeout_s=self.timeout_s, rules=self.vote_rules)
            p_by_question = {q: (v.p_hat, v.answer) for q, v in zip(unique, votes)}
        # The score the reward sees: p̂, or p̂ through the authors' 2025 gate (a bug reproduction, opt-in),
        # which also depends on each rollout's own boxed answer.
        p_hats = [None if q is None else self.gated(p_by_question[q], p.answer) for q, p in zip(questions, parsed)]
        # Under `accelerate launch` each process holds a slice of the step's batch:
        # the repetition penalty is over the whole batch, so gather it, score it,
        # and keep this process's slice (p̂ stays local: the Solver calls are not repeated).
        all_questions, all_p_hats, offset = gather_batch(questions, p_hats)
        components = challenger_reward_components(all_questions, all_p_hats, form=self.form,
                                                  penalty_threshold=self.penalty_threshold,
                                                  penalty_weight=self.penalty_weight)
        components = components[offset: offset + len(questions)]
        rows = []
        for text_parse, q, c in zip(parsed, questions, components):
            rows.append({"question": q, "failure": text_parse.failure, "challenger_answer": text_parse.answer,
                         "p_hat": p_by_question[q][0] if q is not None else None,
                         "score": c.p_hat, "solver_majority": p_by_question[q][1] if q is not None else None,
                         "uncertainty": c.uncertainty, "penalty": c.penalty, "reward": c.reward})
        self.calls += 1
        return rows

    def gated(self, vote: tuple[float, str | None], challenger_answer: str | None) -> float:
        p_hat, majority = vote
        return authors_2025_gate(p_hat, majority, challenger_answer) if self.answer_gate == "authors_2025" else p_hat

    def __call__(self, prompts, completions, log_metric=None, trainer_state=None, **kwargs) -> list[float]:
        rows = self.score([completion_text(c) for c in completions])
        n = len(rows)
        parsed = [r for r in rows if r["question"] is not None]
        metrics = {
            "challenger/format_failure_rate": 1 - len(parsed) / n if n else 0.0,
            "challenger/uncertainty": mean_of_present(r["uncertainty"] for r in parsed),
            "challenger/penalty": mean_of_present(r["penalty"] for r in parsed),
            "challenger/p_hat": mean_of_present(r["p_hat"] for r in parsed),
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
            log_metric("solver/boxed_rate", mean_of_present(extract_boxed(t) is not None for t in texts))
        if weight is not None:
            rewards = [r * float(w) for r, w in zip(rewards, weight)]
        return rewards


def gather_batch(questions: list, p_hats: list) -> tuple[list, list, int]:
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


def mean_of_present(values) -> float:
    """Mean of the values that are not None; NaN when there are none."""
    values = [float(v) for v in values if v is not None]
    return sum(values) / len(values) if values else float("nan")
