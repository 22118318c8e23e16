"""Tests for rzero_lib.arithmetic: problem generation and the exact evaluator."""

from __future__ import annotations

import hashlib
import re
from dataclasses import FrozenInstanceError
from fractions import Fraction

import pytest

from rzero_lib.arithmetic import (
    ArithmeticProblem,
    builtin_eval_set,
    evaluate_expression,
    format_answer,
    generate_problems,
)


def _independent_value(expression: str) -> Fraction:
    """Evaluate "a op b op c ..." (no parentheses) with explicit precedence, without the module's evaluator."""
    tokens = expression.split()
    numbers = [Fraction(int(token)) for token in tokens[0::2]]
    ops = tokens[1::2]
    # First * and /, left to right, then + and -.
    terms = [numbers[0]]
    additive_ops = []
    for op, number in zip(ops, numbers[1:]):
        if op == "*":
            terms[-1] *= number
        elif op == "/":
            terms[-1] /= number
        else:
            additive_ops.append(op)
            terms.append(number)
    total = terms[0]
    for op, term in zip(additive_ops, terms[1:]):
        total = total + term if op == "+" else total - term
    return total


def _operands(expression: str) -> list[int]:
    return [int(token) for token in re.findall(r"\d+", expression)]


# --- generation ------------------------------------------------------------------


def test_same_seed_same_problems_and_different_seeds_differ():
    kwargs = dict(min_digits=1, max_digits=3, operators="+-*/", num_operands=(2, 4))
    first = generate_problems(200, seed=5, **kwargs)
    assert first == generate_problems(200, seed=5, **kwargs)
    assert [p.question for p in first] != [p.question for p in generate_problems(200, seed=6, **kwargs)]


def test_generation_does_not_touch_the_global_rng():
    import random

    random.seed(99)
    expected = random.random()
    random.seed(99)
    generate_problems(50, seed=1)
    assert random.random() == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(min_digits=2, max_digits=4, operators="+-*", num_operands=(2, 5)),
        dict(min_digits=1, max_digits=2, operators="+-*/", num_operands=(2, 4)),
        dict(min_digits=1, max_digits=3, operators="/", num_operands=(2, 3)),
        dict(min_digits=1, max_digits=3, operators="+-*/", num_operands=(2, 4), integer_division=False),
        dict(min_digits=12, max_digits=12, operators="*", num_operands=(8, 8)),
        dict(style="word", operators="+-*/"),
        dict(style="mixed", operators="+-*/", num_operands=(2, 3)),
    ],
)
def test_answers_are_exact_and_ranges_respected(kwargs):
    problems = generate_problems(150, seed=3, **kwargs)
    assert len(problems) == 150
    min_digits, max_digits = kwargs.get("min_digits", 1), kwargs.get("max_digits", 2)
    low, high = kwargs.get("num_operands", (2, 2))
    allowed_ops = set(kwargs.get("operators", "+-*"))
    for problem in problems:
        expected = _independent_value(problem.expression)
        assert problem.answer == format_answer(expected)
        assert evaluate_expression(problem.expression) == expected
        operands = _operands(problem.expression)
        assert all(min_digits <= len(str(x)) <= max_digits for x in operands)
        assert all(x >= 1 for x in operands)
        assert problem.max_digits == max(len(str(x)) for x in operands)
        assert problem.num_operands == len(operands)
        assert low <= problem.num_operands <= high
        used = set(re.findall(r"[-+*/]", problem.expression))
        assert used <= allowed_ops
        assert problem.operators == "".join(op for op in "+-*/" if op in used)
        assert problem.question.isascii()
        if problem.style == "plain":
            assert problem.expression in problem.question
        else:
            assert problem.style == "word"
            a, b = operands
            assert str(a) in problem.question and str(b) in problem.question
        if kwargs.get("integer_division", True) or problem.style == "word":
            assert expected.denominator == 1
        if problem.style == "word":
            assert expected >= 0


def test_fraction_answers_when_integer_division_is_off():
    problems = generate_problems(200, seed=2, operators="/", integer_division=False)
    assert any("/" in p.answer for p in problems)
    for problem in problems:
        a, b = _operands(problem.expression)
        assert problem.answer == format_answer(Fraction(a, b))


def test_no_duplicates_when_avoidable_and_repeats_when_not():
    problems = generate_problems(
        500, seed=0, min_digits=2, max_digits=3, operators="+-*/", num_operands=(2, 3)
    )
    assert len({p.expression for p in problems}) == 500
    # 1-digit a + b has only 81 expressions: asking for 100 must still return 100.
    small = generate_problems(100, seed=0, min_digits=1, max_digits=1, operators="+")
    assert len(small) == 100
    assert len({p.expression for p in small}) == 81


def test_styles():
    assert {p.style for p in generate_problems(50, seed=1)} == {"plain"}
    assert {p.style for p in generate_problems(50, seed=1, style="word")} == {"word"}
    assert {p.style for p in generate_problems(100, seed=1, style="mixed")} == {"plain", "word"}
    # Longer problems in "mixed" are plain.
    mixed = generate_problems(100, seed=1, style="mixed", num_operands=(3, 4))
    assert {p.style for p in mixed} == {"plain"}


def test_problem_is_frozen():
    problem = generate_problems(1)[0]
    assert isinstance(problem, ArithmeticProblem)
    with pytest.raises(FrozenInstanceError):
        problem.answer = "0"  # type: ignore[misc]


def test_zero_problems():
    assert generate_problems(0) == []


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        (dict(n=-1), "n"),
        (dict(n=2.5), "n"),
        (dict(n=True), "n"),
        (dict(seed="x"), "seed"),
        (dict(min_digits=0), "min_digits"),
        (dict(min_digits=13, max_digits=13), "min_digits"),
        (dict(min_digits=3, max_digits=2), "max_digits"),
        (dict(max_digits=13), "max_digits"),
        (dict(operators=""), "operators"),
        (dict(operators="+x"), "operators"),
        (dict(operators="%"), "operators"),
        (dict(num_operands=(1, 2)), "num_operands"),
        (dict(num_operands=(3, 2)), "num_operands"),
        (dict(num_operands=(2, 9)), "num_operands"),
        (dict(num_operands=(2,)), "num_operands"),
        (dict(num_operands=3), "num_operands"),
        (dict(style="fancy"), "style"),
        (dict(style="word", num_operands=(2, 3)), "num_operands"),
        (dict(integer_division="yes"), "integer_division"),
    ],
)
def test_validation_errors_name_the_parameter(kwargs, parameter):
    arguments = dict(n=3) | kwargs
    with pytest.raises(ValueError, match=rf"^{parameter}\b"):
        generate_problems(**arguments)


def test_impossible_exact_division_is_a_clear_error():
    # a / b / c with two-digit numbers: b * c >= 100 can never divide a two-digit a.
    with pytest.raises(ValueError, match="integer_division"):
        generate_problems(3, min_digits=2, max_digits=2, operators="/", num_operands=(3, 3))


# --- built-in evaluation set ---------------------------------------------------------


def test_builtin_eval_set_is_pinned():
    problems = builtin_eval_set()
    assert len(problems) == 100
    assert problems == builtin_eval_set()
    first_ten = "\n".join(p.question for p in problems[:10]).encode()
    assert hashlib.sha256(first_ten).hexdigest() == (
        "3d9d5b52598ce5718a24c228dd994839568ae9d9a7a9b1b62f4d72cdf7b63bda"
    )
    assert problems[0].question == "Tom has 2 apples and picks 6 more. How many apples does Tom have now?"
    assert problems[0].answer == "8"


def test_builtin_eval_set_content():
    problems = builtin_eval_set()
    assert {p.style for p in problems} == {"plain", "word"}
    assert len({p.expression for p in problems}) == len(problems)
    for problem in problems:
        assert problem.num_operands == 2
        assert problem.max_digits <= 2
        assert set(problem.operators) <= set("+-*")
        assert problem.answer == format_answer(_independent_value(problem.expression))
    assert len(builtin_eval_set(20)) == 20


# --- evaluator and formatting ------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("47 + 38", Fraction(85)),
        ("236 - 17 * 79", Fraction(236 - 17 * 79)),
        ("(12 - 5) * 3", Fraction(21)),
        ("7 / 2", Fraction(7, 2)),
        ("8 / 4 / 2", Fraction(1)),
        ("2^10", Fraction(1024)),
        ("2 ** 10", Fraction(1024)),
        ("2^3^2", Fraction(512)),
        ("-3^2", Fraction(-9)),
        ("(-3)^2", Fraction(9)),
        ("2^-2", Fraction(1, 4)),
        ("0.1 + 0.2", Fraction(3, 10)),
        ("1.25 * 4", Fraction(5)),
        (".5 + 1.", Fraction(3, 2)),
        ("007 + 1", Fraction(8)),
        ("--5", Fraction(5)),
        ("+5 - -5", Fraction(10)),
        ("10^60 / 10^59", Fraction(10)),
    ],
)
def test_evaluate_expression(expression, expected):
    assert evaluate_expression(expression) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "   ",
        "1 / 0",
        "1 / (2 - 2)",
        "0 ^ 0",
        "0 ^ -1",
        "2 ^ 0.5",
        "2 ** 65",
        "9**9**9**9",
        "10^100 * 10^100",
        "(10^60)^8",
        "7 // 2",
        "7 % 2",
        "2(3)",
        "(1)(2)",
        "1 2",
        "abs(1)",
        "1e5",
        "1_000",
        "1j",
        "x + 1",
        "(" * 41 + "1" + ")" * 41,
        "(1",
        "1)",
        "-" * 400 + "1",
        "1" + " + 1" * 300,
        "1 + 1\n",
        None,
        12,
    ],
)
def test_evaluate_expression_refuses(expression):
    assert evaluate_expression(expression) is None


def test_format_answer():
    assert format_answer(Fraction(123)) == "123"
    assert format_answer(Fraction(-5)) == "-5"
    assert format_answer(Fraction(14, 6)) == "7/3"
    assert format_answer(Fraction(-7, 3)) == "-7/3"
    assert format_answer(Fraction(0)) == "0"
    assert format_answer(42) == "42"
    with pytest.raises(TypeError):
        format_answer(0.5)  # type: ignore[arg-type]
