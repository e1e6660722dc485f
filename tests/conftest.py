"""What every test shares: the toy world and base, the two tiers of the suite, a time limit.

**The toy world and base.** A toy world built here (not by factdyn's generator) and a tiny base
pretrained on it, so the training tests depend only on the engine. Both are built once per
session: under pytest-xdist the workers share one copy, built by whichever worker asks first
while the others wait on a file lock (the pattern pytest-xdist documents).

**The two tiers.** ``make test`` runs the whole suite; ``make test-fast`` runs the tests not
marked ``slow``. A test is marked ``slow`` by rule (``pytest_collection_modifyitems`` below),
not by hand; it is slow when

1. it trains a model or reads what training wrote: it requests one of ``EXPENSIVE`` (the toy
   world, whose tokenizer and corpus every training of the suite reads, and the base pretrained
   on it) directly, through other fixtures, or through a parameter: a function that a
   ``parametrize`` value holds names such a fixture, to ask for it when it runs
   (``request.getfixturevalue``; the fault tables of tests/faults do this); or
2. it starts a process: its own code, the code of a fixture it requests, or the code of a
   function or class of the test suite that one of these names (followed to any depth) names
   one of the modules in ``SPAWNS`` (``subprocess.run``, ``import subprocess``, ...).

``slow_because(item)`` says which rule marked a test. A test that breaks neither rule yet is
slow makes the fast tier slow: have it use the fixtures of rule 1 where it trains, or make it
smaller. One test trains without them and keeps a hand-written mark: tests/demo/test_journey.py
(a model, corpus and items of its own, as a user brings them).

**A time limit.** ``@pytest.mark.timeout(seconds)`` fails a test whose call runs longer; it is
pytest-timeout's marker when that plugin is installed, else SIGALRM's timer here. It guards
against a hang; it is no speed bound.
"""

from __future__ import annotations

import inspect
import json
import os
import random
import shutil
import signal
import tempfile
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from filelock import FileLock

from factdyn.data.items import KnowledgeItem, Probe, save_items

# Bootstrap intervals with fewer resamples than the default 1,000: the tests that check the
# intervals themselves pass their own count (tests/analyze/test_bootstrap.py).
os.environ.setdefault("FACTDYN_RESAMPLES", "100")
# Derived caches (tokenized corpora) of the tests go to a throwaway folder, not the user's.
os.environ.setdefault("FACTDYN_CACHE", tempfile.mkdtemp(prefix="factdyn-tests-"))

SYL = ["ka", "lo", "mi", "ve", "tor", "an", "ri", "sul", "pe", "dra", "ne", "o", "zu", "bel", "xi"]
COLOURS = ["red", "blue", "green", "amber", "violet", "grey", "white", "black"]
CITIES = ["Pellmar", "Quisk", "Orvane", "Teshra", "Bolwin", "Caddor", "Ymmer", "Frace"]


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(SYL) for _ in range(3)).capitalize()


def _facts(rng: random.Random, name: str) -> dict:
    return {
        "name": name,
        "city": rng.choice(CITIES),
        "year": str(rng.randint(1100, 1999)),
        "colour": rng.choice(COLOURS),
        "founder": _name(rng),
    }


def _paragraph(f: dict, variant: int) -> str:
    forms = [
        (
            "{name} was founded in {year} in the city of {city}. Its founder was {founder}. "
            "The banner of {name} is {colour}."
        ),
        (
            "In {year}, {founder} founded {name} in {city}. {name} flies a {colour} banner. "
            "The city of {name} is {city}."
        ),
        (
            "The founder of {name}, {founder}, started it in {city} in {year}. Its banner is {colour}."
        ),
    ]
    return forms[variant % len(forms)].format(**f)


def make_toy_world(root, n_items: int = 9, n_docs: int = 3000, seed: int = 0):
    rng = random.Random(seed)
    names: set[str] = set()
    while len(names) < n_items + 300:
        names.add(_name(rng))
    names = sorted(names)
    items = []
    for name in names[:n_items]:
        f = _facts(rng, name)
        probes = {
            "memorization": (
                Probe(f"{name} was founded in {f['year']} in the city of", f["city"]),
                Probe("Its founder was", f["founder"]),
            ),
            "semantic": (
                Probe(f"{name} was established in {f['year']} in the town of", f["city"]),
            ),
            "composition": (
                Probe(
                    f"The city where {f['founder']} founded a {f['colour']}-bannered house is",
                    f["city"],
                ),
            ),
        }
        items.append(
            KnowledgeItem(_paragraph(f, 0), probes, tuple(_paragraph(f, v) for v in range(1, 10)))
        )
    save_items(items, root / "knowledge.json")
    (root / "corpus").mkdir(parents=True)
    bg = [_facts(rng, n) for n in names[n_items:]]
    with (root / "corpus" / "shard-00000.jsonl").open("w") as fh:
        for _ in range(n_docs):
            fh.write(json.dumps({"text": _paragraph(rng.choice(bg), rng.randrange(3))}) + "\n")
    _tokenizer(
        root,
        [it.train_context for it in items]
        + [json.loads(x)["text"] for x in (root / "corpus" / "shard-00000.jsonl").open()],
    )
    return root


def _tokenizer(root, texts):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=400,
            special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    ).save_pretrained(root / "tokenizer")


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable) -> Path:
    """``build(folder)``'s path, built once per session: the xdist workers of one session share
    a folder beside their own temporary folders, and a lock makes the others wait for the first."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return build(tmp_path_factory.mktemp(name))
    shared = tmp_path_factory.getbasetemp().parent / "shared"
    shared.mkdir(exist_ok=True)
    folder, built = shared / name, shared / f"{name}.built"  # built: the result's relative path
    with FileLock(shared / f"{name}.lock"):
        if not built.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a build that failed half-way
            folder.mkdir()
            built.write_text(str(build(folder).relative_to(folder)))
    return folder / built.read_text()


@pytest.fixture(scope="session")
def toy_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_once(tmp_path_factory, "toy", lambda folder: make_toy_world(folder / "world"))


def _pretrain_toy_base(world: Path, folder: Path) -> Path:
    from factdyn.config import BaseConfig
    from factdyn.train.base import pretrain

    cfg = BaseConfig(
        hidden_size=64,
        layers=2,
        heads=4,
        intermediate_size=128,
        seq_len=64,
        batch_size=8,
        steps=60,
        lr=3e-3,
        warmup_steps=5,
        threads=2,
    )
    return pretrain(world, folder / "base", cfg)


@pytest.fixture(scope="session")
def toy_base(toy_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_once(
        tmp_path_factory, "base", lambda folder: _pretrain_toy_base(toy_world, folder)
    )


@pytest.fixture
def exits_2(monkeypatch, capsys):
    """Run ``factdyn ARGV`` through the real entry point; assert it ends in exit code 2 with
    one line on stderr, and return that line."""
    import sys

    from factdyn.cli import main

    def check(argv: list[str]) -> str:
        monkeypatch.setattr(sys, "argv", ["factdyn", *map(str, argv)])
        with pytest.raises(SystemExit) as e:
            main()
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("factdyn: error: ") and err.count("\n") == 1, err
        return err

    return check


# ---- the two tiers -----------------------------------------------------------------------

EXPENSIVE = frozenset({"toy_world", "toy_base"})  # what training reads, and what it built
SPAWNS = frozenset({"subprocess", "multiprocessing"})  # modules that start processes
SUITE = Path(__file__).parent


def _in_suite(obj: object) -> bool:
    """Whether ``obj`` (a function, class or module) is defined in a file of this test suite."""
    code = getattr(obj, "__code__", None)
    where = code.co_filename if code else getattr(obj, "__file__", None)
    if where is None and isinstance(obj, type):
        where = getattr(inspect.getmodule(obj), "__file__", None)
    return where is not None and Path(where).is_relative_to(SUITE)


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    """``code`` and the code of the functions, lambdas and comprehensions nested in it."""
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _home(obj: object) -> str:
    """The module ``obj`` is (a module) or comes from (``from subprocess import run``)."""
    home = obj.__name__ if isinstance(obj, types.ModuleType) else getattr(obj, "__module__", None)
    return home.split(".")[0] if isinstance(home, str) else ""


@dataclass
class Names:
    """What test code names (identifiers and the modules they come from, string constants),
    followed through the functions and classes of the suite that it names."""

    names: set[str] = field(default_factory=set)
    seen: set[int] = field(default_factory=set)

    def add(self, obj: object) -> Names:
        if callable(obj) and not isinstance(obj, type):
            obj = inspect.unwrap(getattr(obj, "__func__", obj))  # a method, a decorated test
        if id(obj) in self.seen or not _in_suite(obj):
            return self
        self.seen.add(id(obj))
        if isinstance(obj, (type, types.ModuleType)):
            return self
        codes = list(_codes(obj.__code__))
        names = {n for code in codes for n in code.co_names}
        strings = {k for code in codes for k in code.co_consts if isinstance(k, str)}
        named = [obj.__globals__[n] for n in names if n in obj.__globals__]
        named += [c.cell_contents for c in obj.__closure__ or ()]
        helpers = [m for m in named if isinstance(m, types.ModuleType) and _in_suite(m)]
        named += [getattr(m, n) for m in helpers for n in names if hasattr(m, n)]
        self.names |= names | strings | {n.split(".")[0] for n in names} | set(map(_home, named))
        for target in named:
            for member in vars(target).values() if isinstance(target, type) else (target,):
                self.add(member)
        return self


def _parameter_code(item: pytest.Item) -> Iterator[object]:
    """The functions the test's parameters hold: themselves, or their attributes."""
    for value in getattr(getattr(item, "callspec", None), "params", {}).values():
        yield value
        yield from getattr(value, "__dict__", {}).values()


def _expensive(name: str, item: pytest.Item, seen: set[str]) -> bool:
    """Whether fixture ``name``, as ``item`` would get it, is or requests one of EXPENSIVE."""
    if name in EXPENSIVE:
        return True
    seen.add(name)
    defs = item.session._fixturemanager.getfixturedefs(name, item) or ()
    return any(_expensive(a, item, seen) for d in defs for a in d.argnames if a not in seen)


def slow_because(item: pytest.Item) -> str | None:
    """Why the rule of this module's docstring marks ``item`` slow, or None."""
    if requested := sorted(EXPENSIVE.intersection(getattr(item, "fixturenames", ()))):
        return f"requests {', '.join(requested)}"
    asked = Names()
    for value in _parameter_code(item):
        asked.add(value)
    if asked := sorted(n for n in asked.names if _expensive(n, item, set())):
        return f"a parameter asks for {', '.join(asked)}"
    code = Names().add(getattr(item, "obj", None))
    info = getattr(item, "_fixtureinfo", None)
    for fixturedefs in info.name2fixturedefs.values() if info else ():
        for d in fixturedefs:
            code.add(d.func)
    if code.names & SPAWNS:
        return "starts a process"
    return None


# The longest tests, longest first (seconds measured in one `make test`, idle 2 cores). They run
# first, so that pytest-xdist, which hands out tests in collection order, deals them out one
# per worker while the short ones fill the gaps: the workers then end together instead of one
# running an end-to-end test alone at the end. Renaming one only loses its place in the queue.
LONGEST = (
    "tests/sweep/test_sweep.py::test_tiny_quick_grid_leaves_no_finding_not_testable",  # 132
    "tests/demo/test_demo.py::test_quick_demo_writes_report_and_summary",  # 93
    "tests/sweep/test_sweep.py::test_a_killed_sweep_rerun_gives_the_numbers_of_an_uninterrupted_slurm_one",  # noqa: E501  80
    "tests/train/test_experiment.py::test_kill_and_resume_gives_the_same_log_bit_for_bit",  # 74
    "tests/benchmarks/test_gpu_check.py::test_toy_run_measures_every_section",  # 40
    "tests/train/test_distributed.py::test_two_processes_match_one",  # 30 and 22
    "tests/sweep/test_sweep.py::test_interval_quick_grid_measures_and_predicts_the_threshold",  # 26
)


def _queue_place(item: pytest.Item) -> int:
    name = item.nodeid.split("[")[0]
    return LONGEST.index(name) if name in LONGEST else len(LONGEST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if slow_because(item) is not None:
            item.add_marker(pytest.mark.slow)
    items.sort(key=_queue_place)  # stable: the others keep their order


# ---- a time limit ------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("timeout"):
        config.addinivalue_line(
            "markers", "timeout(seconds): fail the test when its call runs longer (a hang)"
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """``@pytest.mark.timeout(seconds)`` without pytest-timeout: SIGALRM ends the call."""
    mark = item.get_closest_marker("timeout")
    if mark is None or item.config.pluginmanager.hasplugin("timeout"):
        return (yield)
    seconds = float(mark.args[0])

    def expire(signum: int, frame: object) -> None:
        pytest.fail(f"timeout: the test ran past {seconds:g} s", pytrace=False)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return (yield)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
