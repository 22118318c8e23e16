"""The run directory's guarantees without running a stage: the lock (real processes), fresh directories,
verified resume on a synthetic run with real files, portable paths and readable errors for broken files.
The same guarantees on a real smoke run, and with real drivers, are in test_run_directory_smoke.py and
test_driver_processes.py."""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rzero_lib.config import load_params, params_to_dict
from rzero_lib.pipeline.driver import choose_run_dir, open_run, plan, prepare_run_dir
from rzero_lib.pipeline.lock import LOCK_FILE, RunLock, RunLocked, current_holder
from rzero_lib.pipeline.resume import (
    DONE,
    FAILED,
    MODIFIED,
    OUTDATED,
    PARAMS_CHANGED,
    PENDING,
    UNREADABLE,
    ResumeError,
    check_run,
    stage_parameters,
    stage_params_hash,
)
from rzero_lib.pipeline.rundir import MANIFEST, RunDir, RunDirError, write_manifest
from rzero_lib.processes import process_start_time
from tests.support import REPO_ROOT, SMOKE

CLI = [sys.executable, "-m", "rzero_lib.pipeline.cli"]


# --------------------------------------------------------------------------
# the lock, with real processes
# --------------------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sys, time
    from rzero_lib.pipeline.lock import RunLock
    lock = RunLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    time.sleep(120)
""")


def _start_holder(run_dir: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdout=subprocess.PIPE, text=True,
                            cwd=REPO_ROOT)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_process_is_refused_naming_the_holder(tmp_path):
    run_dir = tmp_path / "run"
    holder = _start_holder(run_dir)
    try:
        with pytest.raises(RunLocked) as refused:
            RunLock(run_dir).acquire()
        message = str(refused.value)
        assert f"PID {holder.pid}" in message and platform.node() in message
        assert "--fresh" in message and str(run_dir / LOCK_FILE) in message
        assert current_holder(run_dir).pid == holder.pid
    finally:
        holder.kill()
        holder.wait()
    # Killed with SIGKILL: the operating system released its flock; its record is stale and taken over.
    assert current_holder(run_dir) is None
    with RunLock(run_dir) as lock:
        assert lock.replaced is not None and lock.replaced.pid == holder.pid
        assert json.loads((run_dir / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert not (run_dir / LOCK_FILE).exists(), "released: the lock file is removed"


def _record(run_dir: Path, **fields) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    data = {"pid": os.getpid(), "host": platform.node(), "start_time": process_start_time(os.getpid()),
            "started_at": "2026-01-01 00:00:00", "path": str(run_dir.resolve()), "command": "rzero run x", **fields}
    (run_dir / LOCK_FILE).write_text(json.dumps(data))


def test_stale_records_are_taken_over(tmp_path):
    # A pid that is not running.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _record(tmp_path / "a", pid=dead.pid, start_time=None)
    with RunLock(tmp_path / "a") as lock:
        assert lock.replaced.pid == dead.pid
    # A live pid whose start time differs: the pid was reused by another process.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _record(tmp_path / "b", pid=sleeper.pid, start_time=(process_start_time(sleeper.pid) or 0) + 12345)
        with RunLock(tmp_path / "b") as lock:
            assert lock.replaced.pid == sleeper.pid
    finally:
        sleeper.kill()
        sleeper.wait()
    # A record that came with a copied directory names another path.
    _record(tmp_path / "c", path="/elsewhere/run")
    with RunLock(tmp_path / "c"):
        pass
    # Another host with a fresh heartbeat is respected (its flock may not reach us); an old one is stale.
    _record(tmp_path / "d", host="other-node", pid=1)
    with pytest.raises(RunLocked, match="other-node"):
        RunLock(tmp_path / "d").acquire()
    os.utime(tmp_path / "d" / LOCK_FILE, (time.time() - 3600, time.time() - 3600))
    with RunLock(tmp_path / "d"):
        pass


def _fresh(args) -> str:
    root, barrier = args
    from rzero_lib.config import load_params as load

    barrier.wait()
    return str(choose_run_dir(load(SMOKE), root / "smoke", fresh=True))


def test_fresh_directories_never_collide(tmp_path):
    (tmp_path / "smoke").mkdir()
    n = 6
    with multiprocessing.get_context("fork").Manager() as manager:
        barrier = manager.Barrier(n)
        with multiprocessing.get_context("fork").Pool(n) as pool:
            dirs = pool.map(_fresh, [(tmp_path, barrier)] * n)  # all in the same second
    assert len(set(dirs)) == n and all(Path(d).is_dir() and Path(d).name.startswith("smoke-") for d in dirs)


def test_fresh_uses_the_given_directory_when_it_does_not_exist(tmp_path):
    assert choose_run_dir(load_params(SMOKE), tmp_path / "new", fresh=True) == tmp_path / "new"


# --------------------------------------------------------------------------
# verified resume on a synthetic run (real files, real manifests)
# --------------------------------------------------------------------------

def make_finished_run(root: Path, overrides=()) -> tuple[RunDir, object]:
    """Every stage of the smoke plan 'finished': an output file (a model folder for training) and a
    manifest with the stage's real parameter hash."""
    params = load_params(SMOKE, list(overrides))
    run = RunDir.at(root / "run")
    run.freeze_params(params)
    for stage in plan(params):
        folder = stage.folder(run)
        folder.mkdir(parents=True, exist_ok=True)
        if stage.stage.endswith("training"):
            (folder / "model").mkdir()
            (folder / "model" / "config.json").write_text(json.dumps({"stage": stage.key}))
            outputs = ["model"]
        else:
            (folder / "table.parquet").write_bytes(f"rows of {stage.key}".encode())
            outputs = ["table.parquet"]
        write_manifest(folder, stage=stage.stage, iteration=stage.iteration, inputs={}, outputs=outputs,
                       params_hash=stage_params_hash(params, stage.stage), started_at=time.time(),
                       extra={"model": str(folder / "model")} if stage.stage == "challenger_training" else None)
    return run, params


def _states(run, params):
    return {c.key: c.state for c in check_run(run, params, plan(params))}


def test_a_finished_run_verifies(tmp_path):
    run, params = make_finished_run(tmp_path)
    assert set(_states(run, params).values()) == {DONE}


def test_tampered_and_missing_outputs_are_named(tmp_path):
    run, params = make_finished_run(tmp_path)
    table = run.stage_dir(1, "question_generation") / "table.parquet"
    table.write_bytes(b"a valid-looking replacement")  # other size
    states = {c.key: c for c in check_run(run, params, plan(params))}
    assert states["iter_01/question_generation"].state == MODIFIED
    assert str(table) in states["iter_01/question_generation"].problem
    assert states["iter_01/voting"].state == OUTDATED  # downstream of it
    assert states["iter_00/evaluation"].state == DONE and states["iter_01/challenger_training"].state == DONE
    table.write_bytes(b"rows of iter_01/question_generatioX")  # same size, other content
    assert "same size" in {c.key: c for c in check_run(run, params, plan(params))}[
        "iter_01/question_generation"].problem

    import shutil

    shutil.rmtree(run.stage_dir(1, "solver_training") / "model")
    with pytest.raises(ResumeError) as err:
        open_run(params, run)
    message = str(err.value)
    assert "iter_01/question_generation" in message and "iter_01/solver_training" not in message  # outdated
    assert "--fresh" in message and str(run.stage_dir(1, "question_generation") / MANIFEST) in message


def test_a_missing_model_is_named(tmp_path):
    run, params = make_finished_run(tmp_path)
    import shutil

    shutil.rmtree(run.stage_dir(1, "solver_training") / "model")
    check = {c.key: c for c in check_run(run, params, plan(params))}["iter_01/solver_training"]
    assert check.state == MODIFIED and "model is missing" in check.problem


def test_changed_parameters_invalidate_only_the_stages_they_affect(tmp_path):
    run, params = make_finished_run(tmp_path)
    changed = load_params(SMOKE, ["voting.num_samples=6"])
    states = {c.key: c for c in check_run(run, changed, plan(changed))}
    assert states["iter_01/voting"].state == PARAMS_CHANGED
    assert "voting.num_samples: 4 -> 6" in states["iter_01/voting"].problem
    # the Challenger's reward has its own m (challenger_training.solver_samples)
    assert states["iter_01/challenger_training"].state == DONE
    assert states["iter_01/question_generation"].state == DONE
    before = run.params_file.read_text()
    with pytest.raises(ResumeError, match="voting.num_samples: 4 -> 6"):
        open_run(changed, run)
    assert run.params_file.read_text() == before and (run.stage_dir(1, "voting") / MANIFEST).exists()

    # The fix the message gives: remove that stage's manifest -> it and everything after it are redone.
    (run.stage_dir(1, "voting") / MANIFEST).unlink()
    checks = {c.key: c for c in open_run(changed, run)}
    assert checks["iter_01/voting"].state == PENDING
    for key in ("iter_01/solver_training", "iter_01/evaluation", "report"):
        assert checks[key].state == OUTDATED and not (run.path / key / MANIFEST).exists()
    for key in ("iter_00/evaluation", "iter_01/challenger_training", "iter_01/question_generation"):
        assert checks[key].state == DONE and (run.path / key / MANIFEST).exists()
    assert run.load_params().voting.num_samples == 6, "the parameters now in force are frozen"
    state = json.loads(run.state_file.read_text())
    assert set(state["stages"]) == {"iter_00/evaluation", "iter_01/challenger_training",
                                    "iter_01/question_generation"}


def test_voting_rules_reach_the_challenger_whose_reward_votes_by_them():
    base = load_params(SMOKE)
    changed = load_params(SMOKE, ["voting.merge_no_answers=true"])
    assert stage_params_hash(base, "challenger_training") != stage_params_hash(changed, "challenger_training")
    assert stage_params_hash(base, "question_generation") == stage_params_hash(changed, "question_generation")
    band = load_params(SMOKE, ["voting.band_delta=0.3"])
    assert stage_params_hash(base, "challenger_training") == stage_params_hash(band, "challenger_training")


def test_extending_and_execution_settings_invalidate_nothing(tmp_path):
    run, params = make_finished_run(tmp_path)
    longer = load_params(SMOKE, ["iterations=2", "kernel_name=other", "engine.gpu_memory_utilization=0.5",
                                 "challenger_training.solver_service=vllm_server", "run_name=renamed"])
    states = _states(run, longer)
    assert all(states[s.key] == DONE for s in plan(params) if s.stage != "analysis")
    assert states["report"] == OUTDATED, "the report covers every iteration: it is redone"
    assert states["iter_02/challenger_training"] == PENDING
    for stage in ("voting", "evaluation", "solver_training"):
        assert stage_params_hash(params, stage) == stage_params_hash(longer, stage)
    assert "iterations" not in stage_parameters(params, "voting")
    assert stage_parameters(params, "analysis")["iterations"] == 1


def test_manifests_of_older_versions_are_checked_by_their_fields(tmp_path):
    run, params = make_finished_run(tmp_path)
    for stage in plan(params):  # the old format: a hash of every parameter, no scope
        f = stage.folder(run) / MANIFEST
        m = json.loads(f.read_text())
        m.pop("params_scope")
        m["params_hash"] = "0123456789abcdef"
        f.write_text(json.dumps(m))
    assert set(_states(run, params).values()) == {DONE}
    changed = load_params(SMOKE, ["voting.num_samples=6"])
    assert _states(run, changed)["iter_01/voting"] == PARAMS_CHANGED


def test_broken_files_give_readable_errors(tmp_path):
    run, params = make_finished_run(tmp_path)
    manifest = run.stage_dir(1, "voting") / MANIFEST
    manifest.write_text('{"stage": "voting", "outputs": {')
    assert _states(run, params)["iter_01/voting"] == UNREADABLE
    with pytest.raises(RunDirError) as err:
        run.manifest_of(manifest.parent)
    assert str(manifest) in str(err.value) and "not valid JSON" in str(err.value)
    with pytest.raises(ResumeError, match="iter_01/voting: its manifest is not valid JSON"):
        open_run(params, run)

    manifest.unlink()
    run.state_file.write_text('{"stages": {"iter_01/voting": {"done": tr')  # state.json is rebuilt
    open_run(params, run)
    assert "iter_01/voting" not in json.loads(run.state_file.read_text())["stages"]

    run.params_file.write_text("run_name: [unclosed\n")
    with pytest.raises(RunDirError) as err:
        open_run(params, run)
    assert str(run.params_file) in str(err.value) and "--fresh" in str(err.value)


def test_cli_failures_are_one_paragraph_and_a_log(tmp_path):
    run, _ = make_finished_run(tmp_path)
    run.params_file.write_text("run_name: smoke\nmodel: [unclosed\n")
    out = subprocess.run([*CLI, "run", str(SMOKE), "--run-dir", str(run.path)], capture_output=True, text=True,
                         cwd=REPO_ROOT)
    assert out.returncode == 1 and "Traceback" not in out.stderr + out.stdout
    assert out.stderr.startswith("rzero: ") and str(run.params_file) in out.stderr
    log = Path(out.stderr.split("full log: ")[1].strip())
    assert log.parent == run.path / "logs" and "Traceback" in log.read_text()

    out = subprocess.run([*CLI, "status", str(tmp_path / "nothing")], capture_output=True, text=True, cwd=REPO_ROOT)
    assert out.returncode == 1 and "not a run directory" in out.stderr and "Traceback" not in out.stderr
    assert "full log: " in out.stderr


def test_failed_stage_states(tmp_path):
    run, params = make_finished_run(tmp_path)
    folder = run.stage_dir(1, "voting")
    (folder / MANIFEST).unlink()
    (folder / "notebook.ipynb").write_text("{}")
    assert _states(run, params)["iter_01/voting"] == PENDING  # e.g. its manifest was removed to redo it
    (folder / "notebook.ipynb").write_text(json.dumps({"metadata": {"papermill": {"exception": True}}}))
    assert _states(run, params)["iter_01/voting"] == FAILED


# --------------------------------------------------------------------------
# paths inside the run
# --------------------------------------------------------------------------

def test_paths_inside_the_run_are_recorded_relative_to_it(tmp_path):
    run, params = make_finished_run(tmp_path)
    recorded = run.manifest_of(run.stage_dir(1, "challenger_training"))["model"]
    assert recorded == str(run.stage_dir(1, "challenger_training") / "model"), "written by hand above"
    assert run.portable({"a": [str(run.path / "iter_01" / "x")], "b": "/elsewhere", "c": 3}) == \
        {"a": ["iter_01/x"], "b": "/elsewhere", "c": 3}
    assert run.resolve("iter_01/challenger_training/model") == str(run.path / "iter_01/challenger_training/model")
    assert run.resolve("Qwen/Qwen3-4B-Base") == "Qwen/Qwen3-4B-Base"
    assert run.resolve("builtin:tiny-random") == "builtin:tiny-random"


def test_relative_local_model_paths_are_resolved_where_the_command_runs(tmp_path, monkeypatch):
    model = tmp_path / "models" / "mymodel"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    params = load_params(SMOKE, ["model=models/mymodel", "verifier.model=./models/mymodel"])
    assert params.model == str(model) and params.verifier.model == str(model)
    assert params_to_dict(params)["model"] == str(model)
    from rzero_lib.config import ParamsError

    with pytest.raises(ParamsError, match="model folder './models/missing' does not exist"):
        load_params(SMOKE, ["model=./models/missing"])
    with pytest.raises(ParamsError, match="analysis.oracle"):
        load_params(SMOKE, ["analysis.oracle.kind=model", "analysis.oracle.model=models/a/b"])
    assert load_params(SMOKE, ["model=Qwen/Qwen3-4B-Base"]).model == "Qwen/Qwen3-4B-Base"  # a hub id


def test_prepare_run_dir_leaves_no_lock(tmp_path):
    run = prepare_run_dir(load_params(SMOKE), tmp_path / "r")
    assert run.exists() and not (run.path / LOCK_FILE).exists()
    assert json.loads(run.state_file.read_text())["stages"] == {}


def test_terminate_signal_becomes_an_interrupt():
    script = textwrap.dedent("""
        import os, signal, time
        from rzero_lib.processes import Terminated, terminate_as_interrupt
        try:
            with terminate_as_interrupt():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
        except Terminated as e:
            print("cleaned up after", e.args[0], flush=True)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, cwd=REPO_ROOT)
    assert out.stdout.strip() == "cleaned up after SIGTERM"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
