"""Question: how much does each of PIMphony's techniques add, one on top of the other, to
long-context decode throughput on a PIM-only and an NPU+PIM system, and where does GQA
change the picture?

    python sweeps/pimphony_ablation.py [OUT.png]

Runs ``sweeps/pimphony_ablation.yaml`` with the ``steady`` model (the largest batch of the
length mix that fits memory, up to ``batch_max`` 128) once per system × model class ×
context class (8 calls, 3,584 points): the full 2×2×2 of partitioning (head-first
round-robin / token-centric), command scheduling (static / dynamic) and KV allocation
(static / dynamic), for two GQA/MHA models, two length sets and eight seeds. The cumulative
ablation is the path baseline (hfp_rr, static, static) → +TCP (partition tcp) → +DCS
(sched dynamic) → +DPA (kv_alloc dynamic). Each (model, set, seed, policy) is taken at its
best micro-batch count; throughput is normalized to the baseline of the same model, set
and seed, then averaged (geometric mean) over the 16 (set, seed) samples. Draws normalized
throughput and the batch admitted, and prints the numbers.

* PIM-only (CENT-like): AiM GDDR6 devices (``pim=aim_gddr6``, 16 GiB each; weights and KV
  both in it), near-memory units (``host=cent_pnm``), CXL between devices; 7B-class on
  TP 8 × PP 2 (2, 4 or 8 micro-batches), 72B-class on TP 8 × PP 4 (CENT's 32 devices; 4 or
  8 micro-batches).
* NPU+PIM (NeuPIMs-like): HBM2-PIM with dual row buffers (``pim=hbm2_neupims``, 32 GiB;
  weights and KV both in it), the NeuPIMs NPU (``host=neupims_npu``); 7B-class on TP 4,
  72B-class on TP 8 × PP 2, one micro-batch per stage (more only re-read the weights); no
  sub-batch interleaving (in a 4-seed probe it raised the baseline only for Llama-3.1-8B
  at 32K and lowered it in 5 of 8 cases).
* Models: Llama-3.1-8B (GQA, 8 KV heads) vs Llama-2-7B (MHA, 32); Llama-3.1-70B (GQA, 8)
  vs Qwen1.5-72B (MHA, 64).
* Contexts: 32K (``max_context`` 32768; LongBench qmsum and musique, longest 30,456 tokens)
  and 128K (131072; LV-Eval multifieldqa and loogle_sd, longest 119,480): every set fits its
  class as published, so no ``length_scale``; static allocation reserves the class's
  ``max_context`` for every request.
"""

from __future__ import annotations

import sys
import time
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

# system → (overrides, {model class: (tp, pp, micro-batch counts tried)})
SYSTEMS = {
    "PIM-only": (
        ["pim=aim_gddr6", "host=cent_pnm", "policy.system=pim_only"],
        {"7B": (8, 2, (2, 4, 8)), "72B": (8, 4, (4, 8))},
    ),
    "NPU+PIM": (
        ["pim=hbm2_neupims", "host=neupims_npu", "policy.system=npu_pim", "policy.dual_rb=1"],
        {"7B": (4, 1, (1,)), "72B": (8, 2, (2,))},
    ),
}
MODELS = {"7B": ("llama3_1_8b", "llama2_7b"), "72B": ("llama3_1_70b", "qwen1_5_72b")}
GQA = ("llama3_1_8b", "llama3_1_70b")
LABEL = {
    "llama3_1_8b": "Llama-3.1-8B\nGQA",
    "llama2_7b": "Llama-2-7B\nMHA",
    "llama3_1_70b": "Llama-3.1-70B\nGQA",
    "qwen1_5_72b": "Qwen1.5-72B\nMHA",
}
CONTEXTS = {"32K": (32768, ("qmsum", "musique")), "128K": (131072, ("multifieldqa", "loogle_sd"))}
# the cumulative ablation: (partition, sched, kv_alloc)
STEPS = {
    "baseline": ("hfp_rr", "static", "static"),
    "+TCP": ("tcp", "static", "static"),
    "+DCS": ("tcp", "dynamic", "static"),
    "+DPA": ("tcp", "dynamic", "dynamic"),
}
COLORS = ("#7f7f7f", "#1f77b4", "#2ca02c", "#d62728")
KEYS = ["system", "workload.llm", "context", "workload.lengths", "workload.seed"]
POLICY = ["policy.partition", "policy.sched", "policy.kv_alloc"]


# PIMphony Fig. 17(b) (§VIII-D): context scaling on a fixed 512 GB system. Assumed here (the
# paper names neither): LLM-7B-128K (Llama-3.1-8B, GQA), 32 CENT devices (TP 8 x PP 4) and
# 16 NeuPIMs modules (TP 8 x PP 2), LV-Eval's two length sets scaled so the 128K class
# becomes the context (``length_scale``), static allocation reserving that context.
SCALING = {
    "PIM-only": (
        [*SYSTEMS["PIM-only"][0], "policy.tp=8", "policy.pp=4"],
        (1, 2, 4, 8),
    ),
    "NPU+PIM": ([*SYSTEMS["NPU+PIM"][0], "policy.tp=8", "policy.pp=2"], (2,)),
}
SCALING_CONTEXTS = {"256": 256, "1M": 1 << 20}


def scaling() -> pd.DataFrame:
    """PIMphony's full path (TCP + DCS + DPA) over the baseline at 256 and 1M tokens on the
    512 GB systems of :data:`SCALING`, Llama-3.1-8B: one row per (system, context) with the
    geometric-mean gain over 4 seeds of each length set and the mean batches admitted."""
    rows = []
    for system, (over, mbs) in SCALING.items():
        for ctx, n in SCALING_CONTEXTS.items():
            df = dse.explore(
                [
                    *over,
                    f"space.axes.policy.micro_batches=[{','.join(map(str, mbs))}]",
                    f"workload.max_context={n}",
                    f"workload.length_scale={n / CONTEXTS['128K'][0]}",
                    "space.axes.workload.llm=[llama3_1_8b]",
                    f"space.axes.workload.lengths=[{','.join(CONTEXTS['128K'][1])}]",
                    "space.axes.workload.seed=[0,1,2,3]",
                ],
                config_name="pimphony_ablation",
                config_dir=str(HERE),
            )
            df = df.assign(system=system, context=ctx)
            for col in ("workload.llm", "workload.lengths", *POLICY):
                df[col] = df[col].astype(str)
            res, _ = ablation(best_micro_batches(df))
            r = res.iloc[0]
            rows.append(
                {
                    "system": system,
                    "context": ctx,
                    "gain": r["x+DPA"],
                    "batch static": r["batch static"],
                    "batch DPA": r["batch DPA"],
                    "samples": int(r["samples"]),
                }
            )
    return pd.DataFrame(rows)


def run() -> pd.DataFrame:
    """Every point of the study, one row each, with ``system``/``context`` columns."""
    frames = []
    for system, (over, par) in SYSTEMS.items():
        for cls, llms in MODELS.items():
            tp, pp, mbs = par[cls]
            for ctx, (max_ctx, sets) in CONTEXTS.items():
                df = dse.explore(
                    [
                        *over,
                        f"policy.tp={tp}",
                        f"policy.pp={pp}",
                        f"space.axes.policy.micro_batches=[{','.join(map(str, mbs))}]",
                        f"workload.max_context={max_ctx}",
                        f"space.axes.workload.llm=[{','.join(llms)}]",
                        f"space.axes.workload.lengths=[{','.join(sets)}]",
                    ],
                    config_name="pimphony_ablation",
                    config_dir=str(HERE),
                )
                frames.append(df.assign(system=system, context=ctx))
    df = pd.concat(frames, ignore_index=True)
    for col in ("workload.llm", "workload.lengths", *POLICY):
        df[col] = df[col].astype(str)
    return df


def best_micro_batches(df: pd.DataFrame) -> pd.DataFrame:
    """Each (sample, policy) at the micro-batch count with the highest throughput."""
    ok = df[df["status"] == "ok"]
    best = ok.loc[ok.groupby(KEYS + POLICY)["tokens_per_s"].idxmax()]
    # a (sample, policy) with no feasible micro-batch count keeps one infeasible row
    rest = df[~df.set_index(KEYS + POLICY).index.isin(best.set_index(KEYS + POLICY).index)]
    return pd.concat([best, rest.drop_duplicates(KEYS + POLICY)], ignore_index=True)


def ablation(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Per (system, model, context): geometric-mean throughput of each step / baseline and
    mean batch admitted, over the feasible (set, seed) samples; also the samples dropped
    because a step on their path was infeasible. ``df``: one row per (sample, policy)."""
    policy = df[POLICY].apply(tuple, axis=1)
    rows = []
    for name, combo in STEPS.items():
        sel = df[policy == combo].set_index(KEYS)
        cols = ["tokens_per_s", "batch", "max_batch", "status", "policy.micro_batches"]
        rows.append(sel[cols].add_prefix(f"{name}|"))
    wide = pd.concat(rows, axis=1)
    ok = np.logical_and.reduce([wide[f"{s}|status"] == "ok" for s in STEPS])
    dropped = int((~ok).sum())
    wide = wide[ok]
    base = wide["baseline|tokens_per_s"]
    out = {"base tok/s": base}
    for s in STEPS:
        out[f"x{s}"] = np.log(wide[f"{s}|tokens_per_s"] / base)
    out["batch static"] = wide["baseline|batch"]
    out["batch DPA"] = wide["+DPA|batch"]
    out["capped"] = wide["+DPA|max_batch"] > wide["+DPA|batch"]
    out["mb base"] = wide["baseline|policy.micro_batches"]
    out["mb DPA"] = wide["+DPA|policy.micro_batches"]
    g = pd.DataFrame(out).groupby(level=["system", "workload.llm", "context"])
    res = g.mean()
    for s in STEPS:
        res[f"x{s}"] = np.exp(res[f"x{s}"])
    res["base tok/s"] = np.exp(g["base tok/s"].apply(lambda x: np.log(x).mean()))
    res["samples"] = g.size()
    order = [(sy, m, c) for sy in SYSTEMS for c in CONTEXTS for cls in MODELS for m in MODELS[cls]]
    keys = [k for k in order if k in res.index] + [k for k in res.index if k not in order]
    return res.reindex(keys), dropped


def plot(res: pd.DataFrame, out: str) -> None:
    fig, axes = plt.subplots(
        2, 2, figsize=(14, 7.5), dpi=110, gridspec_kw={"height_ratios": [2, 1]}, sharex=True
    )
    for col, system in enumerate(SYSTEMS):
        r = res.loc[system]
        keys = [(m, c) for c in CONTEXTS for cls in MODELS for m in MODELS[cls]]
        x = np.arange(len(keys))
        ax = axes[0, col]
        w = 0.2
        for i, (s, color) in enumerate(zip(STEPS, COLORS, strict=True)):
            vals = [r.loc[k, f"x{s}"] for k in keys]
            ax.bar(x + (i - 1.5) * w, vals, w, color=color, label=s)
            if s == "+DPA":
                for xi, v in zip(x, vals, strict=True):
                    ax.text(xi + (i - 1.5) * w, v, f"{v:.1f}", ha="center", va="bottom", fontsize=7)
        ax.axhline(1, color="k", lw=0.6)
        ax.set_ylabel("decode throughput / baseline")
        ax.set_title(f"{system}: {'; '.join(SYSTEM_NOTE[system])}", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8, ncol=4, loc="upper left")
        ax.axvline(3.5, color="k", lw=0.6, ls=":")
        ax = axes[1, col]
        for i, (col_name, color, lab) in enumerate(
            (("batch static", COLORS[0], "static KV"), ("batch DPA", COLORS[3], "dynamic KV"))
        ):
            vals = [r.loc[k, col_name] for k in keys]
            ax.bar(x + (i - 0.5) * 0.35, vals, 0.35, color=color, label=lab)
        ax.set_yscale("log", base=2)
        ax.set_ylabel("batch admitted (mean)")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
        ax.axvline(3.5, color="k", lw=0.6, ls=":")
        ax.set_xticks(x, [f"{LABEL[m]}\n{c}" for m, c in keys], fontsize=7)
    fig.suptitle(
        "PIMphony cumulative ablation, steady-state decode (largest batch that fits, ≤ 128): "
        "32K = LongBench qmsum/musique, 128K = LV-Eval multifieldqa/loogle_sd, 8 seeds each",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(out)


SYSTEM_NOTE = {
    "PIM-only": ("AiM GDDR6 + CENT near-memory units", "7B TP8×PP2, 72B TP8×PP4"),
    "NPU+PIM": ("NeuPIMs NPU + HBM2-PIM, dual row buffers", "7B TP4, 72B TP8×PP2"),
}


def main(out: str | None = None) -> pd.DataFrame:
    """Run the study, write the figure to ``out``, print and return the key numbers: one row
    per (system, model, context) with each cumulative step's throughput over the baseline
    and the batches admitted."""
    if out is None:  # results/pimphony_ablation/ here, not the tracked figure in sweeps/
        from dse.studies import default_figure

        out = str(default_figure("pimphony_ablation"))
    t0 = time.perf_counter()
    df = run()
    bad = int((df["status"] != "ok").sum())
    res, dropped = ablation(best_micro_batches(df))
    plot(res, out)
    print(f"wrote {out} ({len(df)} points, {time.perf_counter() - t0:.0f} s)")
    print(
        f"infeasible rows (status != ok): {bad} of {len(df)}; (model, set, seed) samples "
        f"dropped because a step of the path was infeasible at every micro-batch count: "
        f"{dropped}"
    )
    w = df.groupby(["system", "workload.llm"])["weights_GB"].first()
    print("weights per device (GB): " + ", ".join(f"{s}/{m} {v:.1f}" for (s, m), v in w.items()))
    pd.set_option("display.width", 200)
    show = res.drop(columns=["xbaseline"]).round(2)
    show["capped"] = (res["capped"] * res["samples"]).round().astype(int)
    show["base tok/s"] = show["base tok/s"].round(0).astype(int)
    print(show.to_string())
    table = res.drop(columns=["xbaseline"]).reset_index()
    # geometric means over the models of each (system, context, attention type)
    res = res.reset_index()
    res["attn"] = np.where(res["workload.llm"].isin(GQA), "GQA", "MHA")
    cols = [f"x{s}" for s in STEPS if s != "baseline"]
    gm = np.exp(np.log(res[cols]).groupby([res["system"], res["context"], res["attn"]]).mean())
    print("geometric mean over the two model sizes:")
    print(gm.round(2).to_string())
    sc = scaling()
    print("context scaling, Llama-3.1-8B on 512 GB (TCP + DCS + DPA over the baseline):")
    print(sc.round(2).to_string(index=False))
    return table


if __name__ == "__main__":
    command(main)(*sys.argv[1:2])
