"""One writer of a folder at a time: ``fcntl.flock`` on ``FOLDER/.lock``, naming its holder.

The kernel drops the lock when its holder ends, SIGKILL included, so a stale file never
blocks anyone; the file records the holder (pid, host, start time) so that whoever is refused
is told who. A resume holds its run's (:class:`factdyn.train.resume.RunLock`); a new run
holds its ``--out`` from before its weights load until it is written (:func:`claim_new_run`),
so two ``factdyn train --out`` of one new folder cannot both run; a sweep holds its ``--out``
(:mod:`factdyn.sweep.sweep`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from factdyn.errors import DataError

LOCK = ".lock"


def describe_holder(record: str) -> str:
    """``process PID on HOST since TIME`` from a lock file's record (or what it holds)."""
    parts = record.split()
    if len(parts) == 3:
        return f"process {parts[0]} on {parts[1]} since {parts[2]}"
    return f"process {record.strip() or 'unknown'}"


class FolderLock:
    """An exclusive ``fcntl.flock`` on ``folder/.lock`` (the folder created if missing) for
    as long as this process holds it. Held elsewhere, it is refused with the DataError
    ``busy(holder, lock_path)`` gives. :meth:`release` removes the lock file if the claim
    created it, and the folders it created if they are left empty: a refused command leaves
    nothing behind in a folder it was pointed at."""

    def __init__(self, folder: Path, busy: Callable[[str, Path], str]):
        self.folder, self.path = Path(folder), Path(folder) / LOCK
        if self.folder.exists() and not self.folder.is_dir():
            raise DataError(f"{self.folder}: exists and is not a directory")
        self.created = [p for p in (self.folder, *self.folder.parents) if not p.exists()]
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataError(f"{self.folder}: cannot create the folder ({e.strerror})") from None
        self.fd: int | None = None
        self.made_file = not self.path.exists()
        for _ in range(5):  # the file may be removed by a releasing holder meanwhile
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode(errors="replace")
                os.close(fd)
                raise DataError(busy(describe_holder(holder), self.path)) from None
            if self._is_ours(fd):
                self.fd = fd
                break
            os.close(fd)
        else:
            raise DataError(f"{self.path}: the lock file keeps being replaced; try again")
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()} {socket.gethostname()} {started}\n".encode(), 0)

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise DataError(f"{self.path}: cannot create the lock ({e.strerror})") from None

    def _is_ours(self, fd: int) -> bool:
        """Whether ``fd`` is still the file at the lock's path."""
        try:
            here = os.stat(self.path)
        except OSError:
            return False
        mine = os.fstat(fd)
        return (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino)

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            if self.made_file and self._is_ours(self.fd):
                self.path.unlink()
            for p in self.created:
                p.rmdir()
        os.close(self.fd)
        self.fd = None


def claim_new_run(run_dir: Path) -> FolderLock:
    """``run_dir``'s lock, for a new run to be written there: refused while another process
    holds it (naming that process) and when the folder holds anything but the lock."""
    lock = FolderLock(
        run_dir,
        lambda holder, path: (
            f"{run_dir}: being written by {holder} (it holds {path}); wait for it to end or "
            "stop it, or give another --out"
        ),
    )
    if any(p.name != LOCK for p in Path(run_dir).iterdir()):
        lock.release()
        raise DataError(f"{run_dir}: run directory exists and is not empty (use --resume)")
    return lock
