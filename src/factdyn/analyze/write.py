"""An :class:`~factdyn.analyze.result.Analysis` on disk: ``summary.json``, one CSV per table and
``replicates.parquet``.

``summary.json`` is ``{"schema_version": 1, scenario: {depth: {field: value}}, "_settings":
{...}, "_options": {...}, "_sources": [...], "_run_info": {...}, "_config": {...},
"_intervals": [...]}``: the fields of :class:`~factdyn.analyze.result.Population` after
scenario and depth, how the numbers were computed (:class:`~factdyn.analyze.result.Settings`),
the options that were asked for (:class:`~factdyn.analyze.options.AnalysisOptions`), the run
directories analysed, what their ``meta.json`` says of the training, their configuration and
the interval experiment's curves. NaN and infinite values are null (strict JSON).
``schema_version`` changes when a key is renamed or removed or its meaning changes; added keys
keep it. :func:`read_summary` reads the document; :func:`read_analysis` reads the whole
folder back into the :class:`~factdyn.analyze.result.Analysis` that was written, so that
``report``, ``simulate`` and ``compare`` show what ``analyze`` computed without analysing again.

``replicates.parquet`` holds the item bootstrap's replicates behind the ``*_ci`` of
``summary.json``, so that a number computed later from several of them (a prediction from a
and b together) gets its interval from the joint draws, not from the marginal intervals: one
row per scenario × depth × replicate (:data:`REPLICATES_SCHEMA`), in the units of
``summary.json`` (a and b in percent for a ``--reference`` analysis). Replicate j
of the depths of one scenario comes from one draw of items, in float64, so that a comparison computed from
the file equals the one computed in memory. An analysis without replicates
(``--resamples 0``) writes the file with no rows, so that a rewritten folder never keeps an
older analysis's replicates. :func:`read_replicates` reads it back.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from factdyn.analyze.bootstrap import Replicates
from factdyn.analyze.estimators import estimators_table
from factdyn.analyze.intervals import IntervalCurve, intervals_table
from factdyn.analyze.options import AnalysisOptions
from factdyn.analyze.result import AlternativeFit, Analysis, Population, RunInfo, Settings
from factdyn.errors import DataError
from factdyn.files import json_safe, output_dir, write_json_atomic

SCHEMA_VERSION = 1
TABLES = (
    *("trajectories", "control_drift", "effectivity", "acquisition", "retainability"),
    *("greedy", "per_probe", "residual_drift"),
)
REPLICATES = "replicates.parquet"
# the per-injection effectivities are one list per row (as in summary.json): scenarios differ
# in their number of injections; DuckDB reads it as a LIST, pandas as one array per row
REPLICATES_SCHEMA = pa.schema(
    [
        ("scenario", pa.string()),
        ("depth", pa.string()),
        ("replicate", pa.int32()),
        ("effectivity", pa.float64()),
        ("effectivity_per_injection", pa.list_(pa.float64())),
        ("decay_constant", pa.float64()),
        ("intercept", pa.float64()),
        ("r2", pa.float64()),
        ("x_intercept_tokens", pa.float64()),
    ]
)
# what summary.json holds besides the populations, each written by :func:`summary_document`
EXTRA_KEYS = (
    *("_settings", "_options", "_sources", "_run_info", "_config", "_intervals"),
    "_categories",
)


def summary_document(analysis: Analysis) -> dict:
    """The content of ``summary.json`` (before the strict-JSON conversion)."""
    return {
        "schema_version": SCHEMA_VERSION,
        **analysis.summary,
        "_settings": analysis.settings.as_dict(),
        "_options": analysis.options.as_dict(),
        "_sources": list(analysis.sources),
        "_run_info": dataclasses.asdict(analysis.run_info),
        "_config": analysis.config,
        "_intervals": [dataclasses.asdict(c) for c in analysis.intervals],
        # the tables' categorical columns (scenario, depth) with their categories, in the
        # order figures and tables show them: a CSV keeps only the values
        "_categories": {name: _categories(getattr(analysis, name)) for name in TABLES},
    }


def _categories(table: pd.DataFrame) -> dict[str, list[str]]:
    return {
        str(col): [str(c) for c in table[col].cat.categories]
        for col in table.columns
        if isinstance(table[col].dtype, pd.CategoricalDtype)
    }


def settings_table(analysis: Analysis) -> pd.DataFrame:
    """The settings as key/value rows, each value as JSON (``settings.csv``)."""
    rows = [(k, json.dumps(json_safe(v))) for k, v in analysis.settings.as_dict().items()]
    return pd.DataFrame(rows, columns=["key", "value"])


def write_analysis(analysis: Analysis, out_dir: str | Path) -> Path:
    """Write summary.json, settings.csv, one CSV per table and replicates.parquet, each file
    whole; only these files of ``out_dir`` are replaced (see :func:`factdyn.files.output_dir`)."""
    out_dir = Path(out_dir)
    with output_dir(out_dir) as tmp:
        write_json_atomic(tmp / "summary.json", summary_document(analysis))
        settings_table(analysis).to_csv(tmp / "settings.csv", index=False)
        for name in TABLES:
            getattr(analysis, name).to_csv(tmp / f"{name}.csv", index=False)
        estimators_table(analysis.populations).to_csv(tmp / "estimators.csv", index=False)
        if analysis.intervals:  # a run with repeated exposures at one fixed interval
            intervals_table(list(analysis.intervals)).to_csv(tmp / "intervals.csv", index=False)
        # only the names dictionary-encoded: the replicates' floats hardly repeat
        pq.write_table(
            replicates_table(analysis),
            tmp / REPLICATES,
            compression="zstd",
            use_dictionary=["scenario", "depth"],
        )
    return out_dir


def replicates_table(analysis: Analysis) -> pa.Table:
    """The populations' bootstrap replicates as :data:`REPLICATES_SCHEMA` rows (none for a
    population without replicates)."""
    tables = [
        pa.table(
            {
                "scenario": [p.scenario] * len(r.decay_constant),
                "depth": [p.depth] * len(r.decay_constant),
                "replicate": np.arange(len(r.decay_constant)),
                "effectivity": r.effectivity,
                "effectivity_per_injection": list(r.effectivity_per_injection),
                "decay_constant": r.decay_constant,
                "intercept": r.intercept,
                "r2": r.r2,
                "x_intercept_tokens": r.x_intercept_tokens,
            },
            schema=REPLICATES_SCHEMA,
        )
        for p in analysis.populations
        if (r := p.replicates) is not None
    ]
    return pa.concat_tables(tables) if tables else REPLICATES_SCHEMA.empty_table()


def summary_path(path: str | Path) -> Path:
    """The ``summary.json`` an analysis folder (or the file itself) stands for."""
    path = Path(path)
    return path / "summary.json" if path.is_dir() else path


def read_summary(path: str | Path) -> dict:
    """The document of a written analysis's ``summary.json`` (``path``: the analysis folder or
    the file itself), nulls left as None; one owner reads the format it writes, and refuses a
    ``schema_version`` it does not know rather than misread renamed keys."""
    path = Path(path)
    file = summary_path(path)
    if not file.is_file():
        where = "no such folder or file" if not path.exists() else "no summary.json there"
        raise DataError(f"{file}: {where} (write an analysis with factdyn analyze)")
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{file}: not valid JSON ({e.msg}, line {e.lineno})") from None
    except UnicodeDecodeError:
        raise DataError(f"{file}: not valid JSON (not UTF-8 text)") from None
    if not isinstance(doc, dict):
        raise DataError(f"{file}: not an analysis summary (a JSON object is expected)")
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        raise DataError(f"{file}: schema_version {version!r}; this factdyn reads {SCHEMA_VERSION}")
    return doc


def read_replicates(path: str | Path) -> pd.DataFrame | None:
    """The ``replicates.parquet`` of a written analysis (``path``: its folder or summary.json)
    as a table with :data:`REPLICATES_SCHEMA`'s columns, ``effectivity_per_injection`` one
    array per row; None when there is no such file (an analysis written before factdyn kept
    its replicates)."""
    file = summary_path(path).with_name(REPLICATES)
    if not file.exists():
        return None

    def damaged(reason: str) -> DataError:
        return DataError(f"{file}: damaged, cannot be read ({reason})")

    try:
        table = pq.read_table(file)
        missing = [n for n in REPLICATES_SCHEMA.names if n not in table.column_names]
        if missing:
            raise damaged(f"no column {', '.join(missing)}")
        table = table.select(REPLICATES_SCHEMA.names).cast(REPLICATES_SCHEMA)
    except DataError:
        raise
    except (pa.ArrowException, ValueError, OSError) as e:
        if isinstance(e, OSError) and e.filename is not None:  # the path's, not the content's
            raise
        raise damaged(" ".join(str(e).split())[:160] or type(e).__name__) from None
    return table.to_pandas()


def _restored(value: object) -> object:
    """A value of summary.json as the analysis held it: lists as tuples, null as NaN."""
    if value is None:
        return math.nan
    if isinstance(value, list):
        return tuple(_restored(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _restored(v) for k, v in value.items()}
    return value


def _typed(cls, values: Mapping, origin: str, keep_null: tuple[str, ...] = ()):
    """``cls(**values)`` over its constructor's fields, values restored; one line when the
    file does not hold what ``cls`` needs (a damaged or hand-edited summary.json)."""
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    missing = [n for n in names if n not in values]
    if not isinstance(values, Mapping) or missing:
        raise DataError(f"{origin}: damaged, no field {', '.join(missing) or '(not an object)'}")
    return cls(**{n: values[n] if n in keep_null else _restored(values[n]) for n in names})


def _table(file: Path, categories: Mapping[str, list]) -> pd.DataFrame:
    """A table of the folder, its categorical columns restored; a table written without rows
    or columns reads back empty."""
    if not file.is_file():
        raise DataError(f"{file}: missing from the analysis folder; rerun factdyn analyze")
    try:
        table = pd.read_csv(file)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    for col, cats in categories.items():
        if col in table.columns:
            table[col] = pd.Categorical(table[col].astype(str), categories=cats)
    return table


_ALL_RUN_INFO = tuple(f.name for f in dataclasses.fields(RunInfo))  # each may be null


def read_analysis(path: str | Path) -> Analysis:
    """The :class:`~factdyn.analyze.result.Analysis` :func:`write_analysis` wrote to ``path``
    (the folder or its summary.json), bootstrap replicates included, so that every interval
    and verdict computed from it equals the one computed when it was written. Non-finite
    numbers come back as NaN (summary.json stores them as null)."""
    file = summary_path(path)
    doc = read_summary(path)
    if missing := [k for k in EXTRA_KEYS if k not in doc]:
        raise DataError(
            f"{file}: written by an older factdyn (no {missing[0]}); "
            "rerun factdyn analyze to read it here"
        )
    options = AnalysisOptions.from_dict(doc["_options"], f"{file}: _options")
    if (
        isinstance(doc["_settings"], Mapping)
        and "residual_drift_zero_share_range" not in doc["_settings"]
    ):
        raise DataError(
            f"{file}: written by an older factdyn (no residual drift); "
            "rerun factdyn analyze to read it here"
        )
    settings = _typed(Settings, doc["_settings"], f"{file}: _settings", keep_null=("status",))
    table = read_replicates(file)
    if table is None:
        raise DataError(f"{file.with_name(REPLICATES)}: missing; rerun factdyn analyze")
    draws = dict(list(table.groupby(["scenario", "depth"], sort=False)))
    populations = []
    for scenario, depths in doc.items():
        if scenario in EXTRA_KEYS or not isinstance(depths, dict):
            continue
        for depth, entry in depths.items():
            origin = f"{file}: {scenario}/{depth}"
            fields = dict(entry, scenario=scenario, depth=depth)
            alternatives = {
                name: _typed(AlternativeFit, fit, f"{origin}: alternatives.{name}")
                for name, fit in (entry.get("alternatives") or {}).items()
            }
            population = _typed(
                Population, fields | {"alternatives": {}, "replicates": None}, origin
            )
            where = f"{file.with_name(REPLICATES)}: {scenario}/{depth}"
            rows = draws.pop((scenario, depth), None)
            replicates = _replicates(rows, population, settings.resamples, where)
            population = dataclasses.replace(
                population, alternatives=alternatives, replicates=replicates
            )
            populations.append(population)
    if draws:
        scenario, depth = next(iter(draws))
        raise DataError(
            f"{file.with_name(REPLICATES)}: {scenario}/{depth}: no such population in "
            "summary.json (not written with it: rerun factdyn analyze)"
        )
    folder = file.parent
    return Analysis(
        populations=tuple(populations),
        settings=settings,
        **{
            name: _table(folder / f"{name}.csv", doc["_categories"].get(name, {}))
            for name in TABLES
        },
        config=doc["_config"],
        run_info=_typed(RunInfo, doc["_run_info"], f"{file}: _run_info", keep_null=_ALL_RUN_INFO),
        intervals=tuple(
            _typed(IntervalCurve, c, f"{file}: _intervals[{k}]")
            for k, c in enumerate(doc["_intervals"])
        ),
        options=options,
        sources=tuple(str(s) for s in doc["_sources"]),
    )


def _replicates(
    rows: pd.DataFrame | None, p: Population, resamples: int, where: str
) -> Replicates | None:
    """A population's replicates from its rows of replicates.parquet (None: it has none),
    checked to be those of its summary: as many as its resamples, as many gains each."""
    if rows is None or not len(rows):
        return None
    again = "not written with this summary.json: rerun factdyn analyze"
    if len(rows) != resamples:
        raise DataError(
            f"{where}: {len(rows)} replicates, summary.json {resamples} resamples ({again})"
        )
    rows = rows.sort_values("replicate")
    per_injection = [np.asarray(v, dtype=np.float64) for v in rows["effectivity_per_injection"]]
    widths = {len(v) for v in per_injection}
    if widths != {len(p.effectivity_per_injection)}:
        have = "/".join(map(str, sorted(widths)))
        raise DataError(f"{where}: {have} gains per replicate, not summary.json's ({again})")
    return Replicates(
        effectivity=rows["effectivity"].to_numpy(np.float64),
        effectivity_per_injection=np.stack(per_injection),
        decay_constant=rows["decay_constant"].to_numpy(np.float64),
        intercept=rows["intercept"].to_numpy(np.float64),
        r2=rows["r2"].to_numpy(np.float64),
        x_intercept_tokens=rows["x_intercept_tokens"].to_numpy(np.float64),
    )
