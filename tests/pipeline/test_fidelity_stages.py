"""The preset switches on the stage functions in-process: duplicates are counted and kept (dropped only on
request), the authors' code keeps only boxed Challenger outputs, and votes and drops follow each preset."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from rzero_lib.atomic_files import write_parquet_atomic
from rzero_lib.config import load_params
from rzero_lib.pipeline.context import StageContext, StageError
from rzero_lib.pipeline.driver import prepare_run_dir
from rzero_lib.pipeline.stages.challenger_training import run_challenger_training
from rzero_lib.pipeline.stages.question_generation import run_question_generation
from rzero_lib.pipeline.stages.voting import run_voting
from tests.support import SMOKE, FakeSolver, ScriptedGenerator

OUTPUTS = ["<question>What is 2+2?</question> \\boxed{4}", "<question>What is 2+2?</question> \\boxed{4}",
           "<question>What is 3+5?</question>", "no tags at all"]


def _open(tmp_path, overrides):
    """The smoke run with the base model as Challenger_1 (untrained), without the smoke file's band_delta."""
    data = yaml.safe_load(SMOKE.read_text())
    del data["voting"]["band_delta"]  # the authors' bounds would replace it: a preset conflict
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    params = load_params(path, [f"question_generation.num_questions={len(OUTPUTS)}",
                                "challenger_training.enabled=false", *overrides])
    run = prepare_run_dir(params, tmp_path / "run")
    run_challenger_training(StageContext.open(run.path, 1, "challenger_training"))
    return run, lambda stage: StageContext.open(run.path, 1, stage)


@pytest.mark.parametrize("overrides, kept", [
    ([], 3),                                                         # paper: duplicates kept, answer not needed
    (["question_generation.drop_duplicates=true"], 2),
    (["question_generation.require_challenger_answer=true"], 2),     # the authors' code: boxed outputs only
])
def test_question_generation_counts_duplicates_and_drops_on_request(tmp_path, monkeypatch, overrides, kept):
    _, open_stage = _open(tmp_path, overrides)
    monkeypatch.setattr(StageContext, "generator", lambda ctx, spec: ScriptedGenerator(OUTPUTS))
    result = run_question_generation(open_stage("question_generation"))
    s = result.summary
    assert (s["generated"], s["parsed"], s["duplicates"]) == (4, 3, 1)
    assert s["duplicate_rate"] == pytest.approx(1 / 3) and s["kept"] == kept
    reasons = set(result.tables["questions"]["drop_reason"].dropna())
    assert ("duplicate" in reasons) is ("question_generation.drop_duplicates=true" in overrides)
    assert ("no_challenger_answer" in reasons) is ("question_generation.require_challenger_answer=true" in overrides)


def test_question_generation_in_the_sandbox_domain_drops_questions_off_its_form(tmp_path, monkeypatch):
    outputs = ["<question>37 + 7 * 4 = ?</question>", "<question>13 + 9 * 6 + ?</question>",
               "<question>63 + 4 * 6 6 ?</question>", "no tags at all"]
    _, open_stage = _open(tmp_path, ["domain=sandbox"])
    monkeypatch.setattr(StageContext, "generator", lambda ctx, spec: ScriptedGenerator(outputs))
    result = run_question_generation(open_stage("question_generation"))
    q = result.tables["questions"]
    assert q["parse_failure"].fillna("").tolist() == ["", "off_form", "off_form", "no_question_tag"]
    assert (result.summary["kept"], result.summary["off_form"]) == (1, 2)
    # nothing in the form: the stage stops and says why
    (tmp_path / "none").mkdir()
    _, open_stage = _open(tmp_path / "none", ["domain=sandbox"])
    monkeypatch.setattr(StageContext, "generator", lambda ctx, spec: ScriptedGenerator(outputs[1:] + outputs[1:2]))
    with pytest.raises(StageError, match="3 more contain a question outside the 'sandbox' domain's form"):
        run_question_generation(open_stage("question_generation"))


QUESTIONS = ["What is 12*3?", "How many balls fit in a box of side 2?", "Find x."]
# per question: the Solver's sampled answers (None: no box)
ANSWERS = {"What is 12*3?": ["36", "36", "36", "30", "30", "36", None, None, None, "30"],
           "How many balls fit in a box of side 2?": ["8", "8", "8", "8", "9", "9", "9", "9", "9", "8"],
           "Find x.": [None, None, None, None, None, "2", "2", "3", None, None]}


class _Solver(FakeSolver):
    def generate(self, prompts, sampling, progress=False):
        out = []
        for p in prompts:
            answers = ANSWERS[p[-1]["content"]][: sampling.n]
            out.append([f"\\boxed{{{a}}}" if a is not None else "I cannot say." for a in answers])
        return out


@pytest.mark.parametrize("preset", ["paper", "authors_code"])
def test_voting_follows_the_preset(tmp_path, monkeypatch, preset):
    overrides = [f"preset={preset}", "voting.num_samples=10", "challenger_training.mini_batch_size=4",
                 "solver_training.mini_batch_size=4"]
    run, open_stage = _open(tmp_path, overrides)
    folder = run.stage_dir(1, "question_generation")
    folder.mkdir(parents=True, exist_ok=True)
    write_parquet_atomic(pd.DataFrame({"question_id": ["q0", "q1", "q2"], "question": QUESTIONS,
                                       "challenger_answer": [None] * 3, "kept": [True] * 3}),
                         folder / "questions.parquet")
    monkeypatch.setattr(StageContext, "generator", lambda ctx, spec: _Solver(lambda q, k: ""))
    votes = run_voting(open_stage("voting")).tables["votes"].set_index("question")
    if preset == "paper":
        # box-less samples do not vote: 36 has 4 of 10; "box" questions are fine; "Find x." 2 has 2 of 10
        assert votes.loc["What is 12*3?", ["majority_answer", "p_hat"]].tolist() == ["36", 0.4]
        assert pd.isna(votes.loc["How many balls fit in a box of side 2?", "drop_reason"])
        assert votes.loc["Find x.", "drop_reason"] == "outside_band"
    else:
        assert votes.loc["What is 12*3?", ["majority_answer", "p_hat"]].tolist() == ["36", 0.4]
        assert votes.loc["How many balls fit in a box of side 2?", "drop_reason"] == "proof_question"  # "box"
        # the box-less "None" wins 7 of 10 and is then dropped as an empty majority
        assert votes.loc["Find x.", ["majority_answer", "p_hat", "drop_reason"]].tolist() == ["None", 0.7,
                                                                                             "empty_majority"]

