"""Question: how do latency per token and decode throughput scale with context from 256 to 1M
tokens on the four system kinds (GPU, GPU + PIM attention, NPU + PIM, PIM-only CENT) for
Llama-3.1-8B and Llama-3.1-70B, where does memory run out, and from which context on does
decode attention dominate the dense layers?

    python sweeps/context_scaling.py [OUT.png]

Runs ``sweeps/context_scaling.yaml`` once per system kind (model × context × batch {1, 16} ×
device split × attention partition, 208 points each) with the ``system`` model and dynamic
KV allocation, every request at the same context. The figure uses, per model, one device
split per kind (8B: one GPU / NPU, CENT tp 8 × pp 2; 70B: tp 8, CENT tp 8 × pp 4) and, on the
PIM kinds, the faster of head-first (hfp_rr) and token-centric (tcp) attention partitioning
at each point. A batch-16 point counts as fitting only if all 16 requests' KV fits.
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

ONE = ["policy.micro_batches=1", "space.axes.policy.tp=[1,8]", "space.axes.policy.pp=[1]"]
KINDS = {  # kind: (overrides on the CENT study config, colour, devices)
    "gpu": (["host=h100", "policy.system=gpu", *ONE], "#7f7f7f", "H100 80 GB"),
    "gpu_pim": (
        ["host=rtx_pro_6000", "pim=hbm2_neupims", "policy.system=gpu_pim", *ONE],
        "#1f77b4",
        "RTX PRO 6000 + HBM2-PIM 34 GB",
    ),
    "npu_pim": (
        ["host=neupims_npu", "pim=hbm2_neupims", "policy.system=npu_pim", "policy.dual_rb=1", *ONE],
        "#2ca02c",
        "NeuPIMs NPU + HBM2-PIM (dual RB)",
    ),
    "pim_only": ([], "#d62728", "CENT GDDR6-AiM 17 GB"),
}
# (tp, pp) drawn per model and kind
SPLIT = {
    "llama3_1_8b": {"gpu": (1, 1), "gpu_pim": (1, 1), "npu_pim": (1, 1), "pim_only": (8, 2)},
    "llama3_1_70b": {"gpu": (8, 1), "gpu_pim": (8, 1), "npu_pim": (8, 1), "pim_only": (8, 4)},
}
BATCHES = {1: "-", 16: "--"}


def load() -> pd.DataFrame:
    frames = []
    for kind, (overrides, _, _) in KINDS.items():
        df = dse.explore(overrides, config_name="context_scaling", config_dir=str(HERE))
        df["kind"] = kind
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    for col in ("workload.llm", "policy.partition"):
        df[col] = df[col].astype(str)
    df["fits"] = df["feasible"] & (df["batch"] == df["workload.batch"])
    df["attn_share"] = df["attn_pim_ns"] / (df["attn_pim_ns"] + df["dense_ns"])
    return df


def best_partition(df: pd.DataFrame) -> pd.DataFrame:
    """One row per point: the faster attention partition (gpu: either, they are equal)."""
    key = ["kind", "workload.llm", "policy.tp", "policy.pp", "workload.batch", "workload.L"]
    df = df.assign(_t=df["step_ns"].where(df["fits"], np.inf))
    return df.sort_values("_t").groupby(key, as_index=False).first().drop(columns="_t")


def curve(best: pd.DataFrame, llm: str, kind: str, b: int) -> pd.DataFrame:
    tp, pp = SPLIT[llm][kind]
    g = best[
        (best["workload.llm"] == llm)
        & (best["kind"] == kind)
        & (best["policy.tp"] == tp)
        & (best["policy.pp"] == pp)
        & (best["workload.batch"] == b)
    ]
    return g.sort_values("workload.L")


def share(g: pd.DataFrame, kind: str) -> pd.Series:
    """Attention's share of a step: attn / (attn + dense) on the PIM kinds; on the GPU (host
    attention is not a metric) the context-dependent part of the step,
    (step(L) - step(shortest L)) / step(L)."""
    if kind != "gpu":
        return g["attn_share"]
    return 1.0 - g["step_ns"].iloc[0] / g["step_ns"]


def at(g: pd.DataFrame, length: int, col: str = "step_ns", scale: float = 1e6) -> float:
    v = g.loc[g["workload.L"] == length, col]
    return v.iloc[0] / scale if len(v) else np.nan


def dominant(g: pd.DataFrame, kind: str):
    """The shortest context at which attention is at least half of the step."""
    hit = g.loc[share(g, kind).values >= 0.5, "workload.L"]
    return int(hit.min()) if len(hit) else pd.NA


def main(out: str | None = None) -> pd.DataFrame:
    """Run the study, write the figure to ``out``, print and return the key numbers: one row
    per (model, kind) with the longest context that fits, step times and throughput."""
    if out is None:  # results/context_scaling/ here, not the tracked figure in sweeps/
        from dse.studies import default_figure

        out = str(default_figure("context_scaling"))
    df = load()
    bad = df[~df["feasible"]]
    split = ["kind", "workload.llm", "policy.tp", "policy.pp"]
    no_weights = (
        bad.groupby(split)["workload.L"].transform("size") == 2 * 2 * df["workload.L"].nunique()
    )  # every context and batch of the split fails: the weights do not fit
    partial = df[df["feasible"] & ~df["fits"]]
    print(
        f"{len(df)} points, {len(bad)} infeasible (status "
        f"{', '.join(f'{k}' for k in bad['status'].unique())}): {no_weights.sum()} where the "
        "weights do not fit ("
        + ", ".join(
            f"{k} {m} tp {t} pp {p}"
            for k, m, t, p in bad[no_weights][split].drop_duplicates().itertuples(index=False)
        )
        + f"), {(~no_weights).sum()} where one request's KV does not fit; "
        f"{len(partial)} more batch-16 points where fewer than 16 requests fit (drawn as not "
        "fitting)"
    )
    best = best_partition(df)

    models = list(SPLIT)
    fig, axes = plt.subplots(3, 2, figsize=(13, 14), dpi=110, sharex=True)
    for j, llm in enumerate(models):
        for kind, (_, color, dev) in KINDS.items():
            tp, pp = SPLIT[llm][kind]
            for b, ls in BATCHES.items():
                g = curve(best, llm, kind, b)
                ok = g[g["fits"]]
                lab = f"{kind} ({tp * pp}x {dev}, tp {tp} pp {pp}), batch {b}"
                for i, y in enumerate(
                    (ok["step_ns"] / 1e6, ok["tokens_per_s"], share(ok, kind) if len(ok) else [])
                ):
                    ax = axes[i, j]
                    ax.plot(ok["workload.L"], y, ls, marker=".", color=color, label=lab)
                    first_bad = g.loc[~g["fits"], "workload.L"]
                    if len(ok) and len(first_bad):  # where memory runs out
                        ax.plot(first_bad.min(), np.asarray(y)[-1], "x", ms=9, mew=2, color=color)
        axes[0, j].set_title(f"{llm}")
    axes[0, 0].set_ylabel("latency per token: step (ms)")
    axes[1, 0].set_ylabel("decode throughput (tokens/s)")
    axes[2, 0].set_ylabel("attention share of the step\n(gpu: context-dependent share)")
    for ax in axes[:2].flat:
        ax.set_yscale("log")
    for ax in axes.flat:
        ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3, which="both")
    for ax in axes[2]:
        ax.axhline(0.5, color="k", lw=0.8)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("context length L (tokens, every request)")
    for ax in axes[2]:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1)
    fig.suptitle(
        "Context scaling (dynamic KV allocation; PIM kinds at the faster of hfp_rr / tcp "
        "partitioning); x: first context where the batch no longer fits",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")

    # the table
    rows = []
    for llm in models:
        for kind in KINDS:
            tp, pp = SPLIT[llm][kind]
            c1, c16 = curve(best, llm, kind, 1), curve(best, llm, kind, 16)
            ok1, ok16 = c1[c1["fits"]], c16[c16["fits"]]

            raw = df[
                (df["workload.llm"] == llm)
                & (df["kind"] == kind)
                & (df["policy.tp"] == tp)
                & (df["policy.pp"] == pp)
                & (df["workload.batch"] == 1)
                & df["fits"]
            ]
            top = ok1["workload.L"].max() if len(ok1) else pd.NA
            ratio = np.nan
            if kind != "gpu" and top:
                t = raw[raw["workload.L"] == top].set_index("policy.partition")["step_ns"]
                ratio = t["hfp_rr"] / t["tcp"]
            rows.append(
                {
                    "model": llm,
                    "kind": kind,
                    "tp x pp": f"{tp}x{pp}",
                    "max L b1": top,
                    "max L b16": ok16["workload.L"].max() if len(ok16) else pd.NA,
                    "ms L4K b1": at(ok1, 4096),
                    "ms L128K b1": at(ok1, 131072),
                    "ms maxL b1": at(ok1, top) if top else np.nan,
                    "tok/s L4K b16": at(ok16, 4096, "tokens_per_s", 1.0),
                    "attn>=50% b1": dominant(ok1, kind),
                    "attn>=50% b16": dominant(ok16, kind),
                    "hfp_rr/tcp maxL": ratio,
                }
            )
    tab = pd.DataFrame(rows).set_index(["model", "kind"]).convert_dtypes()
    print(tab.to_string(float_format=lambda v: f"{v:.1f}" if v >= 10 else f"{v:.2f}"))
    return tab.reset_index()


if __name__ == "__main__":
    command(main)(*sys.argv[1:2])
