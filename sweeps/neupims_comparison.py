"""Question: how much decode throughput do NeuPIMs' three steps add over the NPU alone:
decode attention on the HBM2-PIM (naive: one row buffer, NPU and PIM blocked), + dual row
buffers, + sub-batch interleaving? GPT3-7B/13B/30B/175B at batch 64-512, ShareGPT-like
(NeuPIMs' trace) and Alpaca (68-token, NeuPIMs' steady state) contexts.

    python sweeps/neupims_comparison.py [OUT.png]

Runs ``sweeps/neupims_comparison.yaml`` (lengths × batch × 4 system variants, 32 points) once
per model with the ``system`` model, TP/PP as NeuPIMs runs each model (n_tp, n_pp of its
model configs; one micro-batch, so each pipeline stage holds the whole batch), draws the
speedup of each variant over NPU-only, and prints the numbers. Every variant sees the same
32 GiB of HBM, so a batch that does not fit is cut to the same admitted requests in all four.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the checkout's dse, however it is installed

import dse  # noqa: E402
from dse.process import command  # noqa: E402

# NeuPIMs configs/model_configs/gpt3-*.json: n_tp, n_pp (weights per device 3.3-10.9 GB)
MODELS = {"gpt3_7b": (4, 1), "gpt3_13b": (4, 1), "gpt3_30b": (4, 2), "gpt3_175b": (8, 4)}
COLORS = {
    "gpt3_7b": "#1f77b4",
    "gpt3_13b": "#2ca02c",
    "gpt3_30b": "#ff7f0e",
    "gpt3_175b": "#d62728",
}
# (system, dual_rb, sbi) → label, line style, marker
VARIANTS = {
    ("gpu", 0, 0): ("NPU-only", None, None),
    ("npu_pim", 0, 0): ("NPU+PIM naive (blocked)", ":", "o"),
    ("npu_pim", 1, 0): ("+ dual row buffers", "--", "x"),
    ("npu_pim", 1, 1): ("+ sub-batch interleaving (NeuPIMs)", "-", "s"),
}
LENGTHS = {
    "neupims_sharegpt": "ShareGPT (NeuPIMs trace, mean 317)",
    "fixed": "Alpaca (68, NeuPIMs steady state)",
}
PAPER = 2.4  # NeuPIMs abstract: 2.4x over NPU-only (1.6x over naive NPU+PIM, 3x over GPU)
# NeuPIMs interleaves sub-batches only from batch 256 on (its README, "sub-batch
# interleaving is enabled only when batch size >= 256"; the code has no threshold:
# docs/systems/neupims.md §4); below it NeuPIMs runs dual row buffers alone
SBI_FROM = 256


def speedups() -> pd.DataFrame:
    """Every feasible point of the sweep, each model at NeuPIMs' TP/PP, with its
    ``variant`` (system, dual_rb, sbi) and ``speedup`` over NPU-only at the same (model,
    lengths, batch)."""
    frames = []
    for llm, (tp, pp) in MODELS.items():
        f = dse.explore(
            [f"workload.llm={llm}", f"policy.tp={tp}", f"policy.pp={pp}"],
            config_name="neupims_comparison",
            config_dir=str(HERE),
        )
        frames.append(f.assign(**{"workload.llm": llm}))
    df = pd.concat(frames, ignore_index=True)
    for col in ("workload.lengths", "policy.system"):
        df[col] = df[col].astype(str)
    bad = ~df["feasible"]
    print(f"{len(df)} points, {int(bad.sum())} infeasible (excluded)")
    df = df[~bad]
    df["variant"] = list(
        zip(df["policy.system"], df["policy.dual_rb"], df["policy.sbi"], strict=True)
    )
    key = ["workload.llm", "workload.lengths", "workload.batch"]
    base = df[df["variant"] == ("gpu", 0, 0)].set_index(key)["tokens_per_s"]
    df["speedup"] = (
        df["tokens_per_s"].to_numpy() / base.loc[pd.MultiIndex.from_frame(df[key])].to_numpy()
    )
    return df


def headline(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, lengths, batch) of :func:`speedups`: each variant's speedup over
    NPU-only (``naive``, ``dual_rb``, ``sbi``: interleaving at every batch) and ``neupims``,
    NeuPIMs as its authors ran it (interleaving from :data:`SBI_FROM` on, dual row buffers
    alone below)."""
    key = ["workload.llm", "workload.lengths", "workload.batch"]
    piv = df.pivot_table(index=key, columns="variant", values="speedup")
    t = pd.DataFrame(
        {
            "naive": piv[("npu_pim", 0, 0)],
            "dual_rb": piv[("npu_pim", 1, 0)],
            "sbi": piv[("npu_pim", 1, 1)],
        }
    ).reset_index()
    t["neupims"] = t["sbi"].where(t["workload.batch"] >= SBI_FROM, t["dual_rb"])
    return t


def main(out: str | None = None) -> pd.DataFrame:
    """Run the study, write the figure to ``out``, print and return the key numbers: one row
    per (model, lengths, batch) with NPU-only throughput and each variant's speedup."""
    if out is None:  # results/neupims_comparison/ here, not the tracked figure in sweeps/
        from dse.studies import default_figure

        out = str(default_figure("neupims_comparison"))
    df = speedups()
    key = ["workload.llm", "workload.lengths", "workload.batch"]
    base = df[df["variant"] == ("gpu", 0, 0)].set_index(key)["tokens_per_s"]

    cut = df[df["batch"] < df["workload.batch"]].groupby("workload.llm")["batch"].min()
    cut_note = "KV capacity at 512: " + ", ".join(
        f"{m.removeprefix('gpt3_')} runs {int(cut[m])}" for m in MODELS if m in cut
    )

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), dpi=110, sharey=True)
    for ax, (lengths, title) in zip(axes, LENGTHS.items(), strict=True):
        for llm, color in COLORS.items():
            for v, (_, ls, marker) in VARIANTS.items():
                if ls is None:
                    continue
                g = df[(df["workload.llm"] == llm) & (df["workload.lengths"] == lengths)]
                g = g[g["variant"] == v].sort_values("workload.batch")
                ax.plot(
                    g["workload.batch"],
                    g["speedup"],
                    ls=ls,
                    marker=marker,
                    ms=4 if marker != "x" else 7,
                    mfc="none",
                    color=color,
                )
        ax.axhline(1, color="#7f7f7f", lw=0.8)
        ax.axhline(PAPER, color="k", lw=0.8, ls="-.")
        ax.text(64, PAPER * 1.02, "NeuPIMs paper: 2.4x over NPU-only", fontsize=7)
        ax.set_xscale("log", base=2)
        ax.set_xticks([64, 128, 256, 512], ["64", "128", "256", "512"])
        ax.set_xlabel("batch (decode requests)")
        ax.set_title(f"{title} contexts", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("decode tokens/s over NPU-only")
    if len(cut):
        axes[0].text(0.98, 0.03, cut_note, transform=axes[0].transAxes, ha="right", fontsize=7)
    models = [Line2D([], [], color=c, lw=2, label=m) for m, c in COLORS.items()]
    styles = [
        Line2D([], [], color="k", ls=ls, marker=mk, mfc="none", label=lab)
        for lab, ls, mk in VARIANTS.values()
        if ls is not None
    ]
    axes[1].legend(handles=models + styles, fontsize=7, ncol=2, loc="center left")
    fig.suptitle(
        "NeuPIMs steps over NPU-only (NPU 262 TFLOPS, HBM2 1 TB/s, 32-ch HBM2-PIM; "
        "TP/PP as NeuPIMs: 7B/13B 4/1, 30B 4/2, 175B 8/4)\nnaive: NeuPIMs' npu+pim branch (one "
        "PIM instruction per NPU cycle, round-robin requests); NeuPIMs interleaves from batch 256",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")

    # the numbers
    piv = df.pivot_table(index=key, columns="variant", values="speedup")
    tok = base
    adm = df[df["variant"] == ("gpu", 0, 0)].set_index(key)["batch"]
    print(
        f"{'model':10} {'lengths':17} {'batch':>5} {'run':>4} {'NPU tok/s':>9} "
        f"{'naive':>6} {'+dualRB':>7} {'+SBI':>6} {'SBI/naive':>9}"
    )
    order = [
        (m, ln, b) for m in MODELS for ln in LENGTHS for b in sorted(set(df["workload.batch"]))
    ]
    rows = []
    for idx in [i for i in order if i in piv.index]:
        r = piv.loc[idx]
        naive, dual, sbi = r[("npu_pim", 0, 0)], r[("npu_pim", 1, 0)], r[("npu_pim", 1, 1)]
        rows.append(
            {
                "model": idx[0],
                "lengths": idx[1],
                "batch": idx[2],
                "run": int(adm.loc[idx]),
                "npu_tok_per_s": tok.loc[idx],
                "naive": naive,
                "dual_rb": dual,
                "sbi": sbi,
                "sbi_over_naive": sbi / naive,
            }
        )
        print(
            f"{idx[0]:10} {idx[1]:17} {idx[2]:5d} {int(adm.loc[idx]):4d} {tok.loc[idx]:9.0f} "
            f"{naive:6.2f} {dual:7.2f} {sbi:6.2f} {sbi / naive:9.2f}"
        )
    naive, nb = piv[("npu_pim", 0, 0)], piv[("npu_pim", 1, 1)]
    dual = piv[("npu_pim", 1, 0)] / naive
    print(
        f"NeuPIMs (dual RB + SBI) over NPU-only: {nb.min():.2f}-{nb.max():.2f}x; "
        f"over naive NPU+PIM: {(nb / naive).min():.2f}-{(nb / naive).max():.2f}x "
        f"(mean {(nb / naive).mean():.2f}x); dual RB alone (balanced placement) over naive: "
        f"{dual.min():.2f}-{dual.max():.2f}x (mean {dual.mean():.2f}x)"
    )
    return pd.DataFrame(rows)


if __name__ == "__main__":
    command(main)(*sys.argv[1:2])
