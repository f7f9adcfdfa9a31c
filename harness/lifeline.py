"""No process outlives the harness process that started it, however that one ends (kill -9 included).

What the harness starts on this machine (`run --jobs` workers in harness.pool, sweep workers in harness.sweep.command,
`mlflow server` with its uvicorn, job-runner and huey children for `ui`/`server` in harness.cli, the tasks of
`run --launcher local` in harness.launch) runs under a watcher, `python -m harness.lifeline OWNER -- COMMAND`: a small
process that leads a process group of its own, runs COMMAND in it and exits with COMMAND's status. It polls OWNER,
the process COMMAND lives with (a `locks.Owner`: PID and start time, so that a reused PID does not count), every
`POLL_S`; once OWNER is gone (exited, killed, or a zombie nobody reaped) it sends its group SIGTERM (`--stop`), so
that runs close KILLED, and SIGKILL after `GRACE_S` to whatever is left, itself included.

Why a watcher, not PR_SET_PDEATHSIG: the death signal reaches a direct child only, not the server's uvicorn and huey
processes (children of `mlflow server`), and it fires when the forking *thread* exits. Why polling OWNER, not a pipe's
end of file: submitit's controller starts its tasks with Popen's close_fds (submitit/local/local.py,
`Controller.start_tasks`), so no inherited descriptor reaches a task, while OWNER travels in its command line.

Signals: the harness stops its children by signalling their group (`workers.stop`), which reaches
COMMAND directly; the watcher ignores SIGTERM and SIGINT and ends with COMMAND. submitit's controller signals its
task's PID instead (SIGUSR2 before the time limit, SIGINT to cancel): with `--forward` the watcher passes those on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from harness import locks

POLL_S = 0.25  # how often a watcher looks at its owner
GRACE_S = 5.0  # from the polite signal to SIGKILL: a worker closes its MLflow run KILLED in about a second
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)  # what submitit's controller sends


def supervisor() -> str:
    """This process, as the owner its children live with (`locks.Owner.text`)."""
    return locks.owner().text()


def command(
    argv: Sequence[str], owner: str | None = None, forward: bool = False, stop: signal.Signals = signal.SIGTERM
) -> list[str]:
    """argv under a watcher of `owner` (default: this process); `stop`: the first signal once the owner is gone."""
    options = ["--forward"] if forward else []
    options += ["--stop", stop.name] if stop != signal.SIGTERM else []
    return [sys.executable, "-m", "harness.lifeline", *options, owner or supervisor(), "--", *argv]


def popen(argv: Sequence[str], **kwargs) -> subprocess.Popen:
    """Start argv in a session of its own that ends when this process does. `kwargs` go to Popen (stdout, stderr,
    env, cwd). The Popen's PID is the watcher's, the group's leader: `os.killpg(proc.pid, sig)` reaches argv and
    its children, and the exit status is argv's."""
    return subprocess.Popen(command(argv), start_new_session=True, **kwargs)


class Watcher:
    """The watcher process's state: COMMAND, and whether the owner is gone (then the group is being stopped)."""

    def __init__(self, owner: locks.Owner, forward: bool, stop: signal.Signals) -> None:
        self.owner, self.forward, self.stop = owner, forward, stop
        self.child: subprocess.Popen | None = None
        self.stopping = threading.Event()

    def on_signal(self, signum: int, frame: object) -> None:
        """SIGTERM/SIGINT (and with --forward SIGUSR1/2): passed to COMMAND with --forward, unless it is our own
        stop signal; else ignored, since the group's other members got the same signal."""
        if self.forward and self.child is not None and not self.stopping.is_set():
            self.child.send_signal(signum)

    def guard(self) -> None:
        """Wait for the owner to be gone, then stop the group: `stop`, SIGKILL once the others are gone or after
        `GRACE_S`."""
        while locks.alive(self.owner) is not False:
            time.sleep(POLL_S)
        self.stopping.set()
        pgid = os.getpgrp()
        os.killpg(pgid, self.stop)
        deadline = time.monotonic() + GRACE_S
        while time.monotonic() < deadline and _others(pgid):
            time.sleep(0.1)
        os.killpg(pgid, signal.SIGKILL)  # what is left, and this process


def _others(pgid: int) -> bool:
    """Whether a process other than this one is in group `pgid` (zombies do not count)."""
    import psutil

    for p in psutil.process_iter(["pid", "status"]):
        if p.info["pid"] == os.getpid() or p.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            if os.getpgid(p.info["pid"]) == pgid:
                return True
        except OSError:
            continue
    return False


def main(argv: Sequence[str]) -> int:
    """`python -m harness.lifeline [--forward] [--stop SIGNAME] OWNER -- COMMAND...`: run COMMAND in this process's
    group until it exits, or until OWNER is gone (then stop the group). The exit status is COMMAND's; killed by a
    signal, this process ends by the same signal."""
    args = list(argv)
    forward = args[:1] == ["--forward"]
    if forward:
        del args[0]
    stop = signal.SIGTERM
    if args[:1] == ["--stop"] and len(args) > 1 and args[1] in signal.Signals.__members__:
        stop = signal.Signals[args[1]]
        del args[:2]
    owner = locks.parse_owner(args[0]) if args else None
    if owner is None or len(args) < 3 or args[1] != "--":
        print("usage: python -m harness.lifeline [--forward] [--stop SIGNAME] 'PID HOST START' -- COMMAND...")
        return 2
    if os.getpgrp() != os.getpid():
        os.setsid()  # a group of our own (submitit's controller shares the harness's): stop only that one
    watcher = Watcher(owner, forward, stop)
    for sig in FORWARDED if forward else (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, watcher.on_signal)  # a handler, not SIG_IGN: COMMAND would inherit SIG_IGN across exec
    watcher.child = subprocess.Popen(args[2:])
    guard = threading.Thread(target=watcher.guard, daemon=True, name="lifeline")
    guard.start()
    code = watcher.child.wait()
    if watcher.stopping.is_set():
        guard.join()  # it SIGKILLs the group, this process included, once the others are gone
    if code < 0:  # killed by a signal: end the same way, so that our parent sees what COMMAND's would have
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code  # a signal whose default is not to end the process: the shell's convention
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
