"""The Verifier's stage: planned only when enabled, the real 03b notebook on a copy of the smoke run, and the
choice of its model."""

import shutil
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from rzero_lib.config import load_params
from rzero_lib.pipeline.context import StageContext, StageError
from rzero_lib.pipeline.driver import StageRun, plan, run_stage
from rzero_lib.pipeline.rundir import RunDir
from rzero_lib.pipeline.stages.solver_training import solver_training_set
from rzero_lib.pipeline.stages.verification import verifier_model
from tests.support import SMOKE


def test_driver_plans_the_stage_only_when_enabled():
    off = [s.stage for s in plan(load_params(SMOKE))]
    on = [s.stage for s in plan(load_params(SMOKE, ["verifier.enabled=true"]))]
    assert "verification" not in off
    assert on.index("voting") < on.index("verification") < on.index("solver_training")


@pytest.mark.slow
def test_verification_stage_feeds_solver_training(smoke_run, tmp_path):
    """Run the real 03b notebook on a copy of the smoke run with the verifier on."""

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


def test_verifier_kinds_choose_the_model():
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
