"""factdyn: measure how language models acquire and forget factual knowledge in pretraining."""

from factdyn.data.items import DEPTHS, KnowledgeItem, Probe, load_items, save_items
from factdyn.errors import DataError
from factdyn.rundir import Run, load_run

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
__version__ = "0.1.0"
