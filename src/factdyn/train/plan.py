"""The plan of a run: everything decided before training starts, from the config alone.

Inputs are checked (given, existing, fitting ``seq_len``), the injection schedule and each
injection's batch row are laid out, the evaluation schedule and the learning-rate schedule
are fixed. A resume that extends ``train.steps`` is accepted only when the longer plan
agrees with everything already done (:func:`check_extension`).

Everything here needs the config, the items and at most the model's *tokenizer*, never its
weights: ``factdyn train`` plans before it loads the model, and ``factdyn data validate
--config`` runs the same checks (:func:`make_plan`), so the two never disagree. Each refusal
is one line naming the setting to change and how.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from factdyn.config import InjectionConfig, RunConfig
from factdyn.data.items import KnowledgeItem, load_items
from factdyn.errors import DataError
from factdyn.inject.placement import plan_placements
from factdyn.inject.provenance import injected_tokens
from factdyn.inject.schedule import Injection, build_schedule, split_items
from factdyn.score.requests import check_lengths
from factdyn.train import checkpoint as ckpt
from factdyn.train.estimate import check_plan_memory
from factdyn.train.evaluation import eval_schedule
from factdyn.train.lr import lr_at

# "name" or "org/name": what Hugging Face accepts as a model or dataset id
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


@dataclass
class Plan:
    """Everything decided before training starts (and written to the run directory)."""

    cfg: RunConfig
    items: list[KnowledgeItem]
    scenarios: list[str]
    placements: pd.DataFrame
    tokens: dict
    steps: np.ndarray  # logged steps (L,)
    mask: np.ndarray  # (L, items): which items' probes are scored at each logged step
    model_path: str
    base_state: dict
    base_step: int | None  # the base checkpoint's pretraining step, if known
    schedule_start: int  # lr schedule position of step 0
    lr_kwargs: dict  # factdyn.train.lr.lr_at's keywords

    @property
    def tokens_per_step(self) -> int:
        return self.cfg.train.batch_size * self.cfg.data.seq_len


def _local_or_hub(field: str, value: str) -> None:
    """A path that exists, or a hub id (whose existence only loading can tell)."""
    if not Path(value).exists() and (
        not HUB_ID.fullmatch(value) or value.endswith((".json", ".jsonl"))
    ):
        raise DataError(f"config, field '{field}': {value}: no such file or directory")


def items_source(cfg: RunConfig) -> str:
    """``injection.items``, or the world's own knowledge.json."""
    if cfg.injection.items is not None:
        return cfg.injection.items
    if cfg.data.source != "world":
        raise DataError(
            "config, field 'injection.items': required unless data.source is 'world': set it "
            "to your knowledge items (a .json/.jsonl file or a dataset folder), e.g. "
            "--set injection.items=items.jsonl"
        )
    return str(Path(cfg.data.path) / "knowledge.json")


def check_inputs(cfg: RunConfig) -> None:
    """Every input is given and exists (hub ids are checked when loaded)."""
    if cfg.data.path is None and cfg.data.source != "olmo":
        raise DataError(
            "config, field 'data.path': required (a world from 'factdyn generate', a text "
            "file or folder, a dataset; 'factdyn train' without one uses factdyn's cached world)"
        )
    if cfg.data.source in ("world", "text") and not Path(cfg.data.path).exists():
        raise DataError(f"config, field 'data.path': {cfg.data.path}: no such file or directory")
    if cfg.model.name is None:
        raise DataError(
            "config, field 'model.name': required (a model directory or hub id, e.g. "
            "--set model.name=path/to/model or --model)"
        )
    _local_or_hub("model.name", cfg.model.name)
    _local_or_hub("injection.items", items_source(cfg))


def load_tokenizer(name: str, revision: str | None = None, field: str = "model.name"):
    """The model's tokenizer alone (with its EOS as pad token when it has none), so that
    everything that needs token lengths is checked before the weights are loaded."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name, revision=revision)
    except (OSError, ValueError) as e:
        raise DataError(
            f"{name}: cannot load its tokenizer (field '{field}'; {str(e).splitlines()[0]})"
        ) from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _lr_schedule(cfg: RunConfig, base_state: dict) -> tuple[int | None, int, dict]:
    """The base's pretraining step, the schedule position of step 0, lr_at's keywords."""
    base_step = cfg.model.base_step if cfg.model.base_step is not None else base_state.get("step")
    start = cfg.optim.schedule_start
    start = start if start is not None else int(base_step or 0)
    peak = cfg.optim.lr if cfg.optim.lr is not None else base_state.get("lr")
    if peak is None:
        raise DataError(
            f"config, field 'optim.lr': required: {cfg.model.name} records no learning rate "
            "(only a factdyn checkpoint's state.json does); set the peak learning rate, e.g. "
            "--set optim.lr=1e-4"
        )
    lr_kwargs = {
        "peak": peak,
        "schedule": cfg.optim.schedule,
        "warmup": cfg.optim.warmup_steps,
        "total": cfg.optim.schedule_total or start + cfg.train.steps,
        "min_ratio": cfg.optim.min_lr_ratio,
    }
    return base_step, start, lr_kwargs


def check_item_counts(inj: InjectionConfig, n_items: int, source: str) -> None:
    """Enough items for every scenario (at least one each, or its ``n_items``) and the
    controls; the same condition as :func:`~factdyn.inject.schedule.split_items`, refused
    with the settings that fix it."""
    if inj.schedule is not None:
        return
    n = min(n_items, inj.max_items or n_items)
    fixed = sum(s.n_items or 0 for s in inj.scenarios)
    least = fixed + sum(s.n_items is None for s in inj.scenarios)  # injected items needed
    if n - inj.n_controls >= least:
        return
    have = f"{n} items" + (f" (injection.max_items={inj.max_items})" if n < n_items else "")
    names = ", ".join(s.name for s in inj.scenarios)
    fixes = [f"give at least {least + inj.n_controls} items"]
    if n >= least:
        fixes.insert(0, f"set injection.n_controls={n - least} or less")
    if n < n_items:
        fixes.append("raise injection.max_items")
    if fixed:
        fixes.append("lower the scenarios' n_items")
    if len(inj.scenarios) > 1:
        fixes.append("keep fewer injection.scenarios")
    raise DataError(
        f"{source}: {have} cannot fill {len(inj.scenarios)} scenarios ({names}: {least} items "
        f"at least) and {inj.n_controls} controls (injection.n_controls): " + ", or ".join(fixes)
    )


def check_paraphrases(inj: InjectionConfig, items: list[KnowledgeItem], source: str) -> None:
    """Every item of a paraphrase scenario has a paraphrase for each injection after its
    first (variant ``i`` is ``paraphrases[i-1]``); every explicit schedule entry's variant
    exists."""
    if inj.schedule is not None:
        for j, e in enumerate(inj.schedule):
            if e.item < len(items) and e.variant > (p := len(items[e.item].paraphrases)):
                raise DataError(
                    f"{source}, item {e.item}, field 'paraphrases': {p} paraphrase"
                    f"{'' if p == 1 else 's'}, but "
                    f"injection.schedule[{j}] (step {e.step}) asks for variant {e.variant} "
                    f"(variant i is paraphrases[i-1]): add paraphrases, or lower its variant"
                )
        return
    scenarios = split_items(len(items), inj)
    for s in inj.scenarios:
        if s.variant != "paraphrase":
            continue
        need = s.count - 1  # the first injection is the train_context itself
        for i, name in enumerate(scenarios):
            if name == s.name and (p := len(items[i].paraphrases)) < need:
                raise DataError(
                    f"{source}, item {i}, field 'paraphrases': {p} paraphrase"
                    f"{'' if p == 1 else 's'}, but scenario "
                    f"'{s.name}' injects each of its items {s.count} times in different "
                    f"words (its train_context, then {need} paraphrases): give every item at "
                    f"least {need} paraphrases, or give that scenario count: {p + 1} (or "
                    "variant: duplicate) in injection.scenarios"
                )


def check_steps(cfg: RunConfig, schedule: list[Injection]) -> None:
    """Every injection falls before the end of the run."""
    if not schedule:
        return
    last = max(schedule, key=lambda i: (i.step, i.item))
    total = cfg.train.steps
    if last.step < total:
        return
    late = sum(i.step >= total for i in schedule)
    raise DataError(
        f"injection: {late} injections fall at or after the run's end (train.steps={total}), "
        f"the last at step {last.step} (scenario '{last.scenario}', item {last.item}): set "
        f"train.steps={last.step + cfg.eval.window + 1} or more (--steps), or inject sooner "
        "(a smaller injection.interval, fewer injection.cohorts or a smaller cohort_gap, or "
        "a lower count in injection.scenarios)"
    )


def check_rows(placements: pd.DataFrame, tokens: dict, cfg: RunConfig, source: str) -> None:
    """Each injected text fits its batch row whole: one text longer than ``data.seq_len``, or
    several texts that share a row (more injections at a step than ``train.batch_size``
    rows) and together overflow it. ``placements`` are laid out with truncation allowed, so
    a cut is seen here and explained (unless ``injection.allow_truncation``)."""
    if cfg.injection.allow_truncation or placements.empty:
        return
    seq_len = cfg.data.seq_len
    length = [len(tokens[(int(r.item), int(r.variant))]) for r in placements.itertuples()]
    placements = placements.assign(length=length)
    for r in placements.itertuples():
        if r.length > seq_len:
            field = "train_context" if r.variant == 0 else f"paraphrases[{r.variant - 1}]"
            raise DataError(
                f"{source}, item {r.item}, field '{field}': injected at step {r.step}, the text "
                f"alone is {r.length} tokens with its EOS, more than data.seq_len={seq_len}: "
                f"set data.seq_len={r.length} or more, or shorten it"
            )
    for (step, row), group in placements.groupby(["step", "row"], sort=True):
        total = int(group.length.sum())
        if total <= seq_len:
            continue
        n_step = int((placements.step == step).sum())
        items = ", ".join(str(int(i)) for i in group.item[:5])
        items += f" and {len(group) - 5:,} more" if len(group) > 5 else ""
        raise DataError(
            f"injection: {len(group)} texts share row {row} of step {step} (items {items}: "
            f"{total} tokens together, more than data.seq_len={seq_len}), because step "
            f"{step} injects {n_step} texts into train.batch_size={cfg.train.batch_size} rows: "
            f"spread them out with train.batch_size={n_step} or more, more "
            "injection.cohorts (with a cohort_gap above 0) or a larger "
            f"injection.scenario_offset, or set data.seq_len={total} or more"
        )


def check_capacity(cfg: RunConfig, schedule: list[Injection]) -> None:
    """No step injects more texts than its batch can hold at the least they can take (a
    token and its EOS each), refused before a text is tokenized: 100,000 items injected at
    one step took minutes of tokenizing before :func:`check_rows` could say so."""
    if cfg.injection.allow_truncation or not schedule:
        return
    batch, seq_len = cfg.train.batch_size, cfg.data.seq_len
    step, texts = Counter(i.step for i in schedule).most_common(1)[0]
    per_row = -(-texts // batch)  # the rows take the texts in turn
    if 2 * per_row <= seq_len:
        return
    raise DataError(
        f"injection: step {step} injects {texts:,} texts into train.batch_size={batch} rows, "
        f"{per_row:,} to a row, which needs {2 * per_row:,} tokens at least (a token and its "
        f"EOS each), more than data.seq_len={seq_len}: set train.batch_size="
        f"{-(-texts // (seq_len // 2)):,} or more, spread the items over more "
        "injection.cohorts (with a cohort_gap above 0), or inject fewer (injection.max_items)"
    )


def injection_steps(schedule: list[Injection], n_items: int) -> list[list[int]]:
    """Each item's injection steps (none: a control)."""
    injected: list[list[int]] = [[] for _ in range(n_items)]
    for i in schedule:
        injected[i.item].append(i.step)
    return injected


@dataclass
class Injections:
    """A run's items and their injections, checked against the config (no tokenizer)."""

    source: str  # where the items came from (injection.items, or the world's)
    items: list[KnowledgeItem]
    schedule: list[Injection]
    scenarios: list[str]  # each item's scenario


def plan_injections(cfg: RunConfig) -> Injections:
    """The items and the schedule: enough items for the scenarios and controls, paraphrases
    for the paraphrase scenario, every injection before the end of the run."""
    source = items_source(cfg)
    items = load_items(source)
    inj = cfg.injection
    check_item_counts(inj, len(items), source)
    items = items[: inj.max_items or len(items)]
    check_paraphrases(inj, items, source)
    schedule, scenarios = build_schedule(inj, items)
    check_steps(cfg, schedule)
    check_capacity(cfg, schedule)
    check_plan_memory(cfg, injection_steps(schedule, len(items)))
    return Injections(source, items, schedule, scenarios)


@dataclass
class Layout:
    """Where and when each item goes, and when it is scored (needs the tokenizer)."""

    items: list[KnowledgeItem]
    scenarios: list[str]
    placements: pd.DataFrame
    tokens: dict
    steps: np.ndarray
    mask: np.ndarray


def plan_items(cfg: RunConfig, tokenizer) -> Layout:
    """:func:`plan_injections`, then what needs the tokenizer: every probe and injected text
    fits ``data.seq_len`` (the texts that share a batch row, together), and the logged
    steps."""
    inj = plan_injections(cfg)
    items, schedule, source = inj.items, inj.schedule, inj.source
    eos = tokenizer.eos_token_id
    if eos is None:
        raise DataError(
            f"{cfg.model.name}: its tokenizer has no eos_token (factdyn ends each injected "
            "text and separates documents with it)"
        )
    fixed = () if cfg.injection.allow_truncation else {(i.item, i.variant) for i in schedule}
    try:
        check_lengths(items, tokenizer, cfg.data.seq_len, sorted(fixed))
    except DataError as e:
        raise DataError(
            f"{source}, {e}: shorten it, or set a larger data.seq_len (the model's context "
            "allowing)"
        ) from None
    tokens = {
        (i.item, i.variant): injected_tokens(tokenizer, items[i.item].variant(i.variant))
        for i in schedule
    }
    placements = plan_placements(
        schedule, tokens, cfg.train.batch_size, cfg.data.seq_len, allow_truncation=True
    )
    check_rows(placements, tokens, cfg, source)
    steps, mask = eval_schedule(
        cfg.eval.schedule,
        injection_steps(schedule, len(items)),
        cfg.eval.window,
        cfg.train.steps,
        cfg.eval.log_points,
        cfg.eval.per_item,
    )
    return Layout(items, inj.scenarios, placements, tokens, steps, mask)


def make_plan(cfg: RunConfig, tokenizer) -> Plan:
    """Validate and plan the run: the learning rate, then :func:`plan_items` (the items'
    count and paraphrases, the run's length, token lengths, batch rows, logged steps).
    Needs the tokenizer, never the model's weights."""
    base_state = ckpt.read_state(Path(cfg.model.name))
    lr = _lr_schedule(cfg, base_state)
    lay = plan_items(cfg, tokenizer)
    return Plan(
        cfg,
        lay.items,
        lay.scenarios,
        lay.placements,
        lay.tokens,
        lay.steps,
        lay.mask,
        str(cfg.model.name),
        base_state,
        *lr,
    )


def check_extension(old: Plan, new: Plan, start: int) -> None:
    """A longer train.steps may continue a run from θ_start only if everything before it is
    what the longer run would have done: the same learning rates, injections and logged
    steps. A schedule spread over train.steps is not: a decaying lr without
    optim.schedule_total, or the sparse log-spaced tail once the run has reached it."""
    why = None
    lrs = [[lr_at(p.schedule_start + t, **p.lr_kwargs) for t in range(start)] for p in (old, new)]
    if lrs[0] != lrs[1]:
        why = "changes the learning rates already used (the schedule's length follows train.steps)"
    elif not old.placements.equals(new.placements):
        why = "changes the injections"
    else:
        a, b = old.steps <= start, new.steps <= start
        if not (
            np.array_equal(old.steps[a], new.steps[b]) and np.array_equal(old.mask[a], new.mask[b])
        ):
            why = "changes which steps before it are logged (sparse tail spans train.steps)"
    if why:
        raise DataError(
            f"train.steps: extending {old.cfg.train.steps} -> {new.cfg.train.steps} from step "
            f"{start} {why}; start a new run with --out"
        )
