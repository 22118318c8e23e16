"""Majority vote over sampled answers, p̂, and the filters that build the Solver's training set.

`majority_vote` groups the m extracted answers into math-equivalence classes
and returns the majority answer and p̂ = |majority group| / m;
`majority_vote_many` does many questions with all their math-verify pairs in
one batch. `VoteRules` adds the authors' vote quirks (a box-less sample votes
"None"; answers that both contain "no " are one group). `band_filter` is the
paper's band |p̂ − ½| ≤ δ (or the authors' bounds) and the one place that rule
is written; `drop_reason` adds the drop rules (`FilterSettings`: paper `off`,
the authors' code, or rzero's earlier English/LaTeX rules). The grouping rule
and the rules' sources: docs/algorithm.md, "Voting".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from rzero_lib.answers import EquivalenceChecker, default_checker, normalize_answer

NO_ANSWER_VOTES = ("exclude", "none_string")
# mathruler's `extract_boxed_content` returns this string for a completion without a closed box; the
# authors' voting and reward server count it as an ordinary vote (question_evaluate/evaluate.py:118-119).
NONE_STRING_VOTE = "None"


@dataclass(frozen=True)
class VoteRules:
    """How sampled answers become votes.

    `no_answer_vote`: `exclude` (paper: a sample without an answer never votes
    but counts in m) or `none_string` (authors' code: it votes "None", which
    can win). `merge_no_answers`: answers that both contain "no " (any case)
    are equivalent (authors' code). p̂ = |majority| / m either way: with rzero's
    extraction every sample is a vote under `none_string` (an empty box is
    "None" too, where the authors drop it from their voting denominator).
    """

    no_answer_vote: str = "exclude"
    merge_no_answers: bool = False

    def __post_init__(self) -> None:
        if self.no_answer_vote not in NO_ANSWER_VOTES:
            raise ValueError(f"no_answer_vote must be one of {NO_ANSWER_VOTES}, got {self.no_answer_vote!r}")

    def ballots(self, answers: Sequence[str | None]) -> list[str | None]:
        if self.no_answer_vote == "exclude":
            return list(answers)
        return [a if a is not None and str(a).strip() else NONE_STRING_VOTE for a in answers]

    def merged(self, a: str, b: str) -> bool:
        """True when the rules make `a` and `b` one group without an equivalence check."""
        return self.merge_no_answers and "no " in a.lower() and "no " in b.lower()


@dataclass(frozen=True)
class VoteGroup:
    answer: str  # the representative: the group's first member as sampled
    count: int
    members: tuple[int, ...]  # sample indices


@dataclass(frozen=True)
class VoteResult:
    answer: str | None  # majority representative, None when no sample has an answer
    p_hat: float  # |majority group| / m
    groups: tuple[VoteGroup, ...] = field(default_factory=tuple)  # largest first, ties by first seen
    m: int = 0
    num_answered: int = 0

    @property
    def majority_count(self) -> int:
        return self.groups[0].count if self.groups else 0


def _greedy_groups(answers: Sequence[str | None], same) -> list[list[int]]:
    """Greedy grouping; `same(i, j)` says whether answers i and j are equivalent."""
    groups: list[list[int]] = []
    for i, a in enumerate(answers):
        if a is None:
            continue
        for g in groups:
            if same(g[0], i):
                g.append(i)
                break
        else:
            groups.append([i])
    return groups


def _result(answers: Sequence[str | None], groups: list[list[int]]) -> VoteResult:
    m = len(answers)
    # Stable sort: ties keep first-seen order.
    ordered = sorted(groups, key=lambda g: -len(g))
    vote_groups = tuple(VoteGroup(answers[g[0]], len(g), tuple(g)) for g in ordered)
    answered = sum(a is not None for a in answers)
    if not vote_groups:
        return VoteResult(None, 0.0, (), m, answered)
    return VoteResult(vote_groups[0].answer, vote_groups[0].count / m, vote_groups, m, answered)


def _check_answers(answers: Sequence[str | None]) -> list[str | None]:
    if len(answers) == 0:
        raise ValueError("majority_vote needs at least one sample (m = 0)")
    cleaned = []
    for a in answers:
        if a is None:
            cleaned.append(None)
        else:
            a = str(a).strip()
            cleaned.append(a if normalize_answer(a) else None)
    return cleaned


def _distinct_keys(answers: Sequence[str | None]) -> tuple[list[str], dict[str, str]]:
    """Distinct normalised keys in first-seen order, and the first raw answer of each."""
    reps: dict[str, str] = {}
    for a in answers:
        if a is not None:
            reps.setdefault(normalize_answer(a), a)
    return list(reps), reps


def majority_vote_many(answer_lists: Sequence[Sequence[str | None]],
                       checker: EquivalenceChecker | None = None,
                       timeout_s: float | None = None, rules: VoteRules = VoteRules()) -> list[VoteResult]:
    """Majority vote for many questions at once.

    The greedy grouping runs on distinct normalised answers only, and the
    questions advance in lockstep: each round asks every question's next
    "does key x belong to group g?" and sends all of them to the worker pool
    in one batch. So a question needs only the comparisons greedy grouping
    really makes, and math-verify runs in parallel across questions.
    """
    checker = checker or default_checker()
    cleaned = [_check_answers(rules.ballots(answers)) for answers in answer_lists]
    plans = [_distinct_keys(answers) for answers in cleaned]
    # Per question: groups of key indices; `cursor` = (key being placed, group being tried).
    key_groups: list[list[list[int]]] = [[[0]] if keys else [] for keys, _ in plans]
    cursor = [(1, 0) for _ in plans]
    while True:
        asks = []  # (question, key index, group index)
        for q, (keys, _) in enumerate(plans):
            x, g = cursor[q]
            if x < len(keys):
                asks.append((q, x, g))
        if not asks:
            break
        pairs = [(plans[q][1][plans[q][0][key_groups[q][g][0]]], plans[q][1][plans[q][0][x]]) for q, x, g in asks]
        verdicts = [rules.merged(a, b) for a, b in pairs]
        to_check = [i for i, merged in enumerate(verdicts) if not merged]
        if to_check:
            checked = checker.equivalent_many([pairs[i] for i in to_check], timeout_s=timeout_s)
            for i, same in zip(to_check, checked):
                verdicts[i] = same
        for (q, x, g), same in zip(asks, verdicts):
            groups = key_groups[q]
            if same:
                groups[g].append(x)
                cursor[q] = (x + 1, 0)
            elif g + 1 < len(groups):
                cursor[q] = (x, g + 1)
            else:
                groups.append([x])
                cursor[q] = (x + 1, 0)
    results = []
    for answers, (keys, _), groups in zip(cleaned, plans, key_groups):
        group_of_key = {x: gi for gi, members in enumerate(groups) for x in members}
        index = {k: x for x, k in enumerate(keys)}
        members: list[list[int]] = [[] for _ in groups]
        for i, a in enumerate(answers):
            if a is not None:
                members[group_of_key[index[normalize_answer(a)]]].append(i)
        # Groups were opened in first-seen order of their first key, which is the
        # first-seen order of their first member.
        results.append(_result(answers, [m for m in members if m]))
    return results


def majority_vote(answers: Sequence[str | None], checker: EquivalenceChecker | None = None,
                  timeout_s: float | None = None, rules: VoteRules = VoteRules()) -> VoteResult:
    """Majority vote over one question's m sampled answers (None = no extractable answer)."""
    return majority_vote_many([answers], checker=checker, timeout_s=timeout_s, rules=rules)[0]


def majority_vote_naive(answers: Sequence[str | None], timeout_s: int = 5) -> VoteResult:
    """Reference implementation: math-verify on every pair of samples, in-process.

    Used only by tests and benchmarks to check that `majority_vote` gives the
    same majority and p̂ while doing far less work.
    """
    from math_verify import parse, verify

    def math_verify_pair(a: str, b: str) -> bool:  # plain math-verify, none of our shortcuts
        gold, pred = parse("\\boxed{" + a + "}"), parse("\\boxed{" + b + "}")
        return bool(gold and pred and verify(gold, pred, timeout_seconds=timeout_s))

    answers = _check_answers(answers)
    m = len(answers)
    matrix = [[False] * m for _ in range(m)]
    for i in range(m):
        for j in range(i + 1, m):
            if answers[i] is not None and answers[j] is not None:
                a, b = sorted((answers[i], answers[j]))  # same orientation as the checker
                try:
                    ok = math_verify_pair(a, b)
                except Exception:
                    ok = False
                matrix[i][j] = matrix[j][i] = ok or a == b
    return _result(answers, _greedy_groups(answers, lambda i, j: matrix[i][j]))


# --------------------------------------------------------------------------
# filters
# --------------------------------------------------------------------------


def _check_delta(delta: float) -> None:
    if not 0.0 <= delta <= 0.5:
        raise ValueError(f"band_delta must be in [0, 0.5], got {delta}")


def band_limits(delta: float = 0.25, bounds: tuple[float, float] | None = None) -> tuple[float, float]:
    """(low, high) of the kept band: (½ − δ, ½ + δ), or the authors' `bounds` (for figures)."""
    _check_delta(delta)
    return bounds if bounds is not None else (0.5 - delta, 0.5 + delta)


def band_filter(p_hat: float, delta: float = 0.25, bounds: tuple[float, float] | None = None) -> bool:
    """True when the question is informative: |p̂ − ½| ≤ δ (paper), or low ≤ p̂ ≤ high (bounds).

    `bounds=(0.3, 0.8)` is the authors' code; a tiny tolerance absorbs float
    error so 3/10 with δ = 0.2 is kept.
    """
    _check_delta(delta)
    eps = 1e-9
    if bounds is not None:
        low, high = bounds
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(f"band bounds must satisfy 0 <= low <= high <= 1, got {bounds}")
        return low - eps <= p_hat <= high + eps
    return abs(p_hat - 0.5) <= delta + eps


PROOF_RULES = ("off", "english", "authors")
TEXT_ANSWER_RULES = ("off", "latex", "authors")
EMPTY_ANSWER_RULES = ("off", "normalized", "authors")

_PROOF_RE = re.compile(r"\b(prove|proof|proves|show that|demonstrate that)\b", re.IGNORECASE)


def _check_rule(name: str, rule: str, allowed: tuple[str, ...]) -> None:
    if rule not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {rule!r}")


def is_proof_question(question: str, rule: str = "authors") -> bool:
    """Questions dropped as proofs (no single checkable answer).

    authors: contains "证明" ("prove") or "box" in any case, as the authors'
    voting script does (question_evaluate/evaluate.py:169; "box" also drops
    questions about boxes); english: rzero's earlier regex for prove / proof /
    show that / demonstrate that, which also drops answerable questions
    ("Show that ... and find the smallest n"); off: nothing.
    """
    _check_rule("proof_rule", rule, PROOF_RULES)
    question = question or ""
    if rule == "authors":
        return "证明" in question or "box" in question.lower()
    return rule == "english" and bool(_PROOF_RE.search(question))


def is_text_answer(answer: str, rule: str = "authors") -> bool:
    """authors: "text" anywhere in the answer, any case (evaluate.py:169); latex: contains `\\text`; off."""
    _check_rule("text_answer_rule", rule, TEXT_ANSWER_RULES)
    if rule == "authors":
        return "text" in answer.lower()
    return rule == "latex" and "\\text" in answer


def is_empty_answer(answer: str, rule: str = "authors") -> bool:
    """authors: exactly "" or "None" (question_evaluate/upload.py:47); normalized: ""/none/null after
    normalisation, any case; off."""
    _check_rule("empty_answer_rule", rule, EMPTY_ANSWER_RULES)
    if rule == "authors":
        return answer in ("", NONE_STRING_VOTE)
    return rule == "normalized" and normalize_answer(answer).lower() in ("", "none", "null")


@dataclass(frozen=True)
class FilterSettings:
    """Which drops apply when building the Solver's training set (defaults: the paper's band only)."""

    band_delta: float = 0.25
    band_bounds: tuple[float, float] | None = None
    proof_rule: str = "off"
    text_answer_rule: str = "off"
    empty_answer_rule: str = "off"
    apply_band: bool = True

    def __post_init__(self) -> None:
        _check_delta(self.band_delta)
        _check_rule("proof_rule", self.proof_rule, PROOF_RULES)
        _check_rule("text_answer_rule", self.text_answer_rule, TEXT_ANSWER_RULES)
        _check_rule("empty_answer_rule", self.empty_answer_rule, EMPTY_ANSWER_RULES)


def drop_reason(question: str, vote: VoteResult, settings: FilterSettings = FilterSettings()) -> str | None:
    """Why this voted question is not used for Solver training, or None to keep it.

    Reasons, checked in this order: `no_answer` (no sample had an answer),
    `empty_majority`, `proof_question`, `text_answer`, `outside_band`.
    """
    if vote.answer is None:
        return "no_answer"
    if is_empty_answer(vote.answer, settings.empty_answer_rule):
        return "empty_majority"
    if is_proof_question(question, settings.proof_rule):
        return "proof_question"
    if is_text_answer(vote.answer, settings.text_answer_rule):
        return "text_answer"
    if settings.apply_band and not band_filter(vote.p_hat, settings.band_delta, settings.band_bounds):
        return "outside_band"
    return None


def vote_rules_of(voting_params) -> VoteRules:
    """The `VoteRules` of a run's `voting` parameters (used by the voting stage and the Challenger reward)."""
    return VoteRules(no_answer_vote=voting_params.no_answer_vote, merge_no_answers=voting_params.merge_no_answers)


def filter_settings_of(voting_params) -> FilterSettings:
    """The `FilterSettings` of a run's `voting` parameters."""
    p = voting_params
    return FilterSettings(band_delta=p.band_delta, band_bounds=p.band_bounds, apply_band=p.apply_band,
                          proof_rule=p.proof_rule, text_answer_rule=p.text_answer_rule,
                          empty_answer_rule=p.empty_answer_rule)
