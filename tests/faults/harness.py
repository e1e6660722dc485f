"""Run the ``factdyn`` command in-process as a user would, and check what a fault left behind.

:func:`run_cli` goes through :func:`factdyn.cli.main`, the console entry point, so an error
that escapes its handler shows up here as a raised exception (a traceback for the user), not
as a quiet exit code. :func:`snapshot` hashes every file under a folder, so a case can prove
that a refused command left every pre-existing file exactly as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import sys
from dataclasses import dataclass
from pathlib import Path

from factdyn.cli import main


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        """stderr without progress bars: the lines a user reads as messages."""
        lines = [ln.strip() for ln in self.stderr.replace("\r", "\n").splitlines()]
        return [ln for ln in lines if ln and "it/s]" not in ln and "step/s" not in ln]


def run_cli(*args: str | Path) -> Outcome:
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["factdyn", *map(str, args)]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = argv
    return Outcome(code, out.getvalue(), err.getvalue())


def snapshot(root: Path) -> dict[str, str]:
    """SHA-256 of every file below ``root`` (relative path -> digest)."""
    root = Path(root)
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def assert_refused(outcome: Outcome, *, mentions: str = "") -> None:
    """Exit 2 with one line naming the fault, and no traceback."""
    assert outcome.code == 2, (outcome.code, outcome.stderr[-2000:])
    assert "Traceback" not in outcome.stderr
    lines = outcome.error_lines
    assert len(lines) == 1 and lines[0].startswith("factdyn: error: "), lines
    assert mentions in lines[0], (mentions, lines[0])
