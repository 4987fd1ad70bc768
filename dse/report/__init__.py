"""Plots and reports of explored spaces (matplotlib, headless).

:func:`tradeoff_plot` draws the trade-off PNG of every run and :func:`save_figure` writes any
figure atomically. ``python -m dse.report RESULTS`` (:mod:`dse.report.cli`) turns a run
directory, a multirun directory or a merged shard directory into figures chosen by what the
table holds (Pareto fronts, time/busy/energy breakdowns, ablations, context scaling, the
best point's timeline, the status breakdown) and a ``report.md`` that embeds them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from dse.pareto import pareto_mask  # noqa: E402

__all__ = ["save_figure", "tradeoff_plot"]


def save_figure(fig, path: Path, **savefig) -> Path:
    """Write ``fig`` to ``path`` atomically (a temporary file, then a rename) and close it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix or '.png'}")
    fig.savefig(tmp, **savefig)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def tradeoff_plot(
    frame: pd.DataFrame,
    x: str,
    y: str,
    color: str,
    path: str | os.PathLike,
    title: str = "",
    minimize: tuple[bool, bool] = (True, False),
    total_points: int | None = None,
    label: Sequence[str] = (),
    max_labels: int = 8,
) -> Path:
    """Scatter ``y`` against ``x`` for feasible points, coloured by ``color`` (a legend
    entry per value), with the Pareto front (``minimize``: which direction is better on
    each axis; the default lower ``x``, higher ``y``) drawn on top and up to ``max_labels``
    of its points labelled with their ``label`` columns' values; log axes where positive
    values span more than a decade and a half.

    A text column on an axis (a policy or preset name) is drawn at one position per value,
    without a front."""
    path = Path(path)
    data = frame[frame["feasible"]] if "feasible" in frame else frame
    label = [c for c in label if c in data and c not in (x, y)]
    data = data[[c for c in dict.fromkeys([x, y, color, *label]) if c in data]].dropna(
        subset=[c for c in (x, y) if c in data]
    )
    ticks = {}  # a text axis (a policy name, a preset) is drawn at category positions
    for col in dict.fromkeys([x, y]):
        if col in data and not pd.api.types.is_numeric_dtype(data[col]):
            cats = pd.Categorical(data[col].astype(str))
            ticks[col] = list(cats.categories)
            data = data.assign(**{col: cats.codes.astype(float)})
    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=120)
    if len(data):
        groups = data.groupby(color, observed=True) if color in data else [("points", data)]
        cmap = plt.get_cmap("tab10")
        for i, (name, g) in enumerate(groups):
            ax.scatter(
                g[x],
                g[y],
                s=10,
                alpha=0.45,
                color=cmap(i % 10),
                label=str(name),
                rasterized=True,
                linewidths=0,
            )
        xv, yv = data[x].to_numpy(float), data[y].to_numpy(float)
        if not ticks:
            front = pareto_mask(np.column_stack([xv, yv]), list(minimize))
            order = np.argsort(xv[front])
            fx, fy = xv[front][order], yv[front][order]
            ax.step(fx, fy, where="post", color="black", lw=1.2, label="Pareto front")
            ax.scatter(fx, fy, s=18, facecolors="none", edgecolors="black", linewidths=0.8)
            rows = data[front].iloc[order]
            pick = np.unique(np.linspace(0, len(rows) - 1, min(max_labels, len(rows))).round())
            for k in pick.astype(int):
                text = _point_label(rows.iloc[k], label)
                if text:
                    ax.annotate(
                        text,
                        (fx[k], fy[k]),
                        xytext=(4, 4),
                        textcoords="offset points",
                        fontsize=6.5,
                        alpha=0.85,
                    )
        if x not in ticks and (xv > 0).all() and np.ptp(xv) > 0 and xv.max() / xv.min() > 20:
            ax.set_xscale("log")
        if y not in ticks and (yv > 0).all() and np.ptp(yv) > 0 and yv.max() / yv.min() > 20:
            ax.set_yscale("log")
        if x in ticks:
            ax.set_xticks(range(len(ticks[x])), ticks[x])
        if y in ticks:
            ax.set_yticks(range(len(ticks[y])), ticks[y])
        if {x, y} == {"peak_internal_GBps", "internal_GBps"}:
            lo, hi = min(xv.min(), yv.min()), max(xv.max(), yv.max())
            ax.plot([lo, hi], [lo, hi], ls="--", color="grey", lw=0.8, label="achieved = peak")
        ax.legend(title=color if color in data else None, fontsize=8, markerscale=2)
    else:
        ax.text(0.5, 0.5, "no feasible points", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(f"{x} ({'lower' if minimize[0] else 'higher'} is better)")
    ax.set_ylabel(f"{y} ({'lower' if minimize[1] else 'higher'} is better)")
    shown = len(data)
    note = f"{shown:,} feasible points shown"
    if total_points and total_points > len(frame):
        note += f" (a uniform sample of {total_points:,})"
    if label and not ticks:
        note += "; front points labelled by " + ", ".join(label)
    ax.set_title(f"{title}\n{note}" if title else note, fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    fig.tight_layout()
    return save_figure(fig, path)


def _point_label(row: pd.Series, cols: Sequence[str]) -> str:
    parts = []
    for c in cols:
        v = row.get(c)
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        v = f"{v:.3g}" if isinstance(v, float) else str(v)
        parts.append(f"{c if len(c) <= 22 else c.split('.')[-1]}={v}")
    return " ".join(parts)
