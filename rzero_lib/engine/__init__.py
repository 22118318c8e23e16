"""The engine: models, generation backends, the Solver server and model-backed oracles.

Built on the algorithm layer (the top-level modules); imports nothing above it.
Heavy packages (torch, transformers, vLLM) are imported inside functions.
"""
