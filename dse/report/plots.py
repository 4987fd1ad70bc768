"""The report's figures (matplotlib Agg; every PNG written through :func:`save_figure`).

Each function draws one PNG from tables that :mod:`dse.report.analysis` computed and returns
its path; the caller decides whether the figure applies. :func:`plot_front` is also the front
figure of ``python -m dse.search.pareto``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from dse.errors import ConfigError  # noqa: E402
from dse.report import save_figure  # noqa: E402

__all__ = ["ablation_plot", "bars_plot", "context_plot", "plot_front", "status_plot"]

_DPI = 110


def _short(col: str) -> str:
    return col.rsplit(".", 1)[-1]


def bars_plot(
    panels: Sequence[tuple[str, pd.DataFrame]],
    path: Path,
    *,
    stacked: bool,
    ylabel: str,
    title: str,
) -> Path:
    """One bar panel per ``(title, frame)``: a bar group per row, one segment (stacked) or
    bar (side by side) per column."""
    panels = [(t, f) for t, f in panels if len(f)]
    widths = [max(3.0, 0.55 * len(f) + 1.5) for _, f in panels]
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(min(16.0, sum(widths) + 1.0), 4.6),
        dpi=_DPI,
        squeeze=False,
        gridspec_kw={"width_ratios": widths},
    )
    cmap = plt.get_cmap("tab10")
    for ax, (name, frame) in zip(axes[0], panels, strict=True):
        x = np.arange(len(frame))
        cols = list(frame.columns)
        bottom = np.zeros(len(frame))
        width = 0.8 if stacked else 0.8 / max(1, len(cols))
        for i, col in enumerate(cols):
            v = frame[col].to_numpy(dtype=np.float64, na_value=np.nan)
            v = np.nan_to_num(v)
            if stacked:
                ax.bar(x, v, 0.8, bottom=bottom, color=cmap(i % 10), label=col)
                bottom = bottom + v
            else:
                ax.bar(x - 0.4 + width * (i + 0.5), v, width, color=cmap(i % 10), label=col)
        ax.set_xticks(x, [str(i) for i in frame.index], rotation=35, ha="right", fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.set_ylabel(ylabel)
        ax.grid(True, axis="y", alpha=0.25)
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def ablation_plot(
    tables: Mapping[str, pd.DataFrame], metric: str, minimize: bool, path: Path
) -> Path:
    """A panel per column: best (bar) and geometric mean (marker) of the objective per value,
    with the feasible count above each bar."""
    n = len(tables)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows), dpi=_DPI, squeeze=False
    )
    for ax, (col, table) in zip(axes.flat, tables.items(), strict=False):
        x = np.arange(len(table))
        best = table["best"].to_numpy(dtype=np.float64, na_value=np.nan)
        gm = table["geomean"].to_numpy(dtype=np.float64, na_value=np.nan)
        ax.bar(x, np.nan_to_num(best), 0.6, color="tab:blue", label="best")
        ax.plot(x, gm, "o", color="tab:orange", label="geometric mean")
        for xi, b, k in zip(x, best, table["feasible"], strict=True):
            if np.isfinite(b):
                ax.annotate(f"n={k}", (xi, b), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, [str(v) for v in table.index], rotation=30, ha="right", fontsize=7)
        ax.set_title(_short(col), fontsize=9)
        ax.grid(True, axis="y", alpha=0.25)
        vals = np.r_[best, gm]
        vals = vals[np.isfinite(vals)]
        if vals.size and (vals > 0).all() and vals.max() / vals.min() > 30:
            ax.set_yscale("log")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    axes[0][0].set_ylabel(metric)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(
        f"{metric} ({'lower' if minimize else 'higher'} is better) by configuration", fontsize=10
    )
    fig.tight_layout()
    return save_figure(fig, path)


def context_plot(
    curves: Mapping[str, pd.DataFrame],
    x: str,
    panels: Sequence[str],
    path: Path,
    title: str,
) -> Path:
    """One panel per metric in ``panels``, one line per group: ``curves[group]`` holds ``x``
    and the metrics, sorted by ``x``."""
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5.2 * len(panels), 4.2), dpi=_DPI, squeeze=False
    )
    cmap = plt.get_cmap("tab10")
    for ax, metric in zip(axes[0], panels, strict=True):
        for i, (name, c) in enumerate(curves.items()):
            if metric in c:
                ax.plot(c[x], c[metric], "o-", ms=3, color=cmap(i % 10), label=str(name))
        xs = np.concatenate([c[x].to_numpy(dtype=np.float64) for c in curves.values()])
        if xs.size and (xs > 0).all() and xs.max() / xs.min() > 20:
            ax.set_xscale("log", base=2)
        ys = np.concatenate(
            [c[metric].to_numpy(dtype=np.float64) for c in curves.values() if metric in c]
        )
        ys = ys[np.isfinite(ys)]
        if ys.size and (ys > 0).all() and ys.max() / ys.min() > 30:
            ax.set_yscale("log")
        ax.set_xlabel(x)
        ax.set_ylabel(metric)
        ax.grid(True, which="both", alpha=0.25)
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def status_plot(counts: pd.Series, by: pd.DataFrame | None, path: Path) -> Path:
    """Status counts (horizontal bars) and, with ``by`` (value × status counts), the share of
    each status per value of a configuration column."""
    ncols = 2 if by is not None and len(by) else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5.5 * ncols, 3.8), dpi=_DPI, squeeze=False)
    ax = axes[0][0]
    colors = ["tab:green" if s == "ok" else "tab:red" for s in counts.index]
    y = np.arange(len(counts))
    ax.barh(y, counts.to_numpy(), color=colors)
    ax.set_yticks(y, [str(s) for s in counts.index], fontsize=8)
    for yi, v in zip(y, counts.to_numpy(), strict=True):
        ax.annotate(f"{v:,}", (v, yi), va="center", fontsize=7)
    ax.set_xlabel("design points")
    ax.set_title("status of every design point", fontsize=9)
    if ncols == 2:
        ax = axes[0][1]
        share = by.div(by.sum(axis=1), axis=0)
        left = np.zeros(len(share))
        cmap = plt.get_cmap("tab10")
        yb = np.arange(len(share))
        for i, s in enumerate(share.columns):
            color = "tab:green" if s == "ok" else cmap((i + 3) % 10)
            ax.barh(yb, share[s].to_numpy(), left=left, color=color, label=str(s))
            left = left + share[s].to_numpy()
        ax.set_yticks(yb, [str(v) for v in share.index], fontsize=8)
        ax.set_xlabel("share of points")
        ax.set_title(f"by {by.index.name}", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)


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
        The front rows (e.g. from :func:`dse.pareto.pareto_front`), or a mask over ``df``'s
        rows.
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
    return save_figure(fig, path)
