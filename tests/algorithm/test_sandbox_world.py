"""The sandbox's world: its question form, the worked solutions the corpus writes, and the problem sets."""

import random
from dataclasses import replace

from rzero_lib.answers import extract_boxed
from rzero_lib.arithmetic_expressions import arithmetic_answer
from rzero_lib.sandbox_world import (
    CARELESS,
    DEFAULT_WORLD,
    LEADS_WORLD,
    MAX_STEPS,
    V3_WORLD,
    corpus_solution,
    early_stop_answer,
    is_sandbox_question,
    make_problem,
    malformed_question,
    operand_digits,
    parse_question,
    question_difficulty,
    sandbox_dev_problems,
    sandbox_heldout_problems,
    worked_solution,
)


def test_difficulty_helpers():
    assert operand_digits("47 + 385 = ?") == 3
    assert operand_digits("What is 7 * 8?") == 1
    assert operand_digits("no numbers") is None and operand_digits(None) is None
    assert question_difficulty("37 + 7 * 4 = ?") == 4 and question_difficulty(" 37+7*11 = ? ") == 11
    assert question_difficulty("37 + 7 = ?") is None and question_difficulty(None) is None


def test_question_form_has_exact_answers():
    p = make_problem(37, 7, 4)
    assert (p.question, p.answer, p.max_digits) == ("37 + 7 * 4 = ?", "65", 4)
    assert arithmetic_answer(p.question) == "65"
    assert parse_question(p.question) == (37, 7, 4)
    assert early_stop_answer(37, 7, 4) == "58"


def test_worked_solution_writes_running_totals_and_carries_slips_forward():
    assert worked_solution(37, 7, 4) == "044 051 058 065 \\boxed{65}"
    assert worked_solution(37, 7, 4, steps=3) == "044 051 058 \\boxed{58}"  # the early stop
    # a slip at step 1 (051 -> 053) is carried: every later total is off by the same amount
    assert worked_solution(37, 7, 4, slips={1: 3}) == "044 053 060 067 \\boxed{67}"
    assert worked_solution(37, 7, 4, steps=3, lead="~") == "~044 051 058 \\boxed{58}"  # LEADS_WORLD's early stop


def test_corpus_rates_follow_the_world():
    world = DEFAULT_WORLD
    assert world.trap_share(1) == 0 and world.trap_share(4) < 0.1 < 0.7 < world.trap_share(12) < world.trap_max
    # the misconception starts at its onset (b = 6), above the base Solver's greedy edge; the earlier worlds had
    # it, rarely, from b = 2 on
    assert [b for b in range(1, MAX_STEPS + 1) if world.trap_share(b) > 0] == list(range(world.trap_onset, 13))
    assert 0.2 < world.trap_share(world.trap_onset) < 0.3 and V3_WORLD.trap_share(2) > 0 < LEADS_WORLD.trap_share(2)
    assert abs(world.slip_rate(5) - (world.slip_base + 5 * world.slip_per_step)) < 1e-12
    rng = random.Random(0)
    for b, lo, hi in [(2, 0.0, 0.03), (12, 0.7, 0.9)]:
        careless = sum(corpus_solution(rng, 50, 3, b)[0] == CARELESS for _ in range(2000)) / 2000
        assert lo <= careless <= hi, (b, careless)
    # no slips and no trap: the corpus writes the exact worked solution (under one of the careful leads, if any)
    exact = replace(V3_WORLD, trap_max=0.0, slip_base=0.0, slip_per_step=0.0)
    assert corpus_solution(rng, 37, 7, 9, exact)[1] == worked_solution(37, 7, 9)
    exact_leads = replace(LEADS_WORLD, trap_max=0.0, slip_base=0.0, slip_per_step=0.0)
    solutions = {corpus_solution(rng, 37, 7, 9, exact_leads)[1] for _ in range(200)}
    assert solutions == {worked_solution(37, 7, 9, lead=lead) for lead in LEADS_WORLD.careful_leads}


def test_careless_solutions_share_one_lead_careful_ones_spread_over_several():
    """Greedy decoding takes the shortcut once its share beats any single careful lead (docs/sandbox.md)."""
    world, rng = replace(DEFAULT_WORLD, slip_base=0.0, slip_per_step=0.0), random.Random(2)  # no slips: exact answers
    assert world.careless_lead not in world.careful_leads and len(set(world.careful_leads)) >= 2
    for method, solution in (corpus_solution(rng, 50, 3, 9, world) for _ in range(500)):
        assert (solution[0] == world.careless_lead) == (method == CARELESS)
        assert extract_boxed(solution) == (early_stop_answer(50, 3, 9) if method == CARELESS else "77")
    assert LEADS_WORLD.careful_leads == DEFAULT_WORLD.careful_leads
    # V3_WORLD has no leads (builtin v3): solutions start with the first running total
    assert V3_WORLD.careful_leads == V3_WORLD.careless_lead == ""
    assert {corpus_solution(rng, 50, 3, 9, V3_WORLD)[1][0] for _ in range(100)} <= set("0123456789")


def test_questions_outside_the_worlds_ranges_are_off_form():
    """The form is `c + a * b = ?` with c in 10..99, a in 2..9, b in 1..MAX_STEPS: what the corpus writes and the
    oracle-checked labels mean (a Challenger once wrote `99 + 9 *68 = ?`, which the Solver misreads as b ~ 7)."""
    assert parse_question("99 + 9 * 12 = ?") == (99, 9, 12) and parse_question("10 + 2 * 1 = ?") == (10, 2, 1)
    for question in ["99 + 9 *68 = ?", "37 + 7 * 13 = ?", "37 + 7 * 0 = ?", "9 + 7 * 4 = ?", "100 + 7 * 4 = ?",
                     "37 + 1 * 4 = ?", "37 + 10 * 4 = ?"]:
        assert parse_question(question) is None and not is_sandbox_question(question), question
        assert question_difficulty(question) is None, question


def test_malformed_questions_leave_the_form():
    rng = random.Random(1)
    for _ in range(300):
        assert parse_question(malformed_question(rng, "37 + 7 * 4 = ?")) is None


def test_problem_sets_cover_every_step_count_and_are_disjoint():
    held, dev = sandbox_heldout_problems(), sandbox_dev_problems()
    assert len(held) == len(dev) == 40 * MAX_STEPS
    assert {p.max_digits for p in held} == set(range(1, MAX_STEPS + 1))
    assert all(question_difficulty(p.question) == p.max_digits for p in held)
    assert all(arithmetic_answer(p.question) == p.answer for p in held[::7])
    assert sandbox_heldout_problems() == held  # fixed
    assert len({p.question for p in held}) == len(held)
