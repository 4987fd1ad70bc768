"""Pareto fronts and hypervolume of objective matrices and results tables (DESIGN.md §3).

A point *dominates* another when it is no worse in every objective and strictly better in at
least one. The *front* is the set of points no other point dominates; exact duplicates of a
front point do not dominate each other, so all copies stay on the front. A row with a NaN
objective is an infeasible point (the models NaN-mask the metrics of infeasible points) and is
never on the front.

* :func:`pareto_mask` works on an ``(n, k)`` objective matrix;
* :func:`pareto_front` applies it to any results table (``pandas.read_parquet`` /
  ``read_csv`` of ``points.parquet``), dropping infeasible rows by ``status``;
* :func:`hypervolume` is the exact Lebesgue measure of the region the points dominate up to a
  reference point, and :func:`default_reference` the reference point the commands use.

The dominance filter and the hypervolume are moocore's (López-Ibáñez et al.,
https://multi-objective.github.io/moocore/python/): ``O(n log n)`` for up to 3 objectives,
HV4D+ for 4 and recursive slicing beyond. This module adds what moocore leaves to its caller:
objectives in either direction, NaN rows, points outside the reference point and the input
checks. Everything here is plain numpy/pandas on host arrays: fronts are computed on result
tables after evaluation, never inside traced code. The front figure is
:func:`dse.report.plots.plot_front`; ``python -m dse.search.pareto`` is the command line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import moocore
import numpy as np
import pandas as pd

from dse.errors import ConfigError

__all__ = [
    "REF_MARGIN",
    "default_reference",
    "feasible_rows",
    "hypervolume",
    "is_numeric",
    "pareto_front",
    "pareto_mask",
]

#: the default reference point lies this fraction of each objective's range beyond its worst
#: feasible value, so the extreme front points add volume too
REF_MARGIN = 0.1

#: moocore's sweeps use ±inf and -DBL_MAX as sentinels: an input coordinate equal to one of
#: them can crash the process (moocore 0.3.2: is_nondominated with -inf in 3 or more objectives,
#: hypervolume with -DBL_MAX in 3 or 5), so such values never reach it
_FMAX = np.finfo(np.float64).max


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
    :func:`moocore.is_nondominated` with ``keep_weakly=True`` on the NaN-free rows (on each
    column's ranks where a value is infinite or ±float max): ``O(n log n)`` for ``k <= 3``
    (10⁶ rows in about 0.2 s), ``O(n log^(k-2) n)`` beyond.
    """
    v = _as_minimization(values, minimize, "pareto_mask")
    n, k = v.shape
    ok = ~np.isnan(v).any(axis=1)
    mask = np.zeros(n, dtype=bool)
    if k == 0 or not ok.any():
        return mask
    sub = v[ok]
    if not (np.abs(sub) < _FMAX).all():
        # dominance only compares values within a column: each column's dense ranks have the
        # same front and are finite
        sub = np.column_stack([np.unique(c, return_inverse=True)[1] for c in sub.T])
    mask[ok] = moocore.is_nondominated(sub, keep_weakly=True)
    return mask


def feasible_rows(df: pd.DataFrame) -> np.ndarray:
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


def is_numeric(s: pd.Series) -> bool:
    """Whether a column can be an objective: numeric and not boolean."""
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


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
        if not is_numeric(s):
            numeric = [str(c) for c in df.columns if is_numeric(df[c])]
            raise ConfigError(
                source, col, f"a numeric column (numeric columns: {numeric})", str(s.dtype)
            )
        direction = objectives[col]
        if direction not in ("min", "max"):
            raise ConfigError(source, col, "'min' or 'max'", direction)
    values = np.column_stack(
        [df[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in cols]
    ).reshape(len(df), len(cols))
    values = np.where(feasible_rows(df)[:, None], values, np.nan)
    mask = pareto_mask(values, [objectives[c] == "min" for c in cols])
    return df.loc[mask].sort_values(cols[0], kind="stable")


def hypervolume(front: np.ndarray, ref: np.ndarray, minimize: Sequence[bool]) -> float:
    """Exact hypervolume dominated by ``front`` with respect to the reference point ``ref``.

    Parameters
    ----------
    front : array, shape (n, k)
        Objective vectors (need not be mutually non-dominated; dominated points add
        nothing). Points that are not strictly better than ``ref`` in every objective, and
        rows holding NaN, contribute nothing; one that is infinitely better in some objective
        makes the volume ``inf``, and so does a volume past the float range.
    ref : array, shape (k,)
        The reference point (e.g. the worst acceptable value of each objective), in the
        objectives' own units and directions; NaN is an error, an infinite worst value
        (no bound) makes the volume ``inf`` as soon as a point counts.
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
    :func:`moocore.hypervolume` on the rows strictly inside ``ref``: ``O(n log n)`` for
    ``k <= 3``, ``O(n²)`` for ``k = 4`` (HV4D+), recursive slicing (or inclusion-exclusion
    for a handful of points) beyond.
    """
    p = _as_minimization(front, minimize, "hypervolume")
    sense = np.asarray(minimize, dtype=bool).reshape(-1)
    r = np.asarray(ref, dtype=np.float64).reshape(-1)
    if r.shape[0] != p.shape[1]:
        raise ValueError(f"hypervolume: ref has {r.shape[0]} values for {p.shape[1]} objectives")
    if p.shape[1] == 0:
        raise ValueError("hypervolume: at least one objective")
    if np.isnan(r).any():
        raise ValueError("hypervolume: ref must not hold NaN")
    r = np.where(sense, r, -r)
    inside = ~np.isnan(p).any(axis=1)
    inside[inside] = (p[inside] < r[None, :]).all(axis=1)
    p = p[inside]
    if not len(p):
        return 0.0
    if np.isinf(p).any() or np.isinf(r).any():
        return float("inf")  # a point's box is unbounded: -inf in p or +inf in r
    # -DBL_MAX, a moocore sentinel, moved one ulp inwards (the box changes by under an ulp)
    p = np.maximum(p, np.nextafter(-_FMAX, 0))
    hv = float(moocore.hypervolume(p, ref=r))
    # NaN from finite input is an overflowed partial volume less another (inf - inf): the
    # volume is past the float range too
    return float("inf") if np.isnan(hv) else hv


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
