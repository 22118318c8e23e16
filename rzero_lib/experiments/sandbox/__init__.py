"""The arithmetic sandbox experiment: R-Zero on `builtin:arith-sandbox` against its controls (docs/sandbox.md).

Its world (prompts, problem sets) is `rzero_lib.sandbox_world`, its model
builder `rzero_lib.engine.builtins.arith_sandbox`; this package measures models
by operand size and compares the runs (notebook 07, `make sandbox`).
"""
