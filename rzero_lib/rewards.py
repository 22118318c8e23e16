"""R-Zero's rewards: the Challenger's uncertainty reward and repetition penalty, the Solver's reward.

Challenger: `uncertainty_reward` (paper `1 - 2|p̂ - 1/2|`, authors' code
`min(p̂, 1 - p̂)`), `repetition_penalty` (`λ|C|/B` over average-linkage clusters
of `1 - BLEU` distances cut at τ, bit-identical to the authors' nltk + sklearn
construction), combined by `challenger_rewards` (paper `max(0, r_unc - r_rep)`,
0 for a format failure; code `r_unc - r_rep`, `-1 - r_rep` for a failure; B
counts every rollout of the step, failures included). `authors_2025_gate`
reproduces a bug of the authors' reward server (opt-in). Solver: `solver_reward`, 1
when the boxed answer is equivalent to the pseudo-label, optionally mixed with
the authors' format term. Exactness, memory and choices: docs/algorithm.md, "Rewards".
"""

from __future__ import annotations

import heapq
import math
from dataclasses import asdict, dataclass

import numpy as np

from rzero_lib.answers import equivalent, equivalent_many, extract_boxed
from rzero_lib.bleu import pairwise_bleu_condensed

REWARD_FORMS = ("paper", "code")
CODE_FORMAT_FAILURE_REWARD = -1.0
PAPER_FORMAT_FAILURE_REWARD = 0.0
DEFAULT_PENALTY_THRESHOLD = 0.5


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------


def _check_form(form: str) -> None:
    if form not in REWARD_FORMS:
        raise ValueError(f"form must be one of {REWARD_FORMS!r}, got {form!r}")


def _check_real(name: str, value, low: float, high: float, low_open: bool = False) -> float:
    """`value` as a finite float in [low, high] (or (low, high]); ValueError naming `name` otherwise."""
    interval = f"{'(' if low_open else '['}{low}, {high}{')' if math.isinf(high) else ']'}"
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a real number in {interval}, got {value!r}")
    value = float(value)
    below = value <= low if low_open else value < low
    if not math.isfinite(value) or below or value > high:
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return value


def _check_questions(questions) -> list[str]:
    if isinstance(questions, str):
        raise ValueError("questions must be a list of strings, got a single string")
    questions = list(questions)
    for i, q in enumerate(questions):
        if not isinstance(q, str):
            raise ValueError(f"questions[{i}] must be a string, got {type(q).__name__}")
    return questions


# --------------------------------------------------------------------------
# uncertainty reward
# --------------------------------------------------------------------------


def uncertainty_reward(p_hat: float, form: str = "paper") -> float:
    """Reward for a question the Solver answers consistently with probability `p_hat`.

    paper: `1 - 2|p_hat - 1/2|` (1 at p_hat = 1/2, 0 at 0 and 1).
    code:  `min(p_hat, 1 - p_hat)` (the authors' code; half the paper value).
    """
    _check_form(form)
    p_hat = _check_real("p_hat", p_hat, 0.0, 1.0)
    if form == "paper":
        return 1.0 - 2.0 * abs(p_hat - 0.5)
    return min(p_hat, 1.0 - p_hat)


# --------------------------------------------------------------------------
# repetition penalty
# --------------------------------------------------------------------------


def bleu_distance_condensed(questions: list[str]) -> np.ndarray:
    """`1 - BLEU` for all pairs i < j in scipy's condensed order (length B(B-1)/2).

    BLEU(hypothesis=questions[i], reference=questions[j]) exactly as nltk's
    `sentence_bleu` with whitespace tokens, BLEU-4 and smoothing method 1.
    """
    questions = _check_questions(questions)
    return 1.0 - pairwise_bleu_condensed(questions)


def bleu_distance_matrix(questions: list[str]) -> np.ndarray:
    """Dense symmetric B x B matrix of `1 - BLEU`, zero diagonal (the authors' layout).

    Entry (i, j) and (j, i) both hold the i < j value (hypothesis i, reference j).
    """
    questions = _check_questions(questions)
    n = len(questions)
    matrix = np.zeros((n, n), dtype=np.float64)
    if n >= 2:
        rows, cols = np.triu_indices(n, k=1)
        condensed = bleu_distance_condensed(questions)
        matrix[rows, cols] = condensed
        matrix[cols, rows] = condensed
    return matrix


def _cut_like_sklearn(children: np.ndarray, merge_distances: np.ndarray, threshold: float) -> np.ndarray:
    """Flat labels from a linkage tree, as AgglomerativeClustering(distance_threshold=...) does."""
    n_leaves = children.shape[0] + 1
    # sklearn: merges at a distance >= threshold are undone (strict "<" to merge)
    n_clusters = int(np.count_nonzero(merge_distances >= threshold)) + 1
    # Split the most recent merge n_clusters - 1 times; a heap of negated node ids
    # gives the same node order, hence the same label numbers, as sklearn's _hc_cut.
    nodes = [-(int(max(children[-1])) + 1)]
    for _ in range(n_clusters - 1):
        left, right = children[-nodes[0] - n_leaves]
        heapq.heappush(nodes, -int(left))
        heapq.heappushpop(nodes, -int(right))
    labels = np.zeros(n_leaves, dtype=np.int64)
    for label, node in enumerate(nodes):
        stack = [-node]
        while stack:
            current = stack.pop()
            if current < n_leaves:
                labels[current] = label
            else:
                stack.extend(int(c) for c in children[current - n_leaves])
    return labels


def clusters_from_condensed(
    condensed_distances: np.ndarray, threshold: float = DEFAULT_PENALTY_THRESHOLD
) -> list[int]:
    """Average-linkage clusters of a condensed distance vector cut at `threshold`.

    Same labels as sklearn's AgglomerativeClustering(metric="precomputed",
    linkage="average", distance_threshold=threshold) on the square form.
    """
    threshold = _check_real("threshold", threshold, 0.0, 1.0, low_open=True)
    condensed_distances = np.asarray(condensed_distances, dtype=np.float64)
    n = int(round((1 + math.sqrt(1 + 8 * condensed_distances.size)) / 2))
    if n * (n - 1) // 2 != condensed_distances.size:
        raise ValueError(f"condensed_distances must have length B(B-1)/2, got {condensed_distances.size}")
    if n == 1:
        return [0]
    from scipy.cluster.hierarchy import linkage  # slow import (~0.5 s): only when needed

    tree = linkage(condensed_distances, method="average")
    return _cut_like_sklearn(tree[:, :2].astype(np.int64), tree[:, 2], threshold).tolist()


def repetition_clusters(questions: list[str], threshold: float = DEFAULT_PENALTY_THRESHOLD) -> list[int]:
    """Cluster label per question (BLEU distance, average linkage, cut at `threshold`).

    Labels are those sklearn would give; an empty batch gives [].
    """
    questions = _check_questions(questions)
    threshold = _check_real("threshold", threshold, 0.0, 1.0, low_open=True)
    if not questions:
        return []
    if len(questions) == 1:
        return [0]
    return clusters_from_condensed(bleu_distance_condensed(questions), threshold)


def penalties_from_clusters(labels: list[int], weight: float = 1.0) -> list[float]:
    """`weight * |C| / B` for each item, C its cluster."""
    weight = _check_real("weight", weight, 0.0, math.inf)
    if len(labels) == 0:
        return []
    sizes = np.bincount(np.asarray(labels, dtype=np.int64))
    return (weight * sizes[np.asarray(labels)] / len(labels)).tolist()


def repetition_penalty(
    questions: list[str], threshold: float = DEFAULT_PENALTY_THRESHOLD, weight: float = 1.0
) -> list[float]:
    """R-Zero repetition penalty `weight * |C| / B` for every question of the batch.

    B = len(questions); C = the question's cluster (see `repetition_clusters`).
    Empty batch -> []; one question -> [weight].
    """
    questions = _check_questions(questions)
    threshold = _check_real("threshold", threshold, 0.0, 1.0, low_open=True)
    weight = _check_real("weight", weight, 0.0, math.inf)
    return penalties_from_clusters(repetition_clusters(questions, threshold), weight)


# --------------------------------------------------------------------------
# Challenger reward
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ChallengerReward:
    """One Challenger completion's reward and its parts.

    `uncertainty` and `p_hat` are None for a format failure (there is no
    question), so means over them are means over the parsed questions. A
    failure is its own cluster (`cluster_size` 1, `penalty` λ/B): the code form
    subtracts it, the paper form rewards a failure 0 whatever its penalty.
    """

    reward: float
    format_failure: bool
    uncertainty: float | None
    penalty: float | None
    p_hat: float | None
    cluster_size: int | None

    def as_dict(self) -> dict:
        return asdict(self)


def challenger_reward_components(
    parsed_questions: list[str | None],
    p_hats: list[float | None],
    form: str = "paper",
    penalty_threshold: float = DEFAULT_PENALTY_THRESHOLD,
    penalty_weight: float = 1.0,
) -> list[ChallengerReward]:
    """Rewards with their parts for a batch of Challenger completions.

    `parsed_questions[i]` is None for a format failure; `p_hats[i]` is the
    Solver's majority fraction for that question (ignored, may be None, for a
    failure). The penalty's B is the number of completions, failures included
    (the paper's r_rep = |C_k|/B over the step's batch, and the authors' code,
    examples/reward_function/caller_penalty.py:136-143 @5699329). There a
    failure's question is "", whose BLEU with every sentence is 0 in nltk, so
    each failure is a singleton cluster and never joins another: clustering the
    parsed questions alone gives the same clusters.
    """
    _check_form(form)
    penalty_threshold = _check_real("penalty_threshold", penalty_threshold, 0.0, 1.0, low_open=True)
    penalty_weight = _check_real("penalty_weight", penalty_weight, 0.0, math.inf)
    parsed_questions = list(parsed_questions)
    p_hats = list(p_hats)
    if len(parsed_questions) != len(p_hats):
        raise ValueError(
            f"parsed_questions and p_hats must have the same length, "
            f"got {len(parsed_questions)} and {len(p_hats)}"
        )
    parsed_index = [i for i, q in enumerate(parsed_questions) if q is not None]
    checked_p_hats = {}
    for i in parsed_index:
        if not isinstance(parsed_questions[i], str):
            raise ValueError(
                f"parsed_questions[{i}] must be a string or None, got {type(parsed_questions[i]).__name__}"
            )
        if p_hats[i] is None:
            raise ValueError(f"p_hats[{i}] is None but parsed_questions[{i}] is a question")
        checked_p_hats[i] = _check_real(f"p_hats[{i}]", p_hats[i], 0.0, 1.0)
    labels = repetition_clusters([parsed_questions[i] for i in parsed_index], penalty_threshold)
    sizes = np.bincount(np.asarray(labels, dtype=np.int64)) if labels else np.zeros(0, np.int64)
    batch = len(parsed_questions)
    failure_penalty = penalty_weight / batch if batch else 0.0
    failure_reward = (PAPER_FORMAT_FAILURE_REWARD if form == "paper"
                      else CODE_FORMAT_FAILURE_REWARD - failure_penalty)

    results: list[ChallengerReward] = [
        ChallengerReward(failure_reward, True, None, failure_penalty, None, 1) for _ in parsed_questions
    ]
    for position, i in enumerate(parsed_index):
        p_hat = checked_p_hats[i]
        uncertainty = uncertainty_reward(p_hat, form)
        cluster_size = int(sizes[labels[position]])
        penalty = penalty_weight * cluster_size / batch
        reward = uncertainty - penalty
        if form == "paper":
            reward = max(0.0, reward)
        results[i] = ChallengerReward(reward, False, uncertainty, penalty, p_hat, cluster_size)
    return results


def challenger_rewards(
    parsed_questions: list[str | None],
    p_hats: list[float | None],
    form: str = "paper",
    penalty_threshold: float = DEFAULT_PENALTY_THRESHOLD,
    penalty_weight: float = 1.0,
) -> list[float]:
    """One reward per Challenger completion (see `challenger_reward_components`)."""
    return [
        c.reward
        for c in challenger_reward_components(
            parsed_questions, p_hats, form, penalty_threshold, penalty_weight
        )
    ]


ANSWER_GATES = ("none", "authors_2025")
AUTHORS_2025_GATE_MIN_SCORE = 0.1


def authors_2025_gate(p_hat: float, majority_answer: str | None, challenger_answer: str | None) -> float:
    """The score the authors' reward server returned before 2025-12-10: a BUG, reproduced on request.

    vllm_service_init/start_vllm_server.py (af4a941 .. 4ffa715; removed in
    9409808) returned p̂ only when the Solver's majority string equalled the
    Challenger's answer and p̂ > 0.1, else 0. Through an indexing bug that
    answer was the *last character* of the Challenger's boxed string
    (`answers[-1]` of a string), and "e" (from "None") when it boxed nothing.
    So a question scores only if the Solver's majority is exactly that one
    character and at least 2 of 10 samples agree. The published numbers were
    probably made with it (inference from the dates). rzero's Challenger answer
    is the box after its last question, the authors' the last box anywhere.
    """
    p_hat = _check_real("p_hat", p_hat, 0.0, 1.0)
    golden = (challenger_answer or "None").strip()[-1:]
    return p_hat if majority_answer == golden and p_hat > AUTHORS_2025_GATE_MIN_SCORE else 0.0


def summarize_challenger_rewards(components: list[ChallengerReward]) -> dict[str, float]:
    """Batch means for logging; NaN where there is nothing to average."""

    def mean(values) -> float:
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else float("nan")

    return {
        "reward_mean": mean(c.reward for c in components),
        "uncertainty_mean": mean(c.uncertainty for c in components),
        "penalty_mean": mean(c.penalty for c in components),
        "p_hat_mean": mean(c.p_hat for c in components),
        "format_failure_rate": mean(float(c.format_failure) for c in components),
        "n_completions": float(len(components)),
    }


# --------------------------------------------------------------------------
# Solver reward
# --------------------------------------------------------------------------


def has_solver_format(completion: str | None) -> bool:
    """True when `completion` fully matches `<think>.*</think>.*\\boxed\\{.*\\}.*` (DOTALL).

    Same decision as `re.fullmatch` with that pattern, without its quadratic
    backtracking on long untrusted text: the first `</think>` after the opening
    tag and the first `\\boxed{` after it leave the most room for the rest.
    """
    if not completion or not completion.startswith("<think>"):
        return False
    close = completion.find("</think>", len("<think>"))
    if close < 0:
        return False
    box = completion.find("\\boxed{", close + len("</think>"))
    return box >= 0 and completion.find("}", box + len("\\boxed{")) >= 0


def _check_format_weight(format_weight: float) -> float:
    return _check_real("format_weight", format_weight, 0.0, 1.0)


def _mix(accuracy: float, completion: str | None, format_weight: float) -> float:
    if format_weight == 0.0:
        return accuracy
    return (1.0 - format_weight) * accuracy + format_weight * float(has_solver_format(completion))


def solver_reward(completion: str, pseudo_label: str | None, format_weight: float = 0.0) -> float:
    """1 if the last boxed answer is math-equivalent to `pseudo_label`, else 0.

    With `format_weight` w > 0: `(1 - w) * accuracy + w * format` (authors'
    code: w = 0.1). A None label gives accuracy 0.
    """
    format_weight = _check_format_weight(format_weight)
    answer = extract_boxed(completion)
    accurate = answer is not None and pseudo_label is not None and equivalent(answer, pseudo_label)
    return _mix(float(accurate), completion, format_weight)


def solver_rewards(
    completions: list[str], labels: list[str | None], format_weight: float = 0.0
) -> list[float]:
    """`solver_reward` for many completions; equivalence checks run as one batch."""
    format_weight = _check_format_weight(format_weight)
    completions = list(completions)
    labels = list(labels)
    if len(completions) != len(labels):
        raise ValueError(
            f"completions and labels must have the same length, got {len(completions)} and {len(labels)}"
        )
    answers = [extract_boxed(c) for c in completions]
    to_check = [
        i for i, (a, y) in enumerate(zip(answers, labels, strict=True)) if a is not None and y is not None
    ]
    verdicts = equivalent_many([(answers[i], labels[i]) for i in to_check]) if to_check else []
    accuracy = [0.0] * len(completions)
    for i, ok in zip(to_check, verdicts, strict=True):
        accuracy[i] = float(bool(ok))
    return [_mix(a, c, format_weight) for a, c in zip(accuracy, completions, strict=True)]
