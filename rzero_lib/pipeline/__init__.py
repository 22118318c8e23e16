"""The pipeline: the run directory, the stages' work, the papermill driver and the `rzero` command.

Built on training, evaluation, the engine and the algorithm layer; imports
nothing from the report or the experiments (the driver runs the report's
notebook by path).
"""
