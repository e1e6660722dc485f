"""An :class:`~factdyn.analyze.result.Analysis` on disk: ``summary.json``, one CSV per table and
``replicates.parquet``.

``summary.json`` is ``{"schema_version": 1, scenario: {depth: {field: value}}, "_settings":
{...}}``: the fields of :class:`~factdyn.analyze.result.Population` after scenario and depth,
and how the numbers were computed (:class:`~factdyn.analyze.result.Settings`). NaN and
infinite values are null (strict JSON). ``schema_version`` changes when a key is renamed or
removed or its meaning changes; added keys keep it. :func:`read_summary` reads it back for
the commands that work from a written analysis (``factdyn simulate``).

``replicates.parquet`` holds the item bootstrap's replicates behind the ``*_ci`` of
``summary.json``, so that a number computed later from several of them (a prediction from a
and b together) gets its interval from the joint draws, not from the marginal intervals: one
row per scenario × depth × replicate (:data:`REPLICATES_SCHEMA`), in the units of
``summary.json`` (a and b in percent for a ``--reference`` analysis), float32. Replicate j
of the depths of one scenario comes from one draw of items. An analysis without replicates
(``--resamples 0``) writes the file with no rows, so that a rewritten folder never keeps an
older analysis's replicates. :func:`read_replicates` reads it back.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from factdyn.analyze.estimators import estimators_table
from factdyn.analyze.intervals import intervals_table
from factdyn.analyze.result import Analysis
from factdyn.errors import DataError
from factdyn.files import json_safe, output_dir, write_json_atomic

SCHEMA_VERSION = 1
TABLES = (
    *("trajectories", "control_drift", "effectivity", "acquisition", "retainability"),
    *("greedy", "per_probe"),
)
REPLICATES = "replicates.parquet"
# the per-injection effectivities are one list per row (as in summary.json): scenarios differ
# in their number of injections; DuckDB reads it as a LIST, pandas as one array per row
REPLICATES_SCHEMA = pa.schema(
    [
        ("scenario", pa.string()),
        ("depth", pa.string()),
        ("replicate", pa.int32()),
        ("effectivity", pa.float32()),
        ("effectivity_per_injection", pa.list_(pa.float32())),
        ("decay_constant", pa.float32()),
        ("intercept", pa.float32()),
        ("r2", pa.float32()),
    ]
)


def summary_document(analysis: Analysis) -> dict:
    """The content of ``summary.json`` (before the strict-JSON conversion)."""
    settings = analysis.settings.as_dict()
    return {"schema_version": SCHEMA_VERSION, **analysis.summary, "_settings": settings}


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
        # only the names dictionary-encoded: the replicates' floats hardly repeat, and a
        # dictionary of them made the demo's file 1.5 times as large (367 KB, not 245 KB)
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
