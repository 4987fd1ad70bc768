"""Question: from which batch size does sub-batch interleaving (two load-balanced halves, the
dense ops of one beside the PIM attention of the other) raise decode throughput, and why does
it lose below that batch?

    python sweeps/sbi_crossover.py [OUT.png]

Runs ``sweeps/sbi_crossover.yaml`` (batch 1-512 × sbi 0/1, 26 points) for four lines with the
``system`` model: NeuPIMs (NPU + HBM2-PIM with dual row buffers, TP 4, NeuPIMs' ShareGPT
trace) with GPT3-7B and GPT3-13B, and LLMServingSim's GPU + DDR4-PIM attention offload
(Llama-3.1-8B on an RTX PRO 6000, 8 PIM channels) with the contexts of its example trace and
of its ShareGPT trace. Draws the throughput ratio sbi=1 / sbi=0 with the first batch where it
exceeds 1, and what decides it: the PIM attention one half can hide against the dense time
the second half adds. Compares with LLMServingSim's example outputs when they are found.
"""

from __future__ import annotations

import os
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

# LLMServingSim single_node_pim_instance.json: RTXPRO6000 + DDR4_8GB_3200_pim, Llama-3.1-8B, TP 1.
# 8 channels; rows x8 so a channel holds the INI's channel_size 8192 MB (the preset's 8 banks x
# 64K rows x 2 KB hold 1 GiB): 64 GiB of KV.
LSIM = [
    "pim=ddr4_3200_llmservingsim",
    "host=rtx_pro_6000",
    "policy.system=gpu_pim",
    "policy.tp=1",
    "workload.llm=llama3_1_8b",
    "hw.pim.channels=8",
    "hw.pim.rows=524288",
]
LINES = {
    "NeuPIMs GPT3-7B, ShareGPT (mean 317)": (["workload.llm=gpt3_7b"], "#1f77b4"),
    "NeuPIMs GPT3-13B, ShareGPT (mean 317)": (["workload.llm=gpt3_13b"], "#2ca02c"),
    # example_trace.jsonl: mean input 12, output 59 tokens -> 12 + 59/2 = 42 mid-decode
    "LLMServingSim Llama-3.1-8B, example-trace contexts (42)": (
        [*LSIM, "workload.lengths=fixed", "workload.L=42"],
        "#ff7f0e",
    ),
    "LLMServingSim Llama-3.1-8B, ShareGPT (mean 1183)": (
        [*LSIM, "workload.lengths=sharegpt"],
        "#d62728",
    ),
}
TICKS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
# LLMServingSim's shipped outputs (third-party; used where present): $DSE_REFERENCE
EXAMPLES = (
    Path(os.environ.get("DSE_REFERENCE") or HERE.parent.parent / "shared" / "reference")
    / "llmservingsim"
    / "example_outputs"
)


def _example_tpot_ms() -> tuple[float, float] | None:
    """Median TPOT (ms) of LLMServingSim's PIM example without and with interleaving."""
    files = [EXAMPLES / f"example_pim{s}_run.csv" for s in ("", "_sub_batch")]
    if not all(f.exists() for f in files):
        return None
    a, b = (pd.read_csv(f)["TPOT"].median() / 1e6 for f in files)
    return a, b


def main(out: str | None = None) -> pd.DataFrame:
    """Run the study, write the figure to ``out``, print and return the key numbers: one row
    per (line, batch) with the period without and with interleaving, their throughput ratio
    and the attention time over the dense time the second half adds."""
    if out is None:  # results/sbi_crossover/ here, not the tracked figure in sweeps/
        from dse.studies import default_figure

        out = str(default_figure("sbi_crossover"))
    frames = []
    for name, (overrides, _) in LINES.items():
        df = dse.explore(overrides, config_name="sbi_crossover", config_dir=str(HERE))
        frames.append(df.assign(line=name))
    df = pd.concat(frames, ignore_index=True)
    bad = ~df["feasible"]
    print(f"{len(df)} points, {int(bad.sum())} infeasible (excluded)")
    df = df[~bad]
    piv = df.pivot_table(
        index=["line", "workload.batch"],
        columns="policy.sbi",
        values=["tokens_per_s", "period_ns", "attn_pim_ns", "dense_ns", "batch"],
    )
    ratio = piv["tokens_per_s"][1] / piv["tokens_per_s"][0]
    extra = piv["dense_ns"][1] - piv["dense_ns"][0]  # the second half's weight reads, launches
    hide = (piv["attn_pim_ns"][0] / extra).where(extra > 0)
    run = piv["batch"][0].astype(int)
    cross = {ln: (ratio.loc[ln][ratio.loc[ln] > 1].index.min()) for ln in LINES}
    example = _example_tpot_ms()

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), dpi=110)
    ax = axes[0]
    for i, (ln, (_, color)) in enumerate(LINES.items()):
        r = ratio.loc[ln]
        ax.plot(r.index, r.to_numpy(), "-o", ms=3, color=color, label=ln)
        capped = run.loc[ln] < r.index
        if capped.any():
            ax.plot(r.index[capped], r[capped], "o", ms=7, mfc="none", color=color)
        c = cross[ln]
        if pd.notna(c):
            ax.plot(c, r.loc[c], "*", ms=14, color=color, mec="k")
            ax.annotate(
                f"{c}",
                (c, r.loc[c]),
                xytext=(-26, 4 - 12 * (i % 2)),
                textcoords="offset points",
                fontsize=8,
                color=color,
            )
    if example:
        a, b = example
        ax.plot(
            8, a / b, "kX", ms=9, label=f"LLMServingSim example outputs: TPOT {a:.1f} → {b:.1f} ms"
        )
    ax.axhline(1, color="#7f7f7f", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(TICKS, [str(t) for t in TICKS])
    ax.set_xlabel("batch (decode requests; hollow: KV capacity runs fewer)")
    ax.set_ylabel("tokens/s with interleaving / without")
    ax.set_title("sub-batch interleaving gain; star: first batch > 1", fontsize=10)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()

    ax = axes[1]
    for ln, (_, color) in LINES.items():
        h = hide.loc[ln].dropna()
        ax.plot(h.index, h.to_numpy(), "-o", ms=3, color=color)
    ax.axhline(1, color="#7f7f7f", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(TICKS, [str(t) for t in TICKS])
    ax.set_yscale("log")
    ax.set_xlabel("batch (decode requests)")
    ax.set_ylabel("PIM attention time / dense time the 2nd half adds")
    ax.set_title(
        "why: interleaving hides attention but reads the weights twice;\n"
        "it pays roughly where this ratio exceeds 1",
        fontsize=10,
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(handles, labels, fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")

    print(
        f"{'line':56} {'batch':>5} {'run':>4} {'ms sbi0':>8} {'ms sbi1':>8} {'ratio':>6} "
        f"{'att/extra':>9}"
    )
    rows = []
    for ln in LINES:
        for b in ratio.loc[ln].index:
            k = (ln, b)
            ms0, ms1 = piv["period_ns"][0].loc[k] / 1e6, piv["period_ns"][1].loc[k] / 1e6
            rows.append(
                {
                    "line": ln,
                    "batch": b,
                    "run": run.loc[k],
                    "period_ms_sbi0": ms0,
                    "period_ms_sbi1": ms1,
                    "tok_ratio_sbi1_over_sbi0": ratio.loc[k],
                    "attn_over_extra_dense": hide.loc[k],
                }
            )
            print(
                f"{ln:56} {b:5d} {run.loc[k]:4d} {ms0:8.2f} {ms1:8.2f} {ratio.loc[k]:6.2f} "
                f"{hide.loc[k]:9.2f}"
            )
    for ln, c in cross.items():
        r = ratio.loc[ln]
        print(
            f"{ln}: crossover at batch {c if pd.notna(c) else 'none'}; "
            f"ratio {r.min():.2f}-{r.max():.2f} (at 512: {r.loc[512]:.2f})"
        )
    if example:
        a, b = example
        short = [ln for ln in LINES if "example" in ln][0]
        ms0, ms1 = (piv["period_ns"][s].loc[(short, 8)] / 1e6 for s in (0, 1))
        print(
            f"LLMServingSim example outputs (batch <= 10, contexts ~12-70): median TPOT {a:.2f} ms "
            f"without, {b:.2f} ms with interleaving (ratio {a / b:.2f}); this model at batch 8: "
            f"{ms0:.2f} vs {ms1:.2f} ms (ratio {ratio.loc[(short, 8)]:.2f})"
        )
    return pd.DataFrame(rows)


if __name__ == "__main__":
    command(main)(*sys.argv[1:2])
