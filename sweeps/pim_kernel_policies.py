"""Question: how much MAC utilization do ping-pong buffering and dynamic command scheduling
recover over a static controller for decode attention, across head dimension 64–256 and
context 256–128K, and how do ping-pong and dynamic compare at equal total buffer capacity?

    python sweeps/pim_kernel_policies.py [OUT.png]

Runs the study ``sweeps/pim_kernel_policies.yaml`` (kind × d × L × policy, 360 points) and a
buffer-capacity sweep (GBuf bytes × OBuf entries, ping-pong vs dynamic, L = 32K, d = 128) with
the ``pim_kernel`` model, draws both, and prints what they show.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the checkout's dse, however it is installed

import dse  # noqa: E402
from dse.process import command  # noqa: E402

POLICIES = {"static": "#7f7f7f", "pingpong": "#1f77b4", "dynamic": "#d62728"}
DIMS = {64: ":", 128: "-", 256: "--"}


def _label(frame, col):
    return frame[col].astype(str)


def main(out: str | None = None) -> pd.DataFrame:
    """Run the study, write the figure to ``out``, print and return the key numbers: one row
    per (kind, d, L) with cycles and MAC utilization under each policy and the speedups over
    static."""
    if out is None:  # results/pim_kernel_policies/ here, not the tracked figure in sweeps/
        from dse.studies import default_figure

        out = str(default_figure("pim_kernel_policies"))
    df = dse.explore([], config_name="pim_kernel_policies", config_dir=str(HERE))
    df = df[df["feasible"]]
    for col in ("workload.kind", "policy.sched"):
        df[col] = _label(df, col)
    cap = dse.explore(
        [
            "space.axes.workload.kind=[score,context]",
            "space.axes.workload.d=[128]",
            "space.axes.workload.L=[32768]",
            "space.axes.policy.sched=[pingpong,dynamic]",
            "+space.axes.hw.pim.gbuf_bytes=[256,512,1024,2048,4096,8192]",
            "+space.axes.hw.pim.obuf_entries=[1,2,4,8]",
        ],
        config_name="pim_kernel_policies",
        config_dir=str(HERE),
    )
    cap = cap[cap["feasible"]]
    for col in ("workload.kind", "policy.sched"):
        cap[col] = _label(cap, col)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), dpi=110)
    for ax, kind in zip(axes[:2], ("score", "context"), strict=True):
        for sched, color in POLICIES.items():
            for d, ls in DIMS.items():
                g = df[(df["workload.kind"] == kind) & (df["policy.sched"] == sched)]
                g = g[g["workload.d"] == d].sort_values("workload.L")
                ax.plot(g["workload.L"], g["mac_util"], ls, color=color, label=f"{sched}, d={d}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("context length L (tokens)")
        ax.set_ylabel("MAC utilization")
        ax.set_title(f"attention {kind} (GQA 4, HBM3-PIM channel)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=3, loc="lower right")
    ax = axes[2]
    pim = OmegaConf.load(HERE.parent / "conf/pim/hbm3_attacc.yaml")
    obuf_bytes = pim.banks * pim.out_bytes  # one OBuf entry holds every bank's result
    cap = cap.assign(total_bytes=cap["hw.pim.gbuf_bytes"] + cap["hw.pim.obuf_entries"] * obuf_bytes)
    pc = cap.pivot_table(
        index=["workload.kind", "total_bytes", "hw.pim.gbuf_bytes", "hw.pim.obuf_entries"],
        columns="policy.sched",
        values="mac_util",
    )
    for kind, marker in (("score", "o"), ("context", "s")):
        g = pc.loc[kind]
        sc = ax.scatter(
            g["pingpong"],
            g["dynamic"],
            c=np.log2(g.index.get_level_values(0)),
            marker=marker,
            cmap="viridis",
            s=28,
            label=kind,
        )
    lo, hi = pc.min().min() - 0.02, pc.max().max() + 0.02
    ax.plot([lo, hi], [lo, hi], color="#7f7f7f", lw=0.8)
    fig.colorbar(sc, ax=ax, label="log2 total buffer bytes (GBuf + OBuf)")
    ax.set_xlabel("ping-pong MAC utilization")
    ax.set_ylabel("dynamic MAC utilization (same buffers)")
    ax.set_title("equal buffer capacity, L=32K, d=128")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")

    # what it shows, from the data
    piv = df.pivot_table(
        index=["workload.kind", "workload.d", "workload.L"],
        columns="policy.sched",
        values="cycles",
    )
    for kind in ("score", "context"):
        p = piv.loc[kind]
        sp_pp, sp_dy = p["static"] / p["pingpong"], p["static"] / p["dynamic"]
        u = df[(df["workload.kind"] == kind)].groupby("policy.sched")["mac_util"]
        print(
            f"{kind}: speedup over static, ping-pong {sp_pp.min():.2f}-{sp_pp.max():.2f}x "
            f"(median {sp_pp.median():.2f}), dynamic {sp_dy.min():.2f}-{sp_dy.max():.2f}x "
            f"(median {sp_dy.median():.2f}); MAC utilization range "
            + ", ".join(f"{s} {u.min()[s]:.2f}-{u.max()[s]:.2f}" for s in POLICIES)
        )
    gap = pc["dynamic"] / pc["pingpong"]
    k = gap.idxmax()
    print(
        f"equal capacity ({len(pc)} buffer configurations): dynamic/ping-pong MAC utilization "
        f"{gap.min():.3f}-{gap.max():.3f}x, median {gap.median():.3f}x; largest for {k[0]} "
        f"with a {k[2]:,}-byte GBuf and {k[3]} OBuf entries ({pc.loc[k, 'dynamic']:.2f} vs "
        f"{pc.loc[k, 'pingpong']:.2f})"
    )
    small = df[df["workload.L"] <= 1024].groupby("policy.sched")["mac_util"].median()
    print(
        "median MAC utilization at L <= 1K: " + ", ".join(f"{s} {small[s]:.2f}" for s in POLICIES)
    )
    util = df.pivot_table(
        index=["workload.kind", "workload.d", "workload.L"],
        columns="policy.sched",
        values="mac_util",
    )
    table = pd.concat(
        [piv[list(POLICIES)].add_prefix("cycles_"), util[list(POLICIES)].add_prefix("mac_util_")],
        axis=1,
    )
    table["speedup_pingpong"] = table["cycles_static"] / table["cycles_pingpong"]
    table["speedup_dynamic"] = table["cycles_static"] / table["cycles_dynamic"]
    table.columns.name = None
    return table.reset_index()


if __name__ == "__main__":
    command(main)(*sys.argv[1:2])
