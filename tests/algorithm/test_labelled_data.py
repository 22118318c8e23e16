"""Labelled data for the supervised stage: the dataset spec fails at validation naming the field, the rows the
reward cannot score are recognised, and the sandbox's labelled set is disjoint from its evaluation sets."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from rzero_lib.answers import MAX_ANSWER_CHARS, extract_boxed
from rzero_lib.config import ParamsError, load_params, params_from_dict, params_to_dict
from rzero_lib.labelled_data import (
    SANDBOX_LABELLED,
    answer_problem,
    question_key,
    row_drop_reason,
    sandbox_labelled_rows,
    source_kind,
)
from rzero_lib.sandbox_world import (
    parse_question,
    sandbox_dev_problems,
    sandbox_heldout_problems,
    worked_solution,
)
from tests.support import PARAMS

BASE = {"run_name": "t", "model": "builtin:tiny-random"}


def supervised(**section) -> dict:
    return {**BASE, "supervised_training": {"enabled": True, **section}}


@pytest.fixture
def jsonl(tmp_path):
    path = tmp_path / "labelled.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [{"problem": "1 + 1 = ?", "answer": "2"},
                                                            {"problem": "2 + 2 = ?", "answer": "4"}]))
    return path


def test_a_local_file_with_its_fields_validates(jsonl):
    p = params_from_dict(supervised(dataset={"source": str(jsonl), "fields": {"question": "problem"}}))
    assert p.supervised_training.dataset.source == str(jsonl) and p.supervised_training.method == "grpo"


def test_a_relative_path_is_resolved_where_the_command_runs(jsonl, tmp_path, monkeypatch):
    """A stage runs in its own folder: a relative path kept as written would not be found there."""
    monkeypatch.chdir(tmp_path)
    p = params_from_dict(supervised(dataset={"source": jsonl.name, "fields": {"question": "problem"}}))
    assert p.supervised_training.dataset.source == str(jsonl.resolve())
    monkeypatch.chdir(jsonl.parent.parent)  # the frozen parameters read back anywhere: still that file
    assert params_from_dict(params_to_dict(p)).supervised_training.dataset.source == str(jsonl.resolve())


@pytest.mark.parametrize("section, field, words", [
    ({}, "supervised_training.dataset.source", "needs"),
    ({"dataset": "/no/such/labelled.jsonl"}, "supervised_training.dataset.source", "does not exist"),
    ({"dataset": "./labelled.parquet"}, "supervised_training.dataset.source", "does not exist"),
    ({"dataset": "builtin:nope"}, "supervised_training.dataset.source", "unknown built-in"),
    ({"dataset": {"source": "hiyouga/math12k", "split": "test"}}, "supervised_training.dataset.split", "MATH-500"),
    ({"dataset": "builtin:arith-sandbox-labelled", "method": "sft"}, "supervised_training.dataset.fields.solution",
     "not set"),
    ({"dataset": {"source": "builtin:arith-sandbox-labelled", "fields": {"solution": "solution"}}, "method": "sft",
      "launcher": "accelerate"}, "supervised_training.launcher", "one process"),
])
def test_bad_dataset_specs_fail_at_validation_naming_the_field(section, field, words):
    with pytest.raises(ParamsError) as e:
        params_from_dict(supervised(**section))
    assert field in str(e.value) and words in str(e.value)


def test_a_mapped_field_missing_from_the_file_is_named(jsonl, tmp_path):
    with pytest.raises(ParamsError, match=r"supervised_training.dataset.fields.question: .* no field 'question'"):
        params_from_dict(supervised(dataset=str(jsonl)))  # the file's question field is "problem"
    parquet = tmp_path / "labelled.parquet"
    pd.DataFrame({"problem": ["1 + 1 = ?"], "answer": ["2"]}).to_parquet(parquet)
    with pytest.raises(ParamsError, match=r"fields.solution: .* no field 'solution'"):
        params_from_dict(supervised(dataset={"source": str(parquet), "fields": {"question": "problem",
                                                                                "solution": "solution"}}))


def test_a_disabled_section_is_not_checked_and_a_hub_id_only_at_stage_start():
    params_from_dict({**BASE, "supervised_training": {"enabled": False, "dataset": "/no/such/file.jsonl"}})
    assert source_kind("hiyouga/math12k") == "hub"
    params_from_dict(supervised(dataset={"source": "hiyouga/math12k", "fields": {"question": "problem"}}))


@pytest.mark.parametrize("answer, reason", [
    ("42", None), ("\\frac{1}{2}", None), ("\\text{(C)}", None), (None, "missing_answer"),
    ("x" * (MAX_ANSWER_CHARS + 1), "answer_too_long"), ("{3", "unboxable_answer"), ("3}", "unboxable_answer"),
])
def test_answers_the_reward_cannot_score(answer, reason):
    assert answer_problem(answer) == reason


def test_row_drop_reasons():
    assert row_drop_reason(None, "2", None, "grpo") == "missing_question"
    assert row_drop_reason("1 + 1 = ?", "2", None, "grpo") is None
    assert row_drop_reason("1 + 1 = ?", "2", None, "sft") == "missing_solution"
    assert question_key("  What is\n1 + 1? ") == question_key("what is 1 + 1?")


def test_sandbox_labelled_set_is_disjoint_from_the_evaluation_sets_and_scorable():
    rows = sandbox_labelled_rows()
    evaluation = {p.question for p in (*sandbox_heldout_problems(), *sandbox_dev_problems())}
    assert len(rows) > 1000 and not {r["question"] for r in rows} & evaluation
    assert all(answer_problem(r["answer"]) is None for r in rows)
    # the solution is the correct worked computation, ending in the gold answer boxed
    assert all(extract_boxed(r["solution"]) == r["answer"] for r in rows)
    c, a, b = parse_question(rows[0]["question"])
    assert rows[0]["solution"] == worked_solution(c, a, b) and len(rows[0]["solution"].split()) == b + 1
    assert rows == sandbox_labelled_rows()  # deterministic


def _without(data: dict, *keys) -> dict:
    return {k: v for k, v in data.items() if k not in keys}


def test_supervised_recipes_differ_from_their_runs_only_in_the_supervised_section():
    sandbox = params_to_dict(load_params(PARAMS / "sandbox.yaml"))
    measured = params_to_dict(load_params(PARAMS / "supervised_sandbox.yaml"))
    assert _without(measured, "run_name", "supervised_training") == _without(sandbox, "run_name", "supervised_training")
    assert measured["supervised_training"]["dataset"]["source"] == f"builtin:{SANDBOX_LABELLED}"
    paper = params_to_dict(load_params(PARAMS / "paper_qwen3_4b.yaml"))
    plus_human = load_params(PARAMS / "paper_qwen3_4b_plus_human.yaml")
    # the same run name: an existing paper run is reused and gains the supervised stage
    assert _without(params_to_dict(plus_human), "supervised_training") == _without(paper, "supervised_training")
    s = plus_human.supervised_training
    assert (s.dataset.source, s.dataset.split, s.dataset.fields.question) == ("hiyouga/math12k", "train", "problem")
    assert "UNTESTED" in (PARAMS / "paper_qwen3_4b_plus_human.yaml").read_text().splitlines()[0]
    assert yaml.safe_load((PARAMS / "supervised_sandbox.yaml").read_text())["supervised_training"]["enabled"]
