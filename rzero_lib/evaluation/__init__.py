"""Evaluation of a Solver: benchmark tasks (one module per family, one registry), scoring, evaluation runs.

Built on the engine and the algorithm layer; imports nothing from training,
the pipeline or above.
"""
