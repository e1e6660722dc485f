"""Temporary re-exports for ``factdyn.demo`` until it imports the new modules; to be deleted."""

from factdyn.analyze.populations import analyze_run  # noqa: F401
from factdyn.analyze.write import write_analysis  # noqa: F401
from factdyn.report.text import format_summary  # noqa: F401
