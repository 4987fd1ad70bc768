"""``python -m dse.report RESULTS [--out DIR] [--objectives COL:min|max ...] [--top N]``.

Reads a run, multirun or merged shard directory (or a Parquet/CSV table), writes the figures
that apply and ``report.md`` into ``--out`` (default ``RESULTS/report/``) and prints the best
points, the status counts and the objective per configuration. Bad input prints one line
``dse: error: ...`` and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from dse.errors import EXIT_BAD_INPUT, ConfigError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"dse: error: command line: {message}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def _parser() -> argparse.ArgumentParser:
    ap = _Parser(
        prog="python -m dse.report",
        description="Figures and a markdown report of a dse run (run, multirun or merged "
        "shard directory, or a .parquet/.csv table).",
    )
    ap.add_argument("results", help="results directory or table")
    ap.add_argument("--out", help="report directory (default: RESULTS/report/)")
    ap.add_argument(
        "-o",
        "--objectives",
        nargs="+",
        action="extend",
        default=[],
        metavar="COLUMN:min|max",
        help="objective first, then costs: replaces the run's objective; two or more also "
        "give their own Pareto front",
    )
    ap.add_argument("--top", type=int, default=8, help="best points shown (default 8)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0, or 2 for bad input)."""
    args = _parser().parse_args(argv)
    if args.top < 1:
        print(
            f"dse: error: command line: key '--top': expected >= 1, got {args.top}", file=sys.stderr
        )
        return EXIT_BAD_INPUT
    from dse.report.builder import make_report

    try:
        report = make_report(args.results, args.out, args.objectives, args.top)
    except ConfigError as err:
        print(f"dse: error: {err.oneline()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    _print(report)
    return 0


def _print(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from dse.report import analysis as an
    from dse.report.builder import _fmt

    con = Console(highlight=False)
    if not con.is_terminal:
        con = Console(highlight=False, width=160)
    df = report.run.table
    ok = an.feasible_mask(df)
    s = report.run.summary
    obj = report.objective
    con.print(
        f"[bold]dse report[/] {s.get('study') or report.run.source}: {s.get('model') or '?'}, "
        f"{len(df):,} design points ({int(ok.sum()):,} feasible), objective {obj.metric} "
        f"({obj.sense})"
    )
    if len(report.best):
        t = Table(title=f"best {len(report.best)} by {obj.metric}", title_justify="left")
        for c in report.best.columns:
            t.add_column(c.rsplit(".", 1)[-1], justify="right")
        for row in report.best.itertuples(index=False):
            t.add_row(*(_fmt(v) for v in row))
        con.print(t)
    t = Table(title="status", title_justify="left")
    t.add_column("status")
    t.add_column("points", justify="right")
    t.add_column("share", justify="right")
    for name, n in report.status.items():
        t.add_row(str(name), f"{int(n):,}", f"{n / max(1, len(df)):.1%}")
    con.print(t)
    for col, table in report.ablations.items():
        t = Table(title=f"{obj.metric} by {col}", title_justify="left")
        t.add_column(col.rsplit(".", 1)[-1])
        for c in table.columns:
            t.add_column(c, justify="right")
        for value, row in table.iterrows():
            t.add_row(str(value), *(_fmt(v) for v in row))
        con.print(t)
    for fr in report.fronts:
        con.print(
            f"Pareto front {', '.join(f'{c}:{d}' for c, d in fr.objectives.items())}: "
            f"{len(fr.rows)} points, hypervolume {fr.hypervolume:.6g}"
        )
    for note in report.notes:
        con.print(f"note: {note}")
    names = ", ".join(f.file for f in report.figures)
    con.print(f"report: {report.markdown} ({len(report.figures)} figures: {names})")
