"""The domains' difficulty rule: one number per question (votes.parquet's `difficulty`)."""

import math

import pandas as pd

from rzero_lib.domains import get_domain
from rzero_lib.pipeline.run_tables import vote_difficulty


def test_arithmetic_difficulty_is_the_sandbox_steps_else_operand_digits():
    rule = get_domain("arithmetic").difficulty
    assert rule("37 + 7 * 4 = ?") == 4.0 and rule("10 + 2 * 12 = ?") == 12.0  # b, the steps
    assert rule("47 + 385 = ?") == 3.0  # not the sandbox form: digits of the largest operand
    assert rule("What is 7 * 8?") == 1.0
    assert math.isnan(rule("How many apples?")) and math.isnan(rule(None)) and math.isnan(rule(""))


def test_sandbox_domain_checks_the_question_form_and_counts_steps_only():
    """Ill-posed near misses are format failures in the sandbox, and never get a number on the steps scale."""
    domain = get_domain("sandbox")
    assert domain.question_form("37 + 7 * 4 = ?") and domain.difficulty("37 + 7 * 4 = ?") == 4.0
    for near_miss in ("13 + 9 * 6 + ?", "63 + 4 * 6 6 ?", "76 + 8 *   = ?", "47 + 385 = ?"):
        assert not domain.question_form(near_miss) and math.isnan(domain.difficulty(near_miss)), near_miss
    assert (domain.default_oracle, domain.default_benchmarks) == ("arithmetic", ("arith_sandbox",))
    # the other domains accept any question text
    assert get_domain("arithmetic").question_form is None and get_domain("math").question_form is None


def test_math_has_no_difficulty_number():
    assert math.isnan(get_domain("math").difficulty("Find x if x^2 = 4."))


def test_vote_difficulty_reads_the_column_else_applies_the_rule():
    votes = pd.DataFrame({"question": ["37 + 7 * 4 = ?", "47 + 385 = ?"], "difficulty": [9.0, math.nan]})
    # the stored column wins; a row without it (an iteration voted before the column existed, concatenated
    # with later ones) gets the rule
    assert vote_difficulty(votes, "arithmetic").tolist() == [9.0, 3.0]
    old = votes.drop(columns="difficulty")  # written before the column existed
    assert vote_difficulty(old, "arithmetic").tolist() == [4.0, 3.0]
    assert vote_difficulty(old, "math").isna().all()
