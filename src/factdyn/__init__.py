"""factdyn: measure how language models acquire and forget factual knowledge in pretraining."""

from factdyn.data.items import DEPTHS, KnowledgeItem, Probe, load_items, save_items
from factdyn.errors import DataError
from factdyn.rundir import Run, load_run
from factdyn.version import __version__ as __version__

__all__ = [
    "DEPTHS",
    "DataError",
    "KnowledgeItem",
    "Probe",
    "Run",
    "load_items",
    "load_run",
    "save_items",
]
