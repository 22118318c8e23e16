"""Evaluation sets built here, with exact answers: `arithmetic`, and the sandbox's `arith_sandbox` / `arith_sandbox_dev`.

`arith_sandbox` (480 items, + - * by largest-operand digits 1-4) is for
reporting; its development twin `arith_sandbox_dev` (another seed) is what
settings are tuned on.
"""

from __future__ import annotations

from rzero_lib.arithmetic import builtin_eval_set
from rzero_lib.evaluation.tasks import BenchmarkItem, BenchmarkSpec, make_item
from rzero_lib.sandbox_world import sandbox_dev_problems, sandbox_heldout_problems


def _arithmetic_items(spec: BenchmarkSpec) -> tuple[list[BenchmarkItem], str]:
    items = [make_item(spec, f"{k:03d}", p.question, str(p.answer), expression=p.expression,
                       max_digits=p.max_digits) for k, p in enumerate(builtin_eval_set(n=100, seed=1234))]
    return items, "rzero_lib.arithmetic.builtin_eval_set(n=100, seed=1234)"


def _sandbox_items(spec: BenchmarkSpec) -> tuple[list[BenchmarkItem], str]:
    maker = sandbox_dev_problems if spec.name == "arith_sandbox_dev" else sandbox_heldout_problems
    items = [make_item(spec, f"{k:03d}", p.question, p.answer, expression=p.expression, max_digits=p.max_digits,
                       operator=p.operators) for k, p in enumerate(maker())]
    return items, f"rzero_lib.sandbox_world.{maker.__name__}()"


SPECS = [
    BenchmarkSpec(
        "arithmetic", "builtin", "number", None, ("question",), ("answer",),
        max_new_tokens=1024,
        description="built-in arithmetic set: rzero_lib.arithmetic.builtin_eval_set(n=100, seed=1234)",
        make_items=_arithmetic_items,
    ),
    BenchmarkSpec(
        "arith_sandbox", "builtin", "number", None, ("question",), ("answer",),
        max_new_tokens=16,
        description="arithmetic sandbox held-out set: rzero_lib.sandbox_world.sandbox_heldout_problems() "
                    "(480 items, + - * by largest-operand digits 1-4)",
        make_items=_sandbox_items,
    ),
    BenchmarkSpec(
        "arith_sandbox_dev", "builtin", "number", None, ("question",), ("answer",),
        max_new_tokens=16,
        description="arithmetic sandbox development set, shaped like arith_sandbox with another seed: "
                    "rzero_lib.sandbox_world.sandbox_dev_problems() (for tuning; arith_sandbox is for reporting)",
        make_items=_sandbox_items,
    ),
]
