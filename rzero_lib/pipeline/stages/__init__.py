"""One module per pipeline stage: `run_<stage>(ctx)` does the stage's work for its notebook."""
