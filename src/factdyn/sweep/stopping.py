"""Stopping what a sweep started: the driver's signals and its jobs' process trees.

Every job's process starts a session (a process group) of its own (:func:`start_session`),
so that stopping it reaches what it started (``torchrun``'s workers). An interrupted driver
(SIGINT, SIGTERM: :class:`Interrupted`) stops its local jobs, process trees and all
(:func:`terminate`), and cancels its Slurm jobs; a driver killed outright (SIGKILL) still takes
its jobs with it (each child gets SIGTERM when its parent dies, Linux's ``PR_SET_PDEATHSIG``).
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


class Interrupted(BaseException):
    """The driver got SIGINT or SIGTERM. Raised once its jobs are stopped (local) or
    cancelled (Slurm), with each job's state then (``state``: done, stopped, cancelled,
    waiting = never started, failed; None when no job had been launched). A
    BaseException, as KeyboardInterrupt is: no ``except Exception`` swallows it."""

    def __init__(
        self, signal_name: str, state: States | None = None, launcher: str = "local"
    ) -> None:
        super().__init__(signal_name)
        self.signal_name, self.state, self.launcher = signal_name, state, launcher

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by the signal: 130 (SIGINT), 143 (SIGTERM)."""
        return 128 + signal.Signals[self.signal_name].value


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
    deadline = time.monotonic() + grace_s
    while any(_alive(q) for q in procs) and time.monotonic() < deadline:
        if hurry is not None and hurry.is_set():
            break
        time.sleep(0.05)
    procs += [q for p in popens for q in _tree(p.pid) if q not in procs]  # started meanwhile
    _send([q for q in procs if _alive(q)], popens, signal.SIGKILL)


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
