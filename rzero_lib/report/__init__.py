"""The report: a run's label accuracy, difficulty, curves, diversity and benchmark figures, and the explorer.

Reads finished run directories through the pipeline layer; imports nothing
from the experiments.
"""
