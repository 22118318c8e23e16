"""Voting-style sampling throughput: batched vs one sequence at a time.

Issue target: on a 2-core CPU with SmolLM2-135M, sampling m answers for many
prompts through `TransformersGenerator` must be >= 5x faster in generated
tokens/s than generating one sequence at a time.

    python benchmarks/bench_generation_batching.py [--model builtin:smollm2-135m-instruct]

Prints one line with both rates and their ratio. Runs the two modes
alternately `--repeats` times and reports medians (the machine is noisy).
"""

from __future__ import annotations

import argparse
import statistics
import time

from rzero_lib.engine.models import load_model
from rzero_lib.engine.transformers_backend import TransformersGenerator
from rzero_lib.prompts import SOLVER_SYSTEM_ARITHMETIC, PromptSpec, arithmetic_solver_demonstrations
from rzero_lib.sampling import SamplingConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:smollm2-135m-instruct")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--m", type=int, default=10, help="samples per prompt")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--sequential-sequences", type=int, default=12,
                    help="sequences generated one at a time (a subset: the rate is what is compared)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from rzero_lib.arithmetic import generate_problems

    model, tok = load_model(args.model)
    spec = PromptSpec(SOLVER_SYSTEM_ARITHMETIC, "{question}", arithmetic_solver_demonstrations())
    questions = [p.question for p in generate_problems(args.prompts, seed=3)]
    prompts = [spec.messages(q) for q in questions]
    sampling = SamplingConfig(n=args.m, temperature=1.0, top_k=40, max_new_tokens=args.max_new_tokens, seed=0)

    batched_rates, single_rates = [], []
    for r in range(args.repeats):
        g = TransformersGenerator(model, tok, batch_size=args.batch_size)
        g.generate(prompts, SamplingConfig(**{**sampling.__dict__, "seed": r}), progress=False)
        batched_rates.append(g.stats.tokens_per_second)

        one = TransformersGenerator(model, tok, batch_size=1)
        t0 = time.perf_counter()
        tokens = 0
        for i in range(args.sequential_sequences):
            p = prompts[i % len(prompts)]
            one.generate([p], SamplingConfig(**{**sampling.__dict__, "n": 1, "seed": 1000 * r + i}), progress=False)
        tokens = one.stats.generated_tokens
        single_rates.append(tokens / (time.perf_counter() - t0))
        print(f"  repeat {r + 1}: batched {batched_rates[-1]:.1f} tok/s, one-at-a-time {single_rates[-1]:.1f} tok/s",
              flush=True)

    b, s = statistics.median(batched_rates), statistics.median(single_rates)
    print(f"generation batching ({args.model}, {args.prompts} prompts x m={args.m}, {args.max_new_tokens} new tokens, "
          f"batch {args.batch_size}): batched {b:.1f} tok/s, one-at-a-time {s:.1f} tok/s, "
          f"speed-up {b / s:.1f}x (median of {args.repeats}; target >= 5x)")


if __name__ == "__main__":
    main()
