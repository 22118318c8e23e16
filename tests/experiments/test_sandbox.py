"""The sandbox experiment: its parameter files (main run, controls that differ in one switch, the Verifier
run), `make sandbox`'s script, the benchmark's difficulty, the comparison's tables and criteria, and the whole
chain on real tiny runs (two seeds, a reduced model) through the script and notebook 07.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from rzero_lib.config import diff_params, load_params, params_to_dict
from rzero_lib.domains import get_domain, resolve_prompts
from rzero_lib.engine.builtins.arith_sandbox import STEPS_ENV
from rzero_lib.experiments.sandbox.comparison import (
    Comparison,
    evaluate_criteria,
    evaluate_iteration_scaling,
    heldout_table,
    load_comparison,
    question_table,
)
from rzero_lib.experiments.sandbox.figures import plot_iteration_scaling, save_png
from rzero_lib.experiments.sandbox.measure import benchmark_difficulty
from rzero_lib.experiments.sandbox.runs import (
    CONTROL_RUNS,
    DEV_BENCHMARK,
    EXTRA_RUNS,
    HELDOUT_BENCHMARK,
    MAIN_RUN,
    ORACLE_LABELS_RUN,
    SCALING_ITERATIONS,
    SEEDS,
    SIZE_RUNS,
    SMALL_MODEL_RUN,
    UNTRAINED_CHALLENGER_RUN,
    seed_run_dir,
)
from rzero_lib.oracle import arithmetic_answer
from rzero_lib.pipeline.run_tables import stage_tables
from rzero_lib.sandbox_world import MAX_STEPS, sandbox_challenger_prompt, sandbox_solver_prompt
from rzero_lib.stats import wilson_interval
from rzero_lib.values import jsonable
from tests.support import PARAMS, REPO_ROOT

CONTROL_SWITCHES = {
    "sandbox_oracle_labels": {"solver_training.label_source": "oracle"},
    "sandbox_untrained_challenger": {"challenger_training.enabled": False},
    "sandbox_no_penalty": {"challenger_training.penalty_weight": 0.0},
    "sandbox_no_band": {"voting.apply_band": False},
}
# The smoke budget on top of params/sandbox*.yaml (one iteration, a handful of everything).
SMOKE_OVERRIDES = [
    "iterations=1",
    "challenger_training.steps=1", "challenger_training.batch_size=4", "challenger_training.group_size=2",
    "challenger_training.micro_batch_size=8", "challenger_training.solver_samples=4",
    "question_generation.num_questions=16",
    "voting.num_samples=4", "voting.band_delta=0.5",
    "solver_training.steps=1", "solver_training.batch_size=4", "solver_training.group_size=2",
    "solver_training.micro_batch_size=8",
    "evaluation.limit=24",
    # The reduced model's Challenger seldom writes the exact form `c + a * b = ?` (16 questions: 0-1 of them),
    # so the sandbox domain's form check would leave nothing to vote on; the check has its own tests.
    "domain=arithmetic",
    "analysis.label_sample_size=16", "analysis.solver_difficulty_samples=2",
]
SCRIPT = REPO_ROOT / "scripts" / "run_sandbox.sh"


def test_run_prompts_are_the_pretraining_prompts():
    for name in ["sandbox", *CONTROL_SWITCHES]:
        params = load_params(PARAMS / f"{name}.yaml")
        challenger, solver = resolve_prompts(params)
        assert challenger == sandbox_challenger_prompt(), name
        assert solver == sandbox_solver_prompt(), name
        assert params.model == "builtin:arith-sandbox" and params.domain == "sandbox"  # its question form
        assert params.analysis.oracle.kind == "arithmetic"
        assert HELDOUT_BENCHMARK in params.evaluation.benchmarks, name  # reported on the held-out set


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


def test_small_model_run_is_the_main_run_on_the_smaller_model():
    main = params_to_dict(load_params(PARAMS / "sandbox.yaml"))
    small = params_to_dict(load_params(PARAMS / f"{SMALL_MODEL_RUN}.yaml"))
    assert {d.split(":")[0] for d in diff_params(main, small)} == {"run_name", "model"}
    assert small["model"] == "builtin:arith-sandbox-small" and small["run_name"] == SMALL_MODEL_RUN
    assert list(SIZE_RUNS) == [SMALL_MODEL_RUN, MAIN_RUN]  # from the smaller model to the larger


def test_verifier_run_is_the_main_run_with_a_verifier():
    main = params_to_dict(load_params(PARAMS / "sandbox.yaml"))
    params = load_params(PARAMS / "sandbox_verifier.yaml")
    changed = {d.split(":")[0] for d in diff_params(main, params_to_dict(params))}
    assert changed and all(c == "run_name" or c.startswith("verifier.") for c in changed)
    assert params.verifier.enabled
    # an external Verifier pretrained to verify, with the prompt its corpus was rendered with
    from rzero_lib.sandbox_world import SANDBOX_VERIFIER_SYSTEM, SANDBOX_VERIFIER_USER

    assert params.verifier.kind == "model" and params.verifier.model == "builtin:arith-sandbox-verifier"
    assert (params.verifier.system, params.verifier.user) == (SANDBOX_VERIFIER_SYSTEM, SANDBOX_VERIFIER_USER)


def _dry_run(**env) -> list[str]:
    out = subprocess.run(["bash", str(SCRIPT)], env={**os.environ, "SANDBOX_DRY_RUN": "1", **env},
                         capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def test_make_sandbox_runs_every_seed_of_the_main_run_and_its_controls(tmp_path):
    lines = _dry_run(RUNS_ROOT=str(tmp_path))
    runs = sorted(line.split()[1:] for line in lines if " run params/" in line)
    expected = sorted(["run", f"params/{name}.yaml", "--run-dir", str(seed_run_dir(tmp_path, name, s)),
                       "--set", f"seed={s}", "--no-progress"]
                      for name in [MAIN_RUN, *CONTROL_RUNS] for s in SEEDS)
    assert runs == expected
    assert all((PARAMS / f"{name}.yaml").exists() for name in [MAIN_RUN, *CONTROL_RUNS, *EXTRA_RUNS])
    notebook = next(line for line in lines if line.startswith("papermill"))
    assert "run_names: [sandbox,sandbox_untrained_challenger,sandbox_oracle_labels]" in notebook
    assert "seeds: [0,1,2]" in notebook and f"benchmark: {HELDOUT_BENCHMARK}" in notebook
    assert not any(tmp_path.iterdir())  # a dry run writes nothing
    # extras run once, with the first seed; overrides reach every run
    lines = _dry_run(RUNS_ROOT=str(tmp_path), SEEDS="4 5", SANDBOX_RUNS="sandbox",
                     SANDBOX_EXTRAS="sandbox_verifier", SANDBOX_SET="iterations=1 voting.num_samples=4")
    runs = [line for line in lines if " run params/" in line]
    assert len(runs) == 3 and sum("sandbox_verifier.yaml" in r for r in runs) == 1
    assert f"{seed_run_dir(tmp_path, 'sandbox_verifier', 4)} --set seed=4" in " ".join(runs)
    assert all("--set iterations=1 --set voting.num_samples=4" in r for r in runs)
    assert "verifier_run: 'sandbox_verifier'" in lines[-1]
    builds = [line.split("builtin_path('")[1].split("'")[0] for line in lines if "builtin_path(" in line]
    assert builds == ["arith-sandbox", "arith-sandbox-verifier"]  # the Verifier's model is built up front too


def test_make_sandbox_scaling_builds_both_models_and_extends_the_main_run(tmp_path):
    make = subprocess.run(["make", "-n", "sandbox-scaling"], cwd=REPO_ROOT, capture_output=True, text=True,
                          check=True).stdout
    assert f'SANDBOX_RUNS="{MAIN_RUN} {SMALL_MODEL_RUN}"' in make
    assert f'SANDBOX_SET="iterations={SCALING_ITERATIONS}"' in make  # the Makefile's number is the library's
    lines = _dry_run(RUNS_ROOT=str(tmp_path), SANDBOX_RUNS=f"{MAIN_RUN} {SMALL_MODEL_RUN}",
                     SANDBOX_SET="iterations=6", SANDBOX_COMPARISON="sandbox_scaling")
    builds = [line for line in lines if "builtin_path(" in line]
    assert [b.split("builtin_path('")[1].split("'")[0] for b in builds] == ["arith-sandbox", "arith-sandbox-small"]
    runs = [line for line in lines if " run params/" in line]
    assert len(runs) == 6 and all("--set iterations=6" in r for r in runs)
    assert f"--run-dir {seed_run_dir(tmp_path, MAIN_RUN, 0)} " in " ".join(runs)  # the main run's own directory
    assert f"{tmp_path}/sandbox_scaling/notebook.ipynb" in lines[-1]
    # a model chosen by SANDBOX_SET is the one built up front (not inside the first run, on one thread)
    lines = _dry_run(RUNS_ROOT=str(tmp_path), SANDBOX_RUNS=MAIN_RUN, SANDBOX_SET="model=builtin:arith-sandbox-small")
    builds = [line for line in lines if "builtin_path(" in line]
    assert [b.split("builtin_path('")[1].split("'")[0] for b in builds] == ["arith-sandbox-small"]


def test_benchmark_difficulty_is_the_steps():
    for name in (HELDOUT_BENCHMARK, DEV_BENCHMARK):
        table = benchmark_difficulty(name)
        assert table["difficulty"].value_counts().sort_index().to_dict() == {b: 40 for b in range(1, MAX_STEPS + 1)}
    assert benchmark_difficulty(HELDOUT_BENCHMARK)["question"].tolist() != \
        benchmark_difficulty(DEV_BENCHMARK)["question"].tolist()  # two draws (720 questions per b: they overlap)


# --------------------------------------------------------------------------
# the tables and the criteria, on known numbers
# --------------------------------------------------------------------------


def test_question_table_scores_every_kept_label():
    rule = get_domain("sandbox").difficulty
    rows = [(1, "37 + 7 * 4 = ?", "65", True),  # right
            (1, "20 + 3 * 9 = ?", "44", True),  # the early-stop answer 20 + 3 * 8
            (1, "50 + 2 * 2 = ?", "53", True),  # a slip
            (1, "11 + 9 * 12 = ?", "119", False),  # not kept
            (2, "15 + 5 * 6 = ?", "45", True)]
    votes = pd.DataFrame({"iteration": [r[0] for r in rows], "question": [r[1] for r in rows],
                          "majority_answer": [r[2] for r in rows], "kept": [r[3] for r in rows],
                          "difficulty": [rule(r[1]) for r in rows]})
    t = question_table(votes, "sandbox").set_index("iteration")
    assert (t.loc[1, "written"], t.loc[1, "kept"]) == (4, 3)
    assert t.loc[1, "written_difficulty"] == pytest.approx((4 + 9 + 2 + 12) / 4)
    assert t.loc[1, "kept_difficulty"] == pytest.approx(5.0)
    assert (t.loc[1, "labels_checked"], t.loc[1, "labels_correct"]) == (3, 1)
    assert (t.loc[1, "ci_low"], t.loc[1, "ci_high"]) == pytest.approx(wilson_interval(1, 3))
    assert t.loc[1, "early_stop_share"] == pytest.approx(1 / 3)
    assert (t.loc[2, "label_accuracy"], t.loc[2, "early_stop_share"], t.loc[2, "kept_difficulty"]) == (1.0, 0.0, 6.0)


N_ITEMS = 200


def _items(run: str, seed: int, accuracy: dict[int, float]) -> pd.DataFrame:
    """Greedy correctness of N_ITEMS items per iteration: the first round(acc * N) items right."""
    return pd.DataFrame([{"run": run, "seed": seed, "iteration": k, "id": f"q{i:03d}", "difficulty": 1 + i % 12,
                          "correct": float(i < round(a * N_ITEMS))} for k, a in accuracy.items()
                         for i in range(N_ITEMS)])


def _comparison(heldout: dict, labels: dict, kept_difficulty=(4.0, 5.0, 6.0), base_accuracy=(0.6, 0.5, 0.4)):
    """A comparison with known numbers. `heldout`: run -> seed -> {iteration: accuracy}; `labels`: run ->
    label accuracy per iteration 1..3 (every seed)."""
    items = pd.concat([_items(run, s, acc) for run, by_seed in heldout.items() for s, acc in by_seed.items()],
                      ignore_index=True)
    per_seed = pd.concat([heldout_table(g).assign(run=run, seed=s)
                          for (run, s), g in items.groupby(["run", "seed"])], ignore_index=True)
    questions = pd.DataFrame([
        {"run": run, "seed": s, "iteration": k, "written": 100, "written_difficulty": kept_difficulty[k - 1] - 1,
         "kept": 50, "kept_difficulty": kept_difficulty[k - 1] + 0.1 * s, "labels_checked": 50,
         "labels_correct": round(50 * labels[run][k - 1]), "label_accuracy": round(50 * labels[run][k - 1]) / 50,
         "ci_low": 0.0, "ci_high": 1.0, "early_stop_share": 0.1, "base_samples": 200,
         "base_accuracy": base_accuracy[k - 1]}
        for run, by_seed in heldout.items() for s in by_seed for k in (1, 2, 3)])
    seeds = {run: sorted(by_seed) for run, by_seed in heldout.items()}
    return Comparison({run: run for run in heldout}, seeds, [], HELDOUT_BENCHMARK, questions, per_seed, items, {})


PASSING = {
    MAIN_RUN: {0: {0: 0.50, 1: 0.56, 2: 0.60, 3: 0.62}, 1: {0: 0.50, 1: 0.55, 2: 0.61, 3: 0.64}},
    UNTRAINED_CHALLENGER_RUN: {0: {0: 0.50, 3: 0.52}, 1: {0: 0.50, 3: 0.53}},
    ORACLE_LABELS_RUN: {0: {0: 0.50, 3: 0.66}, 1: {0: 0.50, 3: 0.70}},
}
GOOD_LABELS = {MAIN_RUN: (0.80, 0.74, 0.60), UNTRAINED_CHALLENGER_RUN: (0.8, 0.8, 0.8),
               ORACLE_LABELS_RUN: (0.8, 0.7, 0.6)}


def test_criteria_pass_on_the_issue_dynamic():
    c = evaluate_criteria(_comparison(PASSING, GOOD_LABELS))
    assert {k: v["pass"] for k, v in c.items()} == {"1_harder_questions": True, "2_solver_improves": True,
                                                    "3_labels_get_worse": True, "4_labels_matter": True}
    two = c["2_solver_improves"]["numbers"]
    assert two["base"] == pytest.approx(0.5) and two["final"] == pytest.approx(0.63)
    assert two["gain"] == pytest.approx(0.13) and 0 < two["gain_se"] < 0.065
    assert two["seed_spread"] == pytest.approx(0.02) and two["main_minus_untrained"] == pytest.approx(0.105)
    three = c["3_labels_get_worse"]["numbers"]
    assert three["label_accuracy_first"] == pytest.approx(0.80) and three["label_accuracy_last"] == pytest.approx(0.6)
    assert three["pooled_wilson_first"][0] < 0.8 < three["pooled_wilson_first"][1]
    assert c["1_harder_questions"]["numbers"]["kept_difficulty_last"] == pytest.approx(6.05)


def test_criteria_fail_each_by_its_own_numbers():
    failing = {**PASSING,
               UNTRAINED_CHALLENGER_RUN: {0: {0: 0.50, 3: 0.62}, 1: {0: 0.50, 3: 0.63}},  # as good as main
               ORACLE_LABELS_RUN: {0: {0: 0.50, 3: 0.55}, 1: {0: 0.50, 3: 0.56}}}  # below main
    labels = {**GOOD_LABELS, MAIN_RUN: (0.66, 0.64, 0.60)}  # starts below 70%
    c = evaluate_criteria(_comparison(failing, labels, kept_difficulty=(5.0, 5.0, 4.0)))
    assert {k: v["pass"] for k, v in c.items()} == {"1_harder_questions": False, "2_solver_improves": False,
                                                    "3_labels_get_worse": False, "4_labels_matter": False}
    small_gain = {**PASSING, MAIN_RUN: {0: {0: 0.50, 3: 0.53}, 1: {0: 0.50, 3: 0.54}}}  # +3.5 points only
    assert not evaluate_criteria(_comparison(small_gain, GOOD_LABELS))["2_solver_improves"]["pass"]


def test_criteria_without_a_control_are_not_evaluable():
    c = evaluate_criteria(_comparison({MAIN_RUN: PASSING[MAIN_RUN]}, GOOD_LABELS))
    assert c["1_harder_questions"]["pass"] and c["3_labels_get_worse"]["pass"]
    for key in ("2_solver_improves", "4_labels_matter"):
        assert c[key]["pass"] is None and "not evaluable" in c[key]["note"]


def _long_comparison(heldout: dict, labels: dict, kept_difficulty: dict):
    """Like `_comparison` for runs of any number of iterations: `labels` and `kept_difficulty` map a run to its
    values for iterations 1, 2, ..."""
    base = _comparison(heldout, {run: (0.8, 0.8, 0.8) for run in heldout})
    questions = pd.DataFrame([
        {**base.questions.iloc[0].to_dict(), "run": run, "seed": s, "iteration": k,
         "kept_difficulty": kept_difficulty[run][k - 1], "labels_correct": round(50 * labels[run][k - 1]),
         "label_accuracy": round(50 * labels[run][k - 1]) / 50, "base_accuracy": 0.6 - 0.05 * k}
        for run, by_seed in heldout.items() for s in by_seed for k in range(1, len(labels[run]) + 1)])
    return Comparison(base.runs, base.seeds, [], HELDOUT_BENCHMARK, questions, base.heldout, base.items, {})


def test_criteria_of_runs_extended_past_iteration_3_are_judged_at_3():
    six = {s: {**PASSING[MAIN_RUN][s], 4: 0.64, 5: 0.55, 6: 0.50} for s in (0, 1)}  # falls back to base
    heldout = {**PASSING, MAIN_RUN: six}
    labels = {MAIN_RUN: (0.80, 0.74, 0.60, 0.9, 0.9, 0.95), UNTRAINED_CHALLENGER_RUN: (0.8,) * 3,
              ORACLE_LABELS_RUN: (0.8,) * 3}
    difficulty = {MAIN_RUN: (4.0, 5.0, 6.0, 3.0, 3.0, 3.0), UNTRAINED_CHALLENGER_RUN: (4.0,) * 3,
                  ORACLE_LABELS_RUN: (4.0,) * 3}
    c = evaluate_criteria(_long_comparison(heldout, labels, difficulty))
    assert all(v["pass"] for v in c.values())  # at iteration 6 every one would fail
    assert c["2_solver_improves"]["numbers"]["last_iteration"] == 3
    assert c["3_labels_get_worse"]["numbers"]["last_iteration"] == 3
    assert c["2_solver_improves"]["numbers"]["final"] == pytest.approx(0.63)
    assert evaluate_criteria(_long_comparison(heldout, labels, difficulty),
                             last_iteration=6)["2_solver_improves"]["pass"] is False


SCALING = {  # the larger model peaks at 4 and falls; the smaller one peaks at 2 (tied at 3) and plateaus
    MAIN_RUN: {0: {0: 0.50, 1: 0.55, 2: 0.60, 3: 0.62, 4: 0.66, 5: 0.60, 6: 0.56},
               1: {0: 0.50, 1: 0.55, 2: 0.60, 3: 0.62, 4: 0.66, 5: 0.61, 6: 0.58}},
    SMALL_MODEL_RUN: {0: {0: 0.40, 1: 0.45, 2: 0.50, 3: 0.50, 4: 0.49, 5: 0.48, 6: 0.47},
                      1: {0: 0.40, 1: 0.45, 2: 0.50, 3: 0.50, 4: 0.49, 5: 0.49, 6: 0.49}},
}


def test_iteration_scaling_finds_each_sizes_peak(tmp_path):
    six = {run: (0.9, 0.8, 0.7, 0.6, 0.5, 0.4) for run in SCALING}
    comparison = _long_comparison(SCALING, six, {run: (4.0, 5.0, 6.0, 7.0, 8.0, 9.0) for run in SCALING})
    result = evaluate_iteration_scaling(comparison)
    large, small = result["runs"][MAIN_RUN], result["runs"][SMALL_MODEL_RUN]
    assert (large["peak_iteration"], small["peak_iteration"]) == (4, 2)  # ties: the earliest
    assert large["peak_accuracy"] == pytest.approx(0.66) and large["last_accuracy"] == pytest.approx(0.57)
    assert large["after_peak"] == "declines"  # 9 points down, seeds' range 2 points
    assert small["after_peak"] == "plateaus"  # 2 points down, seeds' range 2 points
    assert large["label_accuracy"][6] == pytest.approx(0.4) and large["kept_difficulty"][1] == 4.0
    assert result["larger_peaks_later"] is True
    swapped = evaluate_iteration_scaling(comparison, {MAIN_RUN: "smaller", SMALL_MODEL_RUN: "larger"})
    assert swapped["larger_peaks_later"] is False
    rising = {MAIN_RUN: {s: {k: 0.5 + 0.01 * k for k in range(7)} for s in (0, 1)}}
    only = evaluate_iteration_scaling(_long_comparison(rising, six, {MAIN_RUN: (4.0,) * 6}))
    assert only["runs"][MAIN_RUN]["after_peak"] == "still rising" and only["larger_peaks_later"] is None
    assert evaluate_iteration_scaling(_comparison({ORACLE_LABELS_RUN: PASSING[ORACLE_LABELS_RUN]},
                                                  GOOD_LABELS)) is None
    png = save_png(plot_iteration_scaling(comparison, result), tmp_path / "scaling.png")
    assert png.stat().st_size > 5_000


# --------------------------------------------------------------------------
# the whole chain on real tiny runs: make sandbox's script, two seeds, notebook 07
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox_runs(tmp_path_factory, reduced_sandbox):
    """scripts/run_sandbox.sh on the smoke budget with the reduced model: the main run for seeds 0 and 1
    (two at a time) and notebook 07 over them (the controls' part of the comparison: the criteria tests)."""
    root = tmp_path_factory.mktemp("sandbox_runs")
    env = {**os.environ, "RUNS_ROOT": str(root), "VENV": str(Path(sys.executable).parent.parent),
           "SEEDS": "0 1", "SANDBOX_RUNS": MAIN_RUN, "SANDBOX_JOBS": "2",
           "SANDBOX_SET": " ".join(SMOKE_OVERRIDES), "OMP_WAIT_POLICY": "PASSIVE",
           "RZERO_CACHE_DIR": str(reduced_sandbox["cache"]), STEPS_ENV: str(reduced_sandbox["steps"])}
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {"root": root, "out": root / "sandbox_comparison", "stdout": done.stdout, "env": env}


@pytest.mark.slow
def test_sandbox_script_and_notebook_on_two_seeds(sandbox_runs, monkeypatch):
    root, out = sandbox_runs["root"], sandbox_runs["out"]
    runs = {(MAIN_RUN, s): seed_run_dir(root, MAIN_RUN, s) for s in (0, 1)}
    votes = {key: stage_tables(path, "voting", "votes.parquet") for key, path in runs.items()}
    # every question has its difficulty, by the domain's rule (smoke runs: arithmetic); the seeds differ
    rule = get_domain("arithmetic").difficulty
    for v in votes.values():
        assert len(v) > 0 and v["kept"].any()
        assert v["difficulty"].tolist() == pytest.approx([rule(q) for q in v["question"]], nan_ok=True)
    assert votes[(MAIN_RUN, 0)]["question"].tolist() != votes[(MAIN_RUN, 1)]["question"].tolist()
    # each run's report: the headline keys, difficulty_mean among them
    for (name, s), path in runs.items():
        headline = json.loads((path / "report" / "summary.json").read_text())["headline"]
        assert {"label_accuracy_first", "label_accuracy_last", "base_accuracy_on_questions",
                "benchmark_average", "difficulty_mean"} <= set(headline)
        kept = votes[(name, s)][votes[(name, s)]["kept"]]
        assert headline["difficulty_mean"]["1"] == pytest.approx(kept["difficulty"].mean())
    times = pd.read_csv(root / "logs" / "wall_times.tsv", sep="\t", header=None,
                        names=["run", "seed", "seconds", "rc", "jobs"])
    assert sorted(zip(times["run"], times["seed"])) == sorted(runs) and (times["rc"] == 0).all()

    # notebook 07 (through papermill) wrote the comparison
    assert (out / "notebook.ipynb").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == {MAIN_RUN: [0, 1]} and summary["missing"] == []
    for name in ("label_accuracy", "difficulty", "heldout_accuracy"):
        assert (out / f"sandbox_{name}.png").stat().st_size > 5_000
    criteria = summary["criteria"]
    assert set(criteria) == {"1_harder_questions", "2_solver_improves", "3_labels_get_worse", "4_labels_matter"}
    assert criteria["1_harder_questions"]["pass"] is None  # one iteration: no trend to judge
    assert criteria["2_solver_improves"]["pass"] is None  # no untrained-Challenger run
    assert criteria["4_labels_matter"]["pass"] is None  # no oracle-label run

    # the same comparison in process: its numbers are the runs' numbers
    monkeypatch.setenv("RZERO_CACHE_DIR", sandbox_runs["env"]["RZERO_CACHE_DIR"])
    comparison = load_comparison(root, [MAIN_RUN, ORACLE_LABELS_RUN], seeds=[0, 1])
    assert comparison.missing == [(ORACLE_LABELS_RUN, 0), (ORACLE_LABELS_RUN, 1)]
    q = comparison.questions.set_index(["run", "seed", "iteration"])
    for (name, s), v in votes.items():
        kept = v[v["kept"]]
        row = q.loc[(name, s, 1)]
        right = sum(str(a) == arithmetic_answer(x) for a, x in zip(kept["majority_answer"], kept["question"]))
        assert (row["written"], row["kept"], row["labels_correct"]) == (len(v), len(kept), right)
        assert row["written_difficulty"] == pytest.approx(v["difficulty"].mean())
        evaluable = sum(arithmetic_answer(x) is not None for x in kept["question"])  # the base model's 4 answers each
        assert row["base_samples"] == 4 * evaluable and (evaluable == 0 or 0 <= row["base_accuracy"] <= 1)
    means = comparison.question_means
    kept_mean = means[(means["run"] == MAIN_RUN) & (means["quantity"] == "kept_difficulty")].iloc[0]
    per_seed = [q.loc[(MAIN_RUN, s, 1), "kept_difficulty"] for s in (0, 1)]
    assert kept_mean["seeds"] == 2 and kept_mean["mean"] == pytest.approx(sum(per_seed) / 2)
    assert (kept_mean["min"], kept_mean["max"]) == pytest.approx((min(per_seed), max(per_seed)))
    h = comparison.heldout_means
    overall = h[(h["run"] == MAIN_RUN) & (h["scope"] == "all")].set_index("iteration")
    # evaluation.limit subsamples with the run's seed: the seed mean's items are the union of the seeds'
    assert list(overall.index) == [0, 1] and (overall["seeds"] == 2).all() and (overall["n"] >= 24).all()
    samples = stage_tables(runs[(MAIN_RUN, 0)], "evaluation", "samples.parquet")
    base0 = samples[(samples["iteration"] == 0) & (samples["benchmark"] == HELDOUT_BENCHMARK)]["correct"].mean()
    per_seed_h = comparison.heldout.set_index(["run", "seed", "iteration", "scope"])
    assert per_seed_h.loc[(MAIN_RUN, 0, 0, "all"), "accuracy"] == pytest.approx(base0)
    assert criteria["4_labels_matter"]["numbers"]["main_final"] == pytest.approx(overall.loc[1, "accuracy"])
    assert summary["heldout_seed_mean"] == json.loads(json.dumps(jsonable(h.to_dict(orient="records"))))
    assert summary["questions_per_seed"][0]["run"] in (MAIN_RUN, ORACLE_LABELS_RUN)
