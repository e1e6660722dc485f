"""``python -m factdyn`` (what ``torchrun -m factdyn`` runs)."""

from factdyn.cli import main

main()
