"""Domains: what a run's questions are about, bundled in one place.

A domain fixes the default Challenger and Solver prompts, the default oracle of
the analysis and the default evaluation sets: `math` (the paper's prompts; no
exact oracle) or `arithmetic` (the CPU demo and the sandbox; the exact
arithmetic oracle). `resolve_prompts(params)` turns a run's parameters into the
two PromptSpecs (parameters override the domain; demonstrations are generated
when `num_demonstrations` > 0). `Domain.difficulty(question)` is the one rule for a
question's difficulty as a number (votes.parquet's `difficulty`, the report's
`difficulty_mean`): for arithmetic the sandbox's steps b when the question has the
sandbox form, else the digits of its largest operand; NaN where a domain has none (math).

`sandbox` is the arithmetic sandbox's domain (params/sandbox*.yaml): its prompts,
the exact arithmetic oracle, the held-out `arith_sandbox` set, difficulty = the
steps b, and a question form (`Domain.question_form`): a Challenger question
outside the form `c + a * b = ?` is a format failure, like a missing
`<question>` tag — no reward, not kept. Without it the Challenger learned to
write near-miss text (`13 + 9 * 6 + ?`) that the character-level Solver answers
as if well formed but no oracle can check (docs/sandbox.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from rzero_lib import prompts as P
from rzero_lib.sandbox_world import (
    is_sandbox_question,
    operand_digits,
    question_difficulty,
    sandbox_challenger_prompt,
    sandbox_solver_prompt,
)


@dataclass(frozen=True)
class Domain:
    name: str
    challenger: P.PromptSpec
    solver: P.PromptSpec
    default_oracle: str  # an `analysis.oracle.kind`
    default_benchmarks: tuple[str, ...]
    difficulty_rule: Callable[[str], int | None] | None = None  # None: the domain has no difficulty number
    # None: any question text is accepted; else a question it rejects is a Challenger format failure (`off_form`)
    question_form: Callable[[str], bool] | None = None

    def difficulty(self, question: str | None) -> float:
        """The question's difficulty as a number, NaN when the domain or the question has none."""
        value = self.difficulty_rule(question) if self.difficulty_rule is not None and question else None
        return math.nan if value is None else float(value)


def arithmetic_difficulty(question: str) -> int | None:
    """Steps b of a sandbox question (`c + a * b = ?`), else the digits of the largest operand."""
    steps = question_difficulty(question)
    return steps if steps is not None else operand_digits(question)


DOMAINS: dict[str, Domain] = {
    "math": Domain("math", P.paper_challenger_prompt(), P.paper_solver_prompt(), "none",
                   ("amc23", "minerva_math", "math500", "gsm8k", "olympiadbench", "aime25", "aime24")),
    "arithmetic": Domain(
        "arithmetic",
        P.PromptSpec(P.CHALLENGER_SYSTEM_ARITHMETIC, P.CHALLENGER_USER_ARITHMETIC),
        P.PromptSpec(P.SOLVER_SYSTEM_ARITHMETIC, "{question}"),
        "arithmetic",
        ("arithmetic",),
        arithmetic_difficulty,
    ),
    "sandbox": Domain("sandbox", sandbox_challenger_prompt(), sandbox_solver_prompt(), "arithmetic",
                      ("arith_sandbox",), question_difficulty, is_sandbox_question),
}


def get_domain(name: str) -> Domain:
    if name not in DOMAINS:
        raise ValueError(f"domain must be one of {', '.join(DOMAINS)}; got {name!r}")
    return DOMAINS[name]


def _resolve(default: P.PromptSpec, overrides, make_demos) -> P.PromptSpec:
    system = default.system if overrides.system is None else overrides.system
    user = default.user if overrides.user is None else overrides.user
    if overrides.demonstrations is not None:
        demos = tuple((u, a) for u, a in overrides.demonstrations)
    elif overrides.num_demonstrations > 0:
        demos = make_demos(overrides.num_demonstrations)
    else:
        demos = default.demonstrations
    return P.PromptSpec(system, user, demos)


def resolve_prompts(params) -> tuple[P.PromptSpec, P.PromptSpec]:
    """(challenger prompt, solver prompt) for a `RunParams`."""
    domain = get_domain(params.domain)
    challenger = _resolve(domain.challenger, params.prompts.challenger, P.arithmetic_challenger_demonstrations)
    solver = _resolve(domain.solver, params.prompts.solver, P.arithmetic_solver_demonstrations)
    if "{question}" not in solver.user:
        raise ValueError("prompts.solver.user must contain '{question}'")
    return challenger, solver
