"""One driver per run directory: an exclusive lock held for the driver's whole life.

`<run>/.rzero.lock` is locked with `flock` (released by the operating system
when the process ends in any way, SIGKILL included) and holds who holds it:
pid, host, the process's start time (to survive pid reuse), the run path, the
command and a heartbeat (the file's mtime, refreshed every `HEARTBEAT_S`).
Where `flock` is not shared between hosts or not supported (some network
filesystems), the record decides: a holder on this host is stale when its
pid no longer runs (or is another process with the same pid); a holder on
another host when its heartbeat is older than `STALE_AFTER_S`. A record
copied with a run directory names another path and is ignored.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import platform
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rzero_lib.pipeline.rundir import RunDirError
from rzero_lib.processes import pid_alive, process_start_time

LOCK_FILE = ".rzero.lock"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 300.0  # a holder on another host whose heartbeat is older than this is gone
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS}


class RunLocked(RunDirError):
    """Another live process holds the run directory's lock."""

    def __init__(self, message: str, holder: LockHolder | None) -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class LockHolder:
    pid: int
    host: str
    start_time: int | None
    started_at: str
    path: str
    command: str
    heartbeat: float = 0.0  # the lock file's mtime

    @classmethod
    def me(cls, path: Path) -> LockHolder:
        return cls(os.getpid(), platform.node(), process_start_time(os.getpid()),
                   time.strftime("%Y-%m-%d %H:%M:%S"), str(path), " ".join(sys.argv) or sys.executable)

    def describe(self) -> str:
        return f"PID {self.pid} on host {self.host}, since {self.started_at}: `{self.command}`"


def read_holder(fd: int) -> LockHolder | None:
    """The record in an open lock file (None when empty or unreadable)."""
    try:
        data = json.loads(os.pread(fd, 1 << 16, 0).decode() or "null")
        mtime = os.fstat(fd).st_mtime
        return LockHolder(int(data["pid"]), str(data["host"]), data.get("start_time"), str(data["started_at"]),
                          str(data["path"]), str(data.get("command", "")), mtime)
    except (ValueError, KeyError, TypeError, OSError):
        return None


def holder_is_live(holder: LockHolder, run_path: Path, flocked: bool) -> bool:
    """Whether the process a lock record names still holds this run (we may have its flock already)."""
    if holder.path != str(run_path):
        return False  # the record came with a copied or moved directory
    if holder.host == platform.node():
        # On this host flock is authoritative: we hold it, so its holder has ended.
        return not flocked and pid_alive(holder.pid, holder.start_time)
    return time.time() - holder.heartbeat < STALE_AFTER_S


def locked_message(run_path: Path, lock_file: Path, holder: LockHolder | None) -> str:
    who = holder.describe() if holder else "a process that left no record"
    kill = f"stop it (kill {holder.pid}{'' if holder and holder.host == platform.node() else ' on its host'})" \
        if holder else "stop it"
    return (f"{run_path} is in use by another rzero process ({who}). Two drivers on one run directory would "
            f"repeat and overwrite each other's stages, so nothing was started. Wait for it to finish, {kill}, "
            f"or use another run directory (--fresh or --run-dir). If that process is gone, remove {lock_file}.")


class RunLock:
    """The exclusive lock of one run directory (a context manager; `acquire` raises `RunLocked`)."""

    def __init__(self, run_path: str | Path) -> None:
        self.run_path = Path(run_path)
        self.file = self.run_path / LOCK_FILE
        self.fd: int | None = None
        self.replaced: LockHolder | None = None  # a stale record we took over (for the log)
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def acquire(self) -> RunLock:
        self.run_path.mkdir(parents=True, exist_ok=True)
        for _ in range(10):
            fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o644)
            flocked = True
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = read_holder(fd)
                for _ in range(40):  # the holder writes its record right after locking
                    if holder is not None:
                        break
                    time.sleep(0.05)
                    holder = read_holder(fd)
                os.close(fd)
                raise RunLocked(locked_message(self.run_path, self.file, holder), holder) from None
            except OSError as e:
                if e.errno not in _NO_FLOCK:
                    os.close(fd)
                    raise
                flocked = False  # the record alone decides
            if not self._still_the_file(fd):  # the previous holder removed it meanwhile: lock the new one
                os.close(fd)
                continue
            holder = read_holder(fd)
            if holder is not None and holder.pid != os.getpid() and holder_is_live(holder, self.run_path, flocked):
                os.close(fd)
                raise RunLocked(locked_message(self.run_path, self.file, holder), holder)
            self.replaced = holder if holder is not None and holder.pid != os.getpid() else None
            self.fd = fd
            self._write_record()
            self._heartbeat = threading.Thread(target=self._beat, name="rzero-lock-heartbeat", daemon=True)
            self._heartbeat.start()
            return self
        raise RunDirError(f"could not lock {self.file}: it keeps being replaced by another process")

    def _still_the_file(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self.file)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)

    def _write_record(self) -> None:
        me = LockHolder.me(self.run_path)
        data = json.dumps({"pid": me.pid, "host": me.host, "start_time": me.start_time,
                           "started_at": me.started_at, "path": me.path, "command": me.command}).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data + b"\n", 0)
        os.fsync(self.fd)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError, TypeError):
                os.utime(self.fd)

    def release(self) -> None:
        if self.fd is None:
            return
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)
        with contextlib.suppress(OSError):
            if self._still_the_file(self.fd):
                self.file.unlink()  # while still holding the lock: a waiter then locks a new file
        os.close(self.fd)  # releases the flock
        self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def current_holder(run_path: str | Path) -> LockHolder | None:
    """Who holds the run directory now (None when nobody does); takes no lock."""
    run_path = Path(run_path)
    try:
        fd = os.open(run_path / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        holder = read_holder(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return holder or LockHolder(0, "?", None, "?", str(run_path), "?")
        except OSError:
            pass
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            if holder is not None and holder.host == platform.node():
                return None  # nobody holds the flock on this host: the record is stale
        return holder if holder is not None and holder_is_live(holder, run_path, flocked=False) else None
    finally:
        os.close(fd)
