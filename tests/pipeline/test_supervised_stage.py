"""The supervised stage on the real tiny model: it trains and changes the weights, resumes like every stage,
counts unparsable answers and evaluation overlaps, and fails on a bad dataset before any model loads.

`labelled_only_run` is the labelled-only control (start_from: base, GRPO with the gold answers) through the real
driver and papermill, failed on purpose at its evaluation and resumed. SFT runs on the stage function; the
launched GRPO path, reuse of a finished R-Zero run and `rzero compare` are in test_supervised_compare.py.
"""

from __future__ import annotations

import json
import os
import shutil

import pandas as pd
import pytest
import torch

from rzero_lib.config import load_params
from rzero_lib.evaluation.registry import load_benchmark
from rzero_lib.pipeline.context import StageContext, StageError
from rzero_lib.pipeline.driver import open_run, plan, prepare_run_dir
from rzero_lib.pipeline.resume import (
    DONE,
    OUTDATED,
    PARAMS_CHANGED,
    ResumeError,
    check_run,
    stage_params_hash,
)
from rzero_lib.pipeline.rundir import MANIFEST, RunDir
from rzero_lib.pipeline.stages.supervised_training import (
    LABELLED_COLUMNS,
    load_labelled_rows,
    prepare_labelled_data,
    run_supervised_training,
)
from rzero_lib.pipeline.status import status_rows
from tests.support import SMOKE, TINY, fail_then_resume, file_mtimes

GOOD = [("1 + 1 = ?", "2"), ("1 + 2 = ?", "3"), ("2 + 2 = ?", "4"), ("1 + 3 = ?", "4"), ("5 - 3 = ?", "2"),
        ("6 - 3 = ?", "3"), ("4 - 2 = ?", "2"), ("2 + 1 = ?", "3")]  # answers the tiny model sometimes boxes
UNPARSABLE = [("7 + 1 = ?", None), ("7 + 2 = ?", "{9"), ("7 + 3 = ?", "1" * 1001)]


def labelled_rows() -> list[dict]:
    """Eight good rows, three answers the reward cannot score, one row without a question, and two questions of
    the `arithmetic` evaluation set."""
    overlap = [(it.prompt, it.gold) for it in load_benchmark("arithmetic")[:2]]
    rows = [{"problem": q, "answer": a, "solution": f"\\boxed{{{a}}}"} for q, a in GOOD + UNPARSABLE + overlap]
    return rows + [{"problem": None, "answer": "5", "solution": "\\boxed{5}"}]


def write_labelled(path) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in labelled_rows()))
    return str(path)


def supervised_overrides(source: str, *extra: str) -> list[str]:
    return ["supervised_training.enabled=true", f"supervised_training.dataset.source={source}",
            "supervised_training.dataset.fields.question=problem", "supervised_training.steps=2",
            "supervised_training.batch_size=4", "supervised_training.group_size=8",
            "supervised_training.max_new_tokens=12", "supervised_training.learning_rate=1e-3", *extra]


@pytest.fixture(scope="module")
def labelled_only_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("supervised")
    source = write_labelled(root / "labelled.jsonl")
    params = load_params(SMOKE, supervised_overrides(source, "supervised_training.start_from=base"))
    return fail_then_resume(params, root / "labelled_only", "supervised/evaluation")


@pytest.mark.slow  # the whole control through papermill
def test_the_labelled_only_control_runs_no_iteration(labelled_only_run):
    keys = [s.key for s in plan(labelled_only_run["params"])]
    assert keys == ["iter_00/evaluation", "supervised/training", "supervised/evaluation", "report"]
    assert not (labelled_only_run["dir"] / "iter_01").exists()


def assert_trained_from_base(folder, method: str, trainer: str) -> dict:
    """The stage's summary says it trained from the base model, and its weights differ from the base's."""
    from rzero_lib.engine.models import load_model

    s = json.loads((folder / "manifest.json").read_text())["summary"]
    assert s["method"] == method and s["start_model"] == TINY and s["optimizer_steps"] == 2
    assert s["parameter_change"] > 0 and s["trainable_parameters"] > 0
    base, _ = load_model(TINY)
    trained, _ = load_model(str(folder / "model"))
    assert any(not torch.equal(a, b) for a, b in zip(base.parameters(), trained.parameters()))
    assert json.loads((folder / "model" / "rzero_model.json").read_text())["trained_with"] == trainer
    return s


@pytest.mark.slow  # the whole control through papermill
def test_grpo_with_gold_answers_changes_the_trainable_parameters(labelled_only_run):
    s = assert_trained_from_base(labelled_only_run["dir"] / "supervised" / "training", "grpo", "trl.GRPOTrainer")
    assert s["reward_first"] > 0  # the tiny model boxes small sums now and then: the gold labels reward them


@pytest.mark.slow  # the whole control through papermill
def test_unparsable_answers_and_overlaps_are_counted_with_drop_reasons(labelled_only_run):
    folder = labelled_only_run["dir"] / "supervised" / "training"
    table = pd.read_parquet(folder / "labelled.parquet")
    assert list(table.columns) == LABELLED_COLUMNS and len(table) == len(labelled_rows())
    reasons = table["drop_reason"].value_counts().to_dict()
    assert reasons == {"missing_answer": 1, "unboxable_answer": 1, "answer_too_long": 1,
                       "overlaps_evaluation:arithmetic": 2, "missing_question": 1}
    assert table["kept"].sum() == len(GOOD)
    s = json.loads((folder / "manifest.json").read_text())["summary"]
    assert s["unparsable_answers"] == 3 and s["evaluation_overlap"] == {"arithmetic": 2}
    assert s["rows"] == 14 and s["trained_on"] == 8 and "{9" in s["unparsable_examples"]


@pytest.mark.slow  # the whole control through papermill
def test_it_resumes_like_every_stage(labelled_only_run):
    msg, before, run_dir = labelled_only_run["failure"], labelled_only_run["before"], labelled_only_run["dir"]
    assert "supervised/evaluation" in msg and "on purpose" in msg
    assert "supervised/training/manifest.json" in before and "supervised/evaluation/manifest.json" not in before
    after = file_mtimes(run_dir)
    for key in ("supervised/training/manifest.json", "supervised/training/notebook.ipynb",
                "supervised/training/model/model.safetensors", "iter_00/evaluation/manifest.json"):
        assert after[key] == before[key], key  # not re-run
    evaluation = json.loads((run_dir / "supervised/evaluation/manifest.json").read_text())
    assert evaluation["stage"] == "supervised_evaluation"
    assert evaluation["summary"]["model"] == "supervised/training/model"  # recorded relative to the run
    assert RunDir.at(run_dir).resolve(evaluation["summary"]["model"]) == str(run_dir / "supervised/training/model")
    assert (run_dir / "supervised/evaluation/scores.parquet").exists()
    rows = {r["stage"]: r for r in status_rows(run_dir)}
    assert all(r["state"] == "done" for r in rows.values())
    assert "grpo from base: 8/14 rows, unparsable answers 3, evaluation overlap 2" in rows["supervised/training"][
        "key counts"]
    assert (run_dir / "report" / "report.html").exists()
    nb = json.loads((run_dir / "supervised/evaluation/notebook.ipynb").read_text())
    assert any('stage = "supervised_evaluation"' in "".join(c["source"]) for c in nb["cells"])


@pytest.mark.slow  # the whole control through papermill
def test_a_changed_supervised_section_redoes_only_the_supervised_stages(labelled_only_run, tmp_path):
    """Verified resume: the supervised stages are hashed on their own parameters; changing them redoes those two
    stages (and the report), while a changed parameter of a finished iteration stage is refused."""
    run = RunDir.at(shutil.copytree(labelled_only_run["dir"], tmp_path / "copy"))
    source = labelled_only_run["params"].supervised_training.dataset.source

    def states(*extra):
        params = load_params(SMOKE, supervised_overrides(source, "supervised_training.start_from=base", *extra))
        return params, {c.key: c.state for c in check_run(run, params, plan(params))}

    _, unchanged = states()
    assert set(unchanged.values()) == {DONE}
    changed, after = states("supervised_training.steps=3")
    assert after == {"iter_00/evaluation": DONE, "supervised/training": OUTDATED, "supervised/evaluation": OUTDATED,
                     "report": OUTDATED}
    open_run(changed, run)  # what the driver does before the first stage: those manifests go, the rest stay
    assert not (run.path / "supervised/training" / MANIFEST).exists()
    assert not (run.path / "supervised/evaluation" / MANIFEST).exists()
    assert (run.path / "iter_00/evaluation" / MANIFEST).exists()
    assert run.load_params().supervised_training.steps == 3
    refused, after = states("evaluation.max_new_tokens=13")
    assert after["iter_00/evaluation"] == PARAMS_CHANGED
    with pytest.raises(ResumeError, match=r"iter_00/evaluation: it ran with other parameters: evaluation.max_new_tokens"):
        open_run(refused, RunDir.at(shutil.copytree(labelled_only_run["dir"], tmp_path / "copy2")))


def test_the_supervised_stages_are_hashed_on_their_own_parameters(tmp_path):
    source = write_labelled(tmp_path / "labelled.jsonl")

    def hashes(*extra):
        p = load_params(SMOKE, supervised_overrides(source, *extra))
        return stage_params_hash(p, "supervised_training"), stage_params_hash(p, "supervised_evaluation")

    training, evaluation = hashes()
    for unrelated in ("analysis.label_sample_size=3", "voting.num_samples=6", "supervised_training.launcher=in_process",
                      "evaluation.limit=3"):
        assert hashes(unrelated)[0] == training, unrelated
    assert hashes("supervised_training.steps=3") == (hashes("supervised_training.steps=3")[0], evaluation)
    assert hashes("supervised_training.steps=3")[0] != training
    assert hashes("supervised_training.dataset.fields.solution=solution")[0] != training
    assert hashes("evaluation.benchmarks=[gsm8k]")[0] != training  # the overlap check reads the benchmarks
    assert hashes("iterations=2")[0] != training  # it trains the last Solver
    assert hashes("evaluation.limit=3")[1] != evaluation
    base = hashes("supervised_training.start_from=base")[0]
    assert hashes("supervised_training.start_from=base", "iterations=2")[0] == base  # the control runs no iteration


# --------------------------------------------------------------------------
# the stage function on its own: data errors before any model loads
# --------------------------------------------------------------------------


def open_stage(tmp_path, overrides, model: str = TINY) -> StageContext:
    params = load_params(SMOKE, [f"model={model}", *overrides])
    run = prepare_run_dir(params, tmp_path / "run")
    return StageContext.open(run.path, None, "supervised_training")


def test_an_unreachable_hub_dataset_fails_before_the_model_loads(tmp_path):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    # The model is a hub id that does not exist either: had it loaded first, the error would be the model's.
    ctx = open_stage(tmp_path, supervised_overrides("nobody-rzero/no-such-labelled-set"), model="nobody-rzero/nothing")
    with pytest.raises(StageError, match="cannot load the hub dataset 'nobody-rzero/no-such-labelled-set'"):
        run_supervised_training(ctx)
    assert not (ctx.folder / "model").exists() and not (ctx.folder / "labelled.parquet").exists()


def test_a_datasets_folder_loads_its_split_and_a_missing_field_is_named(tmp_path):
    folder = tmp_path / "math_like"
    folder.mkdir()
    write_labelled(folder / "train.jsonl")
    (folder / "test.jsonl").write_text(json.dumps({"problem": "9 + 9 = ?", "answer": "18"}) + "\n")
    ctx = open_stage(tmp_path, supervised_overrides(str(folder)))
    rows, where = load_labelled_rows(ctx.params.supervised_training.dataset)
    assert len(rows) == len(labelled_rows()) and where.endswith(":train")
    ctx = open_stage(tmp_path / "b", supervised_overrides(str(folder), "supervised_training.dataset.fields.answer=gold"))
    with pytest.raises(StageError, match="supervised_training.dataset.fields.answer: .* no field 'gold'"):
        run_supervised_training(ctx)


def test_overlap_refused_parquet_rows_and_the_sample_limit(tmp_path):
    source = write_labelled(tmp_path / "labelled.jsonl")
    ctx = open_stage(tmp_path, supervised_overrides(source, "supervised_training.evaluation_overlap=refuse"))
    with pytest.raises(StageError, match=r"2 labelled questions are evaluation questions \(\{'arithmetic': 2\}\)"):
        prepare_labelled_data(ctx)
    parquet = tmp_path / "labelled.parquet"  # the same rows as Parquet
    pd.DataFrame(labelled_rows()).to_parquet(parquet)
    ctx = open_stage(tmp_path / "b", supervised_overrides(str(parquet), "supervised_training.max_questions=5"))
    table, summary = prepare_labelled_data(ctx)
    assert summary["unparsable_answers"] == 3 and summary["evaluation_overlap"] == {"arithmetic": 2}
    assert summary["trained_on"] == 5 and summary["drop_reasons"]["not_sampled"] == len(GOOD) - 5
    again, _ = prepare_labelled_data(ctx)
    assert again["kept"].tolist() == table["kept"].tolist()  # seeded


def test_sft_trains_on_the_solutions(tmp_path):
    source = write_labelled(tmp_path / "labelled.jsonl")
    ctx = open_stage(tmp_path, supervised_overrides(source, "supervised_training.start_from=base",
                                                    "supervised_training.method=sft",
                                                    "supervised_training.dataset.fields.solution=solution"))
    result = run_supervised_training(ctx)
    assert_trained_from_base(ctx.folder, "sft", "trl.SFTTrainer")
    assert result.summary["loss_first"] > 0 and result.summary["trained_on"] == len(GOOD)
