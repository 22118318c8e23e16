"""The arithmetic sandbox's world: its prompts, the question form `c + a * b = ?` worked step by step, the
pretraining corpus's knobs (`World`: slips and an early-stop misconception), and the fixed problem sets.

Pure Python, shared by the sandbox model's pretraining (`rzero_lib.engine.builtins.arith_sandbox`),
its benchmarks (`arith_sandbox`, `arith_sandbox_dev`) and the sandbox experiment
(`rzero_lib.experiments.sandbox`). Why the sandbox exists and how it is built: docs/sandbox.md.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

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
# Solver's response (its worked computation and boxed answer); the reply is \boxed{yes} or \boxed{no}.
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
# the world: repeated addition, worked step by step
# --------------------------------------------------------------------------
#
# A question is `c + a * b = ?` (c 10..99, a 2..9, b 1..MAX_STEPS); its difficulty is b, the number of steps.
# The Solver answers with a worked computation: the running totals c + a, c + 2a, ..., c + ba written as
# 3-digit numbers, then the boxed last total:
#   "37 + 7 * 4 = ?"  ->  "044 051 058 065 \boxed{65}"
# Every step is local (the previous total and the one digit a), so a ~1M-parameter model learns the skill for
# every length in minutes. The pretraining corpus (`World`) executes it noisily:
# - slips: each step's ones digit is written wrong with a probability that grows with b (`World.slip_rate`),
#   and the computation goes on from the wrong total: slips give *diverse* wrong answers, which a vote cancels;
# - the misconception: it stops one step early ("loses count") with a share that rises with b
#   (`World.trap_share`), and only from b = 6 on (`World.trap_onset`): every early stop of a question gives the
#   *same* wrong answer c + a(b-1), a concentrated wrong answer that can win the vote (how labels go wrong). With
#   no early stops in short questions, training on short questions cannot unlearn it: only questions at the
#   Solver's edge can (in the worlds where it reached down to b = 2, an untrained Challenger's short questions
#   taught nearly as much as R-Zero's);
# - phrasing: the careful method opens with one of several leads (`World.careful_leads`), the careless one
#   always with the same lead (`World.careless_lead`). Like an LLM whose right reasoning is spread over many
#   phrasings while a shortcut has one, greedy decoding follows the single most likely first token: it takes
#   the shortcut once the trap share exceeds the share of any one careful lead, well before the shortcut wins
#   the vote. That gap between greedy and majority-vote accuracy (self-consistency) is what majority labels
#   can teach.
# Why this shape, and what was measured with it and with the earlier worlds (`V3_WORLD`, `LEADS_WORLD`):
# docs/sandbox.md.

MAX_STEPS = 12
C_RANGE = (10, 99)  # the added number c
A_RANGE = (2, 9)  # the repeated digit a
QUESTION_TEMPLATE = "{c} + {a} * {b} = ?"
CELL_WIDTH = 3  # running totals are written as 3-digit numbers (the largest is 99 + 9 * 12 = 207)
CAREFUL, CARELESS = "careful", "careless"
REFUSAL = "?"  # the Solver's whole answer to a malformed question: no box, so no vote

HELDOUT_SEED = 2_508_050  # disjoint from the pretraining seeds (small integers)
DEV_SEED = 777  # a development set for tuning the run's settings; the held-out set is only for reporting
HELDOUT_PER_CELL = 40  # per number of steps: 12 * 40 = 480 items


@dataclass(frozen=True)
class World:
    """The pretraining corpus's knobs (the only place ground truth is used). Defaults: the shipped world
    (`builtin:arith-sandbox` version 5)."""

    trap_max: float = 1.0  # the logistic's ceiling: the early-stop share of very long questions
    trap_mid: float = 9.0  # steps at which the early-stop share is trap_max / 2
    trap_width: float = 2.5  # logistic width (steps)
    # No early stops below this many steps (0: the logistic alone): the misconception exists only from the Solver's
    # edge on, so training on short questions cannot unlearn it.
    trap_onset: int = 6
    slip_base: float = 0.04  # per-step slip probability: slip_base + slip_per_step * b
    slip_per_step: float = 0.012
    # The first character of a solution: one of the careful leads (uniformly) or the careless lead; empty: no
    # lead (`V3_WORLD`)
    careful_leads: str = "=:>;"
    careless_lead: str = "~"
    max_steps: int = MAX_STEPS
    # steps b in the Solver's corpus: uniform, the skill exists at every length
    solver_step_weights: tuple[float, ...] = (1.0,) * MAX_STEPS
    # ... and in the Challenger's corpus: mostly short (easy) questions, a thin tail of long ones, so the base
    # Challenger writes below the Solver's edge and the uncertainty reward has to pull it up
    challenger_step_weights: tuple[float, ...] = (10, 10, 7, 4, 2, 1, 0.5, 0.25, 0.15, 0.1, 0.05, 0.05)
    challenger_share: float = 0.10  # share of Challenger conversations in a pretraining batch
    # Share of Solver conversations whose question is malformed (one or two character edits away from the form),
    # answered with REFUSAL: the base Solver gives no answer to what it cannot parse, so the Challenger earns
    # nothing for malformed questions (without it, a Challenger learned to write "18 + 8 * * = ?" for reward).
    malformed_share: float = 0.05

    def trap_share(self, steps: int) -> float:
        """Share of the corpus's solutions of a `steps`-step question that stop one step early."""
        if steps < max(2, self.trap_onset):
            return 0.0
        return self.trap_max / (1.0 + math.exp(-(steps - self.trap_mid) / self.trap_width))

    def slip_rate(self, steps: int) -> float:
        """Per-step probability of a wrong ones digit in a `steps`-step solution."""
        return min(0.9, self.slip_base + self.slip_per_step * steps)


DEFAULT_WORLD = World()
# The earlier worlds, measured on held-out with 3 seeds and kept for reproduction (README, "What was tried";
# build one with `build_sandbox_model(target, world=...)`):
# - builtin v3, no leads and early stops at every b >= 2: the labels' decline, but greedy decoding failed only
#   where the early stop also wins the vote, so R-Zero did not beat its untrained-Challenger control;
V3_WORLD = World(trap_max=0.85, trap_mid=7.0, trap_width=1.2, trap_onset=0, careful_leads="", careless_lead="")
# - leads and a wider, later trap at every b >= 2: the Solver improved more, yet the untrained control's short
#   questions taught nearly as much, and the Challenger settled at b ~ 6 where the labels stayed right.
#   Its runs used challenger_training.temperature 1.2 (as the shipped world's do).
LEADS_WORLD = World(trap_max=0.85, trap_mid=8.0, trap_width=1.5, trap_onset=0)
_QUESTION_RE = re.compile(r"^\s*(\d+)\s*\+\s*(\d+)\s*\*\s*(\d+)\s*=\s*\?\s*$")


def make_problem(c: int, a: int, b: int) -> ArithmeticProblem:
    """The sandbox question `c + a * b = ?` with its exact answer (`max_digits` holds its difficulty b)."""
    expression = f"{c} + {a} * {b}"
    value = evaluate_expression(expression)
    if value is None:
        raise ValueError(f"not evaluable: {expression}")
    return ArithmeticProblem(question=QUESTION_TEMPLATE.format(c=c, a=a, b=b), answer=format_answer(value),
                             expression=expression, operators="+*", max_digits=b, num_operands=3, style="plain")


def _written_form(question: str | None) -> tuple[int, int, int] | None:
    """(c, a, b) of a text written `c + a * b = ?`, whatever the numbers."""
    m = _QUESTION_RE.match(str(question or ""))
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def parse_question(question: str | None) -> tuple[int, int, int] | None:
    """(c, a, b) of a question of the sandbox's world — the form `c + a * b = ?` with c, a and b in the world's
    ranges (`C_RANGE`, `A_RANGE`, 1..`MAX_STEPS`) — else None. The ranges matter: in the stretch a Challenger wrote
    `99 + 9 *68 = ?`, which the Solver misreads as a short question; outside the world the labels mean nothing."""
    parsed = _written_form(question)
    if parsed is None:
        return None
    c, a, b = parsed
    in_world = C_RANGE[0] <= c <= C_RANGE[1] and A_RANGE[0] <= a <= A_RANGE[1] and 1 <= b <= MAX_STEPS
    return parsed if in_world else None


def is_sandbox_question(question: str | None) -> bool:
    """Whether a text has the sandbox's question form (the `sandbox` domain's question check)."""
    return parse_question(question) is not None


def question_difficulty(question: str | None) -> int | None:
    """The number of steps b of a sandbox question, None for any other text."""
    parsed = parse_question(question)
    return parsed[2] if parsed else None


def draw_problem(rng: random.Random, step_weights: Sequence[float]) -> ArithmeticProblem:
    """A question with b drawn from `step_weights` (b = 1, 2, ...), c and a uniform."""
    b = rng.choices(range(1, len(step_weights) + 1), step_weights)[0]
    return make_problem(rng.randint(*C_RANGE), rng.randint(*A_RANGE), b)


def worked_solution(c: int, a: int, b: int, steps: int | None = None, slips: dict[int, int] | None = None,
                    lead: str = "") -> str:
    """`lead` (a solution's first character; none in `V3_WORLD`), the running totals of `steps`
    (default b) additions of a to c, then the boxed last total; `slips` maps a step to the wrong ones digit written
    there (the computation goes on from the written total)."""
    slips = slips or {}
    total, cells = c, []
    for j in range(b if steps is None else steps):
        total += a
        if j in slips:
            total = total - total % 10 + slips[j]
        cells.append(f"{total:0{CELL_WIDTH}d}")
    return lead + " ".join(cells) + f" \\boxed{{{total}}}"


def early_stop_answer(c: int, a: int, b: int) -> str:
    """The misconception's answer: one step too few."""
    return str(c + a * (b - 1))


def corpus_solution(rng: random.Random, c: int, a: int, b: int, world: World = DEFAULT_WORLD) -> tuple[str, str]:
    """(method, worked solution) as the pretraining corpus writes it: one step early with the world's trap share,
    each step's ones digit slipped with its slip rate, opened by the careless lead or one of the careful ones."""
    method = CARELESS if rng.random() < world.trap_share(b) else CAREFUL
    steps = b - 1 if method == CARELESS else b
    if method == CARELESS:
        lead = world.careless_lead
    else:  # no draw without leads: V3_WORLD's random stream is the one builtin v3 was built from
        lead = rng.choice(world.careful_leads) if world.careful_leads else ""
    rate = world.slip_rate(b)
    slips, total = {}, c
    for j in range(steps):
        total += a
        if rng.random() < rate:
            slips[j] = rng.choice([d for d in range(10) if d != total % 10])
            total = total - total % 10 + slips[j]
    return method, worked_solution(c, a, b, steps, slips, lead)


_EDIT_CHARS = "0123456789+*= ?"


def malformed_question(rng: random.Random, question: str) -> str:
    """One or two random character edits of a sandbox question that leave it outside the sandbox's form."""
    while True:
        text = question
        for _ in range(rng.randint(1, 2)):
            i = rng.randrange(len(text))
            kind = rng.randrange(3)
            if kind == 0 and len(text) > 1:
                text = text[:i] + text[i + 1:]
            elif kind == 1:
                text = text[:i] + rng.choice(_EDIT_CHARS) + text[i:]
            else:
                text = text[:i] + rng.choice(_EDIT_CHARS) + text[i + 1:]
        # the written form, not the world's ranges: the corpora builtins v3 and v5 were built from are drawn so
        if _written_form(text) is None and text.strip():
            return text


def sandbox_heldout_problems(per_cell: int = HELDOUT_PER_CELL, seed: int = HELDOUT_SEED,
                             max_steps: int = MAX_STEPS) -> list[ArithmeticProblem]:
    """The fixed held-out set: `per_cell` distinct questions per number of steps 1..max_steps."""
    rng = random.Random(seed)
    problems = []
    for b in range(1, max_steps + 1):
        seen: set[str] = set()
        while len(seen) < per_cell:
            p = make_problem(rng.randint(*C_RANGE), rng.randint(*A_RANGE), b)
            if p.expression in seen:
                continue
            seen.add(p.expression)
            problems.append(p)
    return problems


def sandbox_dev_problems(per_cell: int = HELDOUT_PER_CELL) -> list[ArithmeticProblem]:
    """A development set shaped like the held-out set (another seed): what settings were tuned on."""
    return sandbox_heldout_problems(per_cell, seed=DEV_SEED)


_NUMBER_RE = re.compile(r"\d+")


def operand_digits(question: str | None) -> int | None:
    """Digits of the largest number in a question ("47 + 385 = ?" -> 3), None without numbers."""
    if not question:
        return None
    numbers = _NUMBER_RE.findall(str(question))
    return max(len(n.lstrip("0") or "0") for n in numbers) if numbers else None

