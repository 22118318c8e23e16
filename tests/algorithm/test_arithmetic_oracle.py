"""Tests for rzero_lib.oracle: the exact arithmetic oracle and its safe evaluation."""

from __future__ import annotations

import random
import time

import pytest

from rzero_lib.arithmetic import generate_problems
from rzero_lib.oracle import (
    MAX_QUESTION_CHARS,
    ArithmeticOracle,
    Oracle,
    arithmetic_answer,
    coverage,
    extract_expression,
)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # plain phrasings
        ("What is 47 + 38?", "85"),
        ("Compute 236 - 17 * 79.", str(236 - 17 * 79)),
        ("Compute (12 - 5) * 3.", "21"),
        ("Calculate 2^10", "1024"),
        ("Calculate 2**10.", "1024"),
        ("17 * 6 - 25 = ?", "77"),
        ("17*6-25=", "77"),
        ("Evaluate: 100 / 8", "25/2"),
        ("What is the value of 3 + 4 * 5?", "23"),
        ("What is 12 + 7? Put the answer in \\boxed{}.", "19"),
        ("What is 12 + 7? Please reason step by step, and put your final answer within \\boxed{}.", "19"),
        ("<question>What is 6 * 7?</question>", "42"),
        ("Work out  8 + 9  please", "17"),
        ("(What is 3 + 4)?", "7"),
        ('Compute "3 + 4".', "7"),
        # unicode operators
        ("What is 3 × 4 ÷ 2?", "6"),
        ("What is 10 − 3?", "7"),
        ("What is 10 – 13?", "-3"),
        ("6 · 7", "42"),
        ("5² + 1", "26"),
        ("2⁻¹ + 2³", "17/2"),
        ("What is 2\u00a0+\u00a02?", "4"),
        # LaTeX
        ("Compute $3 \\times 4$.", "12"),
        ("\\(2 \\cdot 5 - 1\\)", "9"),
        ("$12 \\div 8$", "3/2"),
        ("\\frac{1}{2} + 3", "7/2"),
        ("\\dfrac{3}{4} \\cdot 8", "6"),
        ("\\frac12 + \\frac13", "5/6"),
        ("\\frac{\\frac{1}{2}}{3}", "1/6"),
        ("\\frac{2 + 4}{3 - 1}", "3"),
        ("2^{10} - 1", "1023"),
        ("\\left( 1 + 2 \\right) \\times 3", "9"),
        ("\\[ (2+3)^{2} \\]", "25"),
        ("$1{,}000 + 1$", "1001"),
        ("$1\\,000 \\times 3$", "3000"),
        # words for operators
        ("What is 3 plus 4?", "7"),
        ("What is 10 minus 15?", "-5"),
        ("What is 6 times 7?", "42"),
        ("What is 6 multiplied by 7?", "42"),
        ("What is 7 divided by 2?", "7/2"),
        ("What is 2 to the power of 5?", "32"),
        # fractions, decimals, negatives, precedence, powers
        ("What is 1/3 + 1/6?", "1/2"),
        ("What is 0.1 + 0.2?", "3/10"),
        ("What is 2.5 * 4?", "10"),
        ("What is 3.5 + 2.5.", "6"),
        ("What is .5 + .25?", "3/4"),
        ("What is -5 + 3?", "-2"),
        ("What is 5 - -3?", "8"),
        ("What is 5 + (-3)?", "2"),
        ("What is -3^2?", "-9"),
        ("What is (-3)^2?", "9"),
        ("What is 2^3^2?", "512"),
        ("What is 2^-3?", "1/8"),
        ("What is 8 / 4 / 2?", "1"),
        ("What is 2 + 3 * 4 - 6 / 3?", "12"),
        ("What is ((2 + 3) * (4 - 1))^2?", "225"),
        ("What is 1,234,567 + 1?", "1234568"),
        ("What is 1,234 * 2?", "2468"),
        ("What is 007 + 1?", "8"),
        ("What is 10^60 / 10^58?", "100"),
    ],
)
def test_evaluates(question, expected):
    assert arithmetic_answer(question) == expected


@pytest.mark.parametrize(
    "question",
    [
        "",
        "What is 5?",
        "What is the capital of France?",
        "Tom has 3 apples and 4 pears. How many fruits does he have?",
        "3 apples and 4 pears",
        "Problem 1: What is 3 + 4?",
        "Compute 3 + 4 and 5 + 6.",
        "What is 3 + 4? Then compute 5 * 6.",
        "Is 2 + 2 = 5?",
        "Round 7 / 3 to 2 decimal places.",
        "What is 7 / 3 rounded to the nearest integer?",
        "What is the remainder when 17 + 5 is divided by 3?",
        "What is 17 mod 5?",
        "What is 3 + 4 squared?",
        "What is \\sqrt{16} + 2?",
        "What is |3 - 5|?",
        "What is 20% of 50?",
        "What is 5 + 3!?",
        "How many digits does 2^10 have?",
        "What is 3 + 4 in binary?",
        "What is 2 + \\pi?",
        "Solve 2x + 3 = 7.",
        "What is x - 5 + 3?",
        "What is f(x) - 5 + 3?",
        "What is 3 + 4 y?",
        "What is 3 x 4?",
        "What is 2(3 + 4)?",
        "What is 1e5 + 1?",
        "What is 1 2 + 3?",
        "What is 7 // 2?",
        "What is 1,5 + 2?",
        "What is 4^0.5?",
        "What is 0^0?",
        "What is 3 + ?",
        "\\frac{1}{",
        "\\frac{1}{0} + 1",
        "What is 3 + 4 \\alpha?",
        "What is x_2 + 3?",
        "What is ٣ + 4?",
        None,
        12,
    ],
)
def test_not_evaluable(question):
    assert arithmetic_answer(question) is None


def test_word_problems_are_not_evaluable():
    problems = generate_problems(200, seed=4, operators="+-*/", style="word")
    assert all(arithmetic_answer(p.question) is None for p in problems)


ADVERSARIAL = [
    "__import__('os').system('ls')",
    "What is __import__('os').system('echo pwned') + 1?",
    "().__class__.__bases__[0].__subclasses__()",
    "(1).__class__.__mro__[1].__subclasses__()[0]",
    "1 .real.imag.numerator + 2",
    "(1).bit_length() + 2",
    "globals()['__builtins__']",
    "exec('1 + 1')",
    "eval('2 + 2')",
    "open('/etc/passwd').read()",
    "import os; 1 + 1",
    "9**9**9**9",
    "What is 9^9^9^9?",
    "2**100000",
    "10**10**10",
    "2 ** 64 ** 2",
    "(10**100)**10",
    "10**100 * 10**100",
    "99999999999999999999 ** 64",
    "100000!",
    "What is 100000! + 1?",
    "factorial(100000)",
    "math.factorial(100000) + 1",
    "(" * 10_000 + "1" + ")" * 10_000,
    "(" * 900 + "1 + 1" + ")" * 900,
    "-" * 1_990 + "1 + 1",
    "2" + "^2" * 900,
    "1" * 1_500 + " + 1",
    "1+" * 500_000 + "1",
    "1/0",
    "What is 5 / (3 - 3)?",
    "0^-1 + 1",
    "lambda: 1",
    "(lambda: 1)() + 2",
    "[1]*10**9",
    "'a'*10**9",
    '"a" * 10 ** 9',
    "[i for i in range(10**9)]",
    "(x := 10**9) + 1",
    "1 if 1 else 2",
    "1 << 1000000",
    "1 < 2 + 3",
    "~1 + 2",
    "True + 1",
    "1j + 2",
    "b'1' + 2",
    "f'{1}' + 2",
    "1 + 1\x00",
    "\x00",
    "What is 2 + 2?\x00",
    "\x1b[2J 1 + 1",
    "\\frac" * 400,
    "\\frac{" * 300 + "1",
    "\\frac{1}{2}" * 180,
    "{" * 900 + "1 + 1" + "}" * 900,
    "^" * 1_999,
    "1" + "*1" * 999,
]


@pytest.mark.parametrize("question", ADVERSARIAL, ids=[f"adversarial{i}" for i in range(len(ADVERSARIAL))])
def test_adversarial_inputs_are_refused_quickly(question):
    started = time.perf_counter()
    result = arithmetic_answer(question)
    elapsed = time.perf_counter() - started
    assert result is None
    assert elapsed < 0.1, f"took {elapsed:.3f} s"


def test_one_megabyte_of_digits_and_operators_is_refused_quickly():
    rng = random.Random(0)
    noise = "".join(rng.choices("0123456789+-*/()^ ", k=1_000_000))
    for question in (noise, "What is " + noise + "?"):
        started = time.perf_counter()
        assert arithmetic_answer(question) is None
        assert time.perf_counter() - started < 0.1


def test_random_noise_near_the_length_limit_is_fast():
    # Many short random strings inside the length bound: never an exception, always quick.
    rng = random.Random(1)
    alphabet = "0123456789+-*/()^. x{}\\frac\\times"
    for _ in range(200):
        question = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, MAX_QUESTION_CHARS)))
        started = time.perf_counter()
        result = arithmetic_answer(question)
        assert result is None or isinstance(result, str)
        assert time.perf_counter() - started < 0.1


def test_length_bound():
    question = "What is 1 + 1?" + " " * MAX_QUESTION_CHARS
    assert arithmetic_answer(question) is None
    assert arithmetic_answer("What is 1 + 1?" + " " * 100) == "2"


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(min_digits=1, max_digits=4, operators="+-*/", num_operands=(2, 5)),
        dict(min_digits=1, max_digits=3, operators="+-*/", num_operands=(2, 4), integer_division=False),
        dict(min_digits=5, max_digits=12, operators="+-*", num_operands=(2, 8)),
    ],
)
def test_round_trip_with_generated_plain_problems(kwargs):
    problems = generate_problems(500, seed=11, style="plain", **kwargs)
    for problem in problems:
        assert arithmetic_answer(problem.question) == problem.answer, problem.question


def test_extract_expression():
    assert extract_expression("What is 47 + 38?") == "47 + 38"
    assert extract_expression("Compute $3 \\times 4$.") == "3 * 4"
    assert extract_expression("\\frac{1}{2} + 3") == "((1)/(2)) + 3"
    assert extract_expression("Tom has 3 apples and 4 pears.") is None


def test_oracle_classes():
    oracle = ArithmeticOracle()
    assert isinstance(oracle, Oracle)
    assert oracle.name == "arithmetic"
    assert oracle.answer("What is 2 + 2?") == "4"
    questions = ["What is 2 + 2?", "What is the capital of France?", "7 / 2 = ?"]
    answers = oracle.answer_many(questions)
    assert answers == ["4", None, "7/2"]
    assert coverage(answers) == pytest.approx(2 / 3)
    assert coverage([]) == 0.0
    with pytest.raises(TypeError):
        Oracle()  # type: ignore[abstract]


def test_oracle_module_imports_no_torch():
    import subprocess
    import sys

    code = (
        "import sys, rzero_lib.oracle, rzero_lib.arithmetic; "
        "print('torch' in sys.modules or 'transformers' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
