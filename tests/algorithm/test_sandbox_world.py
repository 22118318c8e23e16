"""The sandbox's world: its question form and the difficulty helpers."""

from rzero_lib.sandbox_world import answer_digits, make_problem, operand_digits, question_operator


def test_difficulty_helpers():
    assert operand_digits("47 + 385 = ?") == 3
    assert operand_digits("What is 7 * 8?") == 1
    assert operand_digits("no numbers") is None and operand_digits(None) is None
    assert answer_digits("-385") == 3 and answer_digits("0") == 1
    assert answer_digits("7/3") is None and answer_digits(None) is None
    assert question_operator("12 - 5 = ?") == "-" and question_operator("3 * 4 = ?") == "*"


def test_question_form_has_exact_answers():
    p = make_problem(47, "-", 385)
    assert (p.question, p.answer, p.max_digits, p.operators) == ("47 - 385 = ?", "-338", 3, "-")
