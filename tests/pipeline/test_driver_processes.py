"""Real `rzero run` drivers: two racing on one run directory, and drivers stopped by SIGINT, SIGTERM and
SIGKILL while the Challenger stage has a real Solver server (the transformers-backed one) listening.
Nothing the driver started may survive it: not the kernel, not the server, not a math-verify worker, and
no listener on the server's port. Then the killed run resumes."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from rzero_lib.pipeline.driver import KERNEL_DIR_PREFIX
from rzero_lib.pipeline.lock import LOCK_FILE
from rzero_lib.pipeline.rundir import MANIFEST
from rzero_lib.processes import pid_alive, process_start_time
from tests.support import REPO_ROOT, SMOKE

pytestmark = pytest.mark.slow

# The shortest path to a running Solver server: no base evaluation, the server for the Challenger's reward.
SERVER_ARGS = ["--set", "evaluation.enabled=false", "--set", "challenger_training.solver_service=vllm_server"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "TOKENIZERS_PARALLELISM": "false",
       "HF_HUB_OFFLINE": "1"}


def start_driver(run_dir: Path, *args: str, env: dict | None = None, log_name: str = "driver",
                 preexec_fn=None) -> subprocess.Popen:
    out = open(run_dir.parent / f"{log_name}.out", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-m", "rzero_lib.pipeline.cli", "run", str(SMOKE), "--run-dir",
                             str(run_dir), "--no-progress", *args], stdout=out, stderr=subprocess.STDOUT,
                            cwd=REPO_ROOT, env=env or ENV, start_new_session=True, preexec_fn=preexec_fn)


def output_of(run_dir: Path, log_name: str = "driver") -> str:
    return (run_dir.parent / f"{log_name}.out").read_text()


def wait_for(condition, timeout_s: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the driver exited ({proc.returncode}) before {what}")
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


def descendants(pid: int) -> dict[int, int | None]:
    """Every process below `pid` (by parent pid, whatever its session), with its start time."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = process_start_time(child)
            todo.append(child)
    return found


def server_port(run_dir: Path) -> int | None:
    log = run_dir / "iter_01" / "challenger_training" / "solver_server.log"
    m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read_text()) if log.exists() else None
    return int(m.group(1)) if m else None


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def kernel_dirs(pid: int) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"{KERNEL_DIR_PREFIX}{pid}-*"))


def run_until_server(run_dir: Path) -> tuple[subprocess.Popen, int, dict]:
    driver = start_driver(run_dir, *SERVER_ARGS)
    port = wait_for(lambda: server_port(run_dir), 400, "the Solver server to listen", driver)
    wait_for(lambda: listening(port), 60, "the Solver server's port", driver)
    time.sleep(2)  # let the stage get going (the server loads its model, the reward starts)
    procs = descendants(driver.pid)
    assert len(procs) >= 2, f"expected a kernel and a server below the driver, found {procs}"
    return driver, port, procs


def assert_nothing_left(procs: dict, port: int, timeout_s: float = 20.0) -> None:
    wait_for(lambda: not any(pid_alive(p, t) for p, t in procs.items()), timeout_s,
             "every process the driver started to end")
    wait_for(lambda: not listening(port), 10, "the server's port to close")


def _ignore_and_block_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def test_ctrl_c_stops_a_driver_started_with_sigint_ignored_and_blocked(tmp_path):
    """A shell's background job starts with SIGINT ignored; Python keeps that, and the driver would run on."""
    run_dir = tmp_path / "run"
    driver = start_driver(run_dir, "--set", "evaluation.enabled=false", preexec_fn=_ignore_and_block_sigint)
    try:
        wait_for(lambda: list(run_dir.glob("iter_*/*/notebook.running.ipynb")), 120, "a stage", driver)
        driver.send_signal(signal.SIGINT)
        assert driver.wait(timeout=60) == 130
        assert "interrupted" in output_of(run_dir)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)


def test_two_drivers_racing_on_one_run_directory(tmp_path):
    run_dir = tmp_path / "run"
    a = start_driver(run_dir, "--set", "evaluation.enabled=false", log_name="a")
    b = start_driver(run_dir, "--set", "evaluation.enabled=false", log_name="b")
    try:
        loser = wait_for(lambda: next((p for p in (a, b) if p.poll() is not None), None), 120,
                         "one driver to be refused")
        winner, loser_log = (b, "a") if loser is a else (a, "b")
        assert loser.returncode == 1
        message = output_of(run_dir, loser_log)
        assert f"in use by another rzero process (PID {winner.pid} on host" in message
        assert "Traceback" not in message and "full log: " in message
        # The winner runs on; Ctrl-C stops it within seconds, with its kernel.
        wait_for(lambda: list(run_dir.glob("iter_00/evaluation/notebook.running.ipynb")) and
                 descendants(winner.pid), 120, "the winner's first stage", winner)
        procs = descendants(winner.pid)
        t0 = time.monotonic()
        winner.send_signal(signal.SIGINT)
        assert winner.wait(timeout=30) == 130
        assert time.monotonic() - t0 < 15
        assert "interrupted" in output_of(run_dir, "a" if winner is a else "b")
        wait_for(lambda: not any(pid_alive(p, t) for p, t in procs.items()), 15, "the kernel to end")
        assert not (run_dir / LOCK_FILE).exists() and not kernel_dirs(winner.pid)
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()


def test_sigterm_stops_the_driver_and_everything_it_started(tmp_path):
    run_dir = tmp_path / "run"
    driver, port, procs = run_until_server(run_dir)
    try:
        driver.send_signal(signal.SIGTERM)
        assert driver.wait(timeout=60) == 143
        out = output_of(run_dir)
        assert "stopped by SIGTERM" in out and "Traceback" not in out
        assert_nothing_left(procs, port)
        assert not (run_dir / LOCK_FILE).exists()
        assert not kernel_dirs(driver.pid), "the kernel's connection file and sockets are removed"
        assert not (run_dir / "iter_01" / "challenger_training" / MANIFEST).exists()
    finally:
        if driver.poll() is None:
            driver.kill()


def test_sigkill_leaves_no_orphan_and_the_run_resumes(tmp_path):
    run_dir = tmp_path / "run"
    driver, port, procs = run_until_server(run_dir)
    try:
        driver.kill()
        driver.wait(timeout=30)
        assert_nothing_left(procs, port)  # the kernel sees its parent gone; the server its kernel
        assert kernel_dirs(driver.pid), "nobody could clean up after SIGKILL (removed on the next start)"
    finally:
        if driver.poll() is None:
            driver.kill()
    # kill -9, then the same command resumes: the stale lock and kernel folder are cleaned up and the
    # interrupted stage is redone (stopped on purpose at the next stage to keep the test short).
    resumed = start_driver(run_dir, *SERVER_ARGS, env={**ENV, "RZERO_FAIL_STAGE": "iter_01/question_generation"},
                           log_name="resumed")
    assert resumed.wait(timeout=600) == 1
    out = output_of(run_dir, "resumed")
    assert "took over the lock of a process that ended" in out
    assert "iter_00/evaluation: done, skipped" in out and "iter_01/challenger_training: finished" in out
    assert "failing stage iter_01/question_generation on purpose" in out and "Traceback" not in out
    assert (run_dir / "iter_01" / "challenger_training" / MANIFEST).exists()
    assert not kernel_dirs(driver.pid)
