"""Where the project's own files are: the configs (``conf/``) and the studies (``sweeps/``).

A checkout keeps them at its top, where users edit and cite them; an installed package carries
them as ``dse/conf`` and ``dse/sweeps`` (setup.py). Nothing here imports the rest of dse.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CONF_DIR", "ROOT", "SWEEPS_DIR"]

ROOT = Path(__file__).resolve().parents[1]


def _data_dir(name: str) -> Path:
    inside = Path(__file__).resolve().parent / name
    return inside if inside.is_dir() else ROOT / name


CONF_DIR = _data_dir("conf")
SWEEPS_DIR = _data_dir("sweeps")
