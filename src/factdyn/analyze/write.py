"""An :class:`~factdyn.analyze.result.Analysis` on disk: ``summary.json`` and one CSV per table.

``summary.json`` is ``{"schema_version": 1, scenario: {depth: {field: value}}, "_settings":
{...}}``: the fields of :class:`~factdyn.analyze.result.Population` after scenario and depth,
and how the numbers were computed (:class:`~factdyn.analyze.result.Settings`). NaN and
infinite values are null (strict JSON). ``schema_version`` changes when a key is renamed or
removed or its meaning changes; added keys keep it. :func:`read_summary` reads it back for
the commands that work from a written analysis (``factdyn simulate``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

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


def summary_document(analysis: Analysis) -> dict:
    """The content of ``summary.json`` (before the strict-JSON conversion)."""
    settings = analysis.settings.as_dict()
    return {"schema_version": SCHEMA_VERSION, **analysis.summary, "_settings": settings}


def settings_table(analysis: Analysis) -> pd.DataFrame:
    """The settings as key/value rows, each value as JSON (``settings.csv``)."""
    rows = [(k, json.dumps(json_safe(v))) for k, v in analysis.settings.as_dict().items()]
    return pd.DataFrame(rows, columns=["key", "value"])


def write_analysis(analysis: Analysis, out_dir: str | Path) -> Path:
    """Write summary.json, settings.csv and one CSV per table, each file whole; only these
    files of ``out_dir`` are replaced (see :func:`factdyn.files.output_dir`)."""
    out_dir = Path(out_dir)
    with output_dir(out_dir) as tmp:
        write_json_atomic(tmp / "summary.json", summary_document(analysis))
        settings_table(analysis).to_csv(tmp / "settings.csv", index=False)
        for name in TABLES:
            getattr(analysis, name).to_csv(tmp / f"{name}.csv", index=False)
        estimators_table(analysis.populations).to_csv(tmp / "estimators.csv", index=False)
        if analysis.intervals:  # a run with repeated exposures at one fixed interval
            intervals_table(list(analysis.intervals)).to_csv(tmp / "intervals.csv", index=False)
    return out_dir


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
