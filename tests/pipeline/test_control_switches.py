"""The sandbox controls' switches change what they claim, on the stage functions in-process: oracle labels,
the untrained Challenger, no repetition penalty, no band filter."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from rzero_lib.arithmetic_expressions import arithmetic_answer
from rzero_lib.atomic_files import write_parquet_atomic
from rzero_lib.config import load_params
from rzero_lib.domains import resolve_prompts
from rzero_lib.pipeline.context import StageContext
from rzero_lib.pipeline.driver import prepare_run_dir
from rzero_lib.pipeline.stages import solver_training, voting
from rzero_lib.pipeline.stages.challenger_training import run_challenger_training
from rzero_lib.pipeline.stages.tables import TRAIN_COLUMNS
from rzero_lib.sampling import SamplingConfig
from rzero_lib.training.grpo import TrainingResult
from rzero_lib.training.reward_functions import ChallengerRewardFunction
from tests.support import PARAMS, FakeSolver


def _open_run(tmp_path, name, overrides=()):

    params = load_params(PARAMS / f"{name}.yaml", ["model=builtin:tiny-random", *overrides])
    run = prepare_run_dir(params, tmp_path / name)
    return run, lambda k, stage: StageContext.open(run.path, k, stage)


def _write_voting_artifacts(run, questions, labels):

    folder = run.stage_dir(1, "voting")
    folder.mkdir(parents=True, exist_ok=True)
    train = pd.DataFrame({"question_id": [f"q{i}" for i in range(len(questions))], "question": questions,
                          "label": labels, "p_hat": 0.5, "weight": 1.0}, columns=TRAIN_COLUMNS)
    write_parquet_atomic(train, folder / "solver_train.parquet")


@pytest.mark.parametrize("name,expect_oracle", [("sandbox", False), ("sandbox_oracle_labels", True)])
def test_label_source_oracle_trains_on_the_oracle_answers(tmp_path, monkeypatch, name, expect_oracle):

    run, open_stage = _open_run(tmp_path, name)
    questions = ["3 + 4 = ?", "12 * 3 = ?", "50 - 75 = ?", "9 * 9 = ?"]
    majority = ["8", "36", "-20", "81"]  # two wrong pseudo-labels
    _write_voting_artifacts(run, questions, majority)
    seen = {}

    def fake_train_solver(start, qs, labels, **kwargs):
        seen["questions"], seen["labels"] = list(qs), list(labels)
        folder = Path(kwargs["output_dir"]) / "model"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text("{}")
        log = Path(kwargs["output_dir"]) / "log_history.jsonl"
        log.write_text("")
        return TrainingResult(model_dir=folder, log_history_path=log)

    monkeypatch.setattr(solver_training, "train_solver", fake_train_solver)
    result = solver_training.run_solver_training(open_stage(1, "solver_training"))
    oracle = [arithmetic_answer(q) for q in seen["questions"]]
    if expect_oracle:
        assert seen["labels"] == oracle == ["7", "36", "-25", "81"]
        assert list(result.tables["train"]["label"]) == oracle and "oracle" in result.summary["labels"]
    else:
        assert seen["labels"] == majority != oracle


def test_untrained_challenger_keeps_its_start_weights(tmp_path):

    run, open_stage = _open_run(tmp_path, "sandbox_untrained_challenger")
    result = run_challenger_training(open_stage(1, "challenger_training"))
    assert result.summary["trained"] is False
    assert run.challenger_model(1) == run.challenger_model(0) == "builtin:tiny-random"
    assert not (run.stage_dir(1, "challenger_training") / "model").exists()


@pytest.mark.parametrize("name,expect_penalty", [("sandbox", True), ("sandbox_no_penalty", False)])
def test_penalty_weight_zero_gives_zero_penalty(name, expect_penalty):

    params = load_params(PARAMS / f"{name}.yaml")
    p = params.challenger_training
    _, solver_prompt = resolve_prompts(params)
    solver = FakeSolver(lambda q, k: arithmetic_answer(q) if k % 2 else "0")  # p̂ = ½ on every question
    reward = ChallengerRewardFunction(solver, solver_prompt, SamplingConfig(n=4), form=p.reward_form,
                                      penalty_threshold=p.penalty_threshold, penalty_weight=p.penalty_weight)
    texts = ["<question>3 + 4 = ?</question>"] * 3 + ["<question>12 * 3 = ?</question>"]
    rows = reward.score(texts)
    penalties = [r["penalty"] for r in rows]
    assert all(r["uncertainty"] == pytest.approx(1.0) for r in rows)
    if expect_penalty:
        assert penalties[0] == pytest.approx(3 / 4) and penalties[3] == pytest.approx(1 / 4)
        assert rows[0]["reward"] < rows[3]["reward"]
    else:
        assert penalties == [0.0] * 4 and [r["reward"] for r in rows] == pytest.approx([1.0] * 4)


@pytest.mark.parametrize("name,expect_kept", [("sandbox", False), ("sandbox_no_band", True)])
def test_no_band_keeps_out_of_band_questions(tmp_path, monkeypatch, name, expect_kept):


    run, open_stage = _open_run(tmp_path, name)
    folder = run.stage_dir(1, "question_generation")
    folder.mkdir(parents=True, exist_ok=True)
    questions = ["3 + 4 = ?", "12 * 3 = ?"]
    write_parquet_atomic(pd.DataFrame({"question_id": ["q0", "q1"], "question": questions,
                                       "challenger_answer": [None, None], "kept": [True, True]}),
                         folder / "questions.parquet")
    # "3 + 4" is answered unanimously (p̂ = 1, outside the band); "12 * 3" is split 50/50 (in the band).
    answers = {"3 + 4 = ?": lambda k: "7", "12 * 3 = ?": lambda k: "36" if k % 2 else "30"}
    monkeypatch.setattr(StageContext, "generator", lambda ctx, spec: FakeSolver(lambda q, k: answers[q](k)))
    result = voting.run_voting(open_stage(1, "voting"))
    votes = result.tables["votes"].set_index("question")
    assert votes.loc["3 + 4 = ?", "p_hat"] == 1.0 and votes.loc["12 * 3 = ?", "p_hat"] == 0.5
    assert bool(votes.loc["12 * 3 = ?", "kept"])
    assert bool(votes.loc["3 + 4 = ?", "kept"]) is expect_kept
    if not expect_kept:
        assert votes.loc["3 + 4 = ?", "drop_reason"] == "outside_band"
    assert ("3 + 4 = ?" in set(result.tables["solver_train"]["question"])) is expect_kept
