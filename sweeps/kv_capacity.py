"""Question: how much of a PIM stack's KV capacity do static max-context reservations waste
on the four long-context workloads, and how many more requests does dynamic chunked
allocation admit?

    python sweeps/kv_capacity.py [OUT.png]

Runs ``sweeps/kv_capacity.yaml`` (workload × seed × allocation, 96 points, 256 waiting
requests each) with the ``pim_attention`` model, static reservations sized for each set's
longest context, draws admitted requests and capacity utilization, and prints what they show.
Rows are FCFS: a batch is admitted until the next request does not fit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the checkout's dse, however it is installed

import dse  # noqa: E402
from dse.process import command  # noqa: E402
from dse.workload.lengths import STATS, LengthDist  # noqa: E402

ALLOC = {"static": "#7f7f7f", "dynamic": "#d62728", "paged": "#1f77b4"}


def main(out: str | None = None) -> pd.DataFrame:
    """Run the study, write the figure to ``out``, print and return the key numbers: one row
    per (length set, allocation) with the mean requests admitted and capacity utilization."""
    if out is None:  # results/kv_capacity/ here, not the tracked figure in sweeps/
        from dse.studies import default_figure

        out = str(default_figure("kv_capacity"))
    frames = []
    for dist in ("qmsum", "musique", "multifieldqa", "loogle_sd"):
        longest = STATS[LengthDist[dist]].max  # a static reservation covers the longest request
        frames.append(
            dse.explore(
                [f"space.axes.workload.lengths=[{dist}]", f"workload.max_context={longest}"],
                config_name="kv_capacity",
                config_dir=str(HERE),
            )
        )
    df = pd.concat(frames, ignore_index=True)
    for col in ("workload.lengths", "policy.kv_alloc"):
        df[col] = df[col].astype(str)
    g = df.groupby(["workload.lengths", "policy.kv_alloc"])
    stats = g[["max_batch", "capacity_util"]].mean()

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    dists = list(dict.fromkeys(df["workload.lengths"]))
    x = np.arange(len(dists))
    for i, (alloc, color) in enumerate(ALLOC.items()):
        for ax, col in zip(axes, ("max_batch", "capacity_util"), strict=True):
            vals = [stats.loc[(d, alloc), col] for d in dists]
            ax.bar(x + (i - 1) * 0.27, vals, 0.27, color=color, label=alloc)
    axes[0].set_ylabel("requests that fit (mean of 8 seeds)")
    axes[1].set_ylabel("capacity utilization (live KV / reserved)")
    axes[1].set_ylim(0, 1.05)
    for ax in axes:
        ax.set_xticks(x, dists)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
    fig.suptitle("KV capacity of one HBM3-PIM stack (Llama-3.1-8B, TP 8, 1 MB chunks)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")
    for d in dists:
        s, dy = stats.loc[(d, "static")], stats.loc[(d, "dynamic")]
        print(
            f"{d}: static admits {s['max_batch']:.1f} requests at {s['capacity_util']:.0%} "
            f"capacity utilization; dynamic {dy['max_batch']:.1f} at {dy['capacity_util']:.1%} "
            f"({dy['max_batch'] / s['max_batch']:.1f}x the requests)"
        )
    table = stats.reindex(dists, level=0).reset_index()
    static = table[table["policy.kv_alloc"] == "static"].set_index("workload.lengths")["max_batch"]
    table["admitted_vs_static"] = table["max_batch"] / static.loc[table["workload.lengths"]].values
    return table


if __name__ == "__main__":
    command(main)(*sys.argv[1:2])
