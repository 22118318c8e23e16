"""GRPO for both roles on TRL's GRPOTrainer, in-process or under `accelerate launch`.

Built on the engine and the algorithm layer; imports nothing from evaluation,
the pipeline or above.
"""
