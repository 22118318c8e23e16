"""The driver's per-stage measurements: peak memory of a process tree (grandchildren included) and the CPU time
of reaped children, on real processes."""

import os
import subprocess
import sys

from rzero_lib.processes import descendants
from rzero_lib.resource_usage import MIB, StageUsage, TreeMemoryPeak

# A child that starts a grandchild, which writes 200 MiB and holds them for two seconds.
GRANDCHILD = "import time; block = b'x' * (200 << 20); time.sleep(2)"
CHILD = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {GRANDCHILD!r}])"


def test_tree_memory_peak_counts_grandchildren():
    with TreeMemoryPeak(os.getpid(), interval_s=0.1) as peak:
        proc = subprocess.Popen([sys.executable, "-c", CHILD])
        proc.wait(timeout=60)
    assert peak.peak_bytes >= 200 * MIB, peak.peak_bytes / MIB
    assert peak.measure in ("pss", "rss", "pss+rss")


def test_descendants_follow_the_tree():
    proc = subprocess.Popen([sys.executable, "-c", CHILD])
    try:
        for _ in range(100):
            found = descendants(os.getpid())
            if len([p for p in found if p != proc.pid]) >= 1:
                break
            __import__("time").sleep(0.05)
        assert proc.pid in found and len(found) >= 2  # the child and its grandchild
    finally:
        proc.wait(timeout=60)


def test_stage_usage_counts_the_cpu_time_of_reaped_children():
    usage = StageUsage(os.getpid(), interval_s=0.1).start()
    subprocess.run([sys.executable, "-c", "x = 0\nfor i in range(2 * 10**7): x += i"], check=True, timeout=120)
    record = usage.stop()
    assert record["cpu_seconds"] >= 0.3 and record["wall_seconds"] >= record["cpu_seconds"] * 0.5
    assert record["peak_memory_mib"] > 0 and usage.stop() is record  # stopping twice changes nothing


# A child that starts a CPU-bound grandchild and exits without waiting for it: the grandchild is never reaped by
# this process tree, so getrusage(RUSAGE_CHILDREN) misses its CPU time (vLLM's engine processes can end so).
BURNER = "import pathlib, sys\nx = 0\nfor i in range(3 * 10**7): x += i\npathlib.Path(sys.argv[1]).write_text('done')"
ABANDONING_CHILD = ("import os, subprocess, sys, time\n"
                    f"subprocess.Popen([sys.executable, '-c', {BURNER!r}, sys.argv[1]])\n"
                    "while not os.path.exists(sys.argv[1]): time.sleep(0.05)\n"
                    "time.sleep(0.3)\nos._exit(0)  # no wait: the grandchild is left to init")


def test_stage_usage_counts_processes_nobody_waited_for(tmp_path):
    from rzero_lib.resource_usage import children_cpu_seconds

    reaped0 = children_cpu_seconds()
    usage = StageUsage(os.getpid(), interval_s=0.1).start()
    subprocess.run([sys.executable, "-c", ABANDONING_CHILD, str(tmp_path / "done")], check=True, timeout=300)
    record = usage.stop()
    burned = record["cpu_seconds"] - (children_cpu_seconds() - reaped0)
    assert burned >= 0.5, record  # the grandchild's CPU time, seen only by the sampler
