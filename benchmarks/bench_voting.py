"""Grouping m answers per question: `majority_vote_many` vs pairwise math-verify.

Issue target: for 1000 questions x 10 answers, `rzero_lib.voting` must be >= 5x
faster than the naive approach (math-verify on every pair of answers,
in-process) with identical majority answers and p̂.

    python benchmarks/bench_voting.py [--questions 1000] [--m 10]

The answers are synthetic but shaped like real Solver samples (see
`synthetic_answers`), with answer forms taken from the MATH-500 and GSM8K
golds in $RZERO_BENCHMARKS_DIR (default ../shared/benchmarks) when present. Prints one line with both times and the ratio.
"""

from __future__ import annotations

import argparse
import random
import time

from rzero_lib.answers import EquivalenceChecker
from rzero_lib.voting import majority_vote_many, majority_vote_naive


def _real_answer_pool(seed: int) -> list[str]:
    """Gold answers of MATH-500 and GSM8K when the offline copies are around (real answer forms)."""
    import json
    import os
    from pathlib import Path

    folder = Path(os.environ.get("RZERO_BENCHMARKS_DIR") or Path(__file__).resolve().parents[2] / "shared" / "benchmarks")
    pool = []
    if (folder / "math500.jsonl").exists():
        pool += [json.loads(line)["answer"] for line in (folder / "math500.jsonl").open()]
    if (folder / "gsm8k.jsonl").exists():
        pool += [json.loads(line)["answer"].split("####")[-1].strip().replace(",", "")
                 for line in (folder / "gsm8k.jsonl").open()]
    return pool


def _rewrite(answer: str, rng: random.Random) -> str:
    """An equivalent way a model might write the same answer."""
    if answer.lstrip("-").isdigit():
        return rng.choice([answer, f"{answer}.0", f"{answer}", f"{int(answer) * 2}/2"])
    return rng.choice([answer, answer.replace("\\frac", "\\dfrac"), f" {answer} ", answer.replace(" ", "")])


def synthetic_answers(n_questions: int, m: int, seed: int = 0) -> list[list[str | None]]:
    """m sampled answers per question, shaped like a Solver's: the right answer in
    several spellings about half the time, a few recurring wrong answers, and
    some samples with no answer. Answer forms come from real benchmark golds
    when available, else from a small built-in list."""
    rng = random.Random(seed)
    pool = _real_answer_pool(seed) or ["12", "\\frac{3}{4}", "2\\sqrt{3}", "(1,2)", "\\pi", "x^2+1", "-7", "0.25"]
    out = []
    for _ in range(n_questions):
        truth = rng.choice(pool)
        distractors = [rng.choice(pool) for _ in range(rng.randint(1, 3))]
        p_right = rng.random()
        answers = []
        for _ in range(m):
            r = rng.random()
            if r < 0.1:
                answers.append(None)
            elif r < 0.1 + 0.9 * p_right:
                answers.append(_rewrite(truth, rng))
            else:
                answers.append(_rewrite(rng.choice(distractors), rng))
        out.append(answers)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=1000)
    ap.add_argument("--m", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    lists = synthetic_answers(args.questions, args.m, args.seed)

    checker = EquivalenceChecker()  # fresh: no cache carried over
    # Start the workers (and math-verify's LaTeX parser in each) outside the timing,
    # as they are in a long run; then forget the warm-up pairs.
    checker.equivalent_many([("x+1", "1+x"), ("\\sqrt{4}", "2"), ("y+2", "2+y"), ("\\pi", "3.14")])
    checker._cache.clear()
    checker.stats = type(checker.stats)()
    t0 = time.perf_counter()
    fast = majority_vote_many(lists, checker=checker)
    t_fast = time.perf_counter() - t0
    checker.close()

    t0 = time.perf_counter()
    naive = [majority_vote_naive(a) for a in lists]
    t_naive = time.perf_counter() - t0

    mismatches = [i for i, (f, n) in enumerate(zip(fast, naive)) if (f.answer, f.p_hat) != (n.answer, n.p_hat)]
    print(f"voting {args.questions} questions x m={args.m}: naive pairwise math-verify {t_naive:.1f} s, "
          f"majority_vote_many {t_fast:.2f} s, speed-up {t_naive / t_fast:.1f}x (target >= 5x), "
          f"identical majority and p_hat: {not mismatches}"
          + (f" (mismatches at {mismatches[:10]})" if mismatches else "")
          + f"; math-verify calls {checker.stats.math_verify}, fast path {checker.stats.fast_path}")


if __name__ == "__main__":
    main()
