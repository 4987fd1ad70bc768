"""Trace writers and runners for external cycle-level simulators (CENT's AiM, AttAcc's HBM3-PIM,
NeuPIMs' NewtonSim, DRAMsim3)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

__all__ = ["write_corpus"]


def write_corpus(path: str | Path, rows: Iterable[Mapping], columns: Sequence[str]) -> int:
    """Write measured rows as a corpus CSV (missing columns empty); → rows written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns))
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in columns})
            n += 1
    return n
