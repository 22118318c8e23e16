"""`rzero compare` end to end on the tiny model: the smoke run is reused as the main arm (the supervised section is
added to it; its iterations are not re-run), GRPO with gold labels is launched under `accelerate launch` (CPU, one
process) from the last Solver and from the base model, and the comparison notebook writes its figure and tables.
The arms' parameters differ in one switch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml

from rzero_lib.config import ParamsError, load_params, params_to_dict
from rzero_lib.pipeline.compare import comparison_runs
from tests.pipeline.test_supervised_stage import GOOD, supervised_overrides, write_labelled
from tests.support import SMOKE, file_mtimes

CPU_ACCELERATE = {"compute_environment": "LOCAL_MACHINE", "distributed_type": "NO", "use_cpu": True,
                  "num_machines": 1, "num_processes": 1, "machine_rank": 0, "mixed_precision": "no", "debug": False}


def test_the_arms_differ_in_one_switch(tmp_path):
    params = load_params(SMOKE, supervised_overrides(write_labelled(tmp_path / "l.jsonl")))
    runs = comparison_runs(params, [0, 1], tmp_path)
    assert [r.main_dir.name for r in runs] == ["smoke", "smoke-seed1"]
    assert [r.control_dir.name for r in runs] == ["smoke-labelled_only", "smoke-labelled_only-seed1"]
    for r in runs:
        main, control = params_to_dict(r.main), params_to_dict(r.control)
        assert main["seed"] == control["seed"] == r.seed
        control["supervised_training"]["start_from"] = "last_solver"
        assert {**control, "run_name": main["run_name"]} == main
    arms = {a["arm"]: a for a in runs[1].arms()}
    assert arms["rzero_only"]["stage"] == "iter_01/evaluation" and arms["rzero_only"]["run_dir"].endswith("smoke-seed1")
    assert arms["labelled_only"]["run_dir"].endswith("smoke-labelled_only-seed1")
    assert arms["rzero_then_labelled"]["stage"] == "supervised/evaluation"
    with pytest.raises(ParamsError, match="supervised_training.enabled"):
        comparison_runs(load_params(SMOKE), None, tmp_path)


def test_compare_reuses_the_rzero_run_and_draws_the_three_arms(smoke_run, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(smoke_run["dir"], root / "smoke")
    before = file_mtimes(root / "smoke")
    config = tmp_path / "cpu.yaml"
    config.write_text(yaml.safe_dump(CPU_ACCELERATE))
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params_to_dict(load_params(SMOKE, supervised_overrides(
        write_labelled(tmp_path / "labelled.jsonl"), "supervised_training.launcher=accelerate",
        f"supervised_training.accelerate_config={config}", "supervised_training.num_processes=1")))))
    r = subprocess.run([sys.executable, "-m", "rzero_lib.pipeline.cli", "compare", str(params_file), "--runs-root",
                        str(root), "--no-progress"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

    main = root / "smoke"
    after = file_mtimes(main)
    for key in (k for k in before if k.startswith("iter_") and k.endswith(("manifest.json", "notebook.ipynb"))):
        assert after[key] == before[key], key  # the finished iterations were reused, not re-run
    training = json.loads((main / "supervised/training/manifest.json").read_text())["summary"]
    assert training["start_model"] == "iter_01/solver_training/model"  # recorded relative to the run
    assert training["method"] == "grpo" and training["launched"] and training["trained_on"] == len(GOOD)
    assert (main / "supervised/training/accelerate.log").exists()
    control = root / "smoke-labelled_only"
    assert not (control / "iter_01").exists()
    control_training = json.loads((control / "supervised/training/manifest.json").read_text())["summary"]
    assert control_training["start_model"] == "builtin:tiny-random"
    # From the base model the gold answers are sometimes matched, so GRPO moves the weights. (The smoke run's
    # Solver_1 writes no boxed answer at all, so its gold-label rewards are all 0 and GRPO has no gradient there.)
    assert control_training["parameter_change"] > 0 and training["optimizer_steps"] == 2

    from rzero_lib.engine.models import load_model

    base, _ = load_model("builtin:tiny-random")
    trained, _ = load_model(str(control / "supervised/training/model"))
    assert any(not torch.equal(a, b) for a, b in zip(base.parameters(), trained.parameters()))

    out = root / "smoke-comparison"
    assert (out / "supervised_comparison.png").stat().st_size > 5000 and (out / "supervised_comparison.pdf").exists()
    table = pd.read_csv(out / "supervised_comparison.csv")
    assert set(table["arm"]) == {"base", "rzero_only", "labelled_only", "rzero_then_labelled"}
    assert set(table["scope"]) == {"arithmetic"} and (table["ci_low"] <= table["accuracy"]).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["missing_arms"] == [] and len(summary["differences"]) == 2
    assert "R-Zero, then labels" in (out / "supervised_comparison.md").read_text()
    assert (out / "notebook.ipynb").exists()
