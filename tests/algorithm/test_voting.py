import pytest

from rzero_lib.voting import (
    FilterSettings,
    VoteResult,
    VoteRules,
    band_filter,
    drop_reason,
    is_empty_answer,
    is_proof_question,
    is_text_answer,
    majority_vote,
    majority_vote_many,
    majority_vote_naive,
)

AUTHORS_RULES = VoteRules(no_answer_vote="none_string", merge_no_answers=True)


def test_majority_by_equivalence_not_string():
    v = majority_vote(["1/2", "0.5", r"\frac{1}{2}", "3", "3", None])
    assert v.answer == "1/2"
    assert v.p_hat == pytest.approx(3 / 6)
    assert [g.count for g in v.groups] == [3, 2]
    assert v.groups[0].members == (0, 1, 2)
    assert v.m == 6 and v.num_answered == 5


def test_unanswered_samples_count_in_m_but_never_win():
    v = majority_vote([None, None, None, "7"])
    assert v.answer == "7" and v.p_hat == 0.25


def test_all_unanswered():
    v = majority_vote([None, None, "", "  "])
    assert v.answer is None and v.p_hat == 0.0 and v.groups == ()


def test_ties_break_by_first_seen():
    v = majority_vote(["5", "6", "6", "5"])
    assert v.answer == "5" and v.p_hat == 0.5
    v = majority_vote(["6", "5", "5", "6"])
    assert v.answer == "6"


def test_m_zero_is_an_error():
    with pytest.raises(ValueError, match="m = 0"):
        majority_vote([])


def test_many_equals_single_and_naive():
    lists = [
        ["1/2", "0.5", "2", "2", "2", None, "x+1", "1+x", "1+x", "0.50"],
        ["10", "10.0", "1e1", "9", None, None, "9", "9", "9", "9"],
        [r"\sqrt{4}", "2", "-2", "2.0", "3", "3", "3", "3", "4", "2"],
    ]
    many = majority_vote_many(lists)
    for answers, v in zip(lists, many):
        single = majority_vote(answers)
        naive = majority_vote_naive(answers)
        assert v == single
        assert (v.answer, v.p_hat) == (naive.answer, naive.p_hat)
        assert [g.count for g in v.groups] == [g.count for g in naive.groups]


def test_band_filter():
    assert band_filter(0.5) and band_filter(0.3) and band_filter(0.7)
    assert band_filter(0.25) and band_filter(0.75)  # boundary kept: 3..7 of 10 with δ=0.25
    assert not band_filter(0.2) and not band_filter(0.8) and not band_filter(1.0)
    assert band_filter(0.3, delta=0.2) and not band_filter(0.29, delta=0.2)
    assert band_filter(0.8, bounds=(0.3, 0.8)) and not band_filter(0.2, bounds=(0.3, 0.8))
    for bad in (-0.1, 0.6):
        with pytest.raises(ValueError, match="band_delta"):
            band_filter(0.5, delta=bad)


def _vote(answer, p_hat):
    return VoteResult(answer=answer, p_hat=p_hat, groups=(), m=10, num_answered=10)


def test_drop_reasons_and_switches():
    paper = FilterSettings()  # the paper: the band only
    assert drop_reason("Prove that x > 0.", _vote(r"\text{blue}", 0.5), paper) is None
    assert drop_reason("Q", _vote("None", 0.5), paper) is None
    assert drop_reason("Q", _vote(None, 0.0), paper) == "no_answer"
    assert drop_reason("Q", _vote("4", 0.9), paper) == "outside_band"
    s = FilterSettings(proof_rule="authors", text_answer_rule="authors", empty_answer_rule="authors")
    assert drop_reason("What is 2+2?", _vote("4", 0.5), s) is None
    assert drop_reason("Q", _vote("None", 0.5), s) == "empty_majority"
    assert drop_reason("Q", _vote("", 0.5), s) == "empty_majority"
    assert drop_reason("证明: x > 0, find x.", _vote("4", 0.5), s) == "proof_question"
    assert drop_reason("Q", _vote("5 Text", 0.5), s) == "text_answer"
    off = FilterSettings(apply_band=False)
    assert drop_reason("Prove that x > 0.", _vote(r"\text{blue}", 0.9), off) is None
    with pytest.raises(ValueError, match="band_delta"):
        FilterSettings(band_delta=0.7)
    with pytest.raises(ValueError, match="proof_rule"):
        FilterSettings(proof_rule="strict")


def test_proof_rules():
    answerable = "Show that the sequence is periodic and find the smallest n with a_n = 1."
    assert is_proof_question(answerable, "english")  # rzero's old rule drops an answerable question
    assert not is_proof_question(answerable, "authors") and not is_proof_question(answerable, "off")
    assert is_proof_question("请证明 n^2 是偶数", "authors")
    assert is_proof_question("How many balls fit in a BOX of side 3?", "authors")  # "box", any case
    assert is_proof_question("Compute the boxed value.", "authors")
    assert not is_proof_question("What is the approximate value?", "english")
    with pytest.raises(ValueError, match="proof_rule"):
        is_proof_question("Q", "latex")


def test_answer_rules():
    assert is_text_answer(r"\text{blue}", "authors") and is_text_answer(r"\textbf{3}", "latex")
    assert is_text_answer("Context", "authors") and not is_text_answer("Context", "latex")
    assert not is_text_answer(r"\text{blue}", "off")
    assert is_empty_answer("None", "authors") and is_empty_answer("", "authors")
    assert not is_empty_answer("none", "authors") and is_empty_answer("none", "normalized")
    assert not is_empty_answer("None", "off")


def test_authors_rules_a_box_less_sample_votes_none_and_can_win():
    answers = [None, None, None, "5", "5", None, "7", None, "5", None]
    paper = majority_vote(answers)
    assert (paper.answer, paper.p_hat) == ("5", 0.3)  # box-less samples never vote but count in m
    code = majority_vote(answers, rules=AUTHORS_RULES)
    assert (code.answer, code.p_hat, code.m) == ("None", 0.6, 10)
    assert [g.answer for g in code.groups] == ["None", "5", "7"]


def test_authors_rules_merge_answers_that_both_contain_no():
    answers = ["No solution", "there is no real root", "3", "NO SUCH n"]
    assert majority_vote(answers).p_hat == 0.25  # paper: three different answers
    merged = majority_vote(answers, rules=AUTHORS_RULES)
    assert (merged.answer, merged.p_hat) == ("No solution", 0.75)
    # both answers must contain "no " with its space
    assert majority_vote(["nothing", "No solution", "no"], rules=AUTHORS_RULES).p_hat == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="no_answer_vote"):
        VoteRules(no_answer_vote="count")
