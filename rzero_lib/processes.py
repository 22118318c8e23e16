"""Child processes tied to their parent's lifetime, and process-group stopping.

Every long-lived child this project starts (Solver servers, `accelerate launch`,
math-verify workers) must not outlive the process that started it, whatever
way that process ends — including SIGKILL, where no `finally` or `atexit`
runs. Two mechanisms, used together:

- `die_with_parent` (a `preexec_fn`): Linux's parent-death signal
  (`prctl(PR_SET_PDEATHSIG, SIGTERM)`), set in the child between fork and
  exec. The kernel sends it when the parent *thread* that forked the child
  exits, so start such children from a thread that lives as long as they
  should (the main thread here). No-op elsewhere than Linux.
- `watch_parent` (inside a child this project wrote): a daemon thread that
  ends the process when its parent changes (reparenting to init or a
  subreaper) — the portable fallback, a second line behind the signal.

`terminate_as_interrupt` turns SIGTERM and SIGHUP into `Terminated` (a
`KeyboardInterrupt`) in the main thread, so a driver stopped by `kill` cleans
up exactly as one stopped by Ctrl-C. Process groups are stopped by their id,
never by name (`stop_group`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

PARENT_PID_ENV = "RZERO_PARENT_PID"  # set for children, read by `watch_parent`
PR_SET_PDEATHSIG = 1


def _load_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()  # resolved before any fork: the preexec function must not import or load anything


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` that makes the child receive `sig` when its parent dies (Linux); None elsewhere.

    Also covers the parent dying between fork and the prctl call: the child
    then signals itself at once.
    """
    if _PRCTL is None:
        return None
    parent = os.getpid()
    prctl = _PRCTL

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return preexec


def tied_child_env(env: dict | None = None) -> dict:
    """`env` (default: this process's environment) plus the parent's pid for `watch_parent`."""
    out = dict(os.environ if env is None else env)
    out[PARENT_PID_ENV] = str(os.getpid())
    return out


def watch_parent(on_parent_death: Callable[[], None] | None = None, interval_s: float = 0.5) -> threading.Thread:
    """Start a daemon thread that ends this process when its parent is gone.

    The parent is `$RZERO_PARENT_PID` (set by `tied_child_env` in the process
    that started us; removed here so that our own children do not inherit it),
    else our parent at call time. `on_parent_death` runs first (it should be
    quick); then the process group, when this process leads one, gets SIGTERM
    and this process exits.
    """
    named = os.environ.pop(PARENT_PID_ENV, "")
    expected = int(named) if named.isdigit() else os.getppid()

    def run() -> None:
        while os.getppid() == expected:
            time.sleep(interval_s)
        try:
            if on_parent_death is not None:
                on_parent_death()
        finally:
            if os.getpgrp() == os.getpid():  # our workers go with us (this process too, at once or below)
                with contextlib.suppress(OSError):
                    os.killpg(os.getpid(), signal.SIGTERM)
            os._exit(1)

    thread = threading.Thread(target=run, name="rzero-parent-watch", daemon=True)
    thread.start()
    return thread


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived; handled like Ctrl-C (every `finally` runs, children are stopped)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def accept_interrupts() -> None:
    """Let Ctrl-C (SIGINT) and SIGTERM reach this process even if it was started with SIGINT ignored or either
    signal blocked: Python keeps an inherited SIG_IGN and signal mask (a shell's background job starts with
    SIGINT ignored), and a driver that cannot be interrupted runs on. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextlib.contextmanager
def terminate_as_interrupt(signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGHUP)) -> Iterator[None]:
    """Within the block, `signals` raise `Terminated` in the main thread (elsewhere: no change)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(signum)

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs (members that ended but are not reaped do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not os.path.isdir("/proc/self"):
        return True
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                return True
    return False


def wait_group_gone(pgid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not group_alive(pgid)


def stop_group(proc: subprocess.Popen, term_timeout_s: float = 30.0, kill_timeout_s: float = 10.0) -> int | None:
    """Stop the process group led by `proc` (started with `start_new_session=True`): SIGTERM, then SIGKILL.

    The group is signalled even when its leader is gone: workers it spawned may
    still hold memory or GPUs. Returns the leader's exit code.
    """
    for sig, wait_s in ((signal.SIGTERM, term_timeout_s), (signal.SIGKILL, kill_timeout_s)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
        if wait_group_gone(proc.pid, 5.0):
            break
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    return proc.returncode


def _stat_fields(pid: int) -> list[str]:
    """Fields 3.. of /proc/<pid>/stat (Linux); [] when unknown or gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
    except OSError:
        return []
    return stat[stat.rfind(")") + 2:].split()  # the command name (field 2) may hold spaces and parentheses


def descendants(pid: int) -> list[int]:
    """Every live descendant of process `pid` (children, their children, ...), from /proc (Linux; [] elsewhere).

    A process whose parent ended is re-parented (to init or a subreaper) and is no longer counted."""
    if not os.path.isdir("/proc/self"):
        return []
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if len(fields) > 1 and fields[0] not in ("Z", "X") and fields[1].isdigit():
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def process_start_time(pid: int) -> int | None:
    """The start time of process `pid` in clock ticks since boot (Linux), None when unknown or gone.

    With the pid it identifies a process across pid reuse.
    """
    try:
        return int(_stat_fields(pid)[19])  # field 22 of stat(5)
    except (IndexError, ValueError):
        return None


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds process `pid` has used so far (Linux), None when unknown or gone."""
    fields = _stat_fields(pid)
    try:
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # fields 14 and 15 of stat(5)
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int, start_time: int | None = None) -> bool:
    """Whether `pid` runs (and, when `start_time` is given and knowable, is the same process)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _stat_fields(pid)
    if fields and fields[0] in ("Z", "X"):
        return False  # ended, not yet reaped by its parent
    if start_time is not None:
        now = process_start_time(pid)
        if now is not None and now != start_time:
            return False
    return True
