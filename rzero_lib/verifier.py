"""The Verifier: an optional third role that judges majority-vote pseudo-labels before Solver training.

For each band-passing question a verifier model (the Solver itself, or any
model) is shown one of the Solver's own responses ending in the majority answer
and answers `\\boxed{yes}` or `\\boxed{no}` k times; the yes-fraction is the
confidence. `apply_policy` turns it into a decision (`threshold` drops,
`weight` scales the Solver's reward), and `verifier_label_metrics` measures
whether it helps against the vote's own p̂ at equal size. Why and what was
measured: docs/verifier.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rzero_lib.answers import extract_boxed
from rzero_lib.sampling import SamplingConfig
from rzero_lib.stats import wilson_interval

VERIFY_SYSTEM = (
    "You check solutions. Read the problem and the proposed solution, check the final answer carefully, "
    "then reply with \\boxed{yes} if the final answer is correct or \\boxed{no} if it is not."
)
VERIFY_USER = "Problem: {question}\n\nProposed solution: {solution}\n\nIs the final answer correct?"
MAX_SOLUTION_CHARS = 1500


def verification_messages(question: str, solution: str, system: str | None = None,
                          user: str | None = None) -> list[dict]:
    """The verifier's chat: `system` (None: VERIFY_SYSTEM; "": no system turn) and `user` with
    `{question}` and `{solution}` (None: VERIFY_USER)."""
    solution = solution[-MAX_SOLUTION_CHARS:]
    system = VERIFY_SYSTEM if system is None else system
    user = (VERIFY_USER if user is None else user).replace("{question}", question).replace("{solution}", solution)
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]


def parse_verdict(text: str) -> bool | None:
    """True for a boxed yes, False for a boxed no, None when the verdict is missing."""
    box = extract_boxed(text)
    if box is None:
        return None
    word = box.replace("\\text{", "").replace("}", "").strip().lower()
    if word in ("yes", "correct", "true"):
        return True
    if word in ("no", "incorrect", "false", "wrong"):
        return False
    return None


def supporting_response(responses: Sequence[str], answers: Sequence[str | None], majority: str) -> str | None:
    """The first voting response whose extracted answer is the majority representative."""
    for text, answer in zip(responses, answers):
        if answer is not None and answer.strip() == majority.strip():
            return text
    return None


@dataclass(frozen=True)
class Decision:
    confidence: float
    kept: bool
    weight: float
    reason: str | None


def confidence_of(verdicts: Sequence[bool | None]) -> float:
    """Share of the k verdicts that are a parsed yes."""
    return sum(v is True for v in verdicts) / len(verdicts) if verdicts else 0.0


def apply_policy(confidence: float, policy: str, threshold: float = 0.5) -> Decision:
    """Turn a confidence into a training decision."""
    if not 0.0 <= confidence <= 1.0:
        raise ValueError(f"confidence must be in [0, 1], got {confidence}")
    if policy == "threshold":
        kept = confidence >= threshold - 1e-12
        return Decision(confidence, kept, 1.0 if kept else 0.0, None if kept else "verifier_low_confidence")
    if policy == "weight":
        return Decision(confidence, True, confidence, None)
    raise ValueError(f"verifier.policy must be 'threshold' or 'weight', got {policy!r}")


def verify_labels(generator, questions: Sequence[str], solutions: Sequence[str], *, samples: int,
                  temperature: float, max_new_tokens: int, seed: int = 0, system: str | None = None,
                  user: str | None = None) -> list[list[bool | None]]:
    """k verdicts per (question, solution) from any `Generator`."""
    prompts = [verification_messages(q, s, system, user) for q, s in zip(questions, solutions)]
    sampling = SamplingConfig(n=samples, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
    outputs = generator.generate(prompts, sampling, progress="verifier checking labels")
    return [[parse_verdict(t) for t in group] for group in outputs]


# --------------------------------------------------------------------------
# measurement
# --------------------------------------------------------------------------


def verifier_label_metrics(label_correct: Sequence[bool], confidence: Sequence[float],
                           threshold: float = 0.5, p_hat: Sequence[float] | None = None) -> dict:
    """Does the Verifier improve the labels? Inputs are per band-passing question.

    `label_correct[i]`: question i's majority label agrees with the oracle
    (the caller leaves out questions the oracle cannot answer). n is the
    number of questions whose confidence reaches `threshold` (what the
    threshold policy keeps). Reported, each with a Wilson 95% interval:
    - `without_verifier`: every band-passing label (a random subset of size n
      has the same expected accuracy);
    - `with_verifier`: the n labels with the highest confidence (ties broken by
      order) — the same questions the threshold policy keeps;
    - `weighted_accuracy`: Σ confidence·correct / Σ confidence (the weight policy);
    - `top_p_hat` (when `p_hat` is given): the n labels with the highest
      majority agreement p̂ — what the vote alone would keep at the same size,
      the baseline a Verifier has to beat;
    and the share of wrong labels removed and of right labels lost.
    """
    n_all = len(label_correct)
    if len(confidence) != n_all:
        raise ValueError("label_correct and confidence must have the same length")
    correct = [bool(c) for c in label_correct]
    right_all = sum(correct)
    n = sum(c >= threshold - 1e-12 for c in confidence)
    top = sorted(range(n_all), key=lambda i: -confidence[i])[:n]
    removed = set(range(n_all)) - set(top)
    wrong_all = n_all - right_all
    total_weight = sum(confidence)

    def acc(right: int, size: int) -> dict:
        lo, hi = wilson_interval(right, size)
        return {"n": size, "accuracy": right / size if size else math.nan, "ci_low": lo, "ci_high": hi}

    result = {
        "without_verifier": acc(right_all, n_all),
        "with_verifier": acc(sum(correct[i] for i in top), n),
        "weighted_accuracy": (sum(w for w, c in zip(confidence, correct) if c) / total_weight
                              if total_weight > 0 else math.nan),
        "wrong_labels_removed": sum(not correct[i] for i in removed) / wrong_all if wrong_all else math.nan,
        "right_labels_lost": sum(correct[i] for i in removed) / right_all if right_all else math.nan,
    }
    if p_hat is not None:
        if len(p_hat) != n_all:
            raise ValueError("label_correct and p_hat must have the same length")
        by_vote = sorted(range(n_all), key=lambda i: -p_hat[i])[:n]
        result["top_p_hat"] = acc(sum(correct[i] for i in by_vote), n)
    return result
