"""What a preset resolved is what `rzero validate --print` shows, what a run freezes, and what resume compares."""

from __future__ import annotations

import time

import pytest
import yaml

from rzero_lib.config import load_params
from rzero_lib.pipeline.cli import main as rzero_main
from rzero_lib.pipeline.driver import PipelineError, prepare_run_dir
from rzero_lib.pipeline.resume import stage_params_hash
from rzero_lib.pipeline.rundir import write_manifest
from tests.support import PARAMS, SMOKE

PAPER = PARAMS / "paper_qwen3_4b.yaml"


def test_validate_print_shows_the_resolved_parameters(capsys):
    assert rzero_main(["validate", str(PAPER), "--set", "preset=authors_code", "--print"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["preset"] == "authors_code" and printed["voting"]["num_samples"] == 9
    assert printed["solver_training"]["mini_batch_size"] == 128 and printed["iterations"] == 5
    assert printed["challenger_training"]["solver_samples"] == 10
    assert rzero_main(["validate", str(PAPER)]) == 0
    assert capsys.readouterr().out == ""  # without --print only the verdict, on stderr
    assert rzero_main(["validate", str(PAPER), "--set", "preset=nope"]) == 2
    assert "authors_code" in capsys.readouterr().err


def test_a_run_freezes_the_resolved_parameters_and_resume_compares_them(tmp_path):
    overrides = ["preset=authors_code", "solver_training.mini_batch_size=4", "challenger_training.mini_batch_size=4",
                 "challenger_training.micro_batch_size=2", "voting.band_low=0.0", "voting.band_high=1.0"]
    params = load_params(SMOKE, overrides)
    run = prepare_run_dir(params, tmp_path / "run")
    frozen = yaml.safe_load(run.params_file.read_text())
    assert frozen["preset"] == "authors_code" and frozen["voting"]["no_answer_vote"] == "none_string"
    assert frozen["challenger_training"]["epsilon_high"] == 0.3  # the preset's values, written out
    prepare_run_dir(load_params(SMOKE, overrides), tmp_path / "run")  # the same resolution resumes
    # A finished Challenger stage voted its reward by the authors' rules: the paper preset's differ, so resume
    # refuses, naming the stage and the field (a stage's hash covers what affects it: docs/design.md).
    folder = run.stage_dir(1, "challenger_training")
    folder.mkdir(parents=True)
    write_manifest(folder, stage="challenger_training", iteration=1, inputs={}, outputs=[],
                   params_hash=stage_params_hash(params, "challenger_training"), started_at=time.time())
    with pytest.raises(PipelineError, match="iter_01/challenger_training: .*voting.no_answer_vote: 'none_string' "
                                            "-> 'exclude'"):
        prepare_run_dir(load_params(SMOKE, overrides[1:]), tmp_path / "run")  # the paper preset differs
    # Without finished stages nothing depends on the parameters: the new resolution is frozen.
    fresh = prepare_run_dir(params, tmp_path / "other")
    prepare_run_dir(load_params(SMOKE, overrides[1:]), fresh.path)
    assert yaml.safe_load(fresh.params_file.read_text())["preset"] == "paper"
