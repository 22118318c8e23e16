"""What a tree of processes uses: its peak memory (sampled from /proc) and its CPU time (the kernel's accounting).

- `TreeMemoryPeak(pid)`: a daemon thread samples, every `interval_s`, the memory
  of every descendant of `pid` (not `pid` itself) and keeps the peak of their
  sum. Memory is PSS (proportional set size: a page shared by k processes counts
  1/k in each) from `/proc/<pid>/smaps_rollup`, else RSS; summed RSS would count
  torch's libraries once per forked worker. Peaks shorter than the interval can
  be missed. Linux only; elsewhere the peak stays None.
- CPU time, two lower bounds of which the larger is recorded: the difference of
  `children_cpu_seconds()` (user + system of this process's reaped descendants,
  `getrusage(RUSAGE_CHILDREN)`: misses a process its parent never waited for,
  e.g. one orphaned to init), and the sum over every descendant seen by the
  sampler of its last sampled user + system time (misses the last interval of
  each process and processes shorter than one interval).

The driver measures each stage with both and records them in the manifest
(`resources`): docs/design.md, "The run directory".
"""

from __future__ import annotations

import resource
import threading
import time

from rzero_lib.processes import descendants, process_cpu_seconds, process_start_time

MIB = 1 << 20


def process_memory_bytes(pid: int) -> tuple[int, str] | None:
    """(bytes, "pss" or "rss") of one process; None when it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024, "pss"
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize(), "rss"
    except (OSError, ValueError, IndexError):
        return None


def summed_memory_bytes(pids: list[int]) -> tuple[int, str]:
    """The summed memory of processes `pids` and how it was measured ("pss", "rss" or "pss+rss")."""
    total, kinds = 0, set()
    for child in pids:
        measured = process_memory_bytes(child)
        if measured is not None:
            total += measured[0]
            kinds.add(measured[1])
    return total, "+".join(sorted(kinds)) or "none"


class TreeMemoryPeak:
    """The peak summed memory of a process's descendants, and their sampled CPU time, while this object runs
    (`with` or start/stop)."""

    def __init__(self, pid: int, interval_s: float = 1.0) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak_bytes: int | None = None
        self.measure = "none"
        self._cpu: dict[tuple[int, int | None], float] = {}  # (pid, start time) -> last sampled CPU seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rzero-memory-peak", daemon=True)

    def _sample(self) -> None:
        children = descendants(self.pid)
        total, measure = summed_memory_bytes(children)
        if self.peak_bytes is None or total > self.peak_bytes:
            self.peak_bytes, self.measure = total, measure
        for child in children:
            used = process_cpu_seconds(child)
            if used is not None:
                self._cpu[child, process_start_time(child)] = used

    @property
    def sampled_cpu_seconds(self) -> float:
        """The summed CPU time of every descendant seen, as last sampled."""
        return sum(self._cpu.values())

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval_s)

    def start(self) -> TreeMemoryPeak:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def __enter__(self) -> TreeMemoryPeak:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class StageUsage:
    """Wall time, CPU time of reaped descendants and peak tree memory between `start()` and `stop()`."""

    def __init__(self, pid: int, interval_s: float = 1.0) -> None:
        self._memory = TreeMemoryPeak(pid, interval_s)
        self._t0 = time.perf_counter()
        self._cpu0 = children_cpu_seconds()
        self.record: dict = {}

    def start(self) -> StageUsage:
        self._memory.start()
        return self

    def stop(self) -> dict:
        """Stop sampling; returns (and keeps in `record`) what the manifest's `resources` holds. Idempotent."""
        if self.record:
            return self.record
        self._memory.stop()
        peak = self._memory.peak_bytes
        self.record = {"wall_seconds": round(time.perf_counter() - self._t0, 2),
                       "cpu_seconds": round(max(children_cpu_seconds() - self._cpu0,
                                                self._memory.sampled_cpu_seconds), 2),
                       "peak_memory_mib": round(peak / MIB, 1) if peak is not None else None,
                       "memory_measure": self._memory.measure}
        return self.record
