"""The arithmetic sandbox experiment: R-Zero on `builtin:arith-sandbox` against its controls, over seeds
(docs/sandbox.md).

Its world (prompts, question form, problem sets) is `rzero_lib.sandbox_world`, its model builder
`rzero_lib.engine.builtins.arith_sandbox`; this package names the runs and their seed directories (`runs`),
measures the base Solver on the questions a run kept (`measure`), and compares the runs with the issue's
pre-registered criteria (`comparison`, `figures`; notebook 07, `make sandbox`).
"""
