"""What the command-line tests share: a tiny run's settings and factdyn's own environment."""

from __future__ import annotations

TINY = [
    "data.seq_len=64",
    "train.batch_size=8",
    "injection.interval=10",
    "injection.n_controls=3",
    "injection.cohorts=1",
    "injection.scenario_offset=0",
    "eval.window=5",
    "train.threads=1",
]
# the environment variables -q/-v write (so that child processes inherit them): cleared so
# that a command runs as a user's would
VERBOSITY_ENV = (
    *("FACTDYN_VERBOSITY", "TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS"),
    "HF_DATASETS_DISABLE_PROGRESS_BARS",
)
