"""The arithmetic sandbox's world: its prompts, the question form `A op B = ?`, and the fixed problem sets.

Pure Python, shared by the sandbox model's pretraining (`rzero_lib.engine.builtins.arith_sandbox`),
its benchmarks (`arith_sandbox`, `arith_sandbox_dev`) and the sandbox experiment
(`rzero_lib.experiments.sandbox`). Why the sandbox exists and how it is built: docs/sandbox.md.
"""

from __future__ import annotations

import random
import re

from rzero_lib.arithmetic import ArithmeticProblem, evaluate_expression, format_answer
from rzero_lib.prompts import PromptSpec

# --------------------------------------------------------------------------
# prompts: the single source for pretraining and for params/sandbox*.yaml
# --------------------------------------------------------------------------

# No system turns and a bare question as the Solver's user turn: every prompt token costs pretraining and
# GRPO time on a character-level model, and the two roles are told apart by their user turns.
SANDBOX_CHALLENGER_SYSTEM = ""
SANDBOX_CHALLENGER_USER = "Write a question."
SANDBOX_SOLVER_SYSTEM = ""
SANDBOX_SOLVER_USER = "{question}"

# The Verifier's turn (`verifier.system` / `verifier.user` in params/sandbox_verifier.yaml): the question and the
# Solver's response (a boxed answer); the reply is \boxed{yes} or \boxed{no}.
SANDBOX_VERIFIER_SYSTEM = ""
SANDBOX_VERIFIER_USER = "{question} {solution}"

SANDBOX_PROMPTS = {
    "challenger": {"system": SANDBOX_CHALLENGER_SYSTEM, "user": SANDBOX_CHALLENGER_USER},
    "solver": {"system": SANDBOX_SOLVER_SYSTEM, "user": SANDBOX_SOLVER_USER},
}


def sandbox_challenger_prompt() -> PromptSpec:
    return PromptSpec(SANDBOX_CHALLENGER_SYSTEM, SANDBOX_CHALLENGER_USER)


def sandbox_solver_prompt() -> PromptSpec:
    return PromptSpec(SANDBOX_SOLVER_SYSTEM, SANDBOX_SOLVER_USER)


# --------------------------------------------------------------------------
# questions
# --------------------------------------------------------------------------

OPERATORS = "+-*"
MAX_OPERAND_DIGITS = 4
QUESTION_TEMPLATE = "{a} {op} {b} = ?"

HELDOUT_SEED = 2_508_050  # disjoint from the pretraining seeds (small integers)
DEV_SEED = 777  # a development set for tuning the run's settings; the held-out set is only for reporting
HELDOUT_PER_CELL = 40  # per (operator, largest-operand digits) cell: 3 * 4 * 40 = 480 items


def _operand(rng: random.Random, digits: int) -> int:
    low = 1 if digits == 1 else 10 ** (digits - 1)
    return rng.randint(low, 10**digits - 1)


def make_problem(a: int, op: str, b: int) -> ArithmeticProblem:
    """The sandbox question `a op b = ?` with its exact answer."""
    expression = f"{a} {op} {b}"
    value = evaluate_expression(expression)
    if value is None:
        raise ValueError(f"not evaluable: {expression}")
    return ArithmeticProblem(question=QUESTION_TEMPLATE.format(a=a, op=op, b=b), answer=format_answer(value),
                             expression=expression, operators=op, max_digits=max(len(str(a)), len(str(b))),
                             num_operands=2, style="plain")


def draw_problem(rng: random.Random, digit_weights: dict[int, float],
                 operator_weights: dict[str, float] | None = None) -> ArithmeticProblem:
    """Two operands with digit counts drawn independently from `digit_weights`, an operator from
    `operator_weights` (uniform over + - * when None)."""
    sizes, weights = list(digit_weights), list(digit_weights.values())
    d1, d2 = rng.choices(sizes, weights, k=2)
    ops = operator_weights or {op: 1.0 for op in OPERATORS}
    op = rng.choices(list(ops), list(ops.values()))[0]
    return make_problem(_operand(rng, d1), op, _operand(rng, d2))


def sandbox_heldout_problems(per_cell: int = HELDOUT_PER_CELL, seed: int = HELDOUT_SEED) -> list[ArithmeticProblem]:
    """The fixed held-out set: `per_cell` distinct questions per (operator, largest-operand digits)."""
    rng = random.Random(seed)
    problems = []
    for op in OPERATORS:
        for top in range(1, MAX_OPERAND_DIGITS + 1):
            seen: set[str] = set()
            tries = 0
            while len(seen) < per_cell and tries < 100 * per_cell:
                tries += 1
                sizes = [top, rng.randint(1, top)]
                rng.shuffle(sizes)
                p = make_problem(_operand(rng, sizes[0]), op, _operand(rng, sizes[1]))
                if p.expression in seen:
                    continue
                seen.add(p.expression)
                problems.append(p)
    return problems


def sandbox_dev_problems(per_cell: int = HELDOUT_PER_CELL) -> list[ArithmeticProblem]:
    """A development set shaped like the held-out set (another seed): what settings were tuned on."""
    return sandbox_heldout_problems(per_cell, seed=DEV_SEED)


_NUMBER_RE = re.compile(r"\d+")
_OPERATOR_RE = re.compile(r"\d\s*([-+*/])\s*\d")


def operand_digits(question: str | None) -> int | None:
    """Digits of the largest number in a question ("47 + 385 = ?" -> 3), None without numbers."""
    if not question:
        return None
    numbers = _NUMBER_RE.findall(str(question))
    return max(len(n.lstrip("0") or "0") for n in numbers) if numbers else None


def answer_digits(answer: str | None) -> int | None:
    """Digits of an integer answer ("-385" -> 3); None for no answer or a non-integer."""
    if answer is None:
        return None
    text = str(answer).strip().lstrip("+-")
    return len(text.lstrip("0") or "0") if text.isdigit() else None


def question_operator(question: str | None) -> str | None:
    """The operator of a sandbox-style question (`a op b = ?`), else None."""
    m = _OPERATOR_RE.search(str(question or ""))
    return m.group(1) if m else None

