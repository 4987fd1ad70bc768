"""Question: on CENT's own configurations (Llama-2 7B on 8 devices, 13B on 20, 70B on 32;
every GEMV on GDDR6-AiM, vector work on the near-memory units, CXL between devices), how do
pipeline and tensor parallelism trade decode throughput against latency per token, and how
close is the model to CENT's artifact?

    python sweeps/cent_parallelism.py [OUT.png]

Evaluates every configuration of CENT's ``simulation_results.csv`` (transcribed in
``dse/validation/data/published_cent.csv``): the model-parallel splits TP x PP = N on whole
devices and the pipeline-parallel mode (PP = n_layers on channel slices), one request per
pipeline stage in flight, at context 128, 1024 and 4096 (``dse.validation.published``).
Draws throughput against PP and latency per token against TP, CENT's beside the model's,
prints the table and the agreement.
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

from dse.process import command  # noqa: E402
from dse.validation.published import compare_cent  # noqa: E402

MODELS = ("llama2_7b", "llama2_13b", "llama2_70b")
L_COLOR = {128: "#1f77b4", 1024: "#ff7f0e", 4096: "#2ca02c"}


def main(out: str | None = None) -> pd.DataFrame:
    """Run the study, write the figure to ``out``, print and return the table: one row per
    CENT configuration and context, CENT's numbers beside the model's."""
    if out is None:  # results/cent_parallelism/ here, not the tracked figure in sweeps/
        from dse.studies import default_figure

        out = str(default_figure("cent_parallelism"))
    res = compare_cent()
    df, trends = res["table"], res["trends"]
    mp = df[df["mode"] == "MP mode"]
    ppm = df[df["mode"] == "PP mode"]

    fig, axes = plt.subplots(2, 3, figsize=(15, 9), dpi=110)
    for j, llm in enumerate(MODELS):
        g = mp[mp["model"] == llm]
        n = int(g["N"].iloc[0])
        for L, color in L_COLOR.items():
            h = g[g["L"] == L].sort_values("PP")
            axes[0, j].plot(
                h["PP"], h["tokens_per_s"], "--o", color=color, mfc="none", label=f"CENT L={L}"
            )
            axes[0, j].plot(
                h["PP"], h["model_tokens_per_s"], "-", marker=".", color=color, label=f"model L={L}"
            )
            p = ppm[(ppm["model"] == llm) & (ppm["L"] == L)]
            axes[0, j].plot(p["PP"], p["tokens_per_s"], "D", color=color, mfc="none", ms=8)
            axes[0, j].plot(p["PP"], p["model_tokens_per_s"], "D", color=color, ms=5)
            h = g[g["L"] == L].sort_values("TP")
            axes[1, j].plot(
                h["TP"], h["T_token_ms"], "--o", color=color, mfc="none", label=f"CENT L={L}"
            )
            axes[1, j].plot(
                h["TP"], h["model_T_token_ms"], "-", marker=".", color=color, label=f"model L={L}"
            )
        axes[0, j].set_title(f"{llm}, N = {n} devices")
        axes[0, j].set_xlabel("pipeline stages PP (= requests in flight)")
        axes[1, j].set_xlabel("tensor-parallel devices TP (PP = N / TP)")
        for ax in axes[:, j]:
            ax.set_xscale("log", base=2)
            ax.grid(alpha=0.3)
            ax.set_ylim(bottom=0)
    axes[0, 0].set_ylabel("decode throughput (tokens/s)")
    axes[1, 0].set_ylabel("latency per token (ms)")
    axes[0, 0].legend(fontsize=7, ncol=2)
    fig.suptitle(
        "CENT's configurations: artifact (open markers, dashed) and model (filled, solid); TP x "
        "PP = N on whole devices, diamonds: PP = n_layers on channel slices; one request per "
        "pipeline stage, context L for every request",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")

    cols = [
        "model",
        "N",
        "TP",
        "PP",
        "ch_per_block",
        "L",
        "T_token_ms",
        "model_T_token_ms",
        "tokens_per_s",
        "model_tokens_per_s",
        "rel_tps",
        "status",
    ]
    tab = df[cols].rename(columns={"rel_tps": "diff"})
    print(tab.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for mode, g in df.groupby("mode"):
        rel = g["rel_tps"].abs()
        print(
            f"{mode}: {len(g)} rows, throughput MAPE {rel.mean():.1%}, worst "
            f"{g['rel_tps'].iloc[int(np.argmax(rel))]:+.1%}, "
            f"{int((rel <= 0.2).sum())}/{len(g)} within 20%"
        )
    for name, (agree, total) in trends.items():
        print(f"trend {name}: {agree}/{total} pairs in CENT's direction")
    for llm in MODELS:
        g = mp[(mp["model"] == llm) & (mp["L"] == 128)].sort_values("PP")
        print(
            f"{llm}: MP-mode throughput at L=128 from PP 1 to PP {g['PP'].max()}: CENT "
            f"{g['tokens_per_s'].iloc[0]:.0f} -> {g['tokens_per_s'].iloc[-1]:.0f}, model "
            f"{g['model_tokens_per_s'].iloc[0]:.0f} -> {g['model_tokens_per_s'].iloc[-1]:.0f} "
            "tok/s"
        )
    return tab


if __name__ == "__main__":
    command(main)(*sys.argv[1:2])
