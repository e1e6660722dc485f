"""Stopping what a sweep started: the driver's signals and its jobs' process trees.

Every job's process starts a session (a process group) of its own (:func:`start_session`),
so that stopping it reaches what it started (``torchrun``'s workers). An interrupted driver
(SIGINT, SIGTERM: :class:`Interrupted`) stops its local jobs, process trees and all
(:func:`terminate`), and cancels its Slurm jobs; a driver killed outright (SIGKILL) still takes
its jobs with it (each child gets SIGTERM when its parent dies, Linux's ``PR_SET_PDEATHSIG``).
A job that a signal ended (:func:`interrupted_by`: a Ctrl-C or SIGTERM that reached it before
the driver acted on its own) interrupts the sweep as the driver's own signal does, and what
an ended job leaves running in its group is ended with it (:func:`wait_whole`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence

from factdyn.sweep.state import States


class Interrupted(KeyboardInterrupt):
    """The driver, or one of its jobs, got SIGINT or SIGTERM. Raised once its jobs are
    stopped (local) or cancelled (Slurm), with each job's state then (``state``: done,
    stopped, cancelled, waiting = never started, failed; None when no job had been launched).
    A KeyboardInterrupt: no ``except Exception`` swallows it, and a caller that knows only
    Ctrl-C (the demo) ends as on Ctrl-C."""

    def __init__(
        self, signal_name: str, state: States | None = None, launcher: str = "local"
    ) -> None:
        super().__init__(signal_name)
        self.signal_name, self.state, self.launcher = signal_name, state, launcher

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by the signal: 130 (SIGINT), 143 (SIGTERM)."""
        return 128 + signal.Signals[self.signal_name].value


def interrupted_by(returncode: int | None) -> str | None:
    """The signal that ended a job's process, when it was an interruption: killed by SIGINT
    or SIGTERM, or exited as ``factdyn train`` does on Ctrl-C (130) or a shell on SIGTERM
    (143). None for any other end (a failure, SIGKILL: the out-of-memory killer's)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        if returncode in (-sig, 128 + sig):
            return sig.name
    return None


def signal_name(e: BaseException) -> str:
    """The signal behind an interruption (KeyboardInterrupt: SIGINT)."""
    return e.signal_name if isinstance(e, Interrupted) else "SIGINT"


@contextlib.contextmanager
def handling(signals: Sequence[int], handler) -> Iterator[None]:
    """``handler`` for ``signals`` inside the block (in the main thread; elsewhere, where
    Python delivers no signal, nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def sigterm_interrupts() -> contextlib.AbstractContextManager[None]:
    """Inside the block SIGTERM raises :class:`Interrupted`, as SIGINT raises
    KeyboardInterrupt, so that a terminated driver stops its jobs before it exits."""

    def raise_interrupted(signum, frame) -> None:
        raise Interrupted("SIGTERM")

    return handling([signal.SIGTERM], raise_interrupted)


def _tree(pid: int) -> list:
    """The process ``pid`` and its descendants (psutil processes), or [] if it is gone."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _alive(proc) -> bool:
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _send(procs: list, popens: Sequence[subprocess.Popen], sig: int) -> None:
    """``sig`` to each psutil process (pid reuse is checked) and to the process group of each
    started process not yet reaped (whose pid, hence group id, is still its own)."""
    import psutil

    for p in popens:
        if p.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, sig)
    for q in procs:
        with contextlib.suppress(psutil.Error):
            q.send_signal(sig)


def terminate(
    popens: Sequence[subprocess.Popen], grace_s: float, hurry: threading.Event | None = None
) -> None:
    """Stop started processes with their process groups and every descendant: SIGTERM, then
    SIGKILL for whatever still lives after ``grace_s`` (or once ``hurry`` is set)."""
    procs = [q for p in popens for q in _tree(p.pid)]
    _send(procs, popens, signal.SIGTERM)
    _wait_alive(procs, grace_s, hurry)
    procs += [q for p in popens for q in _tree(p.pid) if q not in procs]  # started meanwhile
    _send([q for q in procs if _alive(q)], popens, signal.SIGKILL)


def _wait_alive(procs: list, grace_s: float, hurry: threading.Event | None = None) -> None:
    """Until none of ``procs`` lives, ``grace_s`` has passed or ``hurry`` is set."""
    deadline = time.monotonic() + grace_s
    while any(_alive(q) for q in procs) and time.monotonic() < deadline:
        if hurry is not None and hurry.is_set():
            break
        time.sleep(0.05)


def _group(pgid: int) -> list:
    """The live processes of process group ``pgid`` (psutil processes)."""
    import psutil

    members = []
    for q in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(q.pid) == pgid and _alive(q):
                members.append(q)
    return members


def wait_whole(proc: subprocess.Popen, grace_s: float) -> int:
    """Wait for ``proc`` (started by :func:`start_session`) to end, then end what it left
    running in its process group (the workers of a ``torchrun`` that a signal killed):
    SIGTERM, SIGKILL after ``grace_s``. Its zombie, not reaped until then, keeps the
    group's id from being reused. Returns its exit code."""
    if hasattr(os, "waitid"):
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        left = [q for q in _group(proc.pid) if q.pid != proc.pid]
        if left:
            _send(left, [], signal.SIGTERM)
            _wait_alive(left, grace_s)
            _send([q for q in left if _alive(q)], [], signal.SIGKILL)
    return proc.wait()


def _die_with_parent() -> None:
    """In the child, before exec (Linux): SIGTERM when the sweep that started it dies, so a
    killed sweep leaves no training running on (and holding its run's lock)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_session(cmd: list[str], **kwargs) -> subprocess.Popen:
    """``cmd`` in a session of its own (its group: what stopping it stops), SIGTERMed should
    this process die."""
    return subprocess.Popen(
        cmd,
        start_new_session=True,
        preexec_fn=_die_with_parent,  # only a prctl call between fork and exec
        **kwargs,
    )
