"""The validation report: every model checked three ways, one table (DESIGN.md §6).

``python -m dse.validation [--quick] [--out docs/validation.md] [--only NAME]`` runs, for
each model,

1. *reference agreement*: the vectorized model against its plain-Python reference in
   :mod:`dse.reference` on random design points (fraction identical, largest and mean
   relative error per metric, points checked);
2. *external data*: AttAcc's Ramulator-2 HBM3-PIM cache (all 64,938 rows), NeuPIMs' own
   channel assignments, LLMServingSim's example outputs, the exact kernel and closed forms;
3. *properties*: orderings and invariants evaluated over many random points in one
   vectorized call (passes / violations),

and writes a Markdown table (``docs/validation.md``) and its JSON twin. The random point
generators are those of the test suite; the bounds are the tests' bounds. The exit status is
1 when a check misses its bound, 2 on bad command-line input.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dse.point import is_feasible
from dse.process import command
from dse.validation.common import (
    LLMSS,
    REFERENCE,
    ROOT,
    Result,
    default_point,
    evaluate_params,
    progress,
    skipped,
)
from dse.validation.corpus import check_corpus, oracle_markdown
from dse.validation.published import check_llmservingsim, check_published

__all__ = ["CHECKS", "MODELS", "Result", "main", "run_checks", "to_markdown"]


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------


def _rel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = np.abs(a - b)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(diff == 0, 0.0, diff / np.maximum(np.abs(b), 1e-300))


def metric_stats(
    got: Mapping[str, Sequence], want: Mapping[str, Sequence], rel: float = 0.0, abs_: float = 0.0
) -> dict[str, dict[str, float]]:
    """Per metric: the fraction identical, the largest and mean relative error, and the
    fraction within ``max(rel · |want|, abs_)`` (pytest.approx's tolerance)."""
    out = {}
    for k in want:
        a, b = np.asarray(got[k], float), np.asarray(want[k], float)
        err = _rel(a, b)
        within = np.abs(a - b) <= np.maximum(rel * np.abs(b), abs_)
        out[k] = {
            "identical": float(np.mean(a == b)) if a.size else 1.0,
            "max_rel": float(err.max(initial=0.0)),
            "mean_rel": float(err.mean()) if err.size else 0.0,
            "within": float(np.mean(within)) if a.size else 1.0,
        }
    return out


def _sig(x: float) -> str:
    return "0" if x == 0 else f"{x:.1e}"


def _stats_text(stats: Mapping[str, Mapping[str, float]], exact: Sequence[str]) -> str:
    """``cycles, n_mac identical 100%; floats max rel. err 1e-16 (mean 2e-17)``."""
    parts = []
    ex = [k for k in exact if k in stats]
    if ex:
        worst = min(stats[k]["identical"] for k in ex)
        parts.append(f"{', '.join(ex)}: identical on {worst:.1%}")
    fl = [k for k in stats if k not in exact]
    if fl:
        mx = max(stats[k]["max_rel"] for k in fl)
        mean = max(stats[k]["mean_rel"] for k in fl)
        ident = min(stats[k]["identical"] for k in fl)
        parts.append(
            f"{len(fl)} float metrics: max rel. err {_sig(mx)} (mean {_sig(mean)}), "
            f"identical on {ident:.1%}"
        )
    return "; ".join(parts)


def _property(model: str, check: str, ok: np.ndarray, bound: str, **details) -> Result:
    ok = np.asarray(ok, bool)
    bad = int((~ok).sum())
    return Result(
        model,
        "property",
        check,
        int(ok.size),
        f"{ok.size - bad}/{ok.size} pass, {bad} violations",
        bound,
        bad == 0 and ok.size > 0,
        {"passes": int(ok.size - bad), "violations": bad, **details},
    )


# --------------------------------------------------------------------------------------------
# pim_gemv
# --------------------------------------------------------------------------------------------


def gemv_params(rng: np.random.Generator, n: int, small: bool = False) -> list[dict]:
    """``n`` random, physically sensible GEMV design points (the test suite's generator);
    ``small`` bounds the work so the plain-Python reference walks them quickly."""
    out = []
    for _ in range(n):
        col = int(rng.choice([16, 32, 64]))
        dtype = str(rng.choice(["fp16", "bf16", "int8", "fp32"]))
        trfc = int(rng.choice([0, rng.integers(50, 600)]))
        tccd = int(rng.integers(1, 11))
        p = {
            "hw.pim.tCK_ns": float(rng.choice([0.5, 0.625, 0.769, 1.0, 1.25])),
            "hw.pim.data_rate": float(rng.choice([2.0, 2.016, 4.0, 8.0])),
            "hw.pim.bus_width_bits": int(rng.choice([16, 32, 64, 128])),
            "hw.pim.channels": int(rng.integers(1, 65)),
            "hw.pim.banks": int(rng.integers(8 if small else 1, 65)),
            "hw.pim.lanes": int(rng.integers(1, 33)),
            "hw.pim.col_bytes": col,
            "hw.pim.row_bytes": col * int(rng.integers(4 if small else 1, 129)),
            "hw.pim.rows": 1 << 20,
            "hw.pim.gbuf_bytes": int(rng.integers(col, 16385)),
            "hw.pim.out_bytes": int(rng.choice([1, 2, 4])),
            "hw.pim.BL": 4,
            "hw.pim.CL": int(rng.integers(5, 60)),
            "hw.pim.tRCD": int(rng.integers(5, 60)),
            "hw.pim.tCCD_mac": tccd,
            "hw.pim.tRCD_mac": int(rng.integers(tccd, 100)),
            "hw.pim.tRP": int(rng.integers(1, 60)),
            "hw.pim.tRAS": int(rng.integers(1, 120)),
            "hw.pim.tRTP": int(rng.integers(1, 20)),
            "hw.pim.tWR": int(rng.integers(1, 40)),
            "hw.pim.tCCD_S": int(rng.integers(1, 4)),
            "hw.pim.tCCD_L": int(rng.integers(1, 8)),
            "hw.pim.tRRD_S": int(rng.integers(1, 8)),
            "hw.pim.tRRD_L": int(rng.integers(1, 10)),
            "hw.pim.tFAW": int(rng.integers(10, 50)),
            "hw.pim.tRFC": trfc,
            "hw.pim.tREFI": int(rng.integers(trfc + 200, trfc + 10000)),
            "workload.K": int(rng.integers(1, 2049 if small else 20001)),
            "workload.M": int(rng.integers(1, 2049 if small else 50001)),
            "workload.dtype": dtype,
            "policy.io": int(rng.integers(0, 2)),
        }
        if p["hw.pim.col_bytes"] < {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}[dtype]:
            p["hw.pim.col_bytes"] = 32
        out.append(p)
    return out


GEMV_EXACT = ("cycles", "n_mac", "n_act", "n_wr_inp", "n_rd_out", "n_ref")
GEMV_FLOAT = ("time_ns", "frac_mac", "frac_row", "frac_io", "frac_refresh", "mac_util")
GEMV_FLOAT += ("internal_GBps",)


def check_pim_gemv(n: int) -> list[Result]:
    """Reference walk on ``n`` small random points; properties and the discrete refresh
    closed form on ``max(n, 200)`` random points each. Every evaluation in one call per
    dtype."""
    from dse.reference.pim_gemv import gemv_reference

    pts = gemv_params(np.random.default_rng(2024), n, small=True)

    m = max(n, 200)
    rng = np.random.default_rng(7)
    pairs: list[tuple[str, dict, dict, str]] = []  # (property, a, b, relation of b to a)
    for i, p in enumerate(gemv_params(rng, m)):
        f = ("hw.pim.banks", "hw.pim.lanes", "hw.pim.channels")[i % 3]
        q = {**p, f: p[f] + int(rng.integers(1, 33))}
        pairs.append(("more banks, lanes or channels never slower", p, q, "<="))
        f = ("hw.pim.tRCD_mac", "hw.pim.tRP", "hw.pim.tRAS", "hw.pim.tRTP", "hw.pim.tCCD_mac")
        f = f[i % 5]
        q = {**p, f: p[f] + int(rng.integers(1, 50))}
        pairs.append(("larger tRCD_mac/tRP/tRAS/tRTP/tCCD_mac never faster", p, q, ">="))
        a, b = {**p, "policy.io": 0}, {**p, "policy.io": 1}
        pairs.append(("overlapped I/O never slower than serial", a, b, "<="))
        q = {**p, "hw.pim.row_bytes": p["hw.pim.row_bytes"] * 2}
        pairs.append(("longer rows never slower", p, q, "<="))
    # discrete refresh: tRFC > 0 against the same point without refresh
    refresh = []
    for p in gemv_params(rng, m):
        rfc = int(rng.integers(50, 600))
        p = {**p, "hw.pim.tRFC": rfc, "hw.pim.tREFI": rfc + int(rng.integers(200, 10000))}
        refresh.append(p)
    flat = [x for _, a, b, _ in pairs for x in (a, b)]
    flat += [x for p in refresh for x in (p, {**p, "hw.pim.tRFC": 0})]
    out = evaluate_params(pts + flat)
    got, out = out[: len(pts)], out[len(pts) :]

    ref = [gemv_reference(p) for p in pts]
    keys = GEMV_EXACT + GEMV_FLOAT
    stats = metric_stats(
        {k: [g[k] for g in got] for k in keys},
        {k: [r[k] for r in ref] for k in keys},
        rel=1e-12,
    )
    ok = all(stats[k]["identical"] == 1.0 for k in GEMV_EXACT)
    ok &= all(stats[k]["within"] == 1.0 for k in GEMV_FLOAT)
    results = [
        Result(
            "pim_gemv",
            "reference",
            "plain-Python walk (`dse/reference/pim_gemv.py`)",
            n,
            _stats_text(stats, GEMV_EXACT),
            "cycles and command counts identical; floats rel. ≤ 1e-12",
            ok,
            {"metrics": stats},
        )
    ]
    for name in dict.fromkeys(p[0] for p in pairs):
        ok = []
        for j, (pn, _, _, rel) in enumerate(pairs):
            if pn != name:
                continue
            a, b = out[2 * j]["cycles"], out[2 * j + 1]["cycles"]
            ok.append(b <= a if rel == "<=" else b >= a)
        results.append(_property("pim_gemv", name, np.asarray(ok), "no violation (cycles)"))
    frac_ok = []
    for r in out[: 2 * len(pairs)]:
        if r["status"] == 0:  # infeasible points have masked metrics
            s = r["frac_mac"] + r["frac_row"] + r["frac_io"] + r["frac_refresh"]
            frac_ok.append(abs(s - 1) <= 1e-6 and 0 < r["mac_util"] <= 1 + 1e-12)
    results.append(
        _property(
            "pim_gemv",
            "time fractions sum to 1, MAC utilization in (0, 1]",
            np.asarray(frac_ok),
            "no violation (rel. 1e-6)",
        )
    )
    ref_ok = []
    tail = out[2 * len(pairs) :]
    for p, r, free in zip(refresh, tail[::2], tail[1::2], strict=True):
        if r["status"] or free["status"]:
            continue
        refi, rfc = p["hw.pim.tREFI"], p["hw.pim.tRFC"]
        k = max(0, math.ceil((free["cycles"] - refi) / (refi - rfc)))
        ref_ok.append(r["n_ref"] == k and r["cycles"] == free["cycles"] + k * rfc)
    res = _property(
        "pim_gemv",
        "closed form: discrete refresh count and stall, ceil((T0 - tREFI) / (tREFI - tRFC))",
        np.asarray(ref_ok),
        "exact",
    )
    res.ring = "external"
    results.append(res)
    return results


# --------------------------------------------------------------------------------------------
# pim_kernel
# --------------------------------------------------------------------------------------------


def kernel_point(rng: np.random.Generator, small: bool) -> dict:
    """A random command-pipeline design point (the test suite's generator)."""
    top = 512 if small else 4096
    return {
        "hw.pim.tCK_ns": 1.0,
        "hw.pim.data_rate": float(rng.choice([2.0, 4.0, 16.0])),
        "hw.pim.bus_width_bits": int(rng.choice([16, 32, 64])),
        "hw.pim.channels": int(rng.choice([1, 2, 4, 16])),
        "hw.pim.banks": int(rng.choice([4, 8, 16, 32])),
        "hw.pim.lanes": int(rng.choice([4, 8, 16, 32])),
        "hw.pim.col_bytes": 32,
        "hw.pim.row_bytes": int(rng.choice([256, 512, 1024, 2048])),
        "hw.pim.rows": 1 << 20,
        "hw.pim.gbuf_bytes": int(rng.choice([64, 128, 256, 512, 1024, 2048])),
        "hw.pim.out_bytes": int(rng.choice([2, 4])),
        "hw.pim.CL": int(rng.integers(0, 30)),
        "hw.pim.tRCD_mac": int(rng.integers(1, 40)),
        "hw.pim.tRP": int(rng.integers(1, 30)),
        "hw.pim.tRAS": int(rng.integers(0, 80)),
        "hw.pim.tRTP": int(rng.integers(1, 12)),
        "hw.pim.tCCD_mac": int(rng.integers(1, 8)),
        "hw.pim.tRFC": int(rng.choice([0, int(rng.integers(50, 400))])),
        "hw.pim.tREFI": int(rng.integers(1000, 8000)),
        "hw.pim.obuf_entries": int(rng.choice([1, 2, 4, 8, 16, 64])),
        "hw.pim.dual_port": int(rng.integers(0, 2)),
        "hw.pim.blocking_readout": int(rng.integers(0, 2)),
        "workload.kind": int(rng.integers(0, 3)),
        "workload.K": int(rng.integers(16, top)),
        "workload.M": int(rng.integers(16, top)),
        "workload.L": int(rng.integers(1, top)),
        "workload.d": int(rng.choice([64, 80, 96, 128, 160, 256])),
        "workload.g": int(rng.choice([1, 2, 4, 8])),
        "workload.heads": int(rng.integers(1, 3 if small else 8)),
        "workload.partitions": int(rng.choice([1, 2, 4])),
        "workload.dtype": str(rng.choice(["fp16", "int8", "fp32"])),
        "policy.sched": int(rng.integers(0, 3)),
        "policy.refresh": 0,
        "policy.row_reuse": int(rng.integers(0, 2)),
        "policy.io": 1,
    }


KERNEL_COUNTS = {"n_mac": "MAC", "n_act": "ACT", "n_wr_inp": "WR-INP", "n_rd_out": "RD-OUT"}
SCHED_NAMES = ("static", "ping-pong", "dynamic")


def check_pim_kernel(n: int) -> list[Result]:
    from dse.reference.pim_kernel import simulate

    rng = np.random.default_rng(11)
    pts = [
        {**kernel_point(rng, small=k % 2 == 0), "policy.sched": s}
        for s in (0, 1, 2)
        for k in range(n)
    ]
    # property points (refresh stall): evaluated in the same call, one per dtype
    m = min(max(n, 100), 200)
    rng = np.random.default_rng(13)
    flat, kinds = [], []
    for i in range(m):
        p = kernel_point(rng, small=bool(rng.integers(0, 2)))
        flat += [{**p, "policy.sched": s} for s in (0, 1, 2)]
        kinds.append("sched")
        f = ("hw.pim.banks", "hw.pim.lanes")[i % 2]
        flat += [p, {**p, f: p[f] << int(rng.integers(1, 4))}]
        kinds.append("units")
        f = ("hw.pim.tCCD_mac", "hw.pim.tRCD_mac")[i % 2]
        flat += [p, {**p, f: p[f] + int(rng.integers(1, 21))}]
        kinds.append("timing")
    vec = evaluate_params(pts + flat, "pim_kernel")
    vec, out = vec[: len(pts)], vec[len(pts) :]
    results = []
    for s in (0, 1, 2):
        mine = [(p, v) for p, v in zip(pts, vec, strict=True) if p["policy.sched"] == s]
        refs = [simulate(p) for p, _ in mine]
        full = np.asarray([v["tiles_issued"] == v["tiles"] for _, v in mine])
        a = np.asarray([v["cycles"] for _, v in mine], float)
        b = np.asarray([r.cycles for r in refs], float)
        err = _rel(a, b)
        counts_ok = all(
            v[k] == r.counts[c]
            for (_, v), r in zip(mine, refs, strict=True)
            for k, c in KERNEL_COUNTS.items()
        ) and all(v["n_ref"] == r.counts["REF"] for (_, v), r in zip(mine, refs, strict=True))
        ok = bool(np.all(a[full] == b[full]) and np.all(err[~full] <= 0.005) and counts_ok)
        ok &= int((~full).sum()) >= len(mine) // 5  # the extrapolation is exercised
        results.append(
            Result(
                "pim_kernel",
                "reference",
                f"command-level simulator (`dse/reference/pim_kernel.py`), {SCHED_NAMES[s]}",
                len(mine),
                f"cycles identical on {np.mean(a == b):.1%} ({int((~full).sum())} "
                f"extrapolated: max rel. err {_sig(err[~full].max(initial=0))}, mean "
                f"{_sig(err[~full].mean() if (~full).any() else 0)}); command and refresh "
                f"counts {'identical' if counts_ok else 'DIFFER'}",
                "cycles identical where every tile is issued, rel. ≤ 0.5% where extrapolated "
                "(≥ 20% of the points); counts identical",
                ok,
                {
                    "identical": float(np.mean(a == b)),
                    "extrapolated": int((~full).sum()),
                    "max_rel": float(err.max(initial=0)),
                    "mean_rel": float(err.mean()),
                    "counts_identical": counts_ok,
                },
            )
        )

    ok = {"sched": [], "units": [], "timing": []}
    j = 0
    for k in kinds:
        if k == "sched":
            st_, pp, dy = (out[j + x]["cycles"] for x in range(3))
            ok[k].append(pp <= st_ and dy <= st_)
            j += 3
        else:
            a, b = out[j]["cycles"], out[j + 1]["cycles"]
            ok[k].append(b <= a if k == "units" else b >= a)
            j += 2
    names = {
        "sched": "ping-pong and dynamic never slower than static",
        "units": "2×/4×/8× banks or lanes never slower",
        "timing": "larger tCCD_mac or tRCD_mac never faster",
    }
    for k, name in names.items():
        results.append(_property("pim_kernel", name, np.asarray(ok[k]), "no violation (cycles)"))
    return results


# --------------------------------------------------------------------------------------------
# AttAcc Ramulator cache (the AttAcc layer model, dse/models/pim_attacc.py)
# --------------------------------------------------------------------------------------------

# per-group MAPE (%) and worst row (%) bounds, as tests/test_attacc.py states them
ATTACC_MAPE_BOUND = {
    ("BA", False): 0.30,
    ("BA", True): 0.25,
    ("BG", False): 0.30,
    ("BG", True): 0.20,
    ("BUFFER", False): 0.25,
    ("BUFFER", True): 0.25,
}
ATTACC_WORST_BOUND = {"BA": 5.0, "BG": 2.0, "BUFFER": 2.0}


def check_attacc(n: int) -> list[Result]:
    from dse.validation import attacc

    try:
        cache = attacc.load_cache()
    except FileNotFoundError:
        return [skipped("attacc", "external", "AttAcc Ramulator-2 cache", "AttAcc's cache")]
    look = (np.asarray(cache.index) >= attacc.SECOND_BUILD_ROW).astype(np.int64)
    model = attacc.evaluate(cache, pre_lookahead=look)
    table = attacc.compare(cache, model=model)
    results = []
    for r in table.to_dict("records"):
        key = (r["pim_type"], bool(r["power_constraint"]))
        counts = {k: float(r[f"{k}_exact"]) for k in attacc.COUNTS}
        ok = (
            r["mape_pct"] <= ATTACC_MAPE_BOUND[key]
            and r["worst_pct"] <= ATTACC_WORST_BOUND[key[0]]
            and all(v == 1.0 for v in counts.values())
        )
        group = f"{key[0]}, {'power-constrained' if key[1] else 'unconstrained'}"
        results.append(
            Result(
                "attacc",
                "external",
                f"AttAcc layer model (`dse/models/pim_attacc.py`) vs AttAcc's Ramulator-2 "
                f"HBM3-PIM cache: {group}",
                int(r["rows"]),
                f"cycle MAPE {r['mape_pct']:.3f}%, worst {r['worst_pct']:.2f}%; "
                f"mac/softmax/mvgb/mvsb/wrgb exact on {min(counts.values()):.1%}",
                f"MAPE ≤ {ATTACC_MAPE_BOUND[key]}%, worst ≤ {ATTACC_WORST_BOUND[key[0]]}%, "
                "counts exact",
                bool(ok),
                {
                    "mape_pct": float(r["mape_pct"]),
                    "worst_pct": float(r["worst_pct"]),
                    "counts_exact": counts,
                },
            )
        )
    return results


# --------------------------------------------------------------------------------------------
# pim_attention
# --------------------------------------------------------------------------------------------

ATTN_KEYS = ("layer_ns", "step_ns", "chan_busy_max_ns", "chan_busy_mean_ns", "chan_util_mean")
ATTN_KEYS += ("chan_util_max", "hub_ns", "tokens")
PARTITIONS = ("head-first round-robin", "head-first greedy", "token-centric")


def attn_hp(rng: np.random.Generator, partition: int) -> dict:
    """Random partitioning hyper-parameters (the test suite's generator)."""
    from dse.models import pim_attention as pa

    tp = int(rng.choice([1, 2, 4]))
    return {
        "heads": int(rng.integers(1, 9)),
        "kv_heads": 8,
        "g": int(rng.choice([1, 4, 8])),
        "d": int(rng.choice([64, 128])),
        "dtype_bytes": 2,
        "out_bytes": 2,
        "banks": int(rng.choice([1, 16, 32])),
        "elems": int(rng.choice([1, 16, 32])),
        "layers": int(rng.integers(1, 81)),
        "channels": int(rng.choice([1, 3, 8, 16, 32])),
        "tp": tp,
        "pp": int(rng.choice([1, 2, 4, 8])),
        "micro_batches": int(rng.integers(1, pa.M_MAX + 1)),
        "partition": partition,
        "tCK_ns": float(rng.choice([0.769, 1.0])),
        "hub_GBps": float(rng.uniform(8, 256)),
        "epu_Gops": float(rng.uniform(4, 64)),
        "hub_latency_ns": float(rng.uniform(0, 200)),
        "link_GBps": float(rng.uniform(16, 900)),
        "link_latency_ns": float(rng.uniform(0, 500)),
    }


def attn_grid(rng: np.random.Generator, a: float | None = None, b: float | None = None):
    """Random nondecreasing (score, context) kernel-cycle tables (``a + b·units`` when given)."""
    from dse.models import pim_attention as pa

    n = np.asarray(pa.GRID, float)
    if a is not None:
        return np.stack([a / 2 + b * n, a / 2 + b * n])
    rows = [np.cumsum(rng.uniform(0, 200, n.size)) + n * rng.uniform(0.5, 20) for _ in range(2)]
    return np.stack(rows) + rng.uniform(50, 900)


def attn_lengths(rng: np.random.Generator, b: int) -> np.ndarray:
    top = int(rng.choice([64, 4096, 131072, 1 << 20]))
    if rng.random() < 0.2:
        return np.full(b, int(rng.integers(1, top + 1)))
    return rng.integers(1, top + 1, b)


@functools.lru_cache(maxsize=1)
def _attn_batched():
    import jax

    from dse.models import pim_attention as pa

    return jax.jit(jax.vmap(pa.step_ns))


def _attn_eval(lengths: np.ndarray, live: np.ndarray, hps: list[dict], grids: np.ndarray):
    """pim_attention.step_ns over a batch of (lengths, live, hp, grid), in one call."""
    import jax.numpy as jnp

    batched = {k: jnp.asarray([h[k] for h in hps]) for k in hps[0]}
    out = _attn_batched()(jnp.asarray(lengths), jnp.asarray(live), batched, jnp.asarray(grids))
    return {k: np.asarray(v) for k, v in out.items()}


def check_pim_attention(n: int) -> list[Result]:
    from dse.reference.pim_attention import simulate

    results = []
    for part in (0, 1, 2):
        rng = np.random.default_rng(100 + part)
        grid = attn_grid(rng)
        got: dict[str, list] = {k: [] for k in ATTN_KEYS}
        want: dict[str, list] = {k: [] for k in ATTN_KEYS}
        for b in (8, 64):
            m = n // 2
            hps = [attn_hp(rng, part) for _ in range(m)]
            lengths = np.stack([attn_lengths(rng, b) for _ in range(m)])
            live = np.arange(b)[None, :] < rng.integers(1, b + 1, m)[:, None]
            out = _attn_eval(lengths, live, hps, np.broadcast_to(grid, (m, *grid.shape)))
            for i in range(m):
                ref, _ = simulate(lengths[i].tolist(), live[i].tolist(), hps[i], grid.tolist())
                for k in ATTN_KEYS:
                    got[k].append(float(out[k][i]))
                    want[k].append(ref[k])
        stats = metric_stats(got, want, rel=1e-12, abs_=1e-9)
        results.append(
            Result(
                "pim_attention",
                "reference",
                f"per-channel reference (`dse/reference/pim_attention.py`), {PARTITIONS[part]}",
                2 * (n // 2),
                _stats_text(stats, ("tokens",)),
                "every metric rel. ≤ 1e-12 (abs. 1e-9)",
                all(s["within"] == 1.0 for s in stats.values()),
                {"metrics": stats},
            )
        )
    results += _attention_properties(max(n, 200))
    results.append(_neupims_assignment())
    return results


def _attention_properties(n: int) -> list[Result]:
    rng = np.random.default_rng(21)
    B = 64
    # utilizations in [0, 1], mean ≤ max; all three partitionings
    hps = [attn_hp(rng, i % 3) for i in range(n)]
    lengths = np.stack([attn_lengths(rng, B) for _ in range(n)])
    live = np.arange(B)[None, :] < rng.integers(1, B + 1, n)[:, None]
    grids = np.stack([attn_grid(rng) for _ in range(n)])
    out = _attn_eval(lengths, live, hps, grids)
    um, ux = out["chan_util_mean"], out["chan_util_max"]
    util_ok = (um >= 0) & (ux <= 1 + 1e-12) & (um <= ux + 1e-12)
    results = [
        _property(
            "pim_attention", "channel utilizations in [0, 1], mean ≤ max", util_ok, "no violation"
        )
    ]

    # token-centric within its slicing and reduction costs of head-first
    hp_t, hp_h, lens, lv, gr, slack, last = [], [], [], [], [], [], []
    for _ in range(n):
        a, b = rng.uniform(0, 2000), rng.uniform(0.1, 20)
        hp = {**attn_hp(rng, 0), "micro_batches": 1, "pp": 1, "tp": 1, "banks": 1, "elems": 1}
        g = attn_grid(rng, a, b / 2)
        L = attn_lengths(rng, B)
        on = np.arange(B) < rng.integers(1, B + 1)
        c, gd = hp["channels"], hp["g"] * hp["d"]
        tail = hp["hub_latency_ns"] + c * gd * hp["out_bytes"] / hp["hub_GBps"]
        tail += (c - 1) * gd / hp["epu_Gops"]
        for part in (0, 1):
            hp_t.append({**hp, "partition": 2})
            hp_h.append({**hp, "partition": part})
            lens.append(L)
            lv.append(on)
            gr.append(g)
            slack.append(hp["heads"] * on.sum() * (a + b + 1) * hp["tCK_ns"])
            last.append(tail)
    tcp = _attn_eval(np.stack(lens), np.stack(lv), hp_t, np.stack(gr))
    hfp = _attn_eval(np.stack(lens), np.stack(lv), hp_h, np.stack(gr))
    layers = np.asarray([h["layers"] for h in hp_t])
    bound = (
        hfp["layer_ns"]
        + tcp["hub_ns"] / layers
        + np.asarray(last)
        + np.asarray(slack)
        + 1e-6 * hfp["layer_ns"]
    )
    results.append(
        _property(
            "pim_attention",
            "token-centric within its slicing and reduction costs of head-first",
            tcp["layer_ns"] <= bound,
            "no violation",
        )
    )

    # more channels never slower under token-centric, with a free hub
    hp_a, hp_b, lens, lv, gr = [], [], [], [], []
    for _ in range(n):
        hp = {**attn_hp(rng, 2), "hub_GBps": np.inf, "epu_Gops": np.inf, "hub_latency_ns": 0.0}
        hp["channels"] = int(rng.choice([1, 2, 3, 4]))
        hp_a.append(hp)
        hp_b.append({**hp, "channels": hp["channels"] << int(rng.integers(0, 4))})
        lens.append(attn_lengths(rng, B))
        lv.append(np.arange(B) < rng.integers(1, B + 1))
        gr.append(attn_grid(rng))
    a = _attn_eval(np.stack(lens), np.stack(lv), hp_a, np.stack(gr))
    b = _attn_eval(np.stack(lens), np.stack(lv), hp_b, np.stack(gr))
    results.append(
        _property(
            "pim_attention",
            "more channels never slower under token-centric (free hub)",
            b["step_ns"] <= a["step_ns"] * (1 + 1e-9),
            "no violation",
        )
    )
    return results


def _neupims_assignment() -> Result:
    """NeuPIMs' 512 ShareGPT requests on 32 channels: greedy longest-first here at least as
    balanced as NeuPIMs' load-balanced assignment, which beats round-robin."""
    import csv

    path = REFERENCE / "workloads/share-gpt2-bs512-ms7B-tp4-{}-0.csv"
    name = "NeuPIMs channel assignments (512 ShareGPT requests, 32 channels)"
    if not path.parent.is_dir():
        return skipped("pim_attention", "external", name, "NeuPIMs' request traces")

    def rows(kind: str) -> list[dict]:
        with open(str(path).format(kind), encoding="utf-8") as f:
            return list(csv.DictReader(f))

    def imbalance(kind: str) -> float:
        load = np.zeros(32)
        for r in rows(kind):
            load[int(r["ch_idx"])] += int(r["seq_len"])
        return float(load.max() / load.mean())

    lengths = np.asarray([int(r["seq_len"]) for r in rows("rr")])
    grid = attn_grid(np.random.default_rng(0), 0.0, 0.5)  # cycles ∝ tokens
    hp = {**attn_hp(np.random.default_rng(0), 0), "heads": 1, "channels": 32, "banks": 1}
    hp.update({"elems": 1, "micro_batches": 1, "pp": 1, "tp": 1})
    hps = [{**hp, "partition": p} for p in (0, 1, 2)]
    out = _attn_eval(
        np.stack([lengths] * 3), np.ones((3, lengths.size), bool), hps, np.stack([grid] * 3)
    )
    ours = out["chan_busy_max_ns"] / out["chan_busy_mean_ns"]
    rr, clb = imbalance("rr"), imbalance("clb")
    ok = bool(ours[1] <= clb < rr and ours[1] < ours[0])
    return Result(
        "pim_attention",
        "external",
        name,
        int(lengths.size),
        f"channel load max/mean: NeuPIMs round-robin {rr:.2f}, load-balanced {clb:.2f}; "
        f"here round-robin {ours[0]:.2f}, greedy {ours[1]:.4f}, token-centric {ours[2]:.2f}",
        "greedy ≤ NeuPIMs load-balanced < NeuPIMs round-robin; greedy < round-robin",
        ok,
        {"neupims_rr": rr, "neupims_clb": clb, "rr": float(ours[0]), "greedy": float(ours[1])},
    )


def check_attention_tiles(n: int) -> list[Result]:
    """Interpolated tile time against the exact ``pim_kernel`` at ``n`` context lengths
    log-uniform in 1…1M, per preset."""
    import jax.numpy as jnp

    from dse._pytree import replace_paths
    from dse.cli import _compose, build
    from dse.explore import evaluate_points
    from dse.models import pim_attention as pa

    results = []
    for preset in ("hbm3_attacc", "aim_gddr6", "hbm2_neupims"):
        cfg, prov = _compose(
            ["space=single", "model=pim_kernel", f"pim={preset}", "workload=llama3_8b_decode"]
        )
        base = build(cfg, prov)[1]
        one = {"workload.heads": 1, "workload.partitions": 1, "hw.pim.channels": 1}
        base = replace_paths(base, one)
        rng = np.random.default_rng(1)
        ns = np.unique(np.round(np.exp(rng.uniform(0, np.log(1 << 20), n))).astype(np.int64))
        exact = sum(
            evaluate_points(
                base, {"workload.L": ns, "workload.kind": np.full(ns.size, k)}, "pim_kernel"
            )[0]["cycles"]
            for k in (1, 2)
        )
        hp = pa.hyper(base)
        approx = np.asarray(
            pa.interp_cycles(jnp.asarray(ns), pa.grid_cycles(base), hp["banks"], hp["elems"])
        )
        err = np.abs(approx - exact) / exact
        results.append(
            Result(
                "pim_attention",
                "external",
                f"tile timing vs the exact `pim_kernel`, {preset}",
                int(ns.size),
                f"mean error {err.mean():.2%}, p99 {np.quantile(err, 0.99):.1%}, "
                f"worst {err.max():.1%}",
                "mean ≤ 0.5%, worst ≤ 12%",
                bool(err.mean() <= 0.005 and err.max() <= 0.12),
                {"mean": float(err.mean()), "max": float(err.max())},
            )
        )
    return results


# --------------------------------------------------------------------------------------------
# kv_memory
# --------------------------------------------------------------------------------------------

KV_MAX_LEN = 1 << 20
KV_INT = ("admitted", "reserved_bytes", "used_bytes", "waste_bytes", "units", "unit_bytes")
KV_INT += ("max_batch", "rejected_too_long", "status")
KV_FLOAT = ("capacity_util", "mem_util")
KV_ALLOCS = ("static", "dynamic", "paged")


def kv_batch(rng: np.random.Generator, alloc: int) -> dict:
    """A random admission problem (the test suite's generator)."""
    from dse.models.kv_memory import kv_bytes_per_token

    b = int(rng.choice([1, 8, 64, 256]))
    mask = rng.random(b) < rng.choice([1.0, 0.9, 0.5, 0.1])
    lengths = np.exp(rng.uniform(0, math.log(KV_MAX_LEN), b)).astype(np.int64).clip(1, KV_MAX_LEN)
    if rng.random() < 0.15:
        lengths[:] = lengths[0]
    lengths[~mask] = rng.choice([0, -1, 1 << 40, 7], size=int((~mask).sum()))
    masked = lengths[mask]
    bpt = int(
        rng.choice(
            [
                1,
                KV_MAX_LEN,
                int(rng.integers(1, KV_MAX_LEN + 1)),
                kv_bytes_per_token(80, 8, 128, 2, tp=int(rng.choice([1, 2, 8, 16]))),
                kv_bytes_per_token(32, 32, 128, 2),
            ]
        )
    )
    max_ctx = int(
        rng.choice(
            [
                int(masked.max()) if masked.size else 1,
                KV_MAX_LEN,
                4096,
                int(np.exp(rng.uniform(0, math.log(KV_MAX_LEN)))),
            ]
        )
    )
    chunk = int(
        rng.choice([1 << int(rng.integers(0, 25)), int(rng.integers(1, 1 << 24)), bpt * 16])
    )
    block = int(rng.choice([1, 16, 32, 128, int(rng.integers(1, 5000))]))
    live = int(masked.astype(object).sum() * bpt) if masked.size else 0
    worst = int(masked.size) * max_ctx * bpt
    cap = int(
        rng.choice(
            [
                0,
                int(rng.integers(0, 1 << 20)),
                int(rng.choice([live, worst]) * rng.uniform(0, 1.3)),
                int(1 << int(rng.integers(30, 62))),
                -5,
            ],
            p=[0.05, 0.1, 0.6, 0.2, 0.05],
        )
    )
    if rng.random() < 0.02:
        bpt, chunk, block = (bpt, 0, block) if rng.random() < 0.5 else (0, chunk, -3)
    return dict(
        lengths=lengths,
        mask=mask,
        alloc=alloc,
        bytes_per_token=bpt,
        capacity_bytes=cap,
        max_context=max_ctx,
        chunk_bytes=chunk,
        block_size=block,
    )


_KV_ARGS = ("lengths", "mask", "alloc", "bytes_per_token", "capacity_bytes", "max_context")
_KV_ARGS += ("chunk_bytes", "block_size")


def _kv_eval(batches: list[dict]) -> list[dict]:
    """kv_admission over batches of one size, in one vectorized call."""
    args = [
        np.asarray([b[k] for b in batches], bool if k == "mask" else np.int64) for k in _KV_ARGS
    ]
    out = {k: np.asarray(v) for k, v in _kv_jit()(*args).items()}
    return [{k: v[i].tolist() for k, v in out.items()} for i in range(len(batches))]


@functools.lru_cache(maxsize=1)
def _kv_jit():
    import jax

    from dse.models.kv_memory import kv_admission

    return jax.jit(jax.vmap(kv_admission))


def check_kv_memory(n: int) -> list[Result]:
    from dse.reference import kv_memory as ref

    rng = np.random.default_rng(20240611)
    results = []
    inv: list[bool] = []
    for alloc in (0, 1, 2):
        batches = [kv_batch(rng, alloc) for _ in range(n)]
        by_size: dict[int, list[dict]] = {}
        for b in batches:
            by_size.setdefault(len(b["lengths"]), []).append(b)
        got: dict[str, list] = {k: [] for k in (*KV_INT, *KV_FLOAT, "admitted_mask")}
        want: dict[str, list] = {k: [] for k in got}
        for group in by_size.values():
            for b, g in zip(group, _kv_eval(group), strict=True):
                w = ref.kv_admission(**b)
                for k in got:
                    if k == "admitted_mask":
                        got[k].append(float(g[k] == w[k]))
                        want[k].append(1.0)
                    else:
                        got[k].append(g[k])
                        want[k].append(w[k])
                if g["status"] == 0:
                    nb = len(b["lengths"])
                    cap = max(int(b["capacity_bytes"]), 0)
                    adm = g["admitted_mask"]
                    inv.append(
                        0.0 <= g["capacity_util"] <= 1.0
                        and 0.0 <= g["mem_util"] <= 1.0
                        and g["reserved_bytes"] <= cap
                        and g["waste_bytes"] >= 0
                        and g["admitted"] <= min(nb, g["max_batch"])
                        and sum(adm) == g["admitted"]
                    )
        stats = metric_stats(got, want, rel=1e-12, abs_=1e-12)
        exact = (*KV_INT, "admitted_mask")
        ok = all(stats[k]["identical"] == 1.0 for k in exact)
        ok &= all(stats[k]["within"] == 1.0 for k in KV_FLOAT)
        results.append(
            Result(
                "kv_memory",
                "reference",
                f"allocation-unit pool (`dse/reference/kv_memory.py`), {KV_ALLOCS[alloc]}",
                n,
                _stats_text(stats, exact),
                "integers and admitted masks identical; utilizations rel. ≤ 1e-12",
                ok,
                {"metrics": stats},
            )
        )
    results.append(
        _property(
            "kv_memory",
            "utilizations in [0, 1], reservations ≤ capacity, admitted ≤ batch and max batch",
            np.asarray(inv),
            "no violation",
        )
    )
    results.append(_kv_dynamic_at_least_static(rng, max(n, 200)))
    return results


def _kv_dynamic_at_least_static(rng: np.random.Generator, n: int) -> Result:
    """Where chunks and blocks tile max_context, dynamic and paged admit ≥ static."""
    cases = []
    for _ in range(n):
        bpt = int(rng.integers(1, KV_MAX_LEN + 1))
        chunk, block = int(rng.integers(1, (1 << 24) + 1)), int(rng.integers(1, 513))
        step = math.lcm(chunk // math.gcd(chunk, bpt), block)
        max_ctx = step * int(rng.integers(1, max(1, KV_MAX_LEN // step) + 1))
        k = int(rng.integers(1, 17))
        lengths = np.zeros(16, np.int64)
        lengths[:k] = 1 + rng.integers(1, KV_MAX_LEN + 1, k) % max_ctx
        cap = int(rng.integers(0, k * max_ctx * bpt + 2))
        for alloc in (0, 1, 2):
            cases.append(
                dict(
                    lengths=lengths,
                    mask=np.arange(16) < k,
                    alloc=alloc,
                    bytes_per_token=bpt,
                    capacity_bytes=cap,
                    max_context=max_ctx,
                    chunk_bytes=chunk,
                    block_size=block,
                )
            )
    out = _kv_eval(cases)
    ok = [
        dy["admitted"] >= st_["admitted"]
        and pg["admitted"] >= st_["admitted"]
        and dy["max_batch"] >= st_["max_batch"]
        and pg["max_batch"] >= st_["max_batch"]
        for st_, dy, pg in zip(out[::3], out[1::3], out[2::3], strict=True)
    ]
    return _property(
        "kv_memory",
        "dynamic and paged admit ≥ static (chunks tile max_context)",
        np.asarray(ok),
        "no violation",
    )


# --------------------------------------------------------------------------------------------
# system
# --------------------------------------------------------------------------------------------


def system_points(rng: np.random.Generator, n: int, kind: int) -> list[dict]:
    """Random design points of one system kind (the test suite's generator)."""
    from dse.models import system
    from dse.workload.llm import Llm

    out = []
    for _ in range(n):
        pp = int(rng.choice([1, 1, 2, 3, 4]))
        layers = int(rng.integers(pp, 13))
        preset = rng.random() < 0.1
        out.append(
            {
                "policy.system": kind,
                "policy.tp": int(rng.choice([1, 2, 4])),
                "policy.pp": pp if not preset else 1,
                "policy.micro_batches": int(rng.integers(1, system.M_SYS + 1)),
                "policy.sbi": int(rng.integers(0, 2)),
                "policy.dual_rb": int(rng.integers(0, 2)),
                "policy.partition": int(rng.integers(0, 3)),
                "workload.llm": int(rng.integers(1, len(Llm))) if preset else 0,
                "workload.layers": layers,
                "workload.hidden": int(rng.choice([512, 1024, 4096])),
                "workload.heads": int(rng.choice([4, 8])),
                "workload.g": int(rng.choice([1, 2, 4])),
                "workload.d": int(rng.choice([64, 128])),
                "workload.ffn": int(rng.choice([1024, 4096, 11008])),
                "workload.vocab": int(rng.choice([1000, 32000])),
                "workload.gated_ffn": int(rng.integers(0, 2)),
                "workload.batch": int(rng.integers(1, 65)),
                "workload.lengths": int(rng.integers(0, 4)),
                "workload.L": int(rng.integers(16, 8192)),
                "workload.seed": int(rng.integers(0, 1000)),
                "workload.prefill_reqs": int(rng.choice([0, 0, 1, 3])),
                "workload.prefill_len": int(rng.integers(1, 2048)),
                "workload.max_context": 1 << 20,
                "hw.pim.channels": int(rng.choice([1, 8, 16, 32])),
                "hw.pim.rows": 1 << 22,
                "hw.host.mem_GB": 1e4,
                "hw.host.tflops": float(rng.uniform(50, 1000)),
                "hw.host.mem_GBps": float(rng.uniform(200, 3000)),
                "hw.host.launch_ns": float(rng.choice([0.0, 4000.0])),
                "hw.link.host_GBps": float(rng.uniform(8, 128)),
                "hw.link.host_latency_ns": float(rng.uniform(0, 5000)),
                "hw.link.dev_latency_ns": float(rng.uniform(0, 5000)),
                "hw.module.link_latency_ns": float(rng.uniform(0, 500)),
            }
        )
    return out


def _system_batch(points: list[dict]):
    """One batched point (fp16) with every leaf an array over ``points``."""
    import jax.numpy as jnp

    from dse._pytree import get_path, replace_paths
    from dse.point import field_info

    base = replace_paths(default_point(), {"workload.dtype": "fp16"})
    n = len(points)
    leaves = {}
    for k, info in field_info().items():
        if info.static:
            continue
        if k in points[0]:
            v = np.asarray([q[k] for q in points], dtype=info.dtype)
        else:
            v = np.broadcast_to(np.asarray(get_path(base, k), dtype=info.dtype), (n,))
        leaves[k] = jnp.asarray(v)
    return replace_paths(base, leaves)


SYSTEM_CHUNK = 512


@functools.cache
def _system_jit(name: str):
    import jax

    from dse.models import system

    return jax.jit(jax.vmap(getattr(system, name)))


def _system_eval(name: str, points: list[dict]) -> tuple[dict[str, np.ndarray], Any]:
    """``system.<name>`` over ``points`` in chunks of :data:`SYSTEM_CHUNK` (padded), and the
    batched point."""
    import jax

    bp = _system_batch(points)
    n = len(points)
    outs = []
    for lo in range(0, n, SYSTEM_CHUNK):
        idx = np.minimum(np.arange(lo, lo + SYSTEM_CHUNK), n - 1)
        part = jax.tree.map(lambda x, idx=idx: x[idx], bp)
        outs.append(jax.tree.map(np.asarray, _system_jit(name)(part)))
    cat = jax.tree.map(lambda *xs: np.concatenate(xs), *outs)
    return {k: v[:n] for k, v in cat.items()}, bp


def _flat(bp, i: int) -> dict:
    from dse._pytree import get_path
    from dse.point import field_info

    return {
        k: float(np.asarray(get_path(bp, k))[i])
        for k, info in field_info().items()
        if not info.static
    }


def check_system(n: int) -> list[Result]:
    from dse.policy import SystemKind
    from dse.reference.system import simulate_point

    results = []
    pts = [
        q
        for kind in SystemKind
        for q in system_points(np.random.default_rng(100 + int(kind)), n, int(kind))
    ]
    si, bp = _system_eval("schedule_inputs", pts)
    for kind in SystemKind:
        keys = ("step_ns", "period_ns", "host_busy", "pim_busy")
        got: dict[str, list] = {k: [] for k in keys}
        want: dict[str, list] = {k: [] for k in keys}
        sel = [i for i, q in enumerate(pts) if q["policy.system"] == int(kind)]
        for i in sel:
            if not is_feasible(si["status"][i]):  # batch_limited points are compared too
                continue
            ref = simulate_point(_flat(bp, i), {k: v[i] for k, v in si.items()})
            for k in keys:
                got[k].append(float(si[k][i]))
                want[k].append(float(ref[k]))
        checked = len(got["step_ns"])
        stats = metric_stats(got, want, rel=1e-9, abs_=0.0)
        for k in ("host_busy", "pim_busy"):  # busy fractions: abs. 1e-12 as well
            a, b = np.asarray(got[k]), np.asarray(want[k])
            stats[k]["within"] = float(
                np.mean(np.abs(a - b) <= np.maximum(1e-9 * np.abs(b), 1e-12))
            )
        ok = all(s["within"] == 1.0 for s in stats.values()) and checked >= 0.96 * len(sel)
        results.append(
            Result(
                "system",
                "reference",
                f"list scheduler (`dse/reference/system.py`), {kind.name}",
                checked,
                _stats_text(stats, ())
                + f"; {len(sel) - checked} of {len(sel)} drawn points infeasible (skipped)",
                "step, period and busy fractions rel. ≤ 1e-9; ≥ 96% of points feasible",
                ok,
                {"metrics": stats, "drawn": len(sel)},
            )
        )
    results += _system_properties(min(max(4 * n, 400), 1000))
    results.append(_gpu_closed_form())
    return results


def _system_properties(n: int) -> list[Result]:
    from dse.models import system
    from dse.policy import SystemKind

    rng = np.random.default_rng(0)
    pts = [q for kind in SystemKind for q in system_points(rng, n // 4, int(kind))]
    blocked = [{**q, "policy.system": 2, "policy.dual_rb": 0} for q in pts]
    dual = [{**q, "policy.system": 2, "policy.dual_rb": 1} for q in pts]
    one = [
        {**q, "workload.batch": 1, "workload.prefill_reqs": 0, "policy.micro_batches": 1}
        for q in pts
    ]
    sbi0 = [{**q, "policy.sbi": 0} for q in one]
    sbi1 = [{**q, "policy.sbi": 1} for q in one]
    m = len(pts)
    out, _ = _system_eval("schedule_inputs", pts + blocked + dual + sbi0 + sbi1)
    part = {k: [v[j * m : (j + 1) * m] for j in range(5)] for k, v in out.items()}
    results = []

    a, b = part["step_ns"][1], part["step_ns"][2]
    ok = is_feasible(part["status"][1])
    faster = float(np.mean(b[ok] < a[ok] * (1 - 1e-6))) if ok.any() else 0.0
    res = _property(
        "system",
        "dual row buffers never slower than blocked (NPU+PIM)",
        b[ok] <= a[ok] * (1 + 1e-12),
        "no violation; faster on > 30% of points",
        faster_fraction=faster,
    )
    res.agreement += f"; faster on {faster:.0%}"
    res.passed &= faster > 0.3
    results.append(res)

    ok = is_feasible(part["status"][0])
    busy = np.ones(m, bool)
    for k in ("host_busy", "pim_busy", "link_busy"):
        busy &= (part[k][0] >= 0) & (part[k][0] <= 1 + 1e-12)
    results.append(_property("system", "busy fractions in [0, 1]", busy[ok], "no violation"))
    parts = sum(part[k][0] for k in system.ENERGY_PARTS)
    tot = part["energy_J"][0]
    energy = np.abs(parts - tot) <= 1e-12 * np.abs(tot)
    energy &= np.abs(part["J_per_token"][0] * part["tokens"][0] - tot) <= 1e-12 * np.abs(tot)
    results.append(
        _property(
            "system",
            "energy terms sum to the total; J/token × tokens = energy",
            energy[ok] & (tot[ok] > 0),
            "rel. ≤ 1e-12",
        )
    )
    a, b = part["step_ns"][3], part["step_ns"][4]
    results.append(
        _property(
            "system",
            "interleaving a one-request batch changes nothing",
            np.abs(a - b) <= 1e-12 * np.abs(b),
            "rel. ≤ 1e-12",
        )
    )
    return results


def _gpu_closed_form() -> Result:
    """GPU-only decode at batch 1 without launch cost: (weights + KV) bytes / (bandwidth ·
    mem_eff), for every LLM preset."""
    from dse.workload.llm import Llm, load_preset

    rng = np.random.default_rng(6)
    names = [n for n in Llm.__members__ if n != "custom"]
    pts = [
        {
            "policy.system": 0,
            "workload.llm": int(Llm[name]),
            "workload.batch": 1,
            "workload.lengths": 0,
            "workload.L": int(rng.integers(16, 4096)),
            "hw.host.launch_ns": 0.0,
            "hw.host.mem_GB": 1e4,
            "policy.tp": 1,
            "policy.pp": 1,
            "workload.prefill_reqs": 0,
        }
        for name in names
    ]
    out, _ = _system_eval("schedule_inputs", pts)
    base = default_point()
    bw = float(base.hw.host.mem_GBps) * float(base.hw.host.mem_eff)
    errs = []
    for i, name in enumerate(names):
        s = load_preset(name)
        w = s.layers * s.params_per_layer + s.vocab * s.hidden
        nbytes = 2 * (w + pts[i]["workload.L"] * 2 * s.layers * s.kv_dim)
        errs.append(abs(out["step_ns"][i] / (nbytes / bw) - 1))
    errs = np.asarray(errs)
    return Result(
        "system",
        "external",
        "closed form: GPU decode at batch 1 = (weights + KV) / (bandwidth · mem_eff)",
        len(names),
        f"max rel. err {errs.max():.2%} over the {len(names)} LLM presets",
        "rel. ≤ 1% per preset",
        bool(np.all(errs <= 0.01)),
        {"max_rel": float(errs.max()), "presets": names},
    )


# --------------------------------------------------------------------------------------------
# serving
# --------------------------------------------------------------------------------------------

SERVING_SLOTS = 16


def serving_points(rng: np.random.Generator, n: int) -> list[dict]:
    """Random serving design points (the test suite's generator)."""
    out = []
    for _ in range(n):
        seqs = int(rng.integers(1, SERVING_SLOTS + 1))
        out.append(
            {
                "policy.system": int(rng.integers(0, 4)),
                "policy.sbi": int(rng.integers(0, 2)),
                "policy.dual_rb": int(rng.integers(0, 2)),
                "policy.partition": int(rng.choice([0, 2])),
                "policy.tp": int(rng.choice([1, 1, 2])),
                "policy.max_num_seqs": seqs,
                "policy.max_batched_tokens": int(rng.choice([seqs, 64, 256, 2048])),
                "policy.chunked_prefill": int(rng.integers(0, 2)),
                "policy.kv_alloc": int(rng.integers(0, 3)),
                "policy.block_size": int(rng.choice([1, 16, 64])),
                "policy.kv_chunk_bytes": int(rng.choice([1 << 16, 1 << 20])),
                "workload.max_context": int(rng.choice([512, 4096])),
                "workload.llm": 0,
                "workload.layers": int(rng.integers(1, 9)),
                "workload.hidden": int(rng.choice([1024, 4096])),
                "workload.heads": int(rng.choice([4, 8])),
                "workload.g": int(rng.choice([1, 4])),
                "workload.d": 128,
                "workload.ffn": int(rng.choice([4096, 14336])),
                "workload.vocab": 32000,
                "hw.pim.channels": int(rng.choice([1, 4, 16, 64])),
                "hw.pim.rows": int(rng.choice([64, 512, 65536])),
                "hw.host.mem_GB": float(rng.choice([2.0, 96.0])),
                "hw.host.mem_GBps": float(rng.uniform(300, 3000)),
                "hw.host.launch_ns": float(rng.choice([0.0, 4000.0])),
                "hw.link.host_GBps": float(rng.uniform(8, 128)),
            }
        )
    return out


def _serving_base():
    from dse.cli import _compose, build

    cfg, prov = _compose(
        [
            "space=single",
            "model=system",
            "pim=ddr4_3200_llmservingsim",
            "host=rtx_pro_6000",
            "workload=llama3_8b_step",
            "policy.system=gpu_pim",
        ]
    )
    return build(cfg, prov)[1]


def check_serving(n: int) -> list[Result]:
    import jax
    import jax.numpy as jnp

    from dse._pytree import replace_paths
    from dse.point import field_info
    from dse.reference.serving import simulate as ref_simulate
    from dse.serving import sim, traces

    shared_trace = LLMSS / "workloads/sharegpt-llama-3.1-8b-300-sps10.noids.jsonl"
    if shared_trace.is_file():  # LLMServingSim's ShareGPT trace
        sg = traces.read_jsonl(shared_trace)
    else:  # without it: the same length pairs' distribution, our own table, 10 requests/s
        sg = traces.synthetic(40, 10.0, seed=0)
    tr = traces.Trace(sg.arrival_ns[:40], sg.input_toks[:40], np.minimum(sg.output_toks[:40], 40))
    base = replace_paths(_serving_base(), {"workload.dtype": "fp16"})
    points = serving_points(np.random.default_rng(1), n)
    infos = field_info()
    swept = {
        k: jnp.asarray(np.asarray([q[k] for q in points], dtype=infos[k].dtype)) for k in points[0]
    }
    ta = sim.TraceArrays.from_trace(tr)
    opt = sim.Options(slots=SERVING_SLOTS, max_len=int((tr.input_toks + tr.output_toks).max()) + 1)
    out = jax.jit(lambda s, t: sim.simulate_batch(base, s, t, opt))(swept, ta)
    out = {k: np.asarray(v) for k, v in out.items()}
    arr = np.asarray(ta.arrival, float)
    n_out = np.asarray(ta.out)
    errs: dict[str, list[float]] = {"TTFT": [], "TPOT": [], "latency": []}
    steps_same, rejected_same, checked, requests = 0, 0, 0, 0
    props: list[bool] = []
    for i, q in enumerate(points):
        if out["status"][i] & 1:
            continue
        ref = ref_simulate(replace_paths(base, q), tr, SERVING_SLOTS)
        ok = ~ref["rejected"]
        rejected_same += bool(np.array_equal(out["rejected"][i], ref["rejected"]))
        for what, a, b in (
            ("TTFT", out["first_ns"][i] - arr, ref["first_ns"] - arr),
            ("latency", out["end_ns"][i] - arr, ref["end_ns"] - arr),
            (
                "TPOT",
                (out["end_ns"][i] - out["first_ns"][i]) / np.maximum(n_out - 1, 1),
                (ref["end_ns"] - ref["first_ns"]) / np.maximum(n_out - 1, 1),
            ),
        ):
            errs[what] += (np.abs(a - b)[ok] / np.maximum(np.abs(b[ok]), 1.0)).tolist()
        steps_same += int(out["steps"][i] == ref["steps"])
        checked += 1
        requests += int(ok.sum())
        # properties of the same run
        okv = ~out["rejected"][i]
        first, end = out["first_ns"][i][okv], out["end_ns"][i][okv]
        props.append(
            bool(
                np.all(first > arr[okv])
                and np.all(end >= first)
                and np.all(out["admit_ns"][i][okv] >= arr[okv])
                and out["gen_tok"][i] >= n_out[okv].sum()
                and out["peak_kv"][i] <= out["cap"][i]
                and out["steps"][i] >= n_out[okv].max(initial=0)
                and out["it"][i] <= out["steps"][i] + 2 * len(tr) + 1
            )
        )
    mx = {k: max(v, default=0.0) for k, v in errs.items()}
    mean = {k: float(np.mean(v)) if v else 0.0 for k, v in errs.items()}
    ok = (
        all(v <= 0.005 for v in mx.values())
        and steps_same == checked
        and rejected_same == checked
        and checked >= 0.9 * n
    )
    results = [
        Result(
            "serving",
            "reference",
            "per-step reference (`dse/reference/serving.py`), 40 ShareGPT requests",
            checked,
            "per-request max rel. err "
            + ", ".join(f"{k} {_sig(v)}" for k, v in mx.items())
            + f" over {requests} served requests; step counts identical on "
            f"{steps_same}/{checked} points",
            "TTFT, TPOT, latency rel. ≤ 0.5% per request; step counts and rejections "
            "identical; ≥ 90% of points simulated",
            ok,
            {"max_rel": mx, "mean_rel": mean, "requests": requests, "steps_identical": steps_same},
        ),
        _property(
            "serving",
            "arrival ≤ admission, arrival < first token ≤ end, every token generated, "
            "peak KV ≤ capacity, steps ≥ longest output",
            np.asarray(props),
            "no violation",
        ),
    ]
    return results


# --------------------------------------------------------------------------------------------
# registry, runner, output
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CheckSpec:
    """A group of checks: the model it validates, its function and its point counts."""

    model: str
    name: str
    fn: Callable[[int], list[Result]]
    quick: int
    full: int
    unit: str


CHECKS: tuple[CheckSpec, ...] = (
    CheckSpec("pim_gemv", "pim_gemv", check_pim_gemv, 100, 500, "random points"),
    CheckSpec("pim_kernel", "pim_kernel", check_pim_kernel, 10, 500, "random points per policy"),
    CheckSpec("attacc", "attacc", check_attacc, 0, 0, "all cache rows"),
    CheckSpec("pim_kernel", "corpus", check_corpus, 20, 0, "measured runs per family"),
    CheckSpec(
        "pim_attention", "pim_attention", check_pim_attention, 100, 500, "batches per policy"
    ),
    CheckSpec(
        "pim_attention", "attention_tiles", check_attention_tiles, 100, 400, "context lengths"
    ),
    CheckSpec("kv_memory", "kv_memory", check_kv_memory, 200, 520, "batches per policy"),
    CheckSpec("system", "system", check_system, 20, 500, "random points per system kind"),
    CheckSpec("serving", "serving", check_serving, 4, 24, "random design points"),
    CheckSpec("serving", "llmservingsim", check_llmservingsim, 0, 0, "example requests"),
    CheckSpec("system", "published", check_published, 0, 0, "published figures"),
)
MODELS = tuple(dict.fromkeys(c.model for c in CHECKS))
NAMES = tuple(dict.fromkeys([*MODELS, *(c.name for c in CHECKS)]))


def select(only: Sequence[str] | None) -> list[CheckSpec]:
    """The checks named by ``only`` (model or check names); all when empty."""
    from dse.errors import ConfigError

    if not only:
        return list(CHECKS)
    names = [x.strip() for item in only for x in item.split(",") if x.strip()]
    if not names:
        raise ConfigError("command line", "--only", f"one of {', '.join(NAMES)}", "")
    for name in names:
        if name not in NAMES:
            raise ConfigError("command line", "--only", f"one of {', '.join(NAMES)}", name)
    return [c for c in CHECKS if c.model in names or c.name in names]


def run_checks(specs: Sequence[CheckSpec], quick: bool = False) -> list[Result]:
    """Run ``specs`` in turn (progress on stderr); a check that raises is a failed row."""
    results: list[Result] = []
    for k, spec in enumerate(specs, 1):
        n = spec.quick if quick else spec.full
        size = f"{n} {spec.unit}" if n else spec.unit
        progress(f"[{k}/{len(specs)}] {spec.name}: {size} ...")
        t0 = time.perf_counter()
        try:
            got = spec.fn(n)
        except Exception as e:  # a crash is a failed validation, reported in the table
            got = [
                Result(
                    spec.model,
                    "reference",
                    spec.name,
                    0,
                    f"error: {type(e).__name__}: {e}",
                    "runs",
                    False,
                )
            ]
        dt = time.perf_counter() - t0
        for r in got:
            r.seconds = dt / len(got)
        bad = sum(not r.passed and not r.skipped for r in got)
        progress(
            f"[{k}/{len(specs)}] {spec.name}: {len(got)} checks, "
            f"{'all pass' if not bad else f'{bad} FAILED'} ({dt:.1f} s)"
        )
        results += got
    return results


def provenance(command: str, seconds: float, quick: bool) -> dict[str, Any]:
    """Date, git revision, versions and device of a report."""
    import jax
    import jaxlib

    import dse

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no"):
        rev += " (with uncommitted changes)"
    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "git": rev,
        "command": command,
        "quick": quick,
        "seconds": round(seconds, 1),
        "versions": {
            "dse": dse.__version__,
            "python": platform.python_version(),
            "jax": jax.__version__,
            "jaxlib": jaxlib.__version__,
            "numpy": np.__version__,
        },
        "device": f"{jax.devices()[0].platform} × {jax.device_count()}, "
        f"{platform.machine()}, {os.cpu_count()} cores",
    }


RINGS = {"reference": "(1) reference", "external": "(2) external", "property": "(3) property"}


def _cell(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _verdict(r: Result) -> str:
    if r.skipped:
        return "skipped"
    if r.bound.startswith("not a target"):
        return "reported"
    return "pass" if r.passed else "**FAIL**"


def to_markdown(results: Sequence[Result], prov: Mapping[str, Any]) -> str:
    """The report as Markdown: provenance, then one row per check."""
    v = prov["versions"]
    reported = [r for r in results if _verdict(r) in ("reported", "skipped")]
    checked = [r for r in results if _verdict(r) not in ("reported", "skipped")]
    passed = sum(r.passed for r in checked)
    lines = [
        "# Validation report",
        "",
        "Every model against (1) its plain-Python reference simulator in `dse/reference/`, "
        "(2) external data (the cycle-level corpus we measured on CENT's AiM, AttAcc's "
        "HBM3-PIM, NeuPIMs' NewtonSim and DRAMsim3 — see the oracle section below —, AttAcc's "
        "Ramulator-2 cache, NeuPIMs' channel assignments, LLMServingSim's example outputs, the "
        "exact kernel, closed forms) and (3) properties "
        "over random design points, each property evaluated in one vectorized call "
        "(DESIGN.md §6). Bounds are those of the test suite; LLMServingSim's rows use the "
        "band the README documents. Points: design points, batches, cache rows or requests "
        "compared (for a property, the pairs or points it was evaluated on). Regenerate with "
        "the command below.",
        "",
        f"- command: `{prov['command']}`",
        f"- date: {prov['date']}; git revision {prov['git']}",
        f"- versions: dse {v['dse']}, Python {v['python']}, JAX {v['jax']} (jaxlib "
        f"{v['jaxlib']}), NumPy {v['numpy']}; device: {prov['device']}",
        f"- runtime: {prov['seconds']:.0f} s; **{passed}/{len(checked)} checks pass**"
        + (f" ({len(reported)} more rows reported, not targets)" if reported else ""),
        "",
        "| model | ring | check | points | agreement | bound | result |",
        "|---|---|---|---:|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| `{r.model}` | {RINGS.get(r.ring, r.ring)} | {_cell(r.check)} | {r.points:,} | "
            f"{_cell(r.agreement)} | {_cell(r.bound)} | {_verdict(r)} |"
        )
    lines.append("")
    figures = [r for r in results if r.details.get("figures_md")]
    if figures:
        lines += ["", "## Published figures beside the model", ""]
        for r in figures:
            lines += [f"### {r.check}", "", r.details["figures_md"], ""]
    if any(r.check.startswith("corpus ") for r in results):
        lines += ["", oracle_markdown(), ""]
    return "\n".join(lines)


def to_json(results: Sequence[Result], prov: Mapping[str, Any]) -> str:
    def clean(x):
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, float) and not math.isfinite(x):
            return None
        return x

    doc = {
        **prov,
        "passed": sum(r.passed and not r.skipped for r in results),
        "skipped": sum(r.skipped for r in results),
        "checks": [clean(dataclasses.asdict(r)) for r in results],
    }
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def print_table(results: Sequence[Result]) -> None:
    from rich.console import Console
    from rich.table import Table

    for r in results:  # published figures first, each table as the report has it
        if r.details.get("figures_md"):
            print(f"\n{r.check}\n\n{r.details['figures_md']}\n")
    table = Table(title="dse validation", show_lines=False)
    for h in ("model", "ring", "check", "points", "agreement", "bound", "result"):
        table.add_column(h, justify="right" if h == "points" else "left", overflow="fold")
    for r in results:
        table.add_row(
            r.model,
            r.ring,
            r.check,
            f"{r.points:,}",
            r.agreement,
            r.bound,
            "[yellow]skipped[/yellow]"
            if r.skipped
            else ("[green]pass[/green]" if r.passed else "[bold red]FAIL[/bold red]"),
        )
    Console(width=max(160, Console().width)).print(table)


def write(results: Sequence[Result], prov: Mapping[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``out`` (Markdown) and its ``.json`` twin atomically; return both paths."""
    out.parent.mkdir(parents=True, exist_ok=True)
    js = out.with_suffix(".json")
    for path, text in ((out, to_markdown(results, prov)), (js, to_json(results, prov))):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return out, js


def parser():
    import argparse

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str):  # one line, exit status 2
            print(f"dse: error: {message}", file=sys.stderr)
            sys.exit(2)

    ap = _Parser(
        prog="python -m dse.validation",
        description="Run every validation of the models and write the table "
        "(Markdown and JSON). Exit status 1 when a check misses its bound.",
    )
    ap.add_argument("--quick", action="store_true", help="fewer points (about 1-2 min)")
    ap.add_argument(
        "--out",
        type=Path,
        default=Path("results") / "validation" / "validation.md",
        help="Markdown output path (default: results/validation/validation.md; the "
        "documented table: --out docs/validation.md)",
    )
    ap.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only these models or checks (repeatable or comma-separated): {', '.join(NAMES)}",
    )
    return ap


@command
def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status."""
    from dse.errors import EXIT_BAD_INPUT, ConfigError

    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    try:
        specs = select(args.only)
    except ConfigError as e:
        print(f"dse: error: {e.oneline()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:  # an unwritable output fails now, not after the checks
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if args.out.is_dir():
            raise IsADirectoryError(21, "is a directory")
        with open(args.out.with_name(args.out.name + ".tmp"), "w", encoding="utf-8"):
            pass
        args.out.with_name(args.out.name + ".tmp").unlink()
    except OSError as e:
        print(f"dse: error: {args.out}: cannot write the report ({e.strerror})", file=sys.stderr)
        return EXIT_BAD_INPUT
    import dse  # noqa: F401  (host devices, x64)
    from dse.explore import enable_compilation_cache

    enable_compilation_cache()
    t0 = time.perf_counter()
    results = run_checks(specs, quick=args.quick)
    command = " ".join(["python -m dse.validation", *argv])
    prov = provenance(command, time.perf_counter() - t0, args.quick)
    try:
        md, js = write(results, prov, args.out)
    except OSError as e:
        print(f"dse: error: {args.out}: cannot write the report ({e.strerror})", file=sys.stderr)
        return EXIT_BAD_INPUT
    print_table(results)
    skip = [r for r in results if r.skipped]
    failed = [r for r in results if not r.passed and not r.skipped]
    counted = len(results) - len(skip)
    note = f" ({len(skip)} skipped: their third-party files are absent)" if skip else ""
    print(
        f"{counted - len(failed)}/{counted} checks pass{note} in {prov['seconds']:.0f} s; "
        f"wrote {md} and {js}"
    )
    return 1 if failed else 0
