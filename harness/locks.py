"""Who writes what: exclusive file locks (one writer per configuration, one store set-up) and process owners.

A lock is an `fcntl.flock` on a small file that holds its owner (`pid host start`); the kernel releases it when the
process dies, however it dies, so a lock is never stale. An owner is (host, PID, the process's start time in clock
ticks): a PID alone could be reused by an unrelated process after a reboot or a long uptime. Plain files and /proc,
no torch or MLflow: `harness.tracking` tags runs with `owner()`, `harness.runs.decide` locks configurations.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    start: str = ""  # /proc/<pid>/stat's starttime ("" where there is no /proc)

    def text(self) -> str:
        return f"{self.pid} {self.host} {self.start}".strip()

    def describe(self) -> str:
        return f"PID {self.pid} on {self.host}"


def hostname() -> str:
    return socket.gethostname()


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after "pid (comm)" (state is field 3, so index 0), [] when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat[stat.rindex(")") + 2 :].split()


def process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or "" when unknown."""
    fields = _stat(pid)
    return fields[19] if fields else ""


def owner() -> Owner:
    """This process."""
    return Owner(hostname(), os.getpid(), process_start(os.getpid()))


def parse_owner(text: str) -> Owner | None:
    parts = text.split()
    if len(parts) < 2 or not parts[0].isdigit():
        return None
    return Owner(parts[1], int(parts[0]), parts[2] if len(parts) > 2 else "")


def alive(o: Owner) -> bool | None:
    """Whether the owner process still runs: True/False on this host, None for another host (cannot tell)."""
    if o.host != hostname():
        return None
    try:
        os.kill(o.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    fields = _stat(o.pid)
    if fields and fields[0] in ("Z", "X"):
        return False  # exited, not yet reaped by its parent (a kill -9 leaves it so until then)
    if o.start and fields and fields[19] != o.start:
        return False  # the PID was reused by another process
    return True


def unique_tmp(path: Path) -> Path:
    """A temporary name beside `path` that no other writer uses: PATH.<pid>.<random>.tmp."""
    return path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def remove_stale_tmp(path: Path) -> list[Path]:
    """Delete PATH.<pid>.<random>.tmp files left by writers that died (their PID is gone on this host)."""
    removed = []
    for tmp in path.parent.glob(f"{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 1 :].split(".")[0]
        if pid.isdigit() and int(pid) != os.getpid() and alive(Owner(hostname(), int(pid))) is False:
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


class Busy(HarnessError):
    """The lock is held by another process (`holder`, None when it could not be read)."""

    def __init__(self, message: str, holder: Owner | None) -> None:
        super().__init__(message)
        self.holder = holder


def holder(path: Path) -> Owner | None:
    """Who holds (or last held) the lock file at `path`, as written in it."""
    try:
        return parse_owner(path.read_text())
    except OSError:
        return None


@contextlib.contextmanager
def hold(path: Path, what: str, wait: bool = False, on_wait: str | None = None) -> Iterator[Path]:
    """Hold the exclusive lock `path` (created if missing) for the block; the file is removed on release.

    Held by another process: wait for it when `wait` (saying so once on stderr: `on_wait`, "" for nothing, None for
    a line naming the holder), else raise `Busy` naming the holder. Safe against a holder that removes the file as
    it releases: after locking, the file must still be the one at `path`, else we try again.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    said = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                who = _read_holder(path)
                name = who.describe() if who else "another process"
                if not wait:
                    raise Busy(f"{what} is in use by {name} (lock {path}); wait for it, or add --wait", who) from None
                message = f"{what}: waiting for {name} (lock {path})" if on_wait is None else on_wait
                if message and not said:
                    print(message, file=sys.stderr, flush=True)
                said = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the previous holder removed the file as it released it: lock the new one
                os.close(fd)
                fd = -1
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, (owner().text() + "\n").encode(), 0)
            try:
                yield path
            finally:
                with contextlib.suppress(OSError):
                    if os.fstat(fd).st_ino == os.stat(path).st_ino:
                        path.unlink()
            return
        finally:
            if fd >= 0:
                os.close(fd)  # releases the lock


def _read_holder(path: Path) -> Owner | None:
    """The holder's line: written right after it locks, so give a holder that just started a moment to write it."""
    for _ in range(20):
        who = holder(path)
        if who is not None:
            return who
        time.sleep(0.05)
    return None
