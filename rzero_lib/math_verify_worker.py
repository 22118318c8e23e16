"""The math-verify worker process behind `rzero_lib.answers.EquivalenceChecker`.

`python -m rzero_lib.math_verify_worker` reads JSON lines `[index, a, b]` on
stdin and answers `[index, bool]` on stdout; its first line is
`["ready", null]`, written after math-verify is imported. math-verify runs on
the main thread of this process, so the parent enforces a hard per-item
deadline by stopping it. Parsed answers are cached: parsing dominates
math-verify's cost, and one answer meets many others.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import OrderedDict

from rzero_lib.processes import watch_parent

PARSE_CACHE_SIZE = 20_000


def parse_answer(answer: str):
    """math-verify's parse of a bare answer, without its own signal timeouts (the parent enforces them)."""
    from math_verify import parse

    return parse("\\boxed{" + answer + "}", parsing_timeout=None)


def verify_parsed(gold, pred) -> bool:
    from math_verify import verify

    if not gold or not pred:
        return False
    if number_vs_variable_expression(gold[0], pred[0]):
        return False  # skips sympy's simplification, the slow part of such pairs
    return bool(verify(gold, pred, timeout_seconds=None))


def number_vs_variable_expression(a, b) -> bool:
    """A number is never equal to an expression with free variables (x^2 + 1, 3R^2).

    Equations (`x = 3`, a Relational, which math-verify matches to 3), sets,
    intervals and tuples are not sympy `Expr`, so they never take this path.
    """
    import sympy

    def number(x):
        return isinstance(x, sympy.Number)

    def variable_expression(x):
        return isinstance(x, sympy.Expr) and not isinstance(x, sympy.Number) and bool(x.free_symbols)

    return (number(a) and variable_expression(b)) or (number(b) and variable_expression(a))


def main() -> None:
    watch_parent()  # a worker stuck in a pathological parse must not outlive its parent
    import math_verify  # noqa: F401  (pay the import before saying ready)

    logging.disable(logging.WARNING)  # math-verify warns on every call that we disabled its signal timeouts
    cache: OrderedDict[str, object] = OrderedDict()

    def parsed(answer: str):
        if answer in cache:
            cache.move_to_end(answer)
            return cache[answer]
        value = parse_answer(answer)
        cache[answer] = value
        if len(cache) > PARSE_CACHE_SIZE:
            cache.popitem(last=False)
        return value

    out = sys.stdout
    out.write(json.dumps(["ready", None]) + "\n")
    out.flush()
    for line in sys.stdin:
        index, a, b = json.loads(line)
        try:
            result = verify_parsed(parsed(a), parsed(b))
        except Exception:  # math-verify raising is "not equivalent"
            result = False
        out.write(json.dumps([index, result]) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
