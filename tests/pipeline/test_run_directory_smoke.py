"""The run directory's guarantees on copies of the finished smoke run, through the real `rzero` command:
tampered and missing outputs, a copied run resumed and extended after its original is deleted, a moved run,
an oracle endpoint that echoes the API key, and a disk that fills up while the report is written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from rzero_lib.config import load_params
from rzero_lib.pipeline.driver import open_run
from rzero_lib.pipeline.resume import DONE, OUTDATED, PENDING
from rzero_lib.pipeline.rundir import MANIFEST, PENDING_MANIFEST, RunDir
from tests.support import REPO_ROOT, SMOKE, EchoHeadersEndpoint, file_mtimes

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}


def rzero(*args: str, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rzero_lib.pipeline.cli", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=env or ENV, timeout=timeout)


def copy_run(smoke_run, target: Path) -> Path:
    shutil.copytree(smoke_run["dir"], target)
    return target


def test_tampered_and_missing_outputs_fail_before_anything_runs(smoke_run, tmp_path):
    run_dir = copy_run(smoke_run, tmp_path / "tampered")
    questions = run_dir / "iter_01" / "question_generation" / "questions.parquet"
    original = pd.read_parquet(questions)
    original.head(3).to_parquet(questions, index=False)  # a valid 3-row table in its place
    shutil.rmtree(run_dir / "iter_01" / "solver_training" / "model")

    status = rzero("status", str(run_dir))
    assert status.returncode == 0
    rows = {line.split()[0]: line for line in status.stdout.splitlines()[2:]}
    assert "modified" in rows["iter_01/question_generation"] and "questions.parquet" in rows[
        "iter_01/question_generation"]
    assert "outdated" in rows["iter_01/voting"] and "done" in rows["iter_01/challenger_training"]

    before = file_mtimes(run_dir)
    out = rzero("run", str(SMOKE), "--run-dir", str(run_dir))
    assert out.returncode == 1 and "Traceback" not in out.stderr + out.stdout
    assert "iter_01/question_generation" in out.stderr and str(questions) in out.stderr
    assert "--fresh" in out.stderr and str(questions.parent / MANIFEST) in out.stderr
    after = file_mtimes(run_dir)
    assert {k: v for k, v in after.items() if not k.startswith("logs/")} == before, "nothing ran or changed"

    # The fix the message gives: remove the manifest; that stage and everything after it are redone.
    (questions.parent / MANIFEST).unlink()
    run = RunDir.at(run_dir)
    checks = {c.key: c.state for c in open_run(load_params(SMOKE), run)}
    assert checks["iter_01/question_generation"] == PENDING and checks["iter_01/challenger_training"] == DONE
    assert all(checks[k] == OUTDATED for k in ("iter_01/voting", "iter_01/solver_training", "iter_01/evaluation",
                                               "report"))
    assert not (run_dir / "iter_01" / "voting" / MANIFEST).exists()


def test_a_copied_run_resumes_and_extends_with_its_own_models(smoke_run, tmp_path):
    original = copy_run(smoke_run, tmp_path / "original")
    run_dir = tmp_path / "copy"
    shutil.copytree(original, run_dir)
    shutil.rmtree(original)  # anything that still pointed at the original would now fail

    out = rzero("run", str(SMOKE), "--run-dir", str(run_dir))
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("done, skipped") == 7
    run = RunDir.at(run_dir)
    assert run.challenger_model(1) == str(run_dir / "iter_01" / "challenger_training" / "model")

    # Extend by one iteration (stopped on purpose at iteration 2's voting to keep the test short).
    out = rzero("run", str(SMOKE), "--run-dir", str(run_dir), "--iterations", "2",
                env={**ENV, "RZERO_FAIL_STAGE": "iter_02/voting"})
    assert out.returncode == 1 and "iter_02/voting" in out.stderr and "on purpose" in out.stderr
    assert "iter_01/solver_training: done, skipped" in out.stdout
    manifest = run.manifest_of(run.stage_dir(2, "challenger_training"))
    assert manifest["inputs"] == {"start_model": "iter_01/challenger_training/model",
                                  "frozen_solver": "iter_01/solver_training/model"}
    assert manifest["model"] == "iter_02/challenger_training/model"
    questions = run.manifest_of(run.stage_dir(2, "question_generation"))
    assert questions["inputs"]["challenger_model"] == "iter_02/challenger_training/model"
    assert not any(str(original) in p.read_text(errors="ignore") for p in run_dir.rglob("*.json"))


def test_a_moved_run_resumes(smoke_run, tmp_path):
    first = copy_run(smoke_run, tmp_path / "here")
    moved = tmp_path / "elsewhere" / "there"
    moved.parent.mkdir()
    os.rename(first, moved)
    status = rzero("status", str(moved))
    assert status.returncode == 0 and status.stdout.count(" done ") == 7
    out = rzero("run", str(SMOKE), "--run-dir", str(moved))
    assert out.returncode == 0 and out.stdout.count("done, skipped") == 7
    assert RunDir.at(moved).challenger_model(1) == str(moved / "iter_01" / "challenger_training" / "model")


def test_the_failed_stage_left_a_whole_notebook_and_no_pending_manifest(smoke_run):
    run_dir = smoke_run["dir"]
    assert not list(run_dir.rglob(PENDING_MANIFEST)) and not list(run_dir.rglob("notebook.running.ipynb"))
    for nb in run_dir.rglob("notebook.ipynb"):
        json.loads(nb.read_text())
    manifest = json.loads((run_dir / "report" / MANIFEST).read_text())
    assert "report.html" in manifest["outputs"], "the HTML is part of the report and written before the manifest"


def test_an_endpoint_echoing_the_key_leaves_it_nowhere(smoke_run, tmp_path):
    endpoint = EchoHeadersEndpoint()
    run_dir = copy_run(smoke_run, tmp_path / "oracle")
    params = yaml.safe_load((run_dir / "params.yaml").read_text())
    params["analysis"]["oracle"] = {**params["analysis"]["oracle"], "kind": "openai", "model": "judge",
                                    "base_url": endpoint.url,
                                    "api_key_env": "RZERO_TEST_ORACLE_KEY"}
    (run_dir / "params.yaml").write_text(yaml.safe_dump(params))
    key = "sk-live-" + "Zq9" * 12
    try:
        out = rzero("analyze", str(run_dir), env={**ENV, "RZERO_TEST_ORACLE_KEY": key})
    finally:
        endpoint.close()
    assert out.returncode == 1 and "401" in out.stderr and "[REDACTED]" in out.stderr
    terminal = out.stdout + out.stderr
    assert key not in terminal and "Zq9Zq9" not in terminal
    leaked = [p for p in run_dir.rglob("*") if p.is_file() and b"Zq9Zq9" in p.read_bytes()]
    log = Path(out.stderr.split("full log: ")[1].strip())
    assert not leaked and "Zq9Zq9" not in log.read_text()
    assert "[REDACTED]" in (run_dir / "report" / "notebook.ipynb").read_text()


# --------------------------------------------------------------------------
# a disk that fills up while the report is written (a size-limited tmpfs)
# --------------------------------------------------------------------------

def _mount_tmpfs(folder: Path, size: str) -> str | None:
    """Mount a tmpfs of `size` at `folder`; the reason when this machine does not allow it."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return "mounting a filesystem needs root and mount(8)"
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True,
                         text=True)
    return None if out.returncode == 0 else f"mount -t tmpfs failed: {out.stderr.strip()}"


def _assert_report_consistent(report: Path) -> None:
    """Whatever point the disk filled at: the report is done only when it is whole."""
    if (report / "notebook.ipynb").exists():
        json.loads((report / "notebook.ipynb").read_text())  # never a truncated notebook under the final name
    if (report / MANIFEST).exists():
        manifest = json.loads((report / MANIFEST).read_text())
        assert all((report / name).exists() for name in manifest["outputs"])
        assert (report / "report.html").exists() and (report / "notebook.ipynb").exists()


def test_a_full_disk_never_leaves_a_report_that_looks_done(smoke_run, tmp_path):
    run_dir = copy_run(smoke_run, tmp_path / "full")
    report = run_dir / "report"
    shutil.rmtree(report)
    report.mkdir()
    reason = _mount_tmpfs(report, "1400k")
    if reason:
        pytest.skip(reason)
    try:
        for size in ("1400k", "200k"):  # full while exporting the HTML; full inside the kernel
            for f in report.iterdir():
                f.unlink()
            subprocess.run(["mount", "-o", f"remount,size={size}", str(report)], check=True)  # (a tmpfs cannot
            # shrink below what it holds: emptied first)
            out = rzero("run", str(SMOKE), "--run-dir", str(run_dir))
            assert out.returncode == 1, out.stdout[-2000:]
            assert "Traceback" not in out.stderr and "full log: " in out.stderr
            assert "disk is full" in out.stderr or "No space left" in out.stderr, out.stderr
            assert not (report / MANIFEST).exists(), f"size {size}: the report must not look done"
            _assert_report_consistent(report)
            status = rzero("status", str(run_dir))
            assert " done " not in status.stdout.splitlines()[-1], status.stdout
        subprocess.run(["mount", "-o", "remount,size=64m", str(report)], check=True)
        out = rzero("run", str(SMOKE), "--run-dir", str(run_dir))
        assert out.returncode == 0, out.stderr
        _assert_report_consistent(report)
        assert (report / MANIFEST).exists() and (report / "report.html").stat().st_size > 10_000
    finally:
        subprocess.run(["umount", str(report)], capture_output=True)
