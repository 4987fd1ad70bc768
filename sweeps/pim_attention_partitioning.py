"""Question: how busy are a PIM stack's channels during decode attention under head-first
(round-robin, greedy) vs token-centric partitioning, across context 256–1M and batch 1–256,
for equal and for unequal context lengths?

    python sweeps/pim_attention_partitioning.py [OUT.png]

Runs ``sweeps/pim_attention_partitioning.yaml`` (equal lengths: L × batch × policy, 189
points) and the same batches with LV-Eval multifieldqa lengths (8 seeds each) with the
``pim_attention`` model, draws mean channel utilization and the step-time ratio, and prints
what they show.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the checkout's dse, however it is installed

import dse  # noqa: E402
from dse.process import command  # noqa: E402

POLICIES = {"hfp_rr": "#7f7f7f", "hfp_greedy": "#1f77b4", "tcp": "#d62728"}
BATCHES = {1: ":", 8: "--", 64: "-"}


def main(out: str | None = None) -> pd.DataFrame:
    """Run the study, write the figure to ``out``, print and return the key numbers: one row
    per (lengths, batch, L) with the mean channel utilization and step time of each
    partition (multifieldqa rows: means over the 8 seeds, L = 0)."""
    if out is None:  # results/pim_attention_partitioning/ here, not the tracked figure in sweeps/
        from dse.studies import default_figure

        out = str(default_figure("pim_attention_partitioning"))
    eq = dse.explore([], config_name="pim_attention_partitioning", config_dir=str(HERE))
    var = dse.explore(
        [
            "workload.lengths=multifieldqa",
            "space.axes.workload.L=[4096]",
            "+space.axes.workload.seed=[0,1,2,3,4,5,6,7]",
        ],
        config_name="pim_attention_partitioning",
        config_dir=str(HERE),
    )
    for df in (eq, var):
        df["policy.partition"] = df["policy.partition"].astype(str)
        assert df["feasible"].all(), df.loc[~df["feasible"], "status"].unique()

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), dpi=110)
    ax = axes[0]
    for part, color in POLICIES.items():
        for b, ls in BATCHES.items():
            g = eq[(eq["policy.partition"] == part) & (eq["workload.batch"] == b)]
            g = g.sort_values("workload.L")
            ax.plot(
                g["workload.L"], g["chan_util_mean"], ls, color=color, label=f"{part}, batch {b}"
            )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("context length L (tokens, every request)")
    ax.set_ylabel("mean channel utilization")
    ax.set_title("equal lengths: 32 channels, 8 KV heads")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=3, loc="lower center")

    ax = axes[1]
    m = var.groupby(["policy.partition", "workload.batch"])["chan_util_mean"].agg(["mean", "min"])
    for part, color in POLICIES.items():
        g = m.loc[part]
        ax.plot(g.index, g["mean"], "-o", ms=3, color=color, label=f"{part} (mean of 8 seeds)")
        ax.plot(g.index, g["min"], ":", color=color, lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch (requests)")
    ax.set_ylabel("mean channel utilization")
    ax.set_title("LV-Eval multifieldqa lengths (20K–119K); dotted: worst seed")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)

    ax = axes[2]
    piv = eq.pivot_table(
        index=["workload.batch", "workload.L"], columns="policy.partition", values="step_ns"
    )
    for b, ls in BATCHES.items():
        g = piv.loc[b]
        for part in ("hfp_rr", "hfp_greedy"):
            ax.plot(
                g.index, g[part] / g["tcp"], ls, color=POLICIES[part], label=f"{part}, batch {b}"
            )
    ax.axhline(1, color="#7f7f7f", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("context length L (tokens)")
    ax.set_ylabel("head-first step time / token-centric")
    ax.set_title("equal lengths: > 1 means token-centric is faster")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")

    # what it shows, from the data
    u = eq.pivot_table(
        index=["workload.batch", "workload.L"], columns="policy.partition", values="chan_util_mean"
    )
    for b in (1, 8, 64, 256):
        g = u.loc[b]
        print(
            f"equal lengths, batch {b}: mean channel utilization "
            + ", ".join(f"{p} {g[p].min():.2f}-{g[p].max():.2f}" for p in POLICIES)
        )
    r = piv["hfp_greedy"] / piv["tcp"]
    print(
        f"head-first greedy / token-centric step time: {r.min():.2f}-{r.max():.2f}x; "
        f"token-centric slower (ratio < 1) on {int((r < 1).sum())} of {len(r)} (batch, L) "
        f"points, at L <= {int(r[r < 1].index.get_level_values(1).max()) if (r < 1).any() else 0}"
    )
    v = var.groupby(["policy.partition"])["chan_util_mean"].agg(["min", "median"])
    print(
        "multifieldqa lengths, batch 1-256: mean channel utilization "
        + ", ".join(
            f"{p} min {v.loc[p, 'min']:.2f} median {v.loc[p, 'median']:.2f}" for p in POLICIES
        )
    )
    frames = []
    for name, frame in (("fixed", eq), ("multifieldqa", var.assign(**{"workload.L": 0}))):
        t = frame.pivot_table(
            index=["workload.batch", "workload.L"],
            columns="policy.partition",
            values=["chan_util_mean", "step_ns"],
        )
        t.columns = [f"{m}_{p}" for m, p in t.columns]
        frames.append(t.reset_index().assign(lengths=name))
    table = pd.concat(frames, ignore_index=True)
    return table[["lengths", *table.columns[:-1]]]


if __name__ == "__main__":
    command(main)(*sys.argv[1:2])
