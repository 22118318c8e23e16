"""The paper's reference numbers drawn next to a run's own (docs/design.md, "Reference numbers")."""

from __future__ import annotations

PAPER_REFERENCE_LABEL = "paper (Qwen3-4B, GPT-4o oracle)"
PAPER_LABEL_ACCURACY = {1: 0.79, 2: 0.69, 3: 0.63}  # pseudo-label accuracy on 200 questions per iteration
PAPER_BASE_ACCURACY = {1: 0.480, 2: 0.525, 3: 0.440}  # base model accuracy on those questions
# Math average over the 7 benchmarks: base, iteration 1, 2, 3 (paper v1).
PAPER_MATH_AVERAGE = {"Qwen3-4B-Base": {0: 42.58, 1: 48.06, 2: 48.44, 3: 49.07},
                      "Qwen3-8B-Base": {0: 49.18, 1: 53.39, 2: 53.84, 3: 54.69}}


def paper_benchmark_reference(model: str) -> tuple[str, dict[int, float]] | None:
    """The paper's math average per iteration for a Qwen3-4B/8B-Base model spec, else None."""
    name = str(model).lower()
    for key, values in PAPER_MATH_AVERAGE.items():
        size = key.split("-")[1].lower()  # "4b" / "8b"
        if "qwen3" in name and f"-{size}" in name:
            return key, values
    return None
