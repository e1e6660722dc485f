"""``factdyn verify``: a run's record of its injections, checked against its schedule and items.

Three checks, each a list of one-line differences: the schedule (injections.parquet) and the
record (provenance.parquet) hold the same injections, one to one, at the same step, row and
token span (a moved one is named with both places); the hash of each injected text equals
that of the item's text now (an edited item is named with its field); and, given a
tokenizer, the hash of the placed tokens equals that of the text's tokens as the plan makes
them (:func:`~factdyn.inject.provenance.injected_tokens`). Bad input (not a run, no record,
unreadable items) is a :class:`DataError`, as everywhere.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from factdyn.config import RunConfig, load_config
from factdyn.data.items import load_items
from factdyn.errors import DataError
from factdyn.inject.provenance import injected_tokens, item_texts, text_sha256, tokens_sha256
from factdyn.rundir import (
    INJECTIONS,
    PROVENANCE,
    PROVENANCE_FILE,
    TABLE_FILES,
    Status,
    read_meta,
    read_table,
    steps_trained,
)
from factdyn.train.checkpoint import checkpoint_dirs
from factdyn.train.plan import items_source, load_tokenizer

# What the schedule and the record must agree on, one injection to one record.
KEY: tuple[str, ...] = ("step", "row", "item", "variant", "token_start", "token_end")


@dataclass
class Verification:
    """What ``factdyn verify`` found: the record's size, and every difference."""

    injections: int  # records compared
    steps: int  # distinct steps among them
    differences: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # what was not checked, and with what


def _where(k: tuple) -> str:
    step, row, _, _, start, end = k
    return f"step {step}, row {row}, tokens [{start}, {end})"


def placement_differences(schedule: pd.DataFrame, record: pd.DataFrame) -> list[str]:
    """Injections the schedule and the record do not share; a scheduled one missing from the
    record and a record of the same text elsewhere are one moved injection."""

    def keys(df: pd.DataFrame) -> Counter:
        return Counter(tuple(int(x) for x in r) for r in df[list(KEY)].itertuples(index=False))

    planned, placed = keys(schedule), keys(record)
    extra: dict[tuple[int, int], list[tuple]] = defaultdict(list)
    for k in sorted((placed - planned).elements()):
        extra[(k[2], k[3])].append(k)
    out = []
    for k in sorted((planned - placed).elements()):
        what = f"item {k[2]}, variant {k[3]}: scheduled at {_where(k)} (injections.parquet)"
        moved = extra[(k[2], k[3])]
        found = f"recorded at {_where(moved.pop(0))}" if moved else "no such record"
        out.append(f"{what}, but {found} ({PROVENANCE_FILE})")
    for k in sorted(k for ks in extra.values() for k in ks):
        out.append(
            f"item {k[2]}, variant {k[3]}: recorded at {_where(k)} ({PROVENANCE_FILE}), "
            "but injections.parquet schedules no such injection"
        )
    return out


def _field(variant: int) -> str:
    return "train_context" if variant == 0 else f"paraphrases[{variant - 1}]"


def _steps(steps) -> str:
    steps = sorted(set(int(s) for s in steps))
    return ", ".join(map(str, steps[:5])) + (
        f" and {len(steps) - 5} more" if len(steps) > 5 else ""
    )


def text_differences(record: pd.DataFrame, texts: dict, source: str) -> list[str]:
    """Items whose text now is not the text injected: one line per item and field."""
    n_items = 1 + max((i for i, _ in texts), default=-1)
    out = []
    for (item, variant, sha), group in record.groupby(["item", "variant", "text_sha256"]):
        where = f"{source}, item {item}"
        when = f"injected at step {_steps(group.step)}"
        if item >= n_items:
            out.append(f"{where}: no such item ({n_items} items), but one was {when}")
        elif (item, variant) not in texts:
            out.append(f"{where}, field '{_field(variant)}': missing, but it was {when}")
        elif text_sha256(now := texts[(item, variant)]) != sha:
            out.append(
                f"{where}, field '{_field(variant)}': edited since it was {when} (sha256 "
                f"{sha[:12]}… then, {text_sha256(now)[:12]}… now)"
            )
    return out


def token_differences(record: pd.DataFrame, texts: dict, tokenizer) -> list[str]:
    """Records whose placed tokens are not the text's tokens (with EOS, cut to the span).
    Records whose text differs are left to :func:`text_differences`."""
    tokens: dict[tuple[int, int], list[int]] = {}
    out = []
    for r in record.itertuples():
        key = (int(r.item), int(r.variant))
        if key not in texts or text_sha256(texts[key]) != r.text_sha256:
            continue
        ids = tokens.setdefault(key, injected_tokens(tokenizer, texts[key]))
        if tokens_sha256(ids[: max(r.token_end - r.token_start, 0)]) != r.tokens_sha256:
            out.append(
                f"item {r.item}, variant {r.variant} at step {r.step}, row {r.row}: the tokens "
                "placed are not the text's tokens (tokens_sha256)"
            )
    return out


def _tokenizer(run_dir: Path, cfg: RunConfig, given: str | Path | None) -> tuple[object, str]:
    """(the tokenizer, where from): ``given``, else the newest checkpoint's, else the run's
    model folder's; (None, why) when there is none."""
    if given is None:
        newest = checkpoint_dirs(run_dir / "checkpoints")[-1:]
        model = cfg.model.name
        if newest:
            given = newest[0]
        elif model is not None and Path(model).is_dir():
            given = model
        else:
            return None, "no checkpoint and no local model folder: give --tokenizer PATH"
    return load_tokenizer(str(given), field="--tokenizer"), str(given)


def verify_run(
    run_dir: str | Path, items: str | Path | None = None, tokenizer: str | Path | None = None
) -> Verification:
    """Check a run's provenance.parquet against its schedule, its items (``items``, default
    the run's own source) and, when one is found, the tokenizer."""
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    if not (run_dir / PROVENANCE_FILE).is_file():
        raise DataError(
            f"{run_dir}: no {PROVENANCE_FILE}: made before factdyn recorded injections; "
            "rerun to get one"
        )
    schedule = read_table(run_dir, TABLE_FILES["injections"], INJECTIONS)
    record = read_table(run_dir, PROVENANCE_FILE, PROVENANCE)
    notices = []
    if meta.get("status") != Status.DONE:  # the updates done; the batch in flight is not
        done = steps_trained(run_dir)
        schedule, record = schedule[schedule.step < done], record[record.step < done]
        notices.append(f"the run is not finished: checked its first {done} updates")
    cfg = load_config(run_dir / "config.yaml")
    source = str(items) if items is not None else items_source(cfg)
    texts = item_texts(load_items(source))
    differences = placement_differences(schedule, record)
    differences += text_differences(record, texts, source)
    tok, where = _tokenizer(run_dir, cfg, tokenizer)
    if tok is None:
        notices.append(f"tokens not checked: {where}")
    else:
        differences += token_differences(record, texts, tok)
        notices.append(f"tokens checked with the tokenizer of {where}")
    return Verification(len(record), record.step.nunique(), differences, notices)
