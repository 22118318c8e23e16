"""The roles' prompts and how chat messages become the text a model continues.

The math prompts (verbatim, the strings the authors' models were trained
on), the arithmetic-domain prompts of the CPU demo, and `PromptSpec`
(system prompt, user turn, optional format demonstrations: small models follow
the roles' formats only with demonstrations, docs/notes.md). Every prompt is
rendered to text here, once, so generation and training cannot render it
differently. A tokenizer is only duck-typed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from rzero_lib.arithmetic import generate_problems

Message = dict[str, str]

# --- math domain: the authors' prompts, verbatim ----------------------------------
# Source: github.com/Chengsong-Huang/R-Zero @5699329, verl/utils/dataset.py:167-196 (Challenger training and
# the Solver), identical in question_generate/question_generate.py:63-88 (question generation) and, for the
# Solver, in the reward server, the voting script and the math evaluation. The paper's appendix prints the same
# prompts typeset (per secondary transcriptions: "30%" without the space, no "**", "final answer" with a space),
# which we read as LaTeX rendering of these strings (not checked against the PDF). The same prompts serve both
# presets. tests/fixtures/authors_prompts/ holds the source text with its sha256; a test compares.
CHALLENGER_SYSTEM_PAPER = (
    "You are an expert competition-math problem setter.\n"
    "FIRST, in your private scratch-pad, think step-by-step to design a brand-new, non-trivial problem. "
    "The problem could come from any field of mathematics, including but not limited to algebra, geometry, "
    "number theory, combinatorics, prealgebra, probability, statistics, and calculus. "
    "Aim for a difficulty such that fewer than 30 % of advanced high-school students could solve it. "
    "Avoid re-using textbook clich\u00e9s or famous contest problems.\n"
    "THEN, without revealing any of your private thoughts, output **exactly** the following two blocks:\n\n"
    "<question>\n"
    "{The full problem statement on one or more lines}\n"
    "</question>\n\n"
    "\\boxed{final_answer}"
    "\n\n"
    "Do NOT output anything else\u2014no explanations, no extra markup."
)
CHALLENGER_USER_PAPER = (
    "Generate one new, challenging reasoning question now. "
    "Remember to format the output exactly as instructed."
)
SOLVER_SYSTEM_PAPER = "Please reason step by step, and put your final answer within \\boxed{}."

# --- arithmetic domain -------------------------------------------------------

CHALLENGER_SYSTEM_ARITHMETIC = (
    "You write arithmetic problems. Write one new, hard arithmetic question with a single exact "
    "numeric answer, inside <question></question>, then its answer as \\boxed{answer}."
)
CHALLENGER_USER_ARITHMETIC = "Write a new problem."
SOLVER_SYSTEM_ARITHMETIC = "Solve the problem. Put your final answer within \\boxed{}."


@dataclass(frozen=True)
class PromptSpec:
    """A role's prompt: system text, user turn, and optional demonstrations.

    `demonstrations` are (user, assistant) pairs placed as earlier chat turns.
    For the Solver the user turn is a template with `{question}`.
    """

    system: str
    user: str
    demonstrations: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def messages(self, question: str | None = None) -> list[Message]:
        msgs: list[Message] = []
        if self.system:
            msgs.append({"role": "system", "content": self.system})
        for user, assistant in self.demonstrations:
            msgs.append({"role": "user", "content": user})
            msgs.append({"role": "assistant", "content": assistant})
        user = self.user.replace("{question}", question) if question is not None else self.user
        msgs.append({"role": "user", "content": user})
        return msgs


def solver_messages(spec: PromptSpec, question: str) -> list[Message]:
    """The Solver's conversation for one question."""
    if "{question}" not in spec.user:
        raise ValueError("the Solver's user turn must contain '{question}'")
    return spec.messages(question)


def prompt_digest(spec: PromptSpec) -> str:
    """A short hash of a prompt (system, user turn, demonstrations) for cache keys."""
    text = json.dumps([spec.system, spec.user, [list(d) for d in spec.demonstrations]])
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render_plain(messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
    """`system: ...\\nuser: ...\\nassistant:` for tokenizers without a chat template."""
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    if add_generation_prompt:
        lines.append("assistant:")
    return "\n".join(lines) + ("" if add_generation_prompt else "\n")


def render_prompt(tokenizer, messages: Sequence[Message] | str, add_generation_prompt: bool = True) -> str:
    """Text a model continues: chat template when the tokenizer has one, else plain text.

    A string is returned unchanged (already-rendered or raw-text prompts).
    """
    if isinstance(messages, str):
        return messages
    if tokenizer is not None and has_chat_template(tokenizer):
        return tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
        )
    return render_plain(messages, add_generation_prompt=add_generation_prompt)


def paper_challenger_prompt() -> PromptSpec:
    return PromptSpec(CHALLENGER_SYSTEM_PAPER, CHALLENGER_USER_PAPER)


def paper_solver_prompt() -> PromptSpec:
    return PromptSpec(SOLVER_SYSTEM_PAPER, "{question}")


def arithmetic_challenger_demonstrations(count: int = 3, seed: int = 7) -> tuple[tuple[str, str], ...]:
    """Format demonstrations for the Challenger: `<question>...</question>` then `\\boxed{}`."""
    problems = generate_problems(count, seed=seed, min_digits=1, max_digits=2, operators="+-*",
                                 num_operands=(2, 3))
    return tuple(
        (CHALLENGER_USER_ARITHMETIC, f"<question>{p.question}</question>\n\\boxed{{{p.answer}}}")
        for p in problems
    )


def arithmetic_solver_demonstrations(count: int = 2, seed: int = 11) -> tuple[tuple[str, str], ...]:
    """Solved examples for the Solver, each ending in a boxed answer."""
    problems = generate_problems(count, seed=seed, min_digits=1, max_digits=2, operators="+-*")
    return tuple(
        (p.question, f"{p.expression} = {p.answer}. The answer is \\boxed{{{p.answer}}}.")
        for p in problems
    )
