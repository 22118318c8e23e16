import time

import pytest

from rzero_lib.answers import (
    EquivalenceChecker,
    equivalent,
    equivalent_many,
    extract_boxed,
    normalize_answer,
    parse_challenger_output,
)


@pytest.mark.parametrize("text, expected", [
    (r"so the answer is \boxed{42}.", "42"),
    (r"\boxed{1} then \boxed{2}", "2"),
    (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
    (r"\boxed{ {a}+{b} }", "{a}+{b}"),
    (r"$\boxed 5$", "5"),
    (r"\fbox{x^2}", "x^2"),
    (r"\boxed{\{1,2\}}", r"\{1,2\}"),
    (r"complete \boxed{7} then truncated \boxed{8", "7"),
    (r"\boxed{}", None),
    ("no box here", None),
    ("", None),
    (None, None),
])
def test_extract_boxed(text, expected):
    assert extract_boxed(text) == expected


def test_extract_boxed_bounds_untrusted_text():
    huge = "x" * 5_000_000 + r"\boxed{3}"
    assert extract_boxed(huge) == "3"
    assert extract_boxed(r"\boxed{" + "1" * 5000 + "}") is None  # over the answer bound


def test_parse_challenger_output():
    p = parse_challenger_output("thinking...\n<question>\nWhat is 2+3?\n</question>\n\\boxed{5}")
    assert p.ok and p.question == "What is 2+3?" and p.answer == "5"
    p = parse_challenger_output("<question>old</question> <question>new one</question> \\boxed{1}")
    assert p.question == "new one"
    assert parse_challenger_output("no tags \\boxed{3}").failure == "no_question_tag"
    assert parse_challenger_output("<question>  </question>").failure == "empty_question"
    assert parse_challenger_output("   ").failure == "empty_output"
    assert parse_challenger_output("<question>" + "a" * 10_000 + "</question>").failure == "question_too_long"
    p = parse_challenger_output("<question>Q?</question>")
    assert p.ok and p.answer is None
    # a domain's question check (the sandbox's form): a question it rejects is a format failure
    def form(q):
        return q.endswith("= ?")
    assert parse_challenger_output("<question>1 + 2 * 3 = ?</question>", form).ok
    p = parse_challenger_output("<question>1 + 2 * 3 + ?</question> \\boxed{7}", form)
    assert (p.question, p.answer, p.failure) == (None, "7", "off_form")


def test_normalize_answer():
    assert normalize_answer(r" \dfrac{1}{2} ") == r"\frac{1}{2}"
    assert normalize_answer("+007") == "7"
    assert normalize_answer(r"\left( 1, 2 \right)") == "(1,2)"
    assert normalize_answer("$5$.") == "5"


@pytest.mark.parametrize("a, b, same", [
    ("1/2", "0.5", True),
    (r"\frac{1}{2}", r"\dfrac12", True),
    ("x+1", "1+x", True),
    (r"\sqrt{2}", "2^{1/2}", True),
    ("3", "4", False),
    ("10", "10.0", True),
    (r"2\pi", "6.28", False),
    ("x=3", "3", True),
    (None, "3", False),
    ("", "", False),
])
def test_equivalent(a, b, same):
    assert equivalent(a, b) is same
    assert equivalent(b, a) is same  # symmetric


def test_equivalent_many_matches_single_calls():
    pairs = [("1/2", "0.5"), ("3", "4"), ("x+1", "1+x"), ("2", "2")]
    assert equivalent_many(pairs) == [equivalent(a, b) for a, b in pairs]


def test_pathological_answer_is_bounded_by_timeout():
    checker = EquivalenceChecker(num_workers=1, timeout_s=1.0)
    try:
        t0 = time.monotonic()
        # Deep nesting makes sympy/latex2sympy crawl: the worker is stopped at the deadline.
        bad = "(" * 4000 + "1" + ")" * 4000
        assert checker.equivalent(bad, "2") is False
        elapsed = time.monotonic() - t0
        assert elapsed < 10, elapsed
        # The checker keeps working after a timeout and counts it.
        assert checker.equivalent("1/2", "0.5") is True
        assert checker.stats.timeouts >= 1 or elapsed < 1.0
    finally:
        checker.close()


def test_checker_rejects_bad_timeout():
    with pytest.raises(ValueError, match="timeout_s"):
        EquivalenceChecker(timeout_s=0)


def test_fast_path_decides_clear_numeric_cases_and_defers_close_ones():
    from rzero_lib.answers import fast_equivalence

    assert fast_equivalence("27.0", "27") is True
    assert fast_equivalence("\\frac{3}{4}", "0.75") is True
    assert fast_equivalence("27.0", "5") is False  # far apart: different under any rounding
    assert fast_equivalence("3/4", "2/3") is False  # exact rationals
    assert fast_equivalence("0.333333", "1/3") is None  # math-verify rounds decimals: its call
    assert fast_equivalence("x^2", "4") is None


def test_number_never_equals_an_expression_with_variables_but_equations_still_match():
    checker = EquivalenceChecker(num_workers=1)
    try:
        assert checker.equivalent_many([("270", "3R^2"), ("3", "x=3"), ("x^2+1", "1+x^2"), ("8\\pi", "25.13")]) \
            == [False, True, True, False]
    finally:
        checker.close()


def test_long_answers_are_never_truncated_into_equality():
    assert not equivalent("1" * 1001, "1" * 1002)
    assert not equivalent("x" * 5000 + "a", "x" * 5000 + "b")
    assert equivalent("7" * 5000, "7" * 5000)  # exactly equal: equal, without math-verify
    assert normalize_answer("1" * 1500) == "1" * 1500


@pytest.mark.parametrize("text", [
    "\\boxed{" * 14_000,  # a degenerate generation: thousands of unclosed boxes
    "\\boxed " * 14_000,
    "{" * 100_000,
    "\\" * 100_000,
    "\\boxed{" + "{" * 50_000 + "}" * 49_999,
    "<question>" * 10_000,
    "</question><question>" * 5_000,
])
def test_parsing_is_linear_in_the_text(text):
    """A correctness bound, not a performance target: 100k characters in well under 0.2 s."""
    t0 = time.perf_counter()
    extract_boxed(text)
    parse_challenger_output(text)
    assert time.perf_counter() - t0 < 0.2


def test_question_blocks_pair_each_open_tag_with_the_next_close_tag():
    p = parse_challenger_output("<question>A<question>B</question> tail \\boxed{3}")
    assert p.question == "A<question>B" and p.answer == "3"  # the lazy scan's reading, as before
    p = parse_challenger_output("<QUESTION>first</Question> <question>unclosed")
    assert p.question == "first"
