"""Question: on a GPU-free CENT system (Llama-2 7B/13B/70B, every GEMV on GDDR6-AiM, CXL
between devices), how do pipeline and tensor parallelism over N = 8, 16, 32 devices trade
decode throughput against latency per token, at context 128-4096?

    python sweeps/cent_parallelism.py [OUT.png]

Runs ``sweeps/cent_parallelism.yaml`` (model × context × batch {1, 8} × every tp·pp = N split,
450 points, micro-batches = min(pp, 8)) with the ``system`` model, drops the infeasible
splits (tp not dividing the KV heads, a layer split that leaves the last stage empty, weights
that do not fit), and draws throughput and latency per token (``step_ns``) against context for
the most pipelined and the most tensor-parallel feasible split of each N, plus the best
hybrid. Prints a table per model and what it shows. Every request is at the same context.
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
from dse.workload.llm import load_preset  # noqa: E402

MODELS = ("llama2_7b", "llama2_13b", "llama2_70b")
N_COLOR = {8: "#1f77b4", 16: "#ff7f0e", 32: "#2ca02c"}
STYLE = {"PP": ("-", "o"), "TP": ("--", "s"), "hybrid": (":", "^")}
NAME = {"PP": "most PP", "TP": "most TP", "hybrid": "best hybrid"}
BATCH = 8  # the throughput batch (8 requests, one per micro-batch at pp >= 8)


def why_infeasible(row: pd.Series) -> str:
    """The reason a split is flagged, from the model's shape (status alone does not say)."""
    s = load_preset(row["workload.llm"])
    tp, pp = row["policy.tp"], row["policy.pp"]
    if s.kv_heads % tp:
        return f"tp {tp} does not divide {s.kv_heads} KV heads"
    if s.layers - (pp - 1) * -(-s.layers // pp) < 1:
        return f"pp {pp}: ceil({s.layers}/{pp}) layers per stage leave the last stage empty"
    return f"weights do not fit {tp * pp} devices ({row['status']})"


def pick(g: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """The most pipelined, most tensor-parallel and best-throughput (tp, pp) of one (model, N),
    from the feasible batch-8 rows ``g``."""
    splits = sorted({(int(t), int(p)) for t, p in zip(g["policy.tp"], g["policy.pp"], strict=True)})
    out = {"PP": min(splits), "TP": max(splits)}  # sorted by tp: fewest / most TP ways
    mean = g.groupby(["policy.tp", "policy.pp"])["tokens_per_s"].mean()
    best = tuple(int(x) for x in mean.idxmax())
    if best not in out.values():
        out["hybrid"] = best
    return out


def main(out: str = str(HERE / "cent_parallelism.png")) -> pd.DataFrame:
    """Run the study, write the figure to ``out``, print and return the key numbers: one row
    per feasible (model, N, tp, pp) with throughput and step times at the shortest and longest
    context."""
    df = dse.explore([], config_name="cent_parallelism", config_dir=str(HERE))
    df["workload.llm"] = df["workload.llm"].astype(str)
    df["N"] = df["policy.tp"] * df["policy.pp"]
    bad = df[~df["feasible"]]
    reasons = bad[bad["workload.batch"] == BATCH].apply(why_infeasible, axis=1)
    ok = df[df["feasible"]].copy()
    assert (ok["batch"] == ok["workload.batch"]).all(), "every request's KV fits at 4096 tokens"
    print(f"{len(df)} points, {len(ok)} feasible, {len(bad)} infeasible (both batches):")
    for (llm, why), n in reasons.groupby([bad["workload.llm"], reasons]).size().items():
        splits = sorted(
            {
                f"{t}x{p}"
                for t, p in bad.loc[reasons.index[reasons == why], ["policy.tp", "policy.pp"]]
                .drop_duplicates()
                .itertuples(index=False)
            }
        )
        print(f"  {llm}: {why}: tp x pp {', '.join(splits)} ({2 * n} points)")

    b8 = ok[ok["workload.batch"] == BATCH]
    b1 = ok[ok["workload.batch"] == 1]
    fig, axes = plt.subplots(3, 3, figsize=(15, 11.5), dpi=110, sharex=True)
    for j, llm in enumerate(MODELS):
        for n, color in N_COLOR.items():
            g = b8[(b8["workload.llm"] == llm) & (b8["N"] == n)]
            if g.empty:
                for ax in axes[:, j]:
                    ax.plot([], [], color=color, label=f"N={n}: weights do not fit")
                continue
            for role, (tp, pp) in pick(g).items():
                ls, mk = STYLE[role]
                lab = f"N={n}: {tp}x{pp} ({NAME[role]})"
                for i, (frame, col) in enumerate(
                    ((b8, "tokens_per_s"), (b8, "step_ns"), (b1, "step_ns"))
                ):
                    h = frame[
                        (frame["workload.llm"] == llm)
                        & (frame["policy.tp"] == tp)
                        & (frame["policy.pp"] == pp)
                    ].sort_values("workload.L")
                    y = h[col] / (1e6 if col == "step_ns" else 1)
                    axes[i, j].plot(h["workload.L"], y, ls, marker=mk, color=color, label=lab)
        axes[0, j].set_title(llm)
    axes[0, 0].set_ylabel(f"decode throughput (tokens/s), batch {BATCH}")
    axes[1, 0].set_ylabel(f"latency per token: step (ms), batch {BATCH}")
    axes[2, 0].set_ylabel("latency per token: step (ms), batch 1")
    for ax in axes.flat:
        ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    for ax in axes[0]:
        ax.legend(fontsize=7, ncol=2)
    for ax in axes[2]:
        ax.set_xlabel("context length L (tokens, every request)")
    fig.suptitle(
        "CENT (GDDR6-AiM + near-memory units, CXL 64 GB/s, 180 ns), tp x pp = N devices: most "
        "pipelined split (solid), most tensor-parallel (dashed), best-throughput hybrid "
        "(dotted); micro-batches = min(pp, 8)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")

    # the table: every feasible split at the shortest and longest context
    lo, hi = ok["workload.L"].min(), ok["workload.L"].max()
    key = ["workload.llm", "N", "policy.tp", "policy.pp"]

    def at(frame, length, col, scale=1.0):
        return frame[frame["workload.L"] == length].set_index(key)[col] / scale

    tab = pd.DataFrame(
        {
            f"tok/s L{lo}": at(b8, lo, "tokens_per_s"),
            f"tok/s L{hi}": at(b8, hi, "tokens_per_s"),
            f"step ms L{lo}": at(b8, lo, "step_ns", 1e6),
            f"step ms L{hi}": at(b8, hi, "step_ns", 1e6),
            f"period ms L{hi}": at(b8, hi, "period_ns", 1e6),
            f"b1 step ms L{lo}": at(b1, lo, "step_ns", 1e6),
            f"b1 step ms L{hi}": at(b1, hi, "step_ns", 1e6),
        }
    ).sort_index()
    print(f"batch {BATCH} unless 'b1' (batch 1); period = steady-state time between iterations")
    print(tab.to_string(float_format=lambda v: f"{v:.0f}" if v >= 100 else f"{v:.2f}"))

    for llm in MODELS:
        for n in N_COLOR:
            g = b8[(b8["workload.llm"] == llm) & (b8["N"] == n)]
            if g.empty:
                continue
            roles = pick(g)
            mean = g.groupby(["policy.tp", "policy.pp"])[["tokens_per_s", "step_ns"]].mean()
            lat1 = (
                b1[(b1["workload.llm"] == llm) & (b1["N"] == n)]
                .groupby(["policy.tp", "policy.pp"])["step_ns"]
                .mean()
            )
            fast, low, low1 = mean["tokens_per_s"].idxmax(), mean["step_ns"].idxmin(), lat1.idxmin()
            pp_, tp_ = roles["PP"], roles["TP"]
            print(
                f"{llm} N={n}: {pp_[0]}x{pp_[1]} (most PP) "
                f"{mean.loc[pp_, 'tokens_per_s']:.0f} tok/s, "
                f"{mean.loc[pp_, 'step_ns'] / 1e6:.2f} ms; {tp_[0]}x{tp_[1]} (most TP) "
                f"{mean.loc[tp_, 'tokens_per_s']:.0f} tok/s, "
                f"{mean.loc[tp_, 'step_ns'] / 1e6:.2f} ms (means over L); highest throughput "
                f"{fast[0]}x{fast[1]}, lowest step {low[0]}x{low[1]} (batch 1: "
                f"{low1[0]}x{low1[1]}, {lat1.min() / 1e6:.2f} ms)"
            )
    return tab.reset_index()


if __name__ == "__main__":
    main(*sys.argv[1:2])
