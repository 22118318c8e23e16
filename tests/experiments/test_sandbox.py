"""The sandbox experiment: its parameter files (main run, controls that differ in one switch, the Verifier
run), the held-out set, the comparison tables, and the sandbox pipeline end to end on the smoke budget with a
reduced model, compared and written like notebook 07 does.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from rzero_lib.arithmetic_expressions import arithmetic_answer
from rzero_lib.config import diff_params, load_params, params_to_dict
from rzero_lib.domains import resolve_prompts
from rzero_lib.engine.builtins.arith_sandbox import (
    PRETRAIN_SEED,
    STEPS_ENV,
    PretrainCorpus,
    build_char_tokenizer,
)
from rzero_lib.evaluation.registry import load_benchmark
from rzero_lib.experiments.sandbox.comparison import (
    difficulty_table,
    label_accuracy,
    load_votes,
    write_comparison,
)
from rzero_lib.experiments.sandbox.measure import heldout_table
from rzero_lib.experiments.sandbox.runs import CONTROL_RUNS, HELDOUT_BENCHMARK, VERIFIER_RUN
from rzero_lib.pipeline.driver import plan, run_pipeline
from rzero_lib.pipeline.run_tables import load_scores
from rzero_lib.sandbox_world import (
    HELDOUT_PER_CELL,
    HELDOUT_SEED,
    SANDBOX_VERIFIER_SYSTEM,
    SANDBOX_VERIFIER_USER,
    sandbox_challenger_prompt,
    sandbox_heldout_problems,
    sandbox_solver_prompt,
)
from rzero_lib.verifier import verification_messages
from tests.support import PARAMS, REPO_ROOT

CONTROL_SWITCHES = {
    "sandbox_oracle_labels": {"solver_training.label_source": "oracle"},
    "sandbox_untrained_challenger": {"challenger_training.enabled": False},
    "sandbox_no_penalty": {"challenger_training.penalty_weight": 0.0},
    "sandbox_no_band": {"voting.apply_band": False},
}
# The smoke budget on top of params/sandbox.yaml (one iteration, a handful of everything).
SMOKE_OVERRIDES = [
    "iterations=1",
    "challenger_training.steps=1", "challenger_training.batch_size=4", "challenger_training.group_size=2",
    "challenger_training.micro_batch_size=8", "challenger_training.solver_samples=4",
    "question_generation.num_questions=16",
    "voting.num_samples=4", "voting.band_delta=0.5",
    "solver_training.steps=1", "solver_training.batch_size=4", "solver_training.group_size=2",
    "solver_training.micro_batch_size=8",
    "evaluation.limit=16",
    "analysis.label_sample_size=16", "analysis.solver_difficulty_samples=2",
]


def test_run_prompts_are_the_pretraining_prompts():

    for name in ["sandbox", *CONTROL_SWITCHES]:
        params = load_params(PARAMS / f"{name}.yaml")
        challenger, solver = resolve_prompts(params)
        assert challenger == sandbox_challenger_prompt(), name
        assert solver == sandbox_solver_prompt(), name
        assert params.model == "builtin:arith-sandbox" and params.domain == "arithmetic"
        assert params.analysis.oracle.kind == "arithmetic"
        assert params.evaluation.benchmarks == [HELDOUT_BENCHMARK]


def test_verifier_run_is_the_main_run_with_the_sandbox_verifier():

    main = params_to_dict(load_params(PARAMS / "sandbox.yaml"))
    params = load_params(PARAMS / f"{VERIFIER_RUN}.yaml")
    changed = {d.split(":")[0] for d in diff_params(main, params_to_dict(params))}
    assert changed and all(c == "run_name" or c.startswith("verifier.") for c in changed)
    v = params.verifier
    assert v.enabled and v.kind == "self"
    assert (v.system, v.user) == (SANDBOX_VERIFIER_SYSTEM, SANDBOX_VERIFIER_USER)
    # The stage's prompt is the pretraining corpus's prompt for the same question and response.
    tok = build_char_tokenizer()
    corpus = PretrainCorpus(tok, seed=2)
    ex = next(e for e in corpus.batch(200) if e.role == "verifier")
    response = "\\boxed{" + ex.prompt.split("\\boxed{", 1)[1].split("}", 1)[0] + "}"
    messages = verification_messages(ex.problem.question, response, v.system, v.user)
    assert tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == ex.prompt


def test_main_run_meets_the_issue():
    params = load_params(PARAMS / "sandbox.yaml")
    assert params.iterations >= 3 and params.run_name == "sandbox"
    assert params.solver_training.label_source == "majority" and params.challenger_training.enabled
    assert params.challenger_training.penalty_weight > 0 and params.voting.apply_band


@pytest.mark.parametrize("name", sorted(CONTROL_SWITCHES))
def test_each_control_differs_only_in_its_switch(name):
    main = params_to_dict(load_params(PARAMS / "sandbox.yaml"))
    control = params_to_dict(load_params(PARAMS / f"{name}.yaml"))
    changed = {d.split(":")[0] for d in diff_params(main, control)}
    assert changed == {"run_name", *CONTROL_SWITCHES[name]}
    assert control["run_name"] == name
    for key, value in CONTROL_SWITCHES[name].items():
        node = control
        for part in key.split("."):
            node = node[part]
        assert node == value


def test_make_sandbox_script_runs_the_main_run_and_every_control():
    script = (REPO_ROOT / "scripts" / "run_sandbox.sh").read_text()
    default = script.split('SANDBOX_RUNS=${SANDBOX_RUNS:-"', 1)[1].split('"', 1)[0].split()
    assert default == ["sandbox", *sorted(CONTROL_SWITCHES, key=list(CONTROL_RUNS).index), VERIFIER_RUN]
    assert all((PARAMS / f"{name}.yaml").exists() for name in default)
    assert set(CONTROL_RUNS) == set(CONTROL_SWITCHES)
    assert "--to ipynb --output - notebooks/07_sandbox_comparison.py" in script


def test_heldout_set_is_fixed_stratified_and_exact():
    problems = sandbox_heldout_problems()
    assert len(problems) == 3 * 4 * HELDOUT_PER_CELL
    assert [p.question for p in problems] == [p.question for p in sandbox_heldout_problems()]
    table = heldout_table(problems)
    assert (table.groupby(["operator", "digits"]).size() == HELDOUT_PER_CELL).all()
    assert all(arithmetic_answer(p.question) == p.answer for p in problems)
    items = load_benchmark("arith_sandbox")
    assert [it.id for it in items] == list(table["id"])
    assert [it.gold for it in items] == [p.answer for p in problems]
    assert HELDOUT_SEED != PRETRAIN_SEED


def test_difficulty_and_label_tables():
    votes = pd.DataFrame({
        "iteration": [1, 1, 2], "question": ["3 + 4 = ?", "12 * 3 = ?", "123 - 4 = ?"],
        "answers": [["7", "7", "8"], ["36", "30", None], ["119", "119", "119"]],
        "majority_answer": ["7", "36", "119"], "p_hat": [2 / 3, 1 / 3, 1.0], "kept": [True, True, False],
        "drop_reason": [None, None, "outside_band"], "question_id": ["a", "b", "c"],
        "challenger_answer": [None, None, None], "majority_count": [2, 1, 3]})
    d = difficulty_table(votes).set_index("iteration")
    assert d.loc[1, "operand_digits"] == 1.5 and d.loc[2, "operand_digits"] == 3
    assert (d.loc[1, "in_band"], d.loc[2, "in_band"]) == (1.0, 0.0)  # |p̂ - 1/2| <= 0.25
    narrow = difficulty_table(votes, band_delta=0.1).set_index("iteration")  # the run's band, not a constant
    assert narrow.loc[1, "in_band"] == 0.0
    assert d.loc[1, "answer_digits"] == 1.5 and d.loc[2, "answer_digits"] == 3
    assert d.loc[1, "oracle_accuracy_of_solver"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    labels = label_accuracy(votes)
    assert list(labels["iteration"]) == [1] and labels.loc[0, "label_accuracy"] == 1.0
    assert 0 < labels.loc[0, "ci_low"] < 1 == labels.loc[0, "ci_high"]


@pytest.mark.slow
def test_sandbox_pipeline_end_to_end(tmp_path, reduced_sandbox, monkeypatch):
    """The sandbox run on the smoke budget, then the comparison notebook 07 writes, from its library call."""
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # the stage kernels; busy-waiting is slow on shared cores
    monkeypatch.setenv("RZERO_CACHE_DIR", str(reduced_sandbox["cache"]))  # the stage kernels build nothing
    monkeypatch.setenv(STEPS_ENV, str(reduced_sandbox["steps"]))

    params = load_params(PARAMS / "sandbox.yaml", SMOKE_OVERRIDES)
    assert params.model == "builtin:arith-sandbox"  # resolved in the temporary cache (reduced model)
    run = run_pipeline(params, tmp_path / "sandbox_smoke", progress=False)
    for stage in plan(params):
        assert run.is_done(stage.folder(run)), stage.key
    votes = load_votes(run.path)
    assert len(votes) > 0 and votes["kept"].any()
    scores = load_scores(run.path)
    assert set(scores["benchmark"]) == {HELDOUT_BENCHMARK} and sorted(scores["iteration"]) == [0, 1]

    written = write_comparison(tmp_path, ["sandbox_smoke"], tmp_path / "comparison")
    comparison = written.comparison
    assert list(comparison.runs) == ["sandbox_smoke"]
    assert not comparison.difficulty.empty and not comparison.heldout.empty
    assert {"difficulty", "challenger_p_hat", "label_accuracy", "heldout_accuracy"} <= set(written.figures)
    assert all(path.stat().st_size > 1_000 for path in written.figures.values())
    summary = json.loads((tmp_path / "comparison" / "summary.json").read_text())
    assert summary == written.summary
    # The run's report numbers reach the comparison, the benchmark (evaluation) numbers included.
    report = json.loads((run.report_dir / "summary.json").read_text())
    carried = summary["report_summaries"]["sandbox_smoke"]
    assert carried["benchmarks"] == report["benchmarks"] and carried["benchmarks"]["average"]
    assert carried["label_accuracy"] == report["label_accuracy"]
