"""``python -m dse.search.pareto RESULTS -o col:min -o col:max``: the Pareto front,
hypervolume and front plot of a results table (DESIGN.md §3).

RESULTS is a results directory (``points.parquet`` of ``python -m dse``, numbered multirun
jobs, ``history.parquet`` of ``python -m dse.search``) or a Parquet/CSV table; the command
writes ``pareto.csv``, ``pareto.json`` (hypervolume and its reference point) and
``pareto.png``.

The fronts and hypervolume are :mod:`dse.pareto`'s and the figure is
:func:`dse.report.plots.plot_front`; this module re-exports them (:func:`pareto_mask`,
:func:`pareto_front`, :func:`hypervolume`, :func:`default_reference`, :func:`plot_front`) as
the Python side of the command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dse.errors import ConfigError
from dse.pareto import (
    REF_MARGIN,
    default_reference,
    feasible_rows,
    hypervolume,
    is_numeric,
    pareto_front,
    pareto_mask,
)
from dse.report.load import load_run
from dse.report.plots import plot_front
from dse.results import atomic_write_text

__all__ = [
    "REF_MARGIN",
    "default_reference",
    "hypervolume",
    "load_table",
    "main",
    "pareto_front",
    "pareto_mask",
    "plot_front",
]


def load_table(path: str | os.PathLike) -> tuple[pd.DataFrame, dict]:
    """A results table and the run's own description of it (its ``summary.json`` or
    ``search.json``): :func:`dse.report.load.load_run` on a run directory, a multirun
    directory (with a ``job`` column), a directory of shard runs or a Parquet/CSV table.
    Raises :class:`ConfigError` naming the path."""
    run = load_run(path)
    return run.table, run.summary


def _default_objectives(df: pd.DataFrame, meta: Mapping) -> dict[str, str]:
    """The run's own objective, against the area model's total when the table has it."""
    obj = meta.get("objective")
    if isinstance(obj, Mapping):  # summary.json of python -m dse
        name, minimize = obj.get("metric"), obj.get("minimize", True)
    else:  # search.json of python -m dse.search
        name, minimize = obj, meta.get("minimize", True)
    out = {}
    if name in df.columns:
        out[name] = "min" if minimize else "max"
    if "total_mm2" in df.columns and "total_mm2" not in out:
        out["total_mm2"] = "min"
    return out


def _parse_objectives(items: Sequence[str], source: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        col, sep, direction = item.rpartition(":")
        if not sep or not col or direction not in ("min", "max"):
            raise ConfigError(source, "--objective", "COLUMN:min or COLUMN:max", item)
        out[col] = direction
    return out


def _feasible(df: pd.DataFrame) -> np.ndarray:
    ok = feasible_rows(df)
    if "feasible" in df.columns:
        ok &= df["feasible"].fillna(False).to_numpy(dtype=bool)
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dse.search.pareto``: the Pareto front, hypervolume and plot of a results
    table. Bad input prints one line and exits 2."""
    ap = argparse.ArgumentParser(
        prog="python -m dse.search.pareto",
        description="Pareto front, exact hypervolume and front plot of a dse results table.",
    )
    ap.add_argument("results", help="run directory, multirun directory, or .parquet/.csv table")
    ap.add_argument(
        "-o",
        "--objective",
        action="append",
        default=[],
        metavar="COLUMN:min|max",
        help="an objective (repeat; default: the run's objective and total_mm2 when present)",
    )
    ap.add_argument(
        "--ref",
        type=float,
        nargs="+",
        help="hypervolume reference point, one value per objective (default: each objective's "
        f"worst feasible value moved {REF_MARGIN * 100:g}%% of its range further)",
    )
    ap.add_argument(
        "--out", help="where to write pareto.csv/.json/.png (default: beside the table)"
    )
    ap.add_argument("--top", type=int, default=15, help="front rows printed (default 15)")
    args = ap.parse_args(argv)
    try:
        summary = _pareto_command(args)
    except ConfigError as err:
        print(f"dse: error: {err.oneline()}", file=sys.stderr)
        return 2
    return 0 if summary["front_points"] else 1


def _pareto_command(args: argparse.Namespace) -> dict:
    from rich.console import Console
    from rich.table import Table

    path = Path(args.results)
    df, meta = load_table(path)
    objectives = _parse_objectives(args.objective, "command line") or _default_objectives(df, meta)
    if len(objectives) < 2:
        numeric = [str(c) for c in df.columns if is_numeric(df[c])]
        raise ConfigError(
            "command line",
            "--objective",
            f"two or more objectives COLUMN:min|max (numeric columns: {numeric})",
            list(objectives) or None,
        )
    ok = _feasible(df)
    try:
        front = pareto_front(df.loc[ok], objectives)
    except ConfigError as err:  # name the table, not the function
        raise ConfigError(str(path), err.key, err.expected, err.got) from None
    cols = list(objectives)
    sense = [objectives[c] == "min" for c in cols]
    vals = df.loc[ok, cols].to_numpy(dtype=np.float64, na_value=np.nan)
    vals = vals[~np.isnan(vals).any(axis=1)]
    if args.ref is not None:
        if len(args.ref) != len(cols):
            raise ConfigError(
                "command line", "--ref", f"{len(cols)} values (one per objective)", args.ref
            )
        ref = np.asarray(args.ref, dtype=np.float64)
    else:
        ref = default_reference(vals, sense)
    fv = front[cols].to_numpy(dtype=np.float64)
    hv = hypervolume(fv, ref, sense) if len(fv) else 0.0
    out = Path(args.out) if args.out else (path if path.is_dir() else path.parent)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "pareto.csv", front.to_csv(index=False))
    summary = {
        "table": str(path),
        "objectives": objectives,
        "rows": int(len(df)),
        "feasible_rows": int(ok.sum()),
        "front_points": int(len(front)),
        "hypervolume": hv,
        "reference_point": dict(zip(cols, ref.tolist(), strict=True)),
        "reference_rule": "--ref" if args.ref is not None else f"worst + {REF_MARGIN} x range",
        "hypervolume_units": " x ".join(cols),
    }
    atomic_write_text(out / "pareto.json", json.dumps(summary, indent=2) + "\n")
    feas = df.loc[ok]
    plot_front(
        feas,
        cols[0],
        cols[1],
        front,
        out / "pareto.png",
        minimize_x=sense[0],
        title=f"{cols[1]} ({objectives[cols[1]]}) vs {cols[0]} ({objectives[cols[0]]})"
        + (f"; front over {len(cols)} objectives" if len(cols) > 2 else ""),
    )
    console = Console()
    t = Table(title=f"Pareto front: {len(front):,} of {int(ok.sum()):,} feasible rows")
    show = [c for c in ("point_id", "eval") if c in front.columns][:1]
    show += [c for c in _varying(front) if c not in cols and ("." in c or c in _LABELS)]
    show = show[:7] + cols
    for c in show:
        t.add_column(c.rsplit(".", 1)[-1], justify="right" if c in cols else "left")
    for _, row in front.head(args.top).iterrows():
        t.add_row(*(_fmt(row[c]) for c in show))
    console.print(t)
    if len(front) > args.top:
        console.print(f"... {len(front) - args.top} more rows in pareto.csv")
    console.print(
        f"hypervolume {hv:.6g} ({summary['hypervolume_units']}) to reference "
        + ", ".join(f"{c}={v:.6g}" for c, v in summary["reference_point"].items())
    )
    console.print(f"wrote {out}/pareto.csv, pareto.json, pareto.png")
    return summary


_LABELS = ("pim", "workload", "host", "job")


def _varying(df: pd.DataFrame) -> list[str]:
    """Parameter-like columns that take more than one value on the front."""
    return [c for c in df.columns if df[c].nunique(dropna=False) > 1]


def _fmt(v) -> str:
    if isinstance(v, float | np.floating):
        return f"{v:.6g}"
    return str(v)


if __name__ == "__main__":
    sys.exit(main())
