"""Children tied to their parent (real processes): the parent-death signal, the parent watch and the
math-verify workers. The Solver server's case is in tests/engine/test_solver_service.py."""

from __future__ import annotations

import signal
import time

import pytest

from rzero_lib.processes import pid_alive, process_start_time
from tests.support import run_parent


def _gone(pid: int, start: int | None, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid, start):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_child_with_the_parent_death_signal_goes_with_its_parent(sig):
    parent, (child,) = run_parent("""
        import subprocess, sys, time
        from rzero_lib.processes import die_with_parent
        c = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], preexec_fn=die_with_parent(),
                             start_new_session=True)
        print(c.pid, flush=True)
        time.sleep(600)
    """)
    child = int(child)
    start = process_start_time(child)
    assert pid_alive(child, start)
    parent.send_signal(sig)
    parent.wait()
    assert _gone(child, start)


def test_a_watching_child_ends_when_its_parent_is_killed():
    parent, (child,) = run_parent("""
        import subprocess, sys, time
        from rzero_lib.processes import tied_child_env
        code = "from rzero_lib.processes import watch_parent; import time; watch_parent(); time.sleep(600)"
        c = subprocess.Popen([sys.executable, "-c", code], env=tied_child_env(), start_new_session=True)
        print(c.pid, flush=True)
        time.sleep(600)
    """)
    child = int(child)
    start = process_start_time(child)
    time.sleep(1.0)  # the child is watching
    parent.kill()
    parent.wait()
    assert _gone(child, start)


def test_math_verify_workers_end_with_their_parent():
    parent, pids = run_parent("""
        import time
        from rzero_lib.answers import default_checker
        checker = default_checker()
        checker.equivalent("x+1", "1+x")  # starts workers
        print(*[w.proc.pid for w in checker._workers], flush=True)
        time.sleep(600)
    """)
    workers = {int(p): process_start_time(int(p)) for p in pids}
    assert workers and all(pid_alive(p, s) for p, s in workers.items())
    parent.kill()
    parent.wait()
    assert all(_gone(p, s) for p, s in workers.items())
