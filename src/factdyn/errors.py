"""factdyn's exceptions, in one place so every layer can raise them without importing another.

The command line turns a :class:`DataError` into one line on stderr and exit code 2; a
:class:`TrainingError` ends a run that cannot go on, keeping its last good checkpoint.
"""

from __future__ import annotations


class DataError(ValueError):
    """Invalid input (data, configuration, paths); the message is one line naming the file,
    item and field at fault."""


class TrainingError(RuntimeError):
    """The run cannot go on (a non-finite loss); the last good checkpoint is kept."""
