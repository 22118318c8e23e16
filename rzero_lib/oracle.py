"""Oracles: trusted reference answers that measure pseudo-label accuracy.

`Oracle` is the interface (`answer(question)` -> reference answer or None,
"cannot answer"); `ArithmeticOracle` is the exact one for questions that state
an arithmetic computation (`rzero_lib.arithmetic_expressions`). Model- and
API-backed oracles, and the choice from a run's parameters, are in
`rzero_lib.engine.oracles`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import ClassVar

from rzero_lib.arithmetic_expressions import MAX_QUESTION_CHARS, arithmetic_answer, extract_expression

__all__ = ["MAX_QUESTION_CHARS", "ArithmeticOracle", "NoOracleError", "Oracle", "arithmetic_answer", "coverage",
           "extract_expression"]


class NoOracleError(ValueError):
    """No oracle is configured and the run's domain has no default one."""


class Oracle(ABC):
    """A source of trusted reference answers. `answer` returns None when it cannot answer."""

    name: ClassVar[str] = "oracle"
    exact: ClassVar[bool] = False  # True when the answers are exact by construction (no model involved)

    @abstractmethod
    def answer(self, question: str) -> str | None:
        """The reference answer to one question, or None."""

    def answer_many(self, questions: Iterable[str]) -> list[str | None]:
        """Reference answers in the order of `questions`; oracles that batch override this."""
        return [self.answer(question) for question in questions]

    @property
    def cache_key(self) -> str:
        """What identifies this oracle's answers in a cache (kind plus model and settings)."""
        return self.name

    def describe(self) -> str:
        """One line for reports and figure captions."""
        return self.cache_key

    def close(self) -> None:
        """Release what the oracle holds (a loaded model); it reloads on the next question."""
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def coverage(answers: Sequence[str | None]) -> float:
    """Share of answers that are not None (0.0 for no answers)."""
    return sum(answer is not None for answer in answers) / len(answers) if answers else 0.0


class ArithmeticOracle(Oracle):
    """Exact answers for questions that state an arithmetic computation; None for everything else."""

    name: ClassVar[str] = "arithmetic"
    exact: ClassVar[bool] = True

    def answer(self, question: str) -> str | None:
        return arithmetic_answer(question)
