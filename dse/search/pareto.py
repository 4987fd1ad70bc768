"""Pareto fronts, hypervolume and front plots of results tables (DESIGN.md §3).

A point *dominates* another when it is no worse in every objective and strictly better in at
least one. The *front* is the set of points no other point dominates; exact duplicates of a
front point do not dominate each other, so all copies stay on the front. A row with a NaN
objective is an infeasible point (the models NaN-mask the metrics of infeasible points) and is
never on the front.

* :func:`pareto_mask` works on an ``(n, k)`` objective matrix: an ``O(n log n)`` sort and
  running minimum for ``k = 2``; for ``k >= 3`` a few pivot passes that drop the rows the
  strongest points dominate, then a lexicographic sort and block-wise vectorized dominance
  checks (``O(n · |front|)``; a dominating point always precedes the points it dominates in
  lexicographic order, so the front found so far never shrinks).
* :func:`pareto_front` applies it to any results table (``pandas.read_parquet`` /
  ``read_csv`` of ``points.parquet``), dropping infeasible rows by ``status``.
* :func:`hypervolume` is the exact Lebesgue measure of the region the points dominate up to a
  reference point: a sweep for ``k = 2`` and a recursive dimension sweep (the HSO slicing of
  While et al., IEEE TEC 10(1), 2006) for ``k >= 3``, meant for fronts of up to a few hundred
  points.
* :func:`plot_front` draws a 2-D front over all points (matplotlib, headless).
* ``python -m dse.search.pareto RESULTS -o col:min -o col:max`` (:func:`main`) does all three
  for a results directory (``points.parquet`` of ``python -m dse``, numbered multirun jobs,
  ``history.parquet`` of ``python -m dse.search``) or a Parquet/CSV table: it writes
  ``pareto.csv``, ``pareto.json`` (hypervolume and its reference point) and ``pareto.png``.

Everything here is plain numpy/pandas on host arrays: fronts are computed on result tables
after evaluation, never inside traced code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from dse.errors import ConfigError  # noqa: E402

__all__ = [
    "default_reference",
    "hypervolume",
    "load_table",
    "main",
    "pareto_front",
    "pareto_mask",
    "plot_front",
]

#: pairwise comparisons (rows x front points) held in memory at once by the k >= 3 path
_BLOCK_PAIRS = 1 << 21


def _as_minimization(values: np.ndarray, minimize: Sequence[bool], where: str) -> np.ndarray:
    """``values`` as float64 ``(n, k)`` with maximized columns negated."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"{where}: values must be an (n, k) matrix, got shape {v.shape}")
    sense = np.asarray(minimize, dtype=bool).reshape(-1)
    if sense.shape[0] != v.shape[1]:
        raise ValueError(
            f"{where}: {sense.shape[0]} minimize flags for {v.shape[1]} objective columns"
        )
    return np.where(sense[None, :], v, -v)


def _front_2d(v: np.ndarray) -> np.ndarray:
    """Non-dominated rows of a finite-or-infinite (no NaN) ``(n, 2)`` minimization matrix.

    Sort by ``(x, y)``. A point is non-dominated iff its ``y`` is the smallest ``y`` among
    the points with the same ``x`` (else a same-``x`` point beats it in ``y``) and that
    smallest ``y`` is strictly below every ``y`` of a point with a smaller ``x`` (else that
    point is no worse in ``y`` and strictly better in ``x``).
    """
    n = v.shape[0]
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    order = np.lexsort((v[:, 1], v[:, 0]))
    xs, ys = v[order, 0], v[order, 1]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    group = np.cumsum(np.r_[True, xs[1:] != xs[:-1]]) - 1
    group_min = ys[starts]  # sorted by y within a group: its first row has the minimum
    run_min = np.minimum.accumulate(group_min)
    first = np.arange(starts.size) == 0
    prev_min = np.r_[np.inf, run_min[:-1]]
    group_ok = first | (group_min < prev_min)
    mask[order] = (ys == group_min[group]) & group_ok[group]
    return mask


def _dominated_by(f: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(b),)`` bools: some row of ``f`` is <= the row of ``b`` everywhere and < it
    somewhere (minimization). Built column by column on ``(len(b), len(f))`` planes."""
    le = np.ones((b.shape[0], f.shape[0]), dtype=bool)
    lt = np.zeros((b.shape[0], f.shape[0]), dtype=bool)
    for j in range(b.shape[1]):
        fj, bj = f[None, :, j], b[:, j, None]
        le &= fj <= bj
        lt |= fj < bj
    return (le & lt).any(axis=1)


def _prefilter(v: np.ndarray, pivots: int = 16) -> np.ndarray:
    """Rows not dominated by a few strong pivots (a cheap first pass for large inputs).

    The pivots are the surviving rows with the smallest sum of per-column ranks; each one
    removes the rows it dominates in one ``O(n k)`` pass. Removing dominated rows never
    changes the front (each removed row is dominated by a front row that stays). Stops once
    a pivot removes under 1% of what is left.
    """
    n, k = v.shape
    alive = np.ones(n, dtype=bool)
    if n < 4096:
        return alive
    ranks = np.empty((n, k))
    for j in range(k):
        ranks[np.argsort(v[:, j], kind="stable"), j] = np.arange(n)
    idx = np.arange(n)
    tried = 0
    for pos in np.argsort(ranks.sum(axis=1), kind="stable"):
        if not alive[pos]:
            continue
        sub = v[idx]
        dom = (v[pos] <= sub).all(axis=1) & (v[pos] < sub).any(axis=1)
        alive[idx[dom]] = False
        idx = idx[~dom]
        tried += 1
        if tried >= pivots or dom.sum() < 0.01 * idx.size:
            break
    return alive


def _front_nd(v: np.ndarray) -> np.ndarray:
    """Non-dominated rows of a no-NaN ``(n, k)`` minimization matrix, any ``k``.

    After :func:`_prefilter`, rows are visited in lexicographic order, in blocks; a block's
    rows are checked against the front found so far and then against the block's other
    survivors. A row can only be dominated by a lexicographically smaller one, so the front
    found so far never loses a row.
    """
    n, k = v.shape
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    cand = np.flatnonzero(_prefilter(v))
    order = cand[np.lexsort(v[cand].T[::-1])]
    s = v[order]
    front = np.empty((0, k))
    kept: list[np.ndarray] = []
    block = int(max(1, min(s.shape[0], np.sqrt(_BLOCK_PAIRS))))
    for lo in range(0, s.shape[0], block):
        b = s[lo : lo + block]
        alive = np.ones(b.shape[0], dtype=bool)
        step = max(1, _BLOCK_PAIRS // max(1, b.shape[0]))
        for flo in range(0, front.shape[0], step):
            live = np.flatnonzero(alive)
            alive[live[_dominated_by(front[flo : flo + step], b[live])]] = False
        # a row the front dominates dominates nothing the front does not: only the block's
        # survivors are compared with each other
        live = np.flatnonzero(alive)
        idx = live[~_dominated_by(b[live], b[live])] + lo
        kept.append(idx)
        front = np.concatenate([front, s[idx]], axis=0)
    mask[order[np.concatenate(kept)]] = True
    return mask


def pareto_mask(values: np.ndarray, minimize: Sequence[bool]) -> np.ndarray:
    """Boolean mask of the non-dominated rows of an objective matrix.

    Parameters
    ----------
    values : array, shape (n, k)
        One row per point, one column per objective. A row holding a NaN (an infeasible
        point) is never on the front and never dominates another row; ``±inf`` compare as
        ordinary numbers.
    minimize : sequence of k bools
        ``True`` where smaller is better, ``False`` where larger is better.

    Returns
    -------
    numpy.ndarray of bool, shape (n,)
        ``True`` for rows no other row dominates (no worse in every objective, strictly
        better in one). Exact duplicates of a front row are all ``True``.

    Notes
    -----
    ``k = 2``: one sort and a running minimum, ``O(n log n)`` (10⁶ rows in well under a
    second). ``k >= 3``: pivot passes, a lexicographic sort, then block-wise vectorized
    comparisons against the front found so far, ``O(n · |front| · k)`` (10⁶ uniform random
    3-D rows in about a second; 2·10⁴ rows that are all on the front in about a second).
    """
    v = _as_minimization(values, minimize, "pareto_mask")
    n, k = v.shape
    ok = ~np.isnan(v).any(axis=1)
    mask = np.zeros(n, dtype=bool)
    if k == 0 or not ok.any():
        return mask
    sub = v[ok]
    if k == 1:
        sub_mask = sub[:, 0] == sub[:, 0].min()
    elif k == 2:
        sub_mask = _front_2d(sub)
    else:
        sub_mask = _front_nd(sub)
    mask[np.flatnonzero(ok)[sub_mask]] = True
    return mask


def _feasible_rows(df: pd.DataFrame) -> np.ndarray:
    """Rows whose ``status`` (and ``status_code``) say feasible; all rows without them.

    A numeric ``status``/``status_code`` is feasible when 0; a text or categorical
    ``status`` (as :func:`dse.point.decode_status` writes it) when ``"ok"``.
    """
    ok = np.ones(len(df), dtype=bool)
    for col in ("status", "status_code"):
        if col not in df.columns:
            continue
        s = df[col]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            ok &= s.fillna(1).to_numpy(dtype=np.float64) == 0
        else:
            text = s.astype("string").fillna("").str.strip()
            ok &= ((text == "ok") | (text == "0")).to_numpy(dtype=bool)
    return ok


def pareto_front(df: pd.DataFrame, objectives: Mapping[str, str]) -> pd.DataFrame:
    """The Pareto-optimal rows of a results table.

    Parameters
    ----------
    df : pandas.DataFrame
        Any results table (e.g. ``pandas.read_parquet("points.parquet")`` or a CSV). Rows
        whose ``status`` column (if present) is nonzero, or not ``"ok"`` when it holds
        decoded names, are excluded, and so is any row with a NaN/NA objective.
    objectives : mapping of column name to ``"min"`` or ``"max"``
        The objectives, in order; the front is sorted by the first one.

    Returns
    -------
    pandas.DataFrame
        The non-dominated feasible rows (all columns, original index), sorted ascending by
        the first objective (stable, so ties keep table order).

    Raises
    ------
    dse.errors.ConfigError
        For no objectives, an unknown or non-numeric column (the message lists the available
        columns) or a direction other than ``"min"``/``"max"``.
    """
    source = "pareto_front"
    if not objectives:
        raise ConfigError(source, "objectives", "at least one column → 'min'|'max'", {})
    cols = list(objectives)
    available = [str(c) for c in df.columns]
    for col in cols:
        if col not in df.columns:
            raise ConfigError(
                source, col, f"a column of the results table (available: {available})", col
            )
        s = df[col]
        if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
            numeric = [str(c) for c in df.columns if _is_numeric(df[c])]
            raise ConfigError(
                source, col, f"a numeric column (numeric columns: {numeric})", str(s.dtype)
            )
        direction = objectives[col]
        if direction not in ("min", "max"):
            raise ConfigError(source, col, "'min' or 'max'", direction)
    values = np.column_stack(
        [df[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in cols]
    ).reshape(len(df), len(cols))
    values = np.where(_feasible_rows(df)[:, None], values, np.nan)
    mask = pareto_mask(values, [objectives[c] == "min" for c in cols])
    return df.loc[mask].sort_values(cols[0], kind="stable")


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _hv_2d(p: np.ndarray, ref: np.ndarray) -> float:
    """Area dominated by minimization points ``p`` (all strictly below ``ref``) in 2-D:
    sort the front by ``x``; each front point adds ``(x_next − x) · (ref_y − y)``."""
    f = p[_front_2d(p)]
    f = f[np.lexsort((f[:, 1], f[:, 0]))]
    f = f[np.r_[True, (np.diff(f, axis=0) != 0).any(axis=1)]]  # drop duplicates
    x_next = np.r_[f[1:, 0], ref[0]]
    return float(np.sum((x_next - f[:, 0]) * (ref[1] - f[:, 1])))


def _hv_sweep(p: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume of minimization points ``p`` (all strictly below ``ref``).

    HSO slicing: sort by the last objective; between consecutive distinct values ``z_i`` and
    ``z_{i+1}`` (the last one ``ref``), the cross-section is the ``(k−1)``-dimensional
    hypervolume of the points with last objective ``<= z_i``; the volume is the sum of
    cross-section × slab depth.
    """
    k = p.shape[1]
    if p.shape[0] == 0:
        return 0.0
    if k == 1:
        return float(ref[0] - p[:, 0].min())
    if k == 2:
        return _hv_2d(p, ref)
    p = p[_front_nd(p)]
    p = p[np.argsort(p[:, -1], kind="stable")]
    z = p[:, -1]
    z_next = np.r_[z[1:], ref[-1]]
    total = 0.0
    for i in np.flatnonzero(z_next > z):
        total += _hv_sweep(p[: i + 1, :-1], ref[:-1]) * (z_next[i] - z[i])
    return total


def hypervolume(front: np.ndarray, ref: np.ndarray, minimize: Sequence[bool]) -> float:
    """Exact hypervolume dominated by ``front`` with respect to the reference point ``ref``.

    Parameters
    ----------
    front : array, shape (n, k)
        Objective vectors (need not be mutually non-dominated; dominated points add
        nothing). Points that are not strictly better than ``ref`` in every objective, and
        rows holding NaN, contribute nothing.
    ref : array, shape (k,)
        The reference point (e.g. the worst acceptable value of each objective), in the
        objectives' own units and directions.
    minimize : sequence of k bools
        ``True`` where smaller is better.

    Returns
    -------
    float
        The Lebesgue measure of ``{x : some point is no worse than x and x is no worse than
        ref}``, in the product of the objectives' units. A single point ``p`` gives
        ``prod_j |ref_j − p_j|``.

    Notes
    -----
    ``k = 2``: sweep over the front sorted by the first objective, ``O(n log n)``.
    ``k >= 3``: recursive slicing over the last objective (HSO; While, Hingston, Barone and
    Huband, IEEE TEC 10(1):29-38, 2006) down to the 2-D sweep, about ``O(n^(k−1) log n)``:
    fine for a few hundred points in 3-D and tens in 4-D or 5-D.
    """
    p = _as_minimization(front, minimize, "hypervolume")
    sense = np.asarray(minimize, dtype=bool).reshape(-1)
    r = np.asarray(ref, dtype=np.float64).reshape(-1)
    if r.shape[0] != p.shape[1]:
        raise ValueError(f"hypervolume: ref has {r.shape[0]} values for {p.shape[1]} objectives")
    if np.isnan(r).any():
        raise ValueError("hypervolume: ref must not hold NaN")
    r = np.where(sense, r, -r)
    inside = ~np.isnan(p).any(axis=1)
    inside[inside] = (p[inside] < r[None, :]).all(axis=1)
    return _hv_sweep(p[inside], r)


def plot_front(
    df: pd.DataFrame,
    x: str,
    y: str,
    front: pd.DataFrame | np.ndarray,
    path: str | os.PathLike,
    *,
    minimize_x: bool = True,
    title: str = "",
) -> Path:
    """Scatter every point of ``df`` in grey and the front on top, joined as a step line.

    Parameters
    ----------
    df : pandas.DataFrame
        All points (rows with NaN in ``x`` or ``y`` are not drawn).
    x, y : str
        Column names; they label the axes.
    front : pandas.DataFrame or bool array
        The front rows (e.g. from :func:`pareto_front`), or a mask over ``df``'s rows.
    path : path-like
        Where the PNG goes (written through a temporary file and an atomic rename).
    minimize_x : bool
        Whether smaller ``x`` is better. The step line is the boundary of the region the
        front dominates: with ``x`` minimized each front point's ``y`` holds up to the next
        point's ``x`` (``where="post"``); with ``x`` maximized it holds from the previous
        point's ``x`` (``where="pre"``).
    title : str
        Optional title; the point counts are always shown.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    for col in (x, y):
        if col not in df.columns:
            raise ConfigError(
                "plot_front", col, f"a column of the table (available: {list(df.columns)})", col
            )
    if isinstance(front, pd.DataFrame):
        fr = front
    else:
        m = np.asarray(front, dtype=bool).reshape(-1)
        if m.shape[0] != len(df):
            raise ValueError(f"plot_front: mask has {m.shape[0]} entries for {len(df)} rows")
        fr = df.loc[m]
    for col in (x, y):
        if col not in fr.columns:
            raise ConfigError("plot_front", col, "a column of the front table", col)
    xa = df[x].to_numpy(dtype=np.float64, na_value=np.nan)
    ya = df[y].to_numpy(dtype=np.float64, na_value=np.nan)
    xf = fr[x].to_numpy(dtype=np.float64, na_value=np.nan)
    yf = fr[y].to_numpy(dtype=np.float64, na_value=np.nan)
    keep = ~(np.isnan(xf) | np.isnan(yf))
    xf, yf = xf[keep], yf[keep]
    order = np.lexsort((yf, xf))
    fig, ax = plt.subplots(figsize=(7.0, 4.8), dpi=120)
    shown = ~(np.isnan(xa) | np.isnan(ya))
    ax.scatter(
        xa[shown],
        ya[shown],
        s=6,
        color="0.7",
        alpha=0.5,
        linewidths=0,
        rasterized=True,
        label="all points",
    )
    ax.step(
        xf[order],
        yf[order],
        where="post" if minimize_x else "pre",
        color="tab:red",
        lw=1.4,
        zorder=3,
    )
    ax.scatter(xf, yf, s=18, color="tab:red", zorder=4, label="Pareto front")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    note = f"{int(shown.sum()):,} points, {xf.size:,} on the front"
    ax.set_title(f"{title}\n{note}" if title else note, fontsize=10)
    ax.grid(True, alpha=0.25)
    ax.legend(fontsize=8, markerscale=1.5)
    fig.tight_layout()
    from dse.report import save_figure  # the report draws its fronts with pareto_mask

    return save_figure(fig, path)


# ------------------------------------------------------------------------------------------
# command line: python -m dse.search.pareto RESULTS
# ------------------------------------------------------------------------------------------

#: the default reference point lies this fraction of each objective's range beyond its worst
#: feasible value, so the extreme front points add volume too
REF_MARGIN = 0.1


def default_reference(values: np.ndarray, minimize: Sequence[bool]) -> np.ndarray:
    """The default hypervolume reference point of ``(n, k)`` objective values: each
    objective's worst value moved :data:`REF_MARGIN` of its range further (of ``|worst|``,
    at least 1, where all values are equal); NaN for no rows."""
    v = np.asarray(values, dtype=np.float64).reshape(-1, len(minimize))
    if not len(v):
        return np.full(len(minimize), np.nan)
    lo, hi = v.min(axis=0), v.max(axis=0)
    span = np.where(hi > lo, hi - lo, np.maximum(np.abs(hi), 1.0))
    return np.where(minimize, hi + REF_MARGIN * span, lo - REF_MARGIN * span)


def load_table(path: str | os.PathLike) -> tuple[pd.DataFrame, dict]:
    """A results table and the run's own description of it (its ``summary.json`` or
    ``search.json``): :func:`dse.report.load.load_run` on a run directory, a multirun
    directory (with a ``job`` column), a directory of shard runs or a Parquet/CSV table.
    Raises :class:`ConfigError` naming the path."""
    from dse.report.load import load_run

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
    ok = _feasible_rows(df)
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
        f"worst feasible value moved {REF_MARGIN:.0%} of its range further)",
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
        numeric = [str(c) for c in df.columns if _is_numeric(df[c])]
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
    from dse.results import atomic_write_text

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
