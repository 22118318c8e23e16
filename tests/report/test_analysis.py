"""The report (rzero_lib.report) and the explorer on a synthetic run directory.

`make_synthetic_run` writes a small arithmetic-domain run by hand (params,
questions, votes, training logs, evaluation scores, manifests) whose ground
truth is known, so label accuracy, intervals, per-bucket accuracy, TTRL
metrics and difficulty numbers are checked exactly. The notebook test runs
`notebooks/06_analysis.py` through papermill on the same kind of run with
real (tiny, random) models for the difficulty generations, and exports its
report.html.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from html import unescape
from pathlib import Path

import pandas as pd
import pytest

from rzero_lib.answers import extract_boxed
from rzero_lib.atomic_files import write_parquet_atomic
from rzero_lib.config import params_from_dict
from rzero_lib.oracle import ArithmeticOracle, arithmetic_answer
from rzero_lib.pipeline.context import StageContext
from rzero_lib.pipeline.resume import stage_params_hash
from rzero_lib.pipeline.rundir import RunDir, write_manifest
from rzero_lib.pipeline.status import engine_line
from rzero_lib.report import analysis as report_analysis
from rzero_lib.report import explorer as E
from rzero_lib.report.analysis import TABLE_FILES, run_analysis
from rzero_lib.report.difficulty import difficulty_long, difficulty_matrix, score_difficulty
from rzero_lib.report.figures import FIGURES, plot_label_accuracy
from rzero_lib.report.label_metrics import (
    accuracy_by_agreement,
    label_accuracy_table,
    label_sample,
    score_labels,
)
from rzero_lib.report.paper import paper_benchmark_reference
from rzero_lib.report.tables import (
    cluster_size_shares,
    cluster_sizes,
    distinct_n,
    diversity_table,
    self_bleu,
    training_curves,
    training_summary,
)
from rzero_lib.sampling import Generator
from rzero_lib.stats import wilson_interval
from tests.support import NOTEBOOKS, REPO_ROOT

NOTEBOOK = NOTEBOOKS / "06_analysis.py"

# --------------------------------------------------------------------------
# the synthetic run: (question, answers, challenger answer, drop reason)
# m = 10; majority = most frequent string, first seen on ties.
# --------------------------------------------------------------------------

N = None
ITER1 = [
    ("What is 12 + 7?", ["19"] * 7 + ["18", "17", N], "19", None),  # kept, 7/10, right
    ("What is 3 * 4?", ["12"] * 5 + ["13"] * 2 + [N] * 3, "11", None),  # kept, 5/10, right
    ("What is 20 - 5?", ["14"] * 4 + ["15"] * 3 + ["16"] + [N] * 2, "15", None),  # kept, 4/10, WRONG
    ("How many apples does Tom have?", ["3"] * 6 + ["4"] * 4, "5", None),  # kept, no oracle answer
    ("What is 9 + 9?", ["18"] * 3 + ["17", "16", "15", "81", "19"] + [N] * 2, "18", None),  # kept, 3/10, right
    ("What is 2 + 2?", ["4"] * 10, "4", "outside_band"),  # 10/10, right
    ("What is 6 * 7?", ["41"] * 2 + ["42", "43", "44", "45", "46", "47", "48", "49"], "42", "outside_band"),
    ("Prove that 1 + 1 = 2.", ["2"] * 5 + [N] * 5, "2", "proof_question"),
    ("What is 5 + 5?", [N] * 10, "10", "no_answer"),
]
ITER2 = [
    ("What is 100 - 1?", ["99"] * 5 + ["98"] * 5, "99", None),  # kept, 5/10 (tie: first seen), right
    ("What is 7 * 8?", ["54"] * 5 + ["56"] * 3 + [N] * 2, "56", None),  # kept, 5/10, WRONG
    ("What is 15 / 3?", ["5"] * 3 + ["3", "4", "6", "7", "8", "9", "10"], "3", None),  # kept, 3/10, right
    ("What is 11 * 11?", ["111"] * 4 + ["121"] * 3 + ["112"] * 3, "121", None),  # kept, 4/10, WRONG
    ("What is 1 + 1?", ["2"] * 9 + ["3"], "2", "outside_band"),  # 9/10, right
]


def _vote_rows(k: int, items) -> list[dict]:
    rows = []
    for i, (question, answers, challenger, reason) in enumerate(items):
        groups: dict[str, int] = {}
        for a in answers:
            if a is not None:
                groups[a] = groups.get(a, 0) + 1
        ordered = sorted(groups.items(), key=lambda kv: -kv[1])  # stable: ties keep first seen
        majority, count = ordered[0] if ordered else (None, 0)
        rows.append({"question_id": f"it{k:02d}-q{i:05d}", "iteration": k, "question": question,
                     "challenger_answer": challenger,
                     "responses": [f"I think it is \\boxed{{{a}}}" if a else "no idea" for a in answers],
                     "answers": list(answers), "majority_answer": majority, "p_hat": count / len(answers),
                     "majority_count": count, "num_answered": sum(a is not None for a in answers),
                     "group_answers": [a for a, _ in ordered], "group_counts": [c for _, c in ordered],
                     "drop_reason": reason, "kept": reason is None})
    return rows


def _manifest(run: RunDir, k: int, stage: str, outputs=(), **extra) -> None:
    folder = run.stage_dir(k, stage)
    folder.mkdir(parents=True, exist_ok=True)
    write_manifest(folder, stage=stage, iteration=k, inputs={}, outputs=list(outputs), params_hash="synthetic",
                   started_at=time.time(), summary={}, extra=extra or None)


def _jsonl(path: Path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def make_synthetic_run(root: Path, *, models: str | None = None, overrides: dict | None = None) -> Path:
    """A two-iteration arithmetic run with known ground truth under `root/synthetic`.

    `models`: None (no model folders: the difficulty generator must be faked) or
    the path of a saved model folder to copy as Solver_1 and Solver_2.
    """
    data = {"run_name": "synthetic", "model": "builtin:tiny-random", "domain": "arithmetic", "iterations": 2,
            "seed": 0,
            "voting": {"num_samples": 10, "max_new_tokens": 12, "equivalence_timeout_s": 5.0},
            "analysis": {"label_sample_size": 200, "solver_difficulty_samples": 2},
            "engine": {"backend": "transformers", "device": "cpu", "generation_batch_size": 64}}
    for key, value in (overrides or {}).items():  # "domain" or "section.name"
        *sections, name = key.split(".")
        node = data
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = value
    params = params_from_dict(data)
    run = RunDir.at(root / "synthetic")
    run.freeze_params(params)
    for k, items in ((1, ITER1), (2, ITER2)):
        # Challenger training log (TRL log history) and the question stage
        ct = run.stage_dir(k, "challenger_training")
        ct.mkdir(parents=True)
        _jsonl(ct / "log_history.jsonl",
               [{"step": s, "reward": 0.2 * s + 0.1 * k, "challenger/uncertainty": 0.5 + 0.05 * s,
                 "challenger/penalty": 0.1 / s, "challenger/format_failure_rate": 0.4 / s, "kl": 0.001 * s,
                 "challenger/p_hat": 0.6} for s in (1, 2, 3)] + [{"step": 3, "train_runtime": 1.5}])
        _manifest(run, k, "challenger_training", ["log_history.jsonl"])
        qg = run.stage_dir(k, "question_generation")
        qg.mkdir(parents=True)
        votes = pd.DataFrame(_vote_rows(k, items))
        questions = votes[["question_id", "iteration", "question", "challenger_answer"]].assign(
            output="<question>...</question>", parse_failure=None, drop_reason=None, kept=True)
        extra = pd.DataFrame([{"question_id": f"it{k:02d}-q99999", "iteration": k, "question": None,
                               "challenger_answer": None, "output": "garbage", "parse_failure": "no_question",
                               "drop_reason": "unparseable:no_question", "kept": False}])
        write_parquet_atomic(pd.concat([questions, extra], ignore_index=True), qg / "questions.parquet")
        _manifest(run, k, "question_generation", ["questions.parquet"])
        vt = run.stage_dir(k, "voting")
        vt.mkdir(parents=True)
        write_parquet_atomic(votes, vt / "votes.parquet")
        kept = votes[votes["kept"]]
        write_parquet_atomic(pd.DataFrame({"question_id": kept["question_id"], "question": kept["question"],
                                           "label": kept["majority_answer"], "p_hat": kept["p_hat"],
                                           "weight": 1.0}), vt / "solver_train.parquet")
        _manifest(run, k, "voting", ["votes.parquet", "solver_train.parquet"])
        st = run.stage_dir(k, "solver_training")
        st.mkdir(parents=True)
        _jsonl(st / "log_history.jsonl",
               [{"step": s, "reward": 0.3 + 0.1 * s, "frac_reward_zero_std": 0.5 - 0.1 * s, "kl": 0.002 * s,
                 "solver/boxed_rate": 0.8, "loss": 0.01} for s in (1, 2)])
        outputs = ["log_history.jsonl"]
        if models is not None:  # a plain copy of a model folder stands in for a trained Solver
            shutil.copytree(models, st / "model")
            outputs.append("model")
        _manifest(run, k, "solver_training", outputs, model=str(st / "model"))
    for k, (arith, gsm) in enumerate(((0.30, 0.10), (0.36, 0.12), (0.40, 0.15))):
        ev = run.stage_dir(k, "evaluation")
        ev.mkdir(parents=True)
        scores = pd.DataFrame([{"benchmark": b, "category": "math", "n": 50, "total": 50, "limit": None,
                                "subsampled": False, "accuracy": acc, "stderr": 0.05, "num_samples": 1,
                                "decoding": "greedy", "max_new_tokens": 12, "timeouts": 0, "judge_accuracy": None,
                                "source": "synthetic"} for b, acc in (("arithmetic", arith), ("gsm8k", gsm))])
        write_parquet_atomic(scores, ev / "scores.parquet")
        write_parquet_atomic(pd.DataFrame({"benchmark": ["arithmetic"], "id": ["1"]}), ev / "samples.parquet")
        _manifest(run, k, "evaluation", ["scores.parquet", "samples.parquet"])
    return run.path


# --------------------------------------------------------------------------
# fakes
# --------------------------------------------------------------------------


class FakeGenerator(Generator):
    """Answers arithmetic questions: `right` of every n samples correctly, the rest wrongly."""

    def __init__(self, right: int, log: list):
        super().__init__(backend_name="fake")
        self.right = right
        self.log = log

    def generate(self, prompts, sampling, progress=True):
        self.log.append(len(prompts))
        out = []
        for messages in prompts:
            truth = arithmetic_answer(messages[-1]["content"])
            out.append([f"\\boxed{{{truth if i < self.right else 'wrong'}}}" for i in range(sampling.n)])
        return out


def fake_factory(log: list):
    def factory(spec: str):
        right = {"builtin:tiny-random": 1}.get(spec, 2 if spec.endswith("iter_01/solver_training/model") else 0)
        return FakeGenerator(right, log)

    return factory


class CountingOracle(ArithmeticOracle):
    def __init__(self):
        self.asked: list[int] = []

    def answer_many(self, questions):
        questions = list(questions)
        self.asked.append(len(questions))
        return super().answer_many(questions)


@pytest.fixture()
def synthetic_run(tmp_path) -> Path:
    return make_synthetic_run(tmp_path)


@pytest.fixture()
def no_rendering(monkeypatch):
    """Skip drawing figures (seconds each on a small CPU) in tests about other things."""

    def save(fig, folder, stem):
        for fmt in ("png", "pdf"):
            (Path(folder) / f"{stem}.{fmt}").write_bytes(b"stub")
        return {"png": f"{stem}.png", "pdf": f"{stem}.pdf"}

    monkeypatch.setattr(report_analysis, "save_figure", save)


# --------------------------------------------------------------------------
# pure metrics
# --------------------------------------------------------------------------


def test_label_sample_is_fixed_and_bounded():
    votes = pd.DataFrame(_vote_rows(1, ITER1) + _vote_rows(2, ITER2))
    full = label_sample(votes, 200, seed=0)
    assert full.groupby("iteration").size().to_dict() == {1: 5, 2: 4}
    small = label_sample(votes, 2, seed=3)
    assert small.groupby("iteration").size().to_dict() == {1: 2, 2: 2}
    assert small.equals(label_sample(votes, 2, seed=3))  # deterministic
    assert set(small["question_id"]) <= set(full["question_id"])
    band = label_sample(votes, 200, seed=0, which="outside_band")
    assert sorted(band["question"]) == ["What is 1 + 1?", "What is 2 + 2?", "What is 6 * 7?"]


def _scored():
    votes = pd.DataFrame(_vote_rows(1, ITER1) + _vote_rows(2, ITER2))
    sample = pd.concat([label_sample(votes, 200, 0), label_sample(votes, 200, 0, "outside_band")],
                       ignore_index=True)
    return votes, score_labels(sample, [arithmetic_answer(q) for q in sample["question"]])


def test_label_accuracy_table_exact():
    votes, scored = _scored()
    table = label_accuracy_table(scored, votes).set_index("iteration")
    one, two = table.loc[1], table.loc[2]
    assert (one.kept_questions, one.sampled, one.covered, one.correct) == (5, 5, 4, 3)
    assert one.coverage == pytest.approx(0.8)
    assert one.label_accuracy == pytest.approx(0.75)
    assert (one.ci_low, one.ci_high) == pytest.approx(wilson_interval(3, 4))
    assert one.majority_ratio == pytest.approx((0.7 + 0.5 + 0.4 + 0.6 + 0.3) / 5)
    # reward accuracy: right majorities agree on all 10 answers; q3 (majority 14, truth 15) on 3 of 10
    assert one.reward_accuracy == pytest.approx((10 + 10 + 3 + 10) / 40)
    assert one.challenger_accuracy == pytest.approx(3 / 4)  # 19 ok, 11 wrong, 15 ok, 18 ok
    assert (two.covered, two.correct, two.coverage) == (4, 2, 1.0)
    assert two.label_accuracy == pytest.approx(0.5)
    assert two.majority_ratio == pytest.approx((0.5 + 0.5 + 0.3 + 0.4) / 4)
    assert two.reward_accuracy == pytest.approx((10 + 2 + 10 + 3) / 40)
    assert two.challenger_accuracy == pytest.approx(3 / 4)  # 99 ok, 56 ok, 3 wrong (truth 5), 121 ok


def test_accuracy_by_agreement_exact():
    _, scored = _scored()
    buckets = accuracy_by_agreement(scored, band_delta=0.25)
    pooled = buckets[buckets["scope"] == "all"].set_index("majority_count")
    expected = {2: (1, 0), 3: (2, 2), 4: (2, 0), 5: (3, 2), 7: (1, 1), 9: (1, 1), 10: (1, 1)}
    assert {k: (int(r.n), int(r.correct)) for k, r in pooled.iterrows()} == expected
    assert pooled.loc[5, "accuracy"] == pytest.approx(2 / 3)
    assert (pooled.loc[5, "ci_low"], pooled.loc[5, "ci_high"]) == pytest.approx(wilson_interval(2, 3))
    assert pooled["in_band"].to_dict() == {2: False, 3: True, 4: True, 5: True, 7: True, 9: False, 10: False}
    per_iter = buckets[buckets["scope"] == "iter 2"].set_index("majority_count")
    assert {k: (int(r.n), int(r.correct)) for k, r in per_iter.iterrows()} == {3: (1, 1), 4: (1, 0), 5: (2, 1),
                                                                                9: (1, 1)}


def test_difficulty_tables_exact():
    rows = pd.DataFrame([
        {"model": "base", "model_iteration": 0, "iteration": 1, "question_id": "a", "oracle_answer": "3",
         "answers": ["3", "4"]},
        {"model": "base", "model_iteration": 0, "iteration": 1, "question_id": "b", "oracle_answer": "7/2",
         "answers": ["3.5", None]},
        {"model": "base", "model_iteration": 0, "iteration": 2, "question_id": "c", "oracle_answer": "10",
         "answers": ["1", "2"]},
        {"model": "solver 1", "model_iteration": 1, "iteration": 1, "question_id": "a", "oracle_answer": "3",
         "answers": ["3", "3"]},
    ])
    scored = score_difficulty(rows)
    assert scored["n_correct"].tolist() == [1, 1, 0, 2]
    long = difficulty_long(scored).set_index(["model", "iteration"])
    assert long.loc[("base", 1), "accuracy"] == pytest.approx(0.5)
    assert long.loc[("base", 1), "questions"] == 2
    assert long.loc[("base", 2), "accuracy"] == 0.0
    matrix = difficulty_matrix(difficulty_long(scored))
    assert list(matrix.index) == ["base", "solver 1"]
    assert matrix.loc["base", "iter 1 questions"] == 50.0
    assert matrix.loc["solver 1", "iter 1 questions"] == 100.0
    assert math.isnan(matrix.loc["solver 1", "iter 2 questions"])


def test_diversity_metrics():
    assert distinct_n(["a b a", "a b"], 1) == pytest.approx(2 / 5)
    assert distinct_n(["a b a", "a b"], 2) == pytest.approx(2 / 3)
    assert math.isnan(distinct_n(["a"], 2))
    same = ["what is one plus two plus three", "what is one plus two plus three"]
    assert self_bleu(same) == pytest.approx(1.0)
    assert cluster_sizes(same + ["completely different words here now"]) == [2, 1]
    table = diversity_table(pd.DataFrame({"iteration": [1, 1, 1, 2], "question_id": ["a", "b", "c", "d"],
                                            "question": same + ["x y z w", None]}))
    row = table.set_index("iteration").loc[1]
    assert (row.analysed, row.clusters, row.largest_cluster) == (3, 2, 2)
    assert row.unique_fraction == pytest.approx(2 / 3)


def test_training_curves_put_iterations_on_one_axis():
    log = pd.DataFrame([{"iteration": 1, "step": 1, "reward": 0.1}, {"iteration": 1, "step": 2, "reward": 0.2},
                        {"iteration": 1, "step": 2, "train_runtime": 3.0},
                        {"iteration": 2, "step": 1, "reward": 0.5}])
    curves = training_curves(log, ["reward", "kl"])
    assert curves["global_step"].tolist() == [1, 2, 3]
    summary = training_summary(curves, "solver").set_index("iteration")
    assert summary.loc[1, "first"] == 0.1 and summary.loc[1, "last"] == 0.2


def test_paper_benchmark_reference():
    assert paper_benchmark_reference("Qwen/Qwen3-4B-Base")[0] == "Qwen3-4B-Base"
    assert paper_benchmark_reference("Qwen/Qwen3-8B-Base")[1][3] == 54.69
    assert paper_benchmark_reference("builtin:tiny-random") is None


# --------------------------------------------------------------------------
# the analysis stage
# --------------------------------------------------------------------------


def _png_has_content(path: Path) -> bool:
    import matplotlib.image as mpimg

    pixels = mpimg.imread(path)
    return path.stat().st_size > 5_000 and float(pixels[..., :3].std()) > 0.01


def test_run_analysis_end_to_end_with_known_truth(synthetic_run):
    calls: list[int] = []
    oracle = CountingOracle()
    ctx = StageContext.open(synthetic_run, None, "analysis")
    result = run_analysis(ctx, oracle=oracle, generator_factory=fake_factory(calls))
    folder = synthetic_run / "report"
    s = json.loads((folder / "summary.json").read_text())
    assert s == result.summary
    assert s["oracle"]["configured"] and s["oracle"]["kind"] == "arithmetic"
    assert s["label_accuracy"]["1"]["label_accuracy"] == pytest.approx(0.75)
    assert s["label_accuracy"]["1"]["coverage"] == pytest.approx(0.8)
    assert s["label_accuracy"]["2"]["label_accuracy"] == pytest.approx(0.5)
    assert s["headline"]["label_accuracy_change"] == pytest.approx(-0.25)
    # difficulty: base right on 1 of 2 samples, Solver_1 on 2 of 2, Solver_2 on none
    assert s["difficulty"] == {"base": {"1": 0.5, "2": 0.5}, "solver 1": {"1": 1.0, "2": 1.0},
                               "solver 2": {"1": 0.0, "2": 0.0}}
    assert s["headline"]["base_accuracy_on_questions"] == {"1": 0.5, "2": 0.5}
    # kept questions' largest-operand digits (no difficulty column here: the domain's rule; the word problem
    # has none): iteration 1 (2, 1, 2, 1), iteration 2 (3, 1, 2, 2)
    assert s["headline"]["difficulty_mean"] == {"1": 1.5, "2": 2.0}
    assert s["voting"]["1"]["kept"] == 5 and s["voting"]["1"]["questions"] == 9
    assert s["drop_reasons"]["1"] == {"outside_band": 2, "proof_question": 1, "no_answer": 1}
    assert s["diversity"]["1"]["analysed"] == 9
    assert s["training"]["challenger"]["1"]["reward_last"] == pytest.approx(0.7)
    assert s["benchmarks"]["average"]["base"] == pytest.approx(10.0)  # gsm8k: the only paper math set
    assert s["label_accuracy_by_agreement"][0]["majority_count"] == 2
    # every figure exists as PNG and PDF and is not blank
    assert list(s["figures"]) == list(FIGURES)
    for info in s["figures"].values():
        assert _png_has_content(folder / info["png"])
        assert (folder / info["pdf"]).stat().st_size > 1_000
    for file, _ in TABLE_FILES.values():
        assert (folder / file).exists(), file
    assert "| base |" in (folder / "evaluation_table.md").read_text()
    matrix = pd.read_csv(folder / "difficulty_table.csv", index_col=0)
    assert matrix.loc["solver 1", "iter 2 questions"] == 100.0
    oracle_cache = pd.read_parquet(folder / "oracle.parquet")
    assert len(oracle_cache) == 12  # 9 kept + 3 band-dropped sampled questions, each asked once
    assert calls == [8, 8, 8]  # 8 covered sampled questions, once per model
    # how the difficulty answers were generated, for `rzero status --engines`: one record for the three models
    assert s["generation"]["engine"] == {"backend": "fake"} and s["generation"]["generators"] == 3
    assert engine_line(s) == "fake"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["params_hash"] == ctx.params_hash == stage_params_hash(ctx.params, "analysis")

    # Re-running loads the finished report; recompute redoes the metrics but never re-asks
    again = run_analysis(StageContext.open(synthetic_run, None, "analysis"), oracle=oracle,
                           generator_factory=fake_factory(calls))
    assert again.loaded and again.summary["label_accuracy"] == s["label_accuracy"]
    redo = run_analysis(StageContext.open(synthetic_run, None, "analysis"), recompute=True, oracle=oracle,
                          generator_factory=fake_factory(calls))
    assert not redo.loaded and redo.summary["difficulty"] == s["difficulty"]
    assert calls == [8, 8, 8] and oracle.asked == [12]
    assert "generation" not in redo.summary  # every answer came from the cache: nothing generated


def test_run_analysis_recomputes_when_a_stage_finishes_later(synthetic_run, no_rendering):
    run = RunDir.at(synthetic_run)
    # pretend iteration 2's voting was not done at the first analysis
    manifest = run.stage_dir(2, "voting") / "manifest.json"
    saved = manifest.read_text()
    manifest.unlink()
    first = run_analysis(StageContext.open(synthetic_run, None, "analysis"), generator_factory=fake_factory([]))
    assert list(first.summary["label_accuracy"]) == ["1"]
    manifest.write_text(saved)
    second = run_analysis(StageContext.open(synthetic_run, None, "analysis"), generator_factory=fake_factory([]))
    assert not second.loaded and list(second.summary["label_accuracy"]) == ["1", "2"]


def test_run_analysis_without_oracle_and_with_missing_stages(tmp_path):
    # the math domain has no exact oracle; iteration 2 stopped after voting
    path = make_synthetic_run(tmp_path, overrides={"domain": "math"})
    run = RunDir.at(path)
    (run.stage_dir(2, "solver_training") / "manifest.json").unlink()
    (run.stage_dir(2, "challenger_training") / "manifest.json").unlink()
    (run.stage_dir(2, "evaluation") / "manifest.json").unlink()
    calls: list[int] = []
    result = run_analysis(StageContext.open(path, None, "analysis"), generator_factory=fake_factory(calls))
    s = result.summary
    assert not s["oracle"]["configured"] and "no oracle configured" in s["oracle"]["note"]
    assert s["label_accuracy"]["1"]["label_accuracy"] is None and s["label_accuracy"]["1"]["covered"] == 0
    assert s["difficulty"] == {} and calls == []
    assert s["stages_done"]["solver_training"] == [1]
    assert set(s["benchmarks"]["average"]) == {"base", "iter 1"}
    assert list(s["training"]["challenger"]) == ["1"]
    for info in s["figures"].values():
        assert _png_has_content(path / "report" / info["png"])


def test_run_analysis_on_an_empty_run(tmp_path):
    run = RunDir.at(tmp_path / "empty")
    run.freeze_params(params_from_dict({"run_name": "empty", "model": "builtin:tiny-random",
                                        "domain": "arithmetic"}))
    result = run_analysis(StageContext.open(run.path, None, "analysis"))
    assert result.summary["label_accuracy"] == {} and result.summary["voting"] == {}
    assert all((run.report_dir / info["png"]).exists() for info in result.summary["figures"].values())


# --------------------------------------------------------------------------
# explorer
# --------------------------------------------------------------------------


def test_explorer_filters_and_widget(synthetic_run, no_rendering):
    run_analysis(StageContext.open(synthetic_run, None, "analysis"), generator_factory=fake_factory([]))
    table = E.explorer_table(synthetic_run)
    assert len(table) == len(ITER1) + len(ITER2)
    q = table.set_index("question")
    assert q.loc["What is 20 - 5?", "oracle_answer"] == "15" and q.loc["What is 20 - 5?", "label_correct"] is False
    # exact oracle: also the unsampled proof question gets an answer
    assert q.loc["Prove that 1 + 1 = 2.", "in_label_sample"] == False  # noqa: E712
    assert q.loc["What is 5 + 5?", "oracle_answer"] == "10"
    # no majority answer: no label, so it neither agrees nor disagrees with the oracle
    assert q.loc["What is 5 + 5?", "label_correct"] is None

    def ids(**kw):
        return set(E.filter_questions(table, **kw)["question"])

    assert ids(oracle="disagrees") == {"What is 20 - 5?", "What is 6 * 7?", "What is 7 * 8?", "What is 11 * 11?"}
    assert ids(iteration=2, oracle="disagrees") == {"What is 7 * 8?", "What is 11 * 11?"}
    assert ids(oracle="no oracle answer") == {"How many apples does Tom have?", "Prove that 1 + 1 = 2."}
    assert ids(status="dropped", drop_reasons=["outside_band"]) == {"What is 2 + 2?", "What is 6 * 7?",
                                                                     "What is 1 + 1?"}
    assert ids(iteration=1, p_hat_range=(0.6, 0.7)) == {"What is 12 + 7?", "How many apples does Tom have?"}
    assert ids(drop_reasons=["kept"], iteration=2) == {"What is 100 - 1?", "What is 7 * 8?", "What is 15 / 3?",
                                                        "What is 11 * 11?"}
    with pytest.raises(ValueError):
        E.filter_questions(table, status="maybe")

    html = E.question_html(q.reset_index().iloc[2])
    assert "What is 20 - 5?" in html and "disagrees" in html and "<code>14</code>" in html
    unlabelled = q.reset_index().set_index("question", drop=False).loc["What is 5 + 5?"]
    assert "no majority answer" in E.question_html(unlabelled) and "disagrees" not in E.question_html(unlabelled)
    assert E.list_label(unlabelled).startswith("∅")
    evil = q.reset_index().iloc[0].copy()
    evil["question"] = "<script>alert(1)</script>"
    assert "<script>" not in E.question_html(evil)

    widget = E.explore(synthetic_run)
    controls = widget.controls
    assert "14</b> of 14" in controls["count"].value
    controls["iteration"].value = 2
    controls["oracle"].value = "disagrees"
    assert len(controls["listing"].options) == 2
    assert "What is" in controls["detail"].value


def test_explorer_module_imports_without_widgets():
    import subprocess
    import sys

    code = ("import sys; sys.modules['ipywidgets'] = None; import rzero_lib.report.explorer as e; "
            "print(e.filter_questions.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert extract_boxed("\\boxed{3}") == "3"


# --------------------------------------------------------------------------
# the notebook, through papermill, with real tiny models
# --------------------------------------------------------------------------


def test_analysis_notebook_runs_under_papermill(tmp_path, tiny_model_path):
    import papermill as pm

    from rzero_lib.pipeline.notebooks import stage_notebook

    run_dir = make_synthetic_run(tmp_path, models=tiny_model_path)
    out = tmp_path / "analysis.ipynb"
    pm.execute_notebook(stage_notebook(NOTEBOOK), str(out), parameters={"run_dir": str(run_dir), "iteration": None},
                        kernel_name="python3", cwd=str(tmp_path), progress_bar=False)
    report = run_dir / "report"
    summary = json.loads((report / "summary.json").read_text())
    for stem in FIGURES:
        for fmt in ("png", "pdf"):
            assert (report / f"{stem}.{fmt}").exists()
        assert _png_has_content(report / f"{stem}.png"), stem
    # real generations were made (and cached) for the base model and both Solvers
    cache = pd.read_parquet(report / "difficulty.parquet")
    assert cache["model_key"].nunique() == 3 and len(cache) == 3 * 8
    assert set(summary["difficulty"]) == {"base", "solver 1", "solver 2"}
    nb = json.loads(out.read_text())
    images = [o for c in nb["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == len(FIGURES)  # each once
    assert [o["metadata"]["image/png"]["alt"] for o in images] == list(FIGURES.values())
    assert_report_html(out, run_dir)


def assert_report_html(notebook: Path, run_dir: Path) -> None:
    """report.html of an executed 06_analysis: a title, figures with their titles as alt text, the label
    sample, and no code, parameters, explorer, script or home-directory path."""
    from rzero_lib.pipeline.report_html import report_html

    html = report_html(notebook, "R-Zero run report: synthetic")
    assert "<title>R-Zero run report: synthetic</title>" in html
    assert "<script" not in html
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//|url\(["']?(?:https?:)?//|@import""", html), \
        "the page loads something from elsewhere"
    alts = re.findall(r'<img [^>]*alt="([^"]*)"', html)
    assert [unescape(a) for a in alts] == list(FIGURES.values())
    assert not re.search(r'class="[^"]*(jp-InputArea-editor|hl-ipython3)', html), "code is shown"
    assert str(run_dir) not in html and str(Path.home()) not in html, "a machine's path is shown"
    assert "The label sample" in html and "What is 12 + 7?" in html
    assert "Interactive explorer" not in html and "explorer unavailable" not in html


def test_cluster_size_shares():
    shares = cluster_size_shares([60, 4, 2, 1, 1])
    assert shares == pytest.approx({"1": 2 / 68, "2": 2 / 68, "3–5": 4 / 68, "6–10": 0.0, "11–50": 0.0,
                                    ">50": 60 / 68})


def test_label_accuracy_figure_at_the_edges():
    """All-right and all-wrong iterations: the points sit at 100% and 0% and no error bar is negative."""
    table = pd.DataFrame([{"iteration": k, "sampled": n, "covered": n, "label_accuracy": c / n,
                           "ci_low": wilson_interval(c, n)[0], "ci_high": wilson_interval(c, n)[1]}
                          for k, (c, n) in enumerate(((16, 16), (0, 16), (7, 7)), start=1)])
    ax = plot_label_accuracy(table).axes[0]
    ours = next(c for c in ax.containers if "this run" in str(c.get_label()))
    line, _, (bars,) = ours.lines
    assert list(line.get_xdata()) == [1, 2, 3] and list(line.get_ydata()) == pytest.approx([100.0, 0.0, 100.0])
    for (_x, y), segment in zip(line.get_xydata(), bars.get_segments(), strict=True):
        (_, low), (_, high) = segment
        assert low <= y <= high and 0.0 <= low and high <= 100.0
    assert low < 100.0  # 7 of 7 right is still uncertain: the interval reaches below 100%
