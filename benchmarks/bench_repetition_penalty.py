"""Benchmark: vectorised R-Zero repetition penalty vs the pairwise nltk + sklearn construction.

The reference is the authors' construction: `1 - sentence_bleu([q_j.split()],
q_i.split(), smoothing_function=method1)` for every pair i < j, mirrored into a
square matrix, then sklearn `AgglomerativeClustering(metric="precomputed",
linkage="average", distance_threshold=0.5)`. The fast version is
`rzero_lib.rewards.repetition_penalty`. The script checks that both give the
same clusters and prints the speed-up in one line.

Simplifications
- Questions are synthetic (templates with numbers and words, exact and
  near-duplicates, shuffled word orders), generated deterministically.
- The reference runs once (it takes minutes at B = 2048). With
  `--reference-n M --extrapolate` it runs on the first M questions only and its
  time is scaled by the number of pairs, B(B-1) / (M(M-1)); the cluster check is
  then done at B = M.

Usage: python benchmarks/bench_repetition_penalty.py [--n 2048] [--repeats 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rzero_lib.rewards import repetition_clusters, repetition_penalty  # noqa: E402

TEMPLATES = [
    "Find the number of positive integers {a} less than {b} such that {a} divides {c} "
    "and the sum of the digits of {a} is {d}.",
    "Let $x$ and $y$ be real numbers with $x + y = {a}$ and $xy = {b}$. Compute $x^{d} + y^{d}$.",
    "A {obj} is chosen uniformly at random from a box containing {a} red and {b} blue {obj}s. "
    "What is the probability that {c} draws without replacement are all red?",
    "How many ways can {a} people be seated around a round table if {b} of them refuse to sit next to each other?",
    "Compute the remainder when ${a}^{{{b}}}$ is divided by {c}.",
    "In triangle $ABC$, $AB = {a}$, $BC = {b}$ and $CA = {c}$. Find the area of the triangle.",
    "Let $f(x) = x^2 + {a}x + {b}$. For how many integers $n$ between 1 and {c} is $f(n)$ a perfect square?",
    "The sequence $a_n$ satisfies $a_1 = {a}$ and $a_{{n+1}} = {b} a_n - {d}$. Find $a_{{{c}}}$ modulo {d}.",
    "A regular polygon has {a} sides. How many of its diagonals are longer than the side of length {b}?",
    "Find the smallest prime $p$ greater than {c} such that $p + {d}$ is a perfect square.",
]
OBJECTS = ["ball", "marble", "card", "token", "coin"]
SUFFIXES = [
    "Express your answer as a common fraction.",
    "Give your answer in simplest form.",
    "",
    "Justify your answer briefly.",
    "The answer is an integer.",
]
SWAPS = ["prime", "even", "odd", "real", "12", "7", "positive", "distinct"]


def synthetic_questions(n: int, seed: int = 0) -> list[str]:
    """n question-like strings: templates, exact duplicates, one-word edits, shuffles."""
    rng = random.Random(seed)
    questions: list[str] = []
    for _ in range(n):
        text = rng.choice(TEMPLATES).format(
            a=rng.randint(2, 60),
            b=rng.randint(2, 99),
            c=rng.randint(3, 999),
            d=rng.randint(2, 9),
            obj=rng.choice(OBJECTS),
        )
        text = f"{text} {rng.choice(SUFFIXES)}".strip()
        r = rng.random()
        if r < 0.15 and questions:
            text = rng.choice(questions)  # exact duplicate
        elif r < 0.30 and questions:
            words = rng.choice(questions).split()
            words[rng.randrange(len(words))] = rng.choice(SWAPS)  # near duplicate
            text = " ".join(words)
        elif r < 0.40:
            words = text.split()
            rng.shuffle(words)
            text = " ".join(words)
        questions.append(text)
    return questions


def reference_labels(questions: list[str], threshold: float) -> np.ndarray:
    """The authors' construction: pairwise nltk sentence_bleu, then sklearn clustering."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
    from sklearn.cluster import AgglomerativeClustering

    smoothing = SmoothingFunction().method1
    n = len(questions)
    distances = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            score = sentence_bleu([questions[j].split()], questions[i].split(), smoothing_function=smoothing)
            distances[i, j] = distances[j, i] = 1 - score
    model = AgglomerativeClustering(
        n_clusters=None, metric="precomputed", linkage="average", distance_threshold=threshold
    )
    return model.fit(distances).labels_


def same_partition(a, b) -> bool:
    pairs = set(zip(np.asarray(a).tolist(), np.asarray(b).tolist(), strict=True))
    return len(pairs) == len(set(np.asarray(a).tolist())) == len(set(np.asarray(b).tolist()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2048, help="batch size B (default 2048)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of the fast version (median)")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--reference-n",
        type=int,
        default=None,
        help="run the reference on the first M questions only (needs --extrapolate)",
    )
    parser.add_argument(
        "--extrapolate",
        action="store_true",
        help="scale the reference time from --reference-n to --n by the number of pairs",
    )
    args = parser.parse_args()
    reference_n = args.n if args.reference_n is None else args.reference_n
    if not 2 <= reference_n <= args.n:
        parser.error("--reference-n must be between 2 and --n")
    if reference_n < args.n and not args.extrapolate:
        parser.error("--reference-n smaller than --n needs --extrapolate")

    questions = synthetic_questions(args.n, args.seed)
    # import the heavy modules outside the timings
    import nltk.translate.bleu_score  # noqa: F401
    import scipy.cluster.hierarchy  # noqa: F401
    import sklearn.cluster  # noqa: F401

    fast_times = []
    for _ in range(max(1, args.repeats)):
        start = time.perf_counter()
        penalties = repetition_penalty(questions, args.threshold)
        fast_times.append(time.perf_counter() - start)
    fast = statistics.median(fast_times)

    subset = questions[:reference_n]
    start = time.perf_counter()
    expected = reference_labels(subset, args.threshold)
    reference = time.perf_counter() - start
    got = (
        repetition_clusters(subset, args.threshold)
        if reference_n < args.n
        else repetition_clusters(questions)
    )
    identical = same_partition(got, expected)
    sizes = np.bincount(expected)
    # penalties are only comparable when the reference saw the whole batch
    penalties_match = "n/a" if reference_n < args.n else penalties == [sizes[k] / args.n for k in expected]

    note = ""
    if reference_n < args.n:
        reference *= (args.n * (args.n - 1)) / (reference_n * (reference_n - 1))
        note = f" (extrapolated from B={reference_n})"
    print(
        f"  {len(set(got))} clusters, identical labels: {list(got) == expected.tolist()}, "
        f"identical penalties: {penalties_match}, fast runs: {', '.join(f'{t:.2f}' for t in fast_times)} s"
    )
    print(
        f"repetition_penalty B={args.n}: reference {reference:.1f} s{note}, "
        f"fast {fast:.2f} s (median of {len(fast_times)}), speed-up {reference / fast:.0f}x, "
        f"identical clusters: {identical}"
    )


if __name__ == "__main__":
    main()
