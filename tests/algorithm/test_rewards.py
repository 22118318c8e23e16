"""Tests for rzero_lib.rewards and rzero_lib.bleu.

Hand-computed values for every reward formula, and parity of the vectorised
repetition penalty with the authors' construction (pairwise nltk
`sentence_bleu` + sklearn `AgglomerativeClustering`), which is built here
independently of the library.
"""

from __future__ import annotations

import math
import random
import re

import numpy as np
import pytest

from rzero_lib import bleu, rewards
from rzero_lib.rewards import (
    ChallengerReward,
    bleu_distance_condensed,
    bleu_distance_matrix,
    challenger_reward_components,
    challenger_rewards,
    has_solver_format,
    repetition_clusters,
    repetition_penalty,
    solver_reward,
    solver_rewards,
    summarize_challenger_rewards,
    uncertainty_reward,
)

nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")
sklearn_cluster = pytest.importorskip("sklearn.cluster")


# --------------------------------------------------------------------------
# reference construction (the authors' code, pairwise)
# --------------------------------------------------------------------------


def reference_distance_matrix(questions: list[str]) -> np.ndarray:
    smoothing = nltk_bleu.SmoothingFunction().method1
    n = len(questions)
    tokens = [q.split() for q in questions]
    matrix = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            score = nltk_bleu.sentence_bleu([tokens[j]], tokens[i], smoothing_function=smoothing)
            matrix[i, j] = matrix[j, i] = 1 - score
    return matrix


def reference_labels(distance_matrix: np.ndarray, threshold: float) -> np.ndarray:
    model = sklearn_cluster.AgglomerativeClustering(
        n_clusters=None, metric="precomputed", linkage="average", distance_threshold=threshold
    )
    return model.fit(distance_matrix).labels_


def as_partition(labels) -> set[frozenset[int]]:
    groups: dict[int, set[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(int(label), set()).add(i)
    return {frozenset(g) for g in groups.values()}


def parity_questions(n: int = 320, seed: int = 7) -> list[str]:
    """Question-like strings with the cases that break naive BLEU implementations."""
    rng = random.Random(seed)
    templates = [
        "Find the number of positive integers n less than {a} such that n divides {b}.",
        "Let $x + y = {a}$ and $xy = {b}$. Compute $x^2 + y^2$.",
        "What is the remainder when ${a}^{{{b}}}$ is divided by 7?",
        "In triangle ABC, AB = {a}, BC = {b}. Find the area of ABC.",
        "How many ways can {a} people sit around a table if {b} refuse to sit together?",
        "Compute \\frac{{{a}}}{{{b}}} + \\sqrt{{{a}}} and give the answer in simplest form.",
        "求 {a} 和 {b} 的最大公约数。 请给出 答案",
        "Café problème : trouver {a} + {b} = ? 🙂 🙂",
        "the the the the {a} the the",
    ]
    special = [
        "",
        " ",
        "   \t\n ",
        "\u3000",
        "x",
        "x y",
        "x y z",
        "7",
        "1 2",
        "$x$",
        "the",
        "the the",
        "the the the",
        "🙂",
        "日本 語",
        "é",
        "x\u00a0y z",
        "a b c d",
        "a b c d",
        "d c b a",
        "a b c d e",
        "a b c",
    ]
    questions = list(special)
    while len(questions) < n:
        r = rng.random()
        if r < 0.15 and questions:
            questions.append(rng.choice(questions))  # exact duplicate
        elif r < 0.35 and questions:
            words = rng.choice(questions).split() or ["empty"]
            words[rng.randrange(len(words))] = rng.choice(["prime", "odd", "12", "x", "🙂"])
            questions.append(" ".join(words))  # near duplicate
        elif r < 0.45:
            k = rng.randint(1, 3)
            questions.append(" ".join(rng.choice(["x", "y", "the", "1", "$n$", "日"]) for _ in range(k)))
        else:
            text = rng.choice(templates).format(a=rng.randint(2, 30), b=rng.randint(2, 60))
            if rng.random() < 0.2:
                words = text.split()
                rng.shuffle(words)
                text = " ".join(words)
            questions.append(text)
    rng.shuffle(questions)
    return questions


@pytest.fixture(scope="module")
def parity_data():
    questions = parity_questions()
    return questions, reference_distance_matrix(questions)


# --------------------------------------------------------------------------
# uncertainty reward
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p_hat", "paper", "code"),
    [(0.0, 0.0, 0.0), (0.3, 0.6, 0.3), (0.5, 1.0, 0.5), (0.7, 0.6, 0.3), (1.0, 0.0, 0.0)],
)
def test_uncertainty_reward_both_forms(p_hat, paper, code):
    assert uncertainty_reward(p_hat) == pytest.approx(paper)
    assert uncertainty_reward(p_hat, "paper") == pytest.approx(paper)
    assert uncertainty_reward(p_hat, form="code") == pytest.approx(code)


@pytest.mark.parametrize("bad", [-0.1, 1.01, float("nan"), "0.5", None])
def test_uncertainty_reward_rejects_bad_p_hat(bad):
    with pytest.raises(ValueError, match="p_hat"):
        uncertainty_reward(bad)


def test_uncertainty_reward_rejects_bad_form():
    with pytest.raises(ValueError, match=r"form.*'paper'.*'code'"):
        uncertainty_reward(0.5, form="bogus")


# --------------------------------------------------------------------------
# repetition penalty: hand-made batches
# --------------------------------------------------------------------------


def test_penalty_three_identical_one_different():
    same = "find the sum of all primes below one hundred"
    batch = [same, same, "completely unrelated words appear here", same]
    assert repetition_penalty(batch) == pytest.approx([3 / 4, 3 / 4, 1 / 4, 3 / 4])
    assert repetition_penalty(batch, weight=2.0) == pytest.approx([1.5, 1.5, 0.5, 1.5])
    labels = repetition_clusters(batch)
    assert labels[0] == labels[1] == labels[3] != labels[2]


def test_penalty_edge_sizes():
    assert repetition_penalty([]) == []
    assert repetition_clusters([]) == []
    assert repetition_penalty(["only one question here"], weight=0.7) == [0.7]
    assert repetition_penalty(["", ""]) == [0.5, 0.5]  # empty texts never match: BLEU 0, two clusters
    assert bleu_distance_matrix([]).shape == (0, 0)
    assert bleu_distance_matrix(["a"]).tolist() == [[0.0]]


def test_distance_matrix_layout():
    questions = ["a b c d e", "a b c d", "x y"]
    matrix = bleu_distance_matrix(questions)
    assert np.all(np.diag(matrix) == 0)
    assert np.array_equal(matrix, matrix.T)
    # hypothesis i, reference j for i < j: "a b c d e" against the shorter "a b c d"
    smoothing = nltk_bleu.SmoothingFunction().method1
    expected = 1 - nltk_bleu.sentence_bleu(
        [questions[1].split()], questions[0].split(), smoothing_function=smoothing
    )
    assert matrix[0, 1] == expected
    assert matrix[0, 2] == 1.0  # no shared unigram: nltk returns 0
    assert np.array_equal(bleu_distance_condensed(questions), matrix[np.triu_indices(3, k=1)])


def test_short_hypotheses_follow_nltk():
    # shorter than 4 tokens: smoothed 0.1 precisions for missing orders, brevity penalty
    smoothing = nltk_bleu.SmoothingFunction().method1
    pairs = [("x", "x"), ("x", "x y z w"), ("x y", "x y"), ("x y z", "x y z w v"), ("a b a", "a a b b")]
    for hyp, ref in pairs:
        got = bleu.pairwise_bleu_condensed([hyp, ref])[0]
        assert got == nltk_bleu.sentence_bleu([ref.split()], hyp.split(), smoothing_function=smoothing)


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5, float("nan"), "0.5"])
def test_penalty_rejects_bad_threshold(bad):
    with pytest.raises(ValueError, match="threshold"):
        repetition_penalty(["a b", "c d"], threshold=bad)


def test_penalty_rejects_bad_weight_and_questions():
    with pytest.raises(ValueError, match="weight"):
        repetition_penalty(["a b", "c d"], weight=-1.0)
    with pytest.raises(ValueError, match="questions"):
        repetition_penalty("a single string")
    with pytest.raises(ValueError, match=r"questions\[1\]"):
        repetition_penalty(["a", None])


# --------------------------------------------------------------------------
# repetition penalty: parity with pairwise nltk + sklearn
# --------------------------------------------------------------------------


def test_distance_matrix_matches_pairwise_nltk(parity_data):
    questions, reference = parity_data
    assert len(questions) >= 300
    got = bleu_distance_matrix(questions)
    np.testing.assert_allclose(got, reference, rtol=0, atol=1e-12)
    # the arithmetic follows nltk operation by operation: same bits
    assert np.array_equal(got, reference)


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_clusters_match_sklearn(parity_data, threshold):
    questions, reference = parity_data
    expected = reference_labels(reference, threshold)
    got = repetition_clusters(questions, threshold)
    assert as_partition(got) == as_partition(expected)
    assert got == expected.tolist()  # even the label numbers
    sizes = np.bincount(expected)
    expected_penalty = [0.5 * sizes[label] / len(questions) for label in expected]
    assert repetition_penalty(questions, threshold, weight=0.5) == pytest.approx(expected_penalty, abs=0)


def test_threshold_exactly_at_a_merge_distance(parity_data):
    """A merge at exactly the threshold is not made (sklearn counts distances >= threshold)."""
    from scipy.cluster.hierarchy import linkage

    questions, reference = parity_data
    heights = linkage(reference[np.triu_indices(len(questions), k=1)], method="average")[:, 2]
    candidates = sorted({h for h in heights.tolist() if 0 < h <= 1})
    picked = [
        candidates[0],
        candidates[len(candidates) // 3],
        candidates[len(candidates) // 2],
        candidates[-1],
    ]
    condensed = bleu_distance_condensed(questions)
    for height in picked:
        for threshold in (np.nextafter(height, 0), height, min(1.0, np.nextafter(height, 2))):
            expected = reference_labels(reference, float(threshold))
            got = rewards.clusters_from_condensed(condensed, float(threshold))
            assert got == expected.tolist(), threshold


def test_row_blocks_do_not_change_the_result(parity_data, monkeypatch):
    questions, _ = parity_data
    whole = bleu.pairwise_bleu_condensed(questions)
    monkeypatch.setattr(bleu, "_BLOCK_PAIRS", 997)
    assert np.array_equal(bleu.pairwise_bleu_condensed(questions), whole)


def test_correctly_rounded_sum_matches_fsum():
    rng = np.random.default_rng(0)
    n = 20_000
    terms = np.ldexp(rng.uniform(1, 2, (n, 4)) * rng.choice([-1, 1], (n, 4)), rng.integers(-70, 4, (n, 4)))
    # half-way cases: 1 + half an ulp, decided by far smaller terms of either sign
    terms[: n // 2, 0] = 1.0
    terms[: n // 2, 1] = 2.0**-53
    terms[: n // 2, 2] = np.ldexp(rng.choice([-1.0, 0.0, 1.0], n // 2), -rng.integers(54, 150, n // 2))
    terms[: n // 2, 3] = np.ldexp(rng.choice([-1.0, 0.0, 1.0], n // 2), -rng.integers(54, 300, n // 2))
    terms = rng.permuted(terms, axis=1)
    expected = np.array([math.fsum(row) for row in terms.tolist()])
    assert np.array_equal(bleu.correctly_rounded_sum(terms), expected)


# --------------------------------------------------------------------------
# Challenger reward
# --------------------------------------------------------------------------

SAME = "find the sum of all primes below one hundred"
OTHER = "completely unrelated words appear here"


def test_challenger_rewards_paper_form():
    questions = [SAME, None, OTHER, SAME]
    p_hats = [0.5, None, 0.3, 0.9]
    # B = 4, every rollout of the step: SAME twice (penalty 2/4), OTHER once (1/4), the failure alone
    expected = [1.0 - 2 / 4, 0.0, 0.6 - 1 / 4, 0.0]  # last: 0.2 - 2/4 < 0, clipped
    assert challenger_rewards(questions, p_hats) == pytest.approx(expected)


def test_challenger_rewards_code_form():
    questions = [SAME, None, OTHER, SAME]
    p_hats = [0.5, 0.7, 0.3, 0.9]  # a p_hat next to a format failure is ignored
    expected = [0.5 - 2 / 4, -1.0 - 1 / 4, 0.3 - 1 / 4, 0.1 - 2 / 4]  # negative, no clip; a failure pays 1/B
    assert challenger_rewards(questions, p_hats, form="code") == pytest.approx(expected)


def test_format_failures_count_in_the_batch_issue_example():
    """Rollouts [unparsed, unparsed, q1, q2] with p̂ = ½ and distinct q1, q2 (issue 15, hand-computed).

    Paper: r_rep = |C|/B with B = 4 gives 1 - 1/4 for q1 and q2, 0 for failures. Code: every unparsed
    rollout is its own cluster, so -1 - 1/4; q1, q2: min(½, ½) - 1/4.
    """
    questions, p_hats = [None, None, SAME, OTHER], [None, None, 0.5, 0.5]
    assert challenger_rewards(questions, p_hats, form="paper") == pytest.approx([0.0, 0.0, 0.75, 0.75])
    assert challenger_rewards(questions, p_hats, form="code") == pytest.approx([-1.25, -1.25, 0.25, 0.25])
    # λ scales a failure's share too
    assert challenger_rewards(questions, p_hats, form="code", penalty_weight=2.0) == pytest.approx(
        [-1.5, -1.5, 0.0, 0.0])


def test_code_form_matches_the_authors_construction_with_failures():
    """The authors' reward on the whole batch, unparsed rollouts as "" (nltk + sklearn, built here)."""
    rng = random.Random(5)
    words = "the sum of all primes below one hundred find a triangle area with sides".split()
    pool = [" ".join(rng.choices(words, k=rng.randint(4, 9))) for _ in range(6)]
    for _ in range(5):
        questions = [rng.choice(pool) if rng.random() < 0.7 else None for _ in range(12)]
        p_hats = [rng.choice([0.0, 0.3, 0.5, 0.9]) if q is not None else None for q in questions]
        texts = [q if q is not None else "" for q in questions]
        labels = reference_labels(reference_distance_matrix(texts), 0.5)
        share = [list(labels).count(lab) / len(texts) for lab in labels]
        expected = [(min(p, 1 - p) if q is not None else -1.0) - r for q, p, r in zip(questions, p_hats, share)]
        assert challenger_rewards(questions, p_hats, form="code") == pytest.approx(expected)


def test_challenger_penalty_parameters_and_all_failures():
    questions = [SAME, SAME]
    assert challenger_rewards(questions, [0.5, 0.5], penalty_weight=0.5) == pytest.approx([0.5, 0.5])
    assert challenger_rewards([None, None], [None, None]) == [0.0, 0.0]
    assert challenger_rewards([None], [None], form="code") == [-2.0]  # -1 - 1/1
    assert challenger_rewards([], []) == []


def test_challenger_components_and_summary():
    components = challenger_reward_components([SAME, None, OTHER, SAME], [0.5, None, 0.3, 0.9])
    assert all(isinstance(c, ChallengerReward) for c in components)
    assert [c.format_failure for c in components] == [False, True, False, False]
    assert components[1].uncertainty is None and components[1].p_hat is None
    assert components[1].penalty == pytest.approx(1 / 4)  # a singleton cluster, even though paper form ignores it
    assert [c.cluster_size for c in components] == [2, 1, 1, 2]
    assert components[2].as_dict()["penalty"] == pytest.approx(1 / 4)
    summary = summarize_challenger_rewards(components)
    assert summary["format_failure_rate"] == pytest.approx(0.25)
    assert summary["p_hat_mean"] == pytest.approx((0.5 + 0.3 + 0.9) / 3)
    assert summary["uncertainty_mean"] == pytest.approx((1.0 + 0.6 + 0.2) / 3)
    assert summary["penalty_mean"] == pytest.approx((2 / 4 + 1 / 4 + 1 / 4 + 2 / 4) / 4)
    assert summary["reward_mean"] == pytest.approx((0.5 + 0 + (0.6 - 1 / 4) + 0) / 4)


@pytest.mark.parametrize("p_hat, majority, challenger_answer, expected", [
    (0.5, "2", "12", 0.5),       # the bug: only the LAST character of the Challenger's box is compared
    (0.5, "12", "12", 0.0),      # so the right full answer scores 0
    (0.1, "7", "7", 0.0),        # p̂ must exceed 0.1 (1 of 10 votes is not enough)
    (0.2, "7", "7", 0.2),
    (0.6, "e", None, 0.6),       # no box: the string "None", whose last character is "e"
    (0.6, None, "7", 0.0),       # no Solver majority
    (0.4, "x", "\\frac{1}{x}", 0.0),  # last character "}"
])
def test_authors_2025_gate_reproduces_the_bug(p_hat, majority, challenger_answer, expected):
    assert rewards.authors_2025_gate(p_hat, majority, challenger_answer) == pytest.approx(expected)


def test_challenger_validation_names_arguments():
    with pytest.raises(ValueError, match="same length"):
        challenger_rewards([SAME], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"p_hats\[0\]"):
        challenger_rewards([SAME], [None])
    with pytest.raises(ValueError, match=r"p_hats\[0\]"):
        challenger_rewards([SAME], [1.5])
    with pytest.raises(ValueError, match="form"):
        challenger_rewards([SAME], [0.5], form="paperish")
    with pytest.raises(ValueError, match="penalty_threshold"):
        challenger_rewards([SAME], [0.5], penalty_threshold=0)
    with pytest.raises(ValueError, match="penalty_weight"):
        challenger_rewards([SAME], [0.5], penalty_weight=float("inf"))


# --------------------------------------------------------------------------
# Solver reward
# --------------------------------------------------------------------------

FORMATTED = "<think>6 times 7</think> The answer is \\boxed{42}."
UNFORMATTED = "6 times 7 is \\boxed{42}"


def test_solver_reward_accuracy():
    assert solver_reward(FORMATTED, "42") == 1.0
    assert solver_reward(UNFORMATTED, "42") == 1.0
    assert solver_reward(FORMATTED, "41") == 0.0
    assert solver_reward("no boxed answer at all", "42") == 0.0
    assert solver_reward(FORMATTED, None) == 0.0


def test_solver_reward_format_term():
    w = 0.1
    assert solver_reward(FORMATTED, "42", format_weight=w) == pytest.approx(1.0)
    assert solver_reward(UNFORMATTED, "42", format_weight=w) == pytest.approx(0.9)
    assert solver_reward(FORMATTED, "41", format_weight=w) == pytest.approx(0.1)
    assert solver_reward("<think>no answer</think>", "42", format_weight=w) == 0.0
    assert solver_reward(FORMATTED, None, format_weight=w) == pytest.approx(0.1)


def test_solver_rewards_batch_matches_single():
    completions = [FORMATTED, UNFORMATTED, FORMATTED, "nothing", "<think>x</think> \\boxed{\\frac{1}{2}}"]
    labels = ["42", "42", "41", "42", "0.5"]
    batch = solver_rewards(completions, labels, format_weight=0.1)
    assert batch == pytest.approx([1.0, 0.9, 0.1, 0.0, 1.0])
    assert batch == pytest.approx(
        [solver_reward(c, y, 0.1) for c, y in zip(completions, labels, strict=True)]
    )
    assert solver_rewards([], []) == []
    with pytest.raises(ValueError, match="same length"):
        solver_rewards([FORMATTED], [])
    with pytest.raises(ValueError, match="format_weight"):
        solver_reward(FORMATTED, "42", format_weight=1.5)


def test_has_solver_format_agrees_with_authors_regex():
    pattern = re.compile(r"<think>.*</think>.*\\boxed\{.*\}.*", re.DOTALL)
    pieces = ["<think>", "</think>", "\\boxed{", "}", "{", "x", "\n", " ", "\\boxed", "<think"]
    rng = random.Random(3)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 9)))
        if rng.random() < 0.5:
            text = "<think>" + text
        assert has_solver_format(text) == bool(pattern.fullmatch(text)), text
    assert has_solver_format("<think>a\nb</think>\n\\boxed{1}\n")
    assert not has_solver_format(" <think>a</think>\\boxed{1}")
    assert not has_solver_format(None)
