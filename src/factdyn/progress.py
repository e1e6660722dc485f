"""What factdyn says while it works, and how much.

* :func:`phase` prints one line when something slow begins that has no progress bar of its
  own (``factdyn: loading model PATH …``), so that a terminal never sits silent for more than
  a few seconds. Like a spinner it is for a person watching: it shows when stderr is a
  terminal (or with ``-v``), so that logs and captured output hold only results, bars and
  errors. :func:`debug` lines show only with ``-v``.
* The verbosity (``factdyn -q``: errors and final paths only; ``-v``: debug lines too) lives in
  the environment (``FACTDYN_VERBOSITY``), so the processes a command starts (torchrun's
  workers, the demo's seeds, a sweep's runs) say as much as it does.
* Other libraries' progress bars (transformers' weight loading and saving, datasets' map,
  huggingface_hub's downloads) are switched off, so that only factdyn's own bars move; ``-v``
  leaves them on.

Lines go to stderr through ``tqdm.write``, so they never break a progress bar.
"""

from __future__ import annotations

import logging
import os
import sys

ENV = "FACTDYN_VERBOSITY"
QUIET, NORMAL, VERBOSE = -1, 0, 1

log = logging.getLogger("factdyn")


def verbosity() -> int:
    """-1 quiet, 0 normal, 1 verbose (from ``FACTDYN_VERBOSITY``)."""
    try:
        return max(QUIET, min(VERBOSE, int(os.environ.get(ENV, NORMAL))))
    except ValueError:
        return NORMAL


def quiet() -> bool:
    """``-q``: no progress bars, no phase lines; errors and final paths only."""
    return verbosity() == QUIET


def _main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _interactive() -> bool:
    """Someone is watching: stderr is a terminal."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without it, or closed
        return False


class _LineHandler(logging.Handler):
    """``factdyn: message`` on stderr, written between progress bars' redraws."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(f"factdyn: {record.getMessage()}", file=sys.stderr)
        except Exception:  # noqa: BLE001 (logging's own contract: never raise)
            self.handleError(record)


def configure(level: int | None = None) -> None:
    """Apply a verbosity (None: the inherited one) to this process and the ones it starts."""
    if level is not None:
        os.environ[ENV] = str(level)
    level = verbosity()
    if level == QUIET:
        os.environ["TQDM_DISABLE"] = "1"  # tqdm >= 4.66 reads its defaults from TQDM_*
    quiet_other_bars()
    _handler()
    log.setLevel({QUIET: logging.WARNING, NORMAL: logging.INFO, VERBOSE: logging.DEBUG}[level])


def _handler() -> None:
    """factdyn's lines go to stderr (once; the level stays as set)."""
    if not any(isinstance(h, _LineHandler) for h in log.handlers):
        log.addHandler(_LineHandler())
        log.propagate = False
        if log.level == logging.NOTSET:
            log.setLevel(logging.DEBUG if verbosity() == VERBOSE else logging.INFO)


def quiet_other_bars() -> None:
    """Switch off transformers', datasets' and huggingface_hub's progress bars (unless ``-v``),
    in this process and those it starts; a user's own setting of their variables wins."""
    if verbosity() >= VERBOSE:
        return
    for var in ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
        os.environ.setdefault(var, "1")
    # the libraries read those variables when imported; one already imported is told directly
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    if "huggingface_hub" in sys.modules and os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1":
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "datasets" in sys.modules and os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] == "1":
        import datasets

        datasets.disable_progress_bars()


def phase(message: str) -> None:
    """``factdyn: MESSAGE …`` when a slow step without a bar begins: on the main process, to
    a terminal (or with -v), not with -q."""
    level = verbosity()
    if _main_process() and (level == VERBOSE or (level == NORMAL and _interactive())):
        _handler()
        log.info(f"{message} …")


def debug(message: str) -> None:
    """A line for ``-v`` only."""
    if _main_process() and verbosity() == VERBOSE:
        _handler()
        log.debug(message)
