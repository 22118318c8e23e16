"""Arithmetic problems with exact answers, and the project's one safe exact evaluator.

`generate_problems` draws deterministic (per seed) plain or word problems with
their exact answers and expressions; `builtin_eval_set` is the fixed
100-problem `arithmetic` benchmark; `evaluate_expression` gives the exact value
(`fractions.Fraction`) of a plain ASCII expression or None: the text is only
parsed and the tree walked with a whitelist, never executed, within bounds on
length, nesting, exponents and size. Simplifications: docs/algorithm.md,
"Arithmetic problems and the safe evaluator".
"""

from __future__ import annotations

import ast
import random
import re
from dataclasses import dataclass
from fractions import Fraction

# ----------------------------------------------------------------------------
# Safe exact evaluator
# ----------------------------------------------------------------------------

MAX_EXPRESSION_CHARS = 1_000
MAX_PAREN_DEPTH = 40
MAX_TREE_DEPTH = 200
MAX_EXPONENT = 64
MAX_VALUE_BITS = 400

_EXPRESSION_CHARS = frozenset("0123456789.+-*/()^ \t")
# Python rejects "007"; people write it. Zeros before a digit that do not follow
# a digit or a decimal point are dropped ("007" -> "7", "0.5" and "100" stay).
_LEADING_ZEROS = re.compile(r"(?<![0-9.])0+(?=[0-9])")


class _NotEvaluable(Exception):
    """Raised inside the tree walk; turned into None at the boundary."""


def evaluate_expression(expression: str) -> Fraction | None:
    """Exact value of a plain ASCII arithmetic expression, or None if it is not evaluable.

    Accepted: integers, decimals ("1.25" is read as exactly 5/4), + - * /,
    powers as `**` or `^` (right-associative, integer exponents only), unary
    signs, parentheses and spaces. Anything else, a division by zero, or a
    value beyond the size bounds gives None.
    """
    if not isinstance(expression, str) or len(expression) > MAX_EXPRESSION_CHARS:
        return None
    if not expression.strip() or not _EXPRESSION_CHARS.issuperset(expression):
        return None
    if not _parentheses_ok(expression):
        return None
    source = _LEADING_ZEROS.sub("", expression.replace("^", "**")).strip()
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None
    try:
        return _evaluate_node(tree.body, source, 0)
    except (_NotEvaluable, ZeroDivisionError, RecursionError, MemoryError, OverflowError, ValueError):
        return None


def format_answer(value: Fraction | int) -> str:
    """The canonical answer string: "123", "-5", or a reduced fraction "7/3"."""
    if isinstance(value, bool) or not isinstance(value, int | Fraction):
        raise TypeError(f"value must be an int or a Fraction, got {type(value).__name__}")
    return str(Fraction(value))


def _parentheses_ok(expression: str) -> bool:
    """Balanced and at most MAX_PAREN_DEPTH deep (checked before ast.parse, which can blow the stack)."""
    depth = 0
    for char in expression:
        if char == "(":
            depth += 1
            if depth > MAX_PAREN_DEPTH:
                return False
        elif char == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _evaluate_node(node: ast.AST, source: str, depth: int) -> Fraction:
    if depth > MAX_TREE_DEPTH:
        raise _NotEvaluable("expression nested too deeply")
    if isinstance(node, ast.Constant):
        # bool is a subclass of int; complex/str/bytes/None are not numbers here.
        if type(node.value) not in (int, float):
            raise _NotEvaluable("not a real number literal")
        # Read the literal from its text so "0.1" is exactly 1/10, not the float.
        value = Fraction(source[node.col_offset : node.end_col_offset])
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        operand = _evaluate_node(node.operand, source, depth + 1)
        value = -operand if isinstance(node.op, ast.USub) else operand
    elif isinstance(node, ast.BinOp):
        left = _evaluate_node(node.left, source, depth + 1)
        right = _evaluate_node(node.right, source, depth + 1)
        if isinstance(node.op, ast.Add):
            value = left + right
        elif isinstance(node.op, ast.Sub):
            value = left - right
        elif isinstance(node.op, ast.Mult):
            value = left * right
        elif isinstance(node.op, ast.Div):
            if right == 0:
                raise _NotEvaluable("division by zero")
            value = left / right
        elif isinstance(node.op, ast.Pow):
            value = _power(left, right)
        else:
            raise _NotEvaluable(f"operator {type(node.op).__name__} not allowed")
    else:
        raise _NotEvaluable(f"{type(node).__name__} not allowed")
    if value.numerator.bit_length() > MAX_VALUE_BITS or value.denominator.bit_length() > MAX_VALUE_BITS:
        raise _NotEvaluable("value too large")
    return value


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1:
        raise _NotEvaluable("non-integer exponent")
    power = exponent.numerator
    if abs(power) > MAX_EXPONENT:
        raise _NotEvaluable("exponent too large")
    if base == 0 and power <= 0:
        raise _NotEvaluable("0 to a non-positive power")
    # Reject a result that is surely too large before building it (the size
    # check after every step catches the rest).
    base_bits = max(base.numerator.bit_length(), base.denominator.bit_length())
    if (base_bits - 1) * abs(power) > MAX_VALUE_BITS:
        raise _NotEvaluable("power too large")
    return base**power


# ----------------------------------------------------------------------------
# Problems
# ----------------------------------------------------------------------------

ALLOWED_OPERATORS = "+-*/"
MAX_DIGITS = 12
MAX_OPERANDS = 8
STYLES = ("plain", "word", "mixed")

# How often to redraw a problem that repeats an earlier expression before
# accepting the repeat (small spaces such as 1-digit "a + b" run out).
_DUPLICATE_RETRIES = 50
# How often to redraw a problem whose divisions cannot be made exact.
_DIVISION_RETRIES = 1_000


@dataclass(frozen=True)
class ArithmeticProblem:
    """One problem. `question` is what a Solver sees; `answer` is exact ("85", "-5", "7/3")."""

    question: str
    answer: str
    expression: str  # plain ASCII infix, e.g. "47 + 38 * 2"
    operators: str  # the operators that occur in `expression`, in the order "+-*/"
    max_digits: int  # digit count of the largest operand
    num_operands: int
    style: str  # "plain" or "word"


_PLAIN_TEMPLATES = (
    "What is {e}?",
    "Compute {e}.",
    "Calculate {e}.",
    "Evaluate {e}.",
    "What is the value of {e}?",
    "Find {e}.",
    "{e} = ?",
)

_NAMES = ("Tom", "Anna", "Sam", "Maria", "Omar", "Lena", "Ken", "Priya")

# Two-operand stories. The expression is always "{a} <op> {b}" in this order.
_WORD_TEMPLATES = {
    "+": (
        "{name} has {a} apples and picks {b} more. How many apples does {name} have now?",
        "A library has {a} books and receives {b} new books. How many books does the library have now?",
        "A bag holds {a} red marbles and {b} blue marbles. How many marbles are in the bag?",
    ),
    "-": (
        "{name} has {a} stickers and gives {b} of them to a friend. How many stickers does {name} have left?",
        "A bus carries {a} passengers. At the next stop {b} passengers get off. "
        "How many passengers are still on the bus?",
        "A baker makes {a} muffins and sells {b} of them. How many muffins are left?",
    ),
    "*": (
        "There are {a} boxes with {b} pencils in each box. How many pencils are there in total?",
        "{name} buys {a} tickets that cost {b} dollars each. How many dollars does {name} pay?",
        "A garden has {a} rows with {b} plants in each row. How many plants are in the garden?",
    ),
    "/": (
        "{a} cookies are shared equally among {b} children. How many cookies does each child get?",
        "A rope {a} meters long is cut into {b} equal pieces. How many meters long is each piece?",
        "{name} puts {a} eggs into cartons of {b} eggs each. How many cartons does {name} fill?",
    ),
}


def generate_problems(
    n: int,
    seed: int = 0,
    min_digits: int = 1,
    max_digits: int = 2,
    operators: str = "+-*",
    num_operands: tuple[int, int] = (2, 2),
    style: str = "plain",
    integer_division: bool = True,
) -> list[ArithmeticProblem]:
    """`n` problems, the same list for the same arguments on every machine.

    - `min_digits`/`max_digits`: digit count of every operand (1..12).
    - `operators`: characters from "+-*/"; each operator slot picks one
      uniformly from this string (repeat a character to weight it).
    - `num_operands`: (low, high) number of operands, 2 <= low <= high <= 8.
    - `style`: "plain" (a stated computation), "word" (two-operand stories,
      needs num_operands == (2, 2)) or "mixed" (each two-operand problem is a
      story or plain with equal chance; longer ones are plain).
    - `integer_division`: make every division exact (integer answers) or allow
      fraction answers "p/q".

    No expression repeats within one call unless the space of problems is too
    small for `n`. Raises ValueError naming the offending parameter.
    """
    _validate(n, seed, min_digits, max_digits, operators, num_operands, style, integer_division)
    rng = random.Random(seed)
    problems: list[ArithmeticProblem] = []
    seen: set[str] = set()
    for _ in range(n):
        for _retry in range(_DUPLICATE_RETRIES):
            problem = _draw_problem(
                rng, min_digits, max_digits, operators, num_operands, style, integer_division
            )
            if problem.expression not in seen:
                break
        seen.add(problem.expression)
        problems.append(problem)
    return problems


def builtin_eval_set(n: int = 100, seed: int = 1234) -> list[ArithmeticProblem]:
    """A fixed small evaluation set: plain and word problems, 1-2 digit operands, + - *."""
    return generate_problems(
        n, seed=seed, min_digits=1, max_digits=2, operators="+-*", num_operands=(2, 2), style="mixed"
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate(
    n: object,
    seed: object,
    min_digits: object,
    max_digits: object,
    operators: object,
    num_operands: object,
    style: object,
    integer_division: object,
) -> None:
    if not _is_int(n) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    if not _is_int(seed):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if not _is_int(min_digits) or not 1 <= min_digits <= MAX_DIGITS:
        raise ValueError(f"min_digits must be an integer in 1..{MAX_DIGITS}, got {min_digits!r}")
    if not _is_int(max_digits) or not min_digits <= max_digits <= MAX_DIGITS:
        raise ValueError(
            f"max_digits must be an integer with min_digits ({min_digits}) <= max_digits <= {MAX_DIGITS}, "
            f"got {max_digits!r}"
        )
    if not isinstance(operators, str) or not operators or not set(operators) <= set(ALLOWED_OPERATORS):
        raise ValueError(
            f"operators must be a non-empty string of characters from {ALLOWED_OPERATORS!r}, got {operators!r}"
        )
    if (
        not isinstance(num_operands, tuple | list)
        or len(num_operands) != 2
        or not all(_is_int(k) for k in num_operands)
        or not 2 <= num_operands[0] <= num_operands[1] <= MAX_OPERANDS
    ):
        raise ValueError(
            f"num_operands must be a pair (low, high) of integers with 2 <= low <= high <= {MAX_OPERANDS}, "
            f"got {num_operands!r}"
        )
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    if style == "word" and tuple(num_operands) != (2, 2):
        raise ValueError(
            f"num_operands must be (2, 2) when style='word' (stories have two numbers), got {num_operands!r}"
        )
    if not isinstance(integer_division, bool):
        raise ValueError(f"integer_division must be True or False, got {integer_division!r}")


def _digit_band(digits: int) -> tuple[int, int]:
    return (1 if digits == 1 else 10 ** (digits - 1)), 10**digits - 1


def _draw_operand(rng: random.Random, min_digits: int, max_digits: int) -> int:
    low, high = _digit_band(rng.randint(min_digits, max_digits))
    return rng.randint(low, high)


def _draw_multiple(rng: random.Random, divisor: int, min_digits: int, max_digits: int) -> int | None:
    """A multiple of `divisor` with min..max digits (digit count drawn first), or None if there is none."""
    bands = []
    for digits in range(min_digits, max_digits + 1):
        low, high = _digit_band(digits)
        if -(-low // divisor) <= high // divisor:
            bands.append((low, high))
    if not bands:
        return None
    low, high = rng.choice(bands)
    return divisor * rng.randint(-(-low // divisor), high // divisor)


def _make_divisions_exact(
    rng: random.Random, operands: list[int], ops: list[str], min_digits: int, max_digits: int
) -> bool:
    """Make each term's first factor a multiple of all that term's divisors, so every step divides evenly."""
    term_start = 0
    divisor_product = 1
    for index in range(len(ops) + 1):
        op = ops[index] if index < len(ops) else "+"  # a sentinel "+" closes the last term
        if op in "+-":
            if divisor_product > 1:
                multiple = _draw_multiple(rng, divisor_product, min_digits, max_digits)
                if multiple is None:
                    return False
                operands[term_start] = multiple
            term_start = index + 1
            divisor_product = 1
        elif op == "/":
            divisor_product *= operands[index + 1]
    return True


def _draw_problem(
    rng: random.Random,
    min_digits: int,
    max_digits: int,
    operators: str,
    num_operands: tuple[int, int],
    style: str,
    integer_division: bool,
) -> ArithmeticProblem:
    for _retry in range(_DIVISION_RETRIES):
        count = rng.randint(num_operands[0], num_operands[1])
        chosen_style = style
        if style == "mixed":
            chosen_style = "word" if count == 2 and rng.random() < 0.5 else "plain"
        ops = [rng.choice(operators) for _ in range(count - 1)]
        operands = [_draw_operand(rng, min_digits, max_digits) for _ in range(count)]
        if chosen_style == "word":
            if 1 in operands:
                continue  # "There are 1 boxes" reads badly
            if ops[0] == "-" and operands[0] < operands[1]:
                operands.reverse()  # a story never goes below zero
            if ops[0] == "/" and not _make_divisions_exact(rng, operands, ops, min_digits, max_digits):
                continue  # stories always share evenly
        elif integer_division and "/" in ops:
            if not _make_divisions_exact(rng, operands, ops, min_digits, max_digits):
                continue
        return _build_problem(rng, operands, ops, chosen_style)
    raise ValueError(
        f"integer_division: could not build exact integer divisions for operators={operators!r}, "
        f"num_operands={num_operands!r}, digits {min_digits}..{max_digits}; "
        "allow fraction answers with integer_division=False or widen the digit range"
    )


def _build_problem(rng: random.Random, operands: list[int], ops: list[str], style: str) -> ArithmeticProblem:
    parts = [str(operands[0])]
    for op, operand in zip(ops, operands[1:]):
        parts += [op, str(operand)]
    expression = " ".join(parts)
    value = evaluate_expression(expression)
    if value is None:  # cannot happen within the parameter bounds; fail loudly if it does
        raise RuntimeError(f"generated expression is not evaluable: {expression}")
    if style == "word":
        question = rng.choice(_WORD_TEMPLATES[ops[0]]).format(
            a=operands[0], b=operands[1], name=rng.choice(_NAMES)
        )
    else:
        question = rng.choice(_PLAIN_TEMPLATES).format(e=expression)
    return ArithmeticProblem(
        question=question,
        answer=format_answer(value),
        expression=expression,
        operators="".join(op for op in ALLOWED_OPERATORS if op in ops),
        max_digits=len(str(max(operands))),
        num_operands=len(operands),
        style=style,
    )
