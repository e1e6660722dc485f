"""The package's shape, kept by tests: imports flow one way down the pipeline and never in a
circle; no module over 400 lines and no function over 80.

The import map is read from the source (every ``import`` and ``from … import`` of every module,
those inside functions included), not from a running interpreter. ``from factdyn import
progress`` is an arrow to the module ``factdyn.progress``; ``from factdyn.rundir import Run`` one
to ``factdyn.rundir``. The package root ``factdyn/__init__.py`` is the public facade: it may
import anything, and nothing imports it.

The last tests plant a circle, an upward import, a facade import and oversized code in a
throwaway package, so that the checks are seen to fail for the right reason.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "factdyn"
# The pipeline, low to high: a module may import its own layer and those below, never above.
LAYERS = (
    ("errors", "files", "progress", "cache", "config", "rundir", "runcheck", "version", "budget"),
    ("data",),
    ("inject",),
    ("score",),
    ("train", "integrations"),
    ("analyze",),
    ("report",),
    ("sweep", "demo"),
    ("cli",),
    ("__main__",),
)
LAYER = {name: rank for rank, names in enumerate(LAYERS) for name in names}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80  # from the def line to the last line, docstring included


@dataclass(frozen=True)
class Edge:
    """One import arrow: ``importer`` imports ``imported`` at ``line``."""

    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer} -> {self.imported} (line {self.line})"


def module_files(src: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` under ``src`` by dotted name (a package by its own name)."""
    out = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _targets(node: ast.Import | ast.ImportFrom, name: str, is_package: bool) -> list[str]:
    """The dotted names ``node`` imports, relative imports resolved against module ``name``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        here = name.split(".") if is_package else name.split(".")[:-1]
        here = here[: len(here) - node.level + 1]
        base = ".".join([*here, base] if base else here)
    return [f"{base}.{alias.name}" for alias in node.names]


def _resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The module ``target`` names: itself, else the longest dotted prefix that is a module
    (``factdyn.rundir.Run`` -> ``factdyn.rundir``)."""
    while target not in modules and "." in target:
        target = target.rsplit(".", 1)[0]
    return target if target in modules else None


def import_edges(src: Path, package: str) -> list[Edge]:
    """Every import arrow between two modules of ``package``."""
    modules = module_files(src, package)
    edges = set()
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _targets(node, name, path.name == "__init__.py"):
                imported = _resolve(target, modules)
                if imported is not None and imported != name:
                    edges.add(Edge(name, imported, node.lineno))
    return sorted(edges, key=lambda e: (e.importer, e.imported, e.line))


def _stage(module: str) -> str:
    """The pipeline stage of a module: its first name below the package."""
    return module.split(".")[1]


def upward_imports(edges: list[Edge], package: str) -> list[str]:
    """Each arrow that climbs back up ``LAYERS``, and each module that has no layer."""
    out = []
    for e in edges:
        if package in (e.importer, e.imported) or _stage(e.importer) == _stage(e.imported):
            continue
        low, high = LAYER.get(_stage(e.importer)), LAYER.get(_stage(e.imported))
        if low is None or high is None:
            stage = _stage(e.importer) if low is None else _stage(e.imported)
            out.append(f"{e}: {package}.{stage} has no layer in LAYERS")
        elif high > low:
            out.append(f"{e}: climbs from layer {low} to layer {high}")
    return sorted(set(out))


def facade_imports(edges: list[Edge], package: str) -> list[str]:
    """Each arrow into the package root: its facade, which no module of its own may import."""
    return [
        f"{e}: imports the facade {package}/__init__.py" for e in edges if e.imported == package
    ]


def circles(edges: list[Edge]) -> list[str]:
    """Each set of modules that import one another in a circle, with the arrows among them."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.importer, set()).add(e.imported)
    out = []
    for group in _strongly_connected(graph):
        among = [str(e) for e in edges if e.importer in group and e.imported in group]
        out.append(f"a circle of {len(group)} modules: " + "; ".join(among))
    return out


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """The groups of two or more nodes that reach one another (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while not group or node not in group:
                group.add(stack.pop())
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def long_modules(src: Path, package: str) -> list[str]:
    out = []
    for path in module_files(src, package).values():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            out.append(f"{path.relative_to(src)}: {lines} lines (at most {MAX_MODULE_LINES})")
    return out


def long_functions(src: Path, package: str) -> list[str]:
    out = []
    for path in module_files(src, package).values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    where = f"{path.relative_to(src)}:{node.lineno} {node.name}"
                    out.append(f"{where}: {lines} lines (at most {MAX_FUNCTION_LINES})")
    return out


def _listed(problems: list[str]) -> str:
    return f"{len(problems)} found:\n" + "\n".join(problems)


# ---- the package -------------------------------------------------------------------------


def test_imports_flow_down_the_pipeline():
    problems = upward_imports(import_edges(SRC, PACKAGE), PACKAGE)
    assert not problems, _listed(problems)


def test_no_module_imports_the_facade():
    problems = facade_imports(import_edges(SRC, PACKAGE), PACKAGE)
    assert not problems, _listed(problems)


def test_no_modules_import_one_another_in_a_circle():
    problems = circles(import_edges(SRC, PACKAGE))
    assert not problems, _listed(problems)


def test_no_module_is_over_400_lines():
    problems = long_modules(SRC, PACKAGE)
    assert not problems, _listed(problems)


def test_no_function_is_over_80_lines():
    problems = long_functions(SRC, PACKAGE)
    assert not problems, _listed(problems)


# ---- the checks catch what they promise to -----------------------------------------------


def _plant(src: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return src


PLANTED = {
    "pkg/__init__.py": "from pkg.analyze.fit import fit\n",
    "pkg/errors.py": "",
    "pkg/progress.py": "from pkg.errors import *\n",
    "pkg/train/__init__.py": "",
    "pkg/train/loop.py": (
        "from pkg import progress\n"  # the module progress: allowed
        "from ..errors import *\n"  # relative, allowed
        "def run():\n"
        "    from pkg.analyze import fit\n"  # inside a function: counts, and climbs
    ),
    "pkg/analyze/__init__.py": "",
    "pkg/analyze/fit.py": "from . import pool\ndef fit(): ...\n",
    "pkg/analyze/pool.py": "import pkg.analyze.fit\n",  # back to fit: a circle
    "pkg/report/page.py": "from pkg import load\n",  # a name of the facade
}


def test_planted_package_edges_are_resolved_as_documented(tmp_path):
    edges = {(e.importer, e.imported) for e in import_edges(_plant(tmp_path, PLANTED), "pkg")}
    assert edges == {
        ("pkg", "pkg.analyze.fit"),
        ("pkg.progress", "pkg.errors"),
        ("pkg.train.loop", "pkg.progress"),
        ("pkg.train.loop", "pkg.errors"),
        ("pkg.train.loop", "pkg.analyze.fit"),
        ("pkg.analyze.fit", "pkg.analyze.pool"),
        ("pkg.analyze.pool", "pkg.analyze.fit"),
        ("pkg.report.page", "pkg"),
    }


def test_a_planted_upward_import_is_caught(tmp_path):
    edges = import_edges(_plant(tmp_path, PLANTED), "pkg")
    assert upward_imports(edges, "pkg") == [
        "pkg.train.loop -> pkg.analyze.fit (line 4): climbs from layer 4 to layer 5"
    ]


def test_a_planted_facade_import_is_caught(tmp_path):
    edges = import_edges(_plant(tmp_path, PLANTED), "pkg")
    assert facade_imports(edges, "pkg") == [
        "pkg.report.page -> pkg (line 1): imports the facade pkg/__init__.py"
    ]


def test_a_planted_circle_is_caught(tmp_path):
    edges = import_edges(_plant(tmp_path, PLANTED), "pkg")
    assert circles(edges) == [
        "a circle of 2 modules: pkg.analyze.fit -> pkg.analyze.pool (line 1); "
        "pkg.analyze.pool -> pkg.analyze.fit (line 1)"
    ]


def test_a_module_without_a_layer_is_named(tmp_path):
    files = {"pkg/__init__.py": "", "pkg/errors.py": "", "pkg/extras.py": "import pkg.errors\n"}
    edges = import_edges(_plant(tmp_path, files), "pkg")
    assert upward_imports(edges, "pkg") == [
        "pkg.extras -> pkg.errors (line 1): pkg.extras has no layer in LAYERS"
    ]


def test_planted_oversized_code_is_caught(tmp_path):
    body = "".join(f"    x{k} = {k}\n" for k in range(80))  # 81 lines with its def
    files = {
        "pkg/__init__.py": "",
        "pkg/short.py": "def ok():\n" + body[: body.index("    x79")],
        "pkg/long.py": "def long():\n" + body + "\n" * (MAX_MODULE_LINES - 80),
    }
    src = _plant(tmp_path, files)
    assert long_functions(src, "pkg") == ["pkg/long.py:1 long: 81 lines (at most 80)"]
    assert long_modules(src, "pkg") == ["pkg/long.py: 401 lines (at most 400)"]
