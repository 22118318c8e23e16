"""The Verifier: verdict parsing, policies and the label-quality measurement on
hand-built tables; the stage on a copy of the smoke run; the driver's plan."""

import shutil

import pandas as pd
import pytest
import yaml

from rzero_lib.analysis import wilson_interval
from rzero_lib.config import load_params
from rzero_lib.pipeline import plan
from rzero_lib.verifier import (
    apply_policy,
    confidence_of,
    parse_verdict,
    supporting_response,
    verifier_label_metrics,
)

from .conftest import SMOKE


@pytest.mark.parametrize("text, verdict", [
    ("checked it. \\boxed{yes}", True), ("\\boxed{No}", False), ("\\boxed{\\text{yes}}", True),
    ("I think so", None), ("\\boxed{42}", None),
])
def test_parse_verdict(text, verdict):
    assert parse_verdict(text) is verdict


def test_confidence_and_policies():
    assert confidence_of([True, False, None, True]) == 0.5
    assert confidence_of([]) == 0.0
    keep = apply_policy(0.5, "threshold", 0.5)
    drop = apply_policy(0.25, "threshold", 0.5)
    assert (keep.kept, keep.weight, keep.reason) == (True, 1.0, None)
    assert (drop.kept, drop.weight, drop.reason) == (False, 0.0, "verifier_low_confidence")
    w = apply_policy(0.25, "weight")
    assert (w.kept, w.weight) == (True, 0.25)
    with pytest.raises(ValueError, match="policy"):
        apply_policy(0.5, "vote")
    with pytest.raises(ValueError, match="confidence"):
        apply_policy(1.5, "weight")


def test_supporting_response_ends_in_the_majority():
    responses = ["a \\boxed{3}", "b \\boxed{4}", "c \\boxed{4}"]
    assert supporting_response(responses, ["3", "4", "4"], "4") == "b \\boxed{4}"
    assert supporting_response(responses, ["3", None, None], "4") is None


def test_label_metrics_on_a_hand_built_table():
    # 10 band-passing labels: 6 right, 4 wrong. Confidence ranks 5 right ones and 1 wrong one on top.
    correct = [1, 1, 1, 1, 1, 0, 1, 0, 0, 0]
    conf = [1.0, 1.0, 0.75, 0.75, 0.75, 0.5, 0.25, 0.25, 0.0, 0.0]
    m = verifier_label_metrics(correct, conf, threshold=0.5)
    assert m["without_verifier"]["n"] == 10 and m["without_verifier"]["accuracy"] == 0.6
    assert m["with_verifier"]["n"] == 6 and m["with_verifier"]["accuracy"] == pytest.approx(5 / 6)
    assert m["wrong_labels_removed"] == 0.75  # 3 of 4 wrong labels are below the threshold
    assert m["right_labels_lost"] == pytest.approx(1 / 6)
    assert m["weighted_accuracy"] == pytest.approx((1 + 1 + 0.75 * 3 + 0.25) / (2 + 2.25 + 0.5 + 0.5))
    lo, hi = m["with_verifier"]["ci_low"], m["with_verifier"]["ci_high"]
    assert (lo, hi) == pytest.approx(wilson_interval(5, 6))
    assert lo < 5 / 6 < hi
    # The vote's own confidence at the same size: the 6 highest p̂ (items 5, 8, 9, 7, 3, 4) hold 2 right labels.
    p_hat = [0.3, 0.3, 0.3, 0.4, 0.4, 0.7, 0.4, 0.6, 0.7, 0.7]
    by_vote = verifier_label_metrics(correct, conf, threshold=0.5, p_hat=p_hat)["top_p_hat"]
    assert by_vote["n"] == 6 and by_vote["accuracy"] == pytest.approx(2 / 6)


def test_driver_plans_the_stage_only_when_enabled():
    off = [s.stage for s in plan(load_params(SMOKE))]
    on = [s.stage for s in plan(load_params(SMOKE, ["verifier.enabled=true"]))]
    assert "verification" not in off
    assert on.index("voting") < on.index("verification") < on.index("solver_training")


def test_verification_stage_feeds_solver_training(smoke_run, tmp_path):
    """Run the real 03b notebook on a copy of the smoke run with the verifier on."""
    from rzero_lib.pipeline import StageRun, run_stage
    from rzero_lib.rundir import RunDir
    from rzero_lib.stages import StageContext, solver_training_set

    run_dir = tmp_path / "smoke_verified"
    shutil.copytree(smoke_run["dir"], run_dir)
    shutil.rmtree(run_dir / "iter_01" / "solver_training")
    params = yaml.safe_load((run_dir / "params.yaml").read_text())
    params["verifier"].update(enabled=True, policy="weight", samples=2, max_new_tokens=8)
    (run_dir / "params.yaml").write_text(yaml.safe_dump(params))
    run = RunDir.at(run_dir)
    run_stage(run, StageRun(1, "verification"), "python3", progress=False)
    verdicts = pd.read_parquet(run_dir / "iter_01/verification/verdicts.parquet")
    votes = pd.read_parquet(run_dir / "iter_01/voting/votes.parquet")
    assert len(verdicts) == int(votes["kept"].sum())
    assert verdicts["confidence"].between(0, 1).all() and (verdicts["weight"] == verdicts["confidence"]).all()
    train, source = solver_training_set(StageContext.open(run_dir, 1, "solver_training"))
    assert source.parent.name == "verification" and list(train["weight"]) == list(verdicts["weight"])


def test_verifier_table_against_an_oracle():
    from rzero_lib.analysis import verifier_table

    verdicts = pd.DataFrame({
        "iteration": [1, 1, 1, 1, 2, 2],
        "question": ["What is 1+1?", "What is 2+2?", "What is 3+3?", "Prove it", "What is 5+5?", "What is 6+6?"],
        "majority_answer": ["2", "5", "6", "1", "10", "13"],
        "confidence": [1.0, 0.0, 0.75, 1.0, 0.5, 0.5],
        "p_hat": [0.5, 0.7, 0.4, 0.6, 0.5, 0.5],
    })
    oracle = ["2", "4", "6", None, "10", "12"]  # the fourth question has no oracle answer
    table = verifier_table(verdicts, oracle, threshold=0.5).set_index("iteration")
    one, two = table.loc[1], table.loc[2]
    assert (one.band_questions, one.covered, one.without_n, one.with_n) == (4, 3, 3, 2)
    assert one.without_accuracy == pytest.approx(2 / 3) and one.with_accuracy == 1.0
    assert one.wrong_labels_removed == 1.0 and one.right_labels_lost == 0.0
    assert (two.with_n, two.with_accuracy, two.without_accuracy) == (2, 0.5, 0.5)
    # The vote's own choice at the same size: iteration 1's two highest p̂ (0.7 wrong, 0.5 right).
    assert (one.top_p_hat_accuracy, two.top_p_hat_accuracy) == (0.5, 0.5)


def test_verifier_kinds_choose_the_model():
    from types import SimpleNamespace

    from rzero_lib.stages import StageError, verifier_model

    class Run:
        def solver_model(self, k):
            return f"solver-of-iteration-{k}"

    def ctx(*overrides):
        return SimpleNamespace(params=load_params(SMOKE, ["verifier.enabled=true", *overrides]), run=Run(),
                               iteration=2)

    assert verifier_model(ctx()) == "solver-of-iteration-1"  # self: the Solver that voted
    assert verifier_model(ctx("verifier.kind=model", "verifier.model=builtin:tiny-random")) == "builtin:tiny-random"
    with pytest.raises(StageError, match="verifier.model"):
        verifier_model(ctx("verifier.kind=model"))
