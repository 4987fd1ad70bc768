"""Benchmarks: ``python -m dse.bench [--points N] [--skip-large] [--only system]``.

1. GEMV model throughput: one compiled call over ``2**20`` random design points (8 swept
   parameters), compile time reported separately, best of several repetitions; its
   operations per point (XLA's cost analysis) and the fraction of the CPU's float64 peak
   they reach (nominal, and as a float64 matrix product measures it).
2. Attention-kernel throughput (``pim_kernel``, dynamic scheduling): ``2**17`` random decode
   attention kernels (score q·Kᵀ and context s·V, L 256–128K, head dim 64–256, GQA group
   1–8, row reuse, OBuf depth, dual-ported and blocking-readout buffers) on the default PIM
   preset; beside it, the command-level reference simulator's rate on a sample of the same
   points, their ratio and whether the sampled cycle counts agree.
3. Decode-step attention (``pim_attention``): a batch of 64 requests with QMSum context
   lengths (a new seed per point) on the HBM3-PIM stack for Llama-3.1-8B, per partitioning
   policy, beside the plain-Python per-channel reference's rate.
4. The serving simulation: a 1,000-request ShareGPT trace × 1,024 design points in one
   call, again with every output doubled, beside the per-step reference's time per point.
5. The full pipeline (space → chunked evaluation → Parquet) over a ``--points``-point grid
   (default 10,000,000): wall time, evaluation time, points/s, recompiles after the first
   chunk, and the process's peak resident memory.
6. Sharding the design-point axis (``--only sharding``): GEMV (``2**20`` points) and serving
   step (``system``, ``2**15`` points) throughput with 1 and with every CPU core as a JAX
   device, each in its own process (the device count is fixed when the backend starts),
   compile time separate, and the CPU seconds per second each run kept busy; beside them one
   device pinned to one core and one device with Eigen's intra-op threads off
   (``--xla_cpu_multi_thread_eigen=false``), which separate the gain of sharding from the
   threads a single device already uses. On a GPU: its own devices, once.
7. A sharded study (``--only shards``, :func:`dse.merge.shard_benchmark`): 1,000,000
   steady-state points (``sweeps/steady_million.yaml``) as 2 ``submitit_local`` jobs, then
   ``python -m dse.merge``: rows, unique point ids, per-shard and merge times.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dse.explore import evaluate_points, trace_count
from dse.process import command


def serving_throughput(
    n_points: int = 1024, n_requests: int = 1000, rate: float = 4.0, reps: int = 2
) -> dict:
    """The serving simulation (:mod:`dse.serving.sim`) on LLMServingSim's PIM example node
    (Llama-3.1-8B, RTX PRO 6000, DDR4-PIM attention offload): a ``n_requests``-request
    ShareGPT trace (prompt/output pairs, Poisson arrivals at ``rate``/s) × ``n_points`` design
    points (PIM channels, tCCD_mac, tRCD_mac and GPU bandwidth drawn per point) in one call,
    with token-centric attention partitioning; then every output doubled; then head-first
    round-robin partitioning; beside each first run the per-step reference's time on one
    point."""
    import jax

    from dse.cli import _compose, build
    from dse.config import CONF_DIR
    from dse.reference.serving import simulate as ref_simulate
    from dse.serving import sim, traces

    cfg, prov = _compose(
        [
            "space=single",
            "model=serving",
            f"serving.cluster={CONF_DIR / 'serving/single_node_pim_instance.json'}",
            "workload=llama3_8b_step",
            "policy.system=gpu_pim",
            "policy.kv_alloc=paged",
        ]
    )
    _, base0, _ = build(cfg, prov)
    rng = np.random.default_rng(0)
    swept = {
        "hw.pim.channels": rng.choice([32, 48, 64], n_points),  # 256-512 GB of DIMMs
        "hw.pim.tCCD_mac": rng.integers(2, 9, n_points),
        "hw.pim.tRCD_mac": rng.integers(14, 40, n_points),
        "hw.host.mem_GBps": rng.uniform(1200.0, 1800.0, n_points),
    }
    from dse._pytree import replace_paths as replace

    out = {}
    runs = (
        ("token-centric", "tcp", 1),
        ("token-centric, outputs doubled", "tcp", 2),
        ("token-centric, outputs x4", "tcp", 4),
        ("head-first round-robin", "hfp_rr", 1),
    )
    for label, partition, factor in runs:
        base = replace(base0, {"policy.partition": {"tcp": 2, "hfp_rr": 0}[partition]})
        tr = traces.synthetic(n_requests, rate, seed=0, input_dist="sharegpt")
        tr = traces.Trace(tr.arrival_ns, tr.input_toks, tr.output_toks * factor, tr.source)
        ta = sim.TraceArrays.from_trace(tr)
        opt = sim.Options(
            slots=int(base.policy.max_num_seqs),
            max_len=int((tr.input_toks + tr.output_toks).max()) + 1,
        )

        t0 = time.perf_counter()
        exe = sim.compile_batch(base, swept, ta, opt, metrics=True)
        compile_s = time.perf_counter() - t0
        plan = _memory_plan(exe.compiled)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            m, rss = _rss_rise(lambda: jax.block_until_ready(exe(base, swept, ta)))  # noqa: B023
            times.append(time.perf_counter() - t0)
        best = min(times)
        row = {
            "partition": partition,
            "outputs": f"x{factor}",
            "points": n_points,
            "requests": n_requests,
            "generated_tokens": int(tr.output_toks.sum()),
            "compile_s": round(compile_s, 2),
            "trace_s": round(exe.trace_s, 2),
            "trace_loaded": bool(exe.loaded),
            "xla_compile_s": round(exe.compile_s, 2),
            "memory_MB": round(plan / 2**20, 1),
            "memory_MB_per_1024_points": round(plan / 2**20 * 1024 / n_points, 1),
            "rss_rise_MB": round(rss / 2**20, 1),
            "eval_s_best": round(best, 3),
            "simulations_per_s": round(n_points / best, 1),
            "iterations_max": int(np.max(m["iterations"])),
            "steps_median": int(np.median(m["steps"])),
            "infeasible": int(np.count_nonzero(np.asarray(m["status"]))),
            "gen_tok_per_s_median": round(float(np.median(m["gen_tok_per_s"])), 1),
            "ttft_p50_ms_median": round(float(np.median(m["ttft_p50_ms"])), 1),
        }
        if factor == 1:
            p0 = replace(base, {k: v[0] for k, v in swept.items()})
            t0 = time.perf_counter()
            ref = ref_simulate(p0, tr, opt.slots)
            ref_s = time.perf_counter() - t0
            row["reference_s_per_point"] = round(ref_s, 2)
            row["reference_steps"] = ref["steps"]
            row["speedup"] = round(ref_s / (best / n_points))
        out[label] = row
    one = out["token-centric"]["eval_s_best"]
    out["doubling_ratio"] = round(out["token-centric, outputs doubled"]["eval_s_best"] / one, 2)
    out["x4_ratio"] = round(out["token-centric, outputs x4"]["eval_s_best"] / one, 2)
    return out


def _rss_rise(fn):
    """``fn()`` and how far the process's resident memory rose above where it started while
    it ran (sampled every 2 ms from /proc/self/statm; 0 where that file is absent)."""
    import threading

    page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def rss() -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * page
        except OSError:
            return 0

    start, peak, done = rss(), [0], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            done.wait(0.002)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        out = fn()
    finally:
        done.set()
        t.join()
    return out, max(peak[0], rss()) - start if start else 0


def _memory_plan(compiled) -> int:
    """Bytes XLA's plan for one call holds at its peak, all devices: arguments, outputs and
    temporaries (:meth:`jax.stages.Compiled.memory_analysis`, per device)."""
    m = compiled.memory_analysis()
    if m is None:
        return 0
    per_device = (
        m.argument_size_in_bytes
        + m.output_size_in_bytes
        + m.temp_size_in_bytes
        - m.alias_size_in_bytes
    )
    return int(per_device) * max(len(compiled.input_shardings[0][0].device_set), 1)


SEARCH_PARAMS = {
    "hw.pim.lanes": {"type": "int", "low": 1, "high": 64},
    "hw.pim.banks": {"type": "int", "values": [4, 8, 16, 32]},
    "hw.pim.tCCD_mac": {"type": "int", "low": 1, "high": 16},
    "hw.pim.tRCD_mac": {"type": "int", "low": 10, "high": 49},
}
SEARCH_BUDGET = "pim_logic_mm2 <= 6"


def search_benchmark(seeds: int = 10, population: int = 128, budget: float = 0.05) -> dict:
    """The search on a 4-parameter PIM problem with a known optimum: the fastest FFN GEMV
    (``pim_gemv``, AiM GDDR6 preset) over MAC lanes 1–64, 4–32 banks, tCCD_mac 1–16 and
    tRCD_mac 10–49 (163,840 grid points) with PIM logic within 6 mm² per channel. The grid
    is evaluated exhaustively for the optimum; then each strategy runs ``seeds`` times with
    at most ``budget`` of the grid's evaluations, and the rate of evaluations is measured on
    warm (compiled) calls."""
    from dse.cli import _compose, build
    from dse.search.area import AREA_METRICS
    from dse.search.params import parse_params
    from dse.search.run import Constraint, Problem, area_metrics, search

    cfg, prov = _compose(["space=single"])
    _, base, _ = build(cfg, prov)
    params = parse_params(SEARCH_PARAMS, "bench")
    grid_n = int(np.prod([len(q.values) for q in params]))

    def problem(batch):
        return Problem(
            base,
            "pim_gemv",
            params,
            "time_ns",
            True,
            [Constraint.parse(SEARCH_BUDGET, "bench")],
            extra=area_metrics,
            extra_metrics=tuple(AREA_METRICS),
            batch=batch,
        )

    grid_prob = problem(16384)
    search(grid_prob, "grid")  # compile
    t0 = time.perf_counter()
    grid = search(grid_prob, "grid")
    grid_s = time.perf_counter() - t0
    opt = grid.best["time_ns"]
    out = {
        "grid_points": grid_n,
        "optimum_time_ns": opt,
        "optimum": {q.path: grid.best[q.path] for q in params},
        "grid_evals_per_s": round(grid_n / grid_s),
    }
    max_evals = int(budget * grid_n)
    prob = problem(population)
    for strategy in ("cmaes", "ga", "random"):
        search(prob, strategy, population=population, generations=2, seed=0)  # compile
        rows = []
        for seed in range(seeds):
            r = search(
                prob,
                strategy,
                population=population,
                generations=10_000,
                max_evals=max_evals,
                seed=seed,
            )
            h = r.history
            feas = h["feasible"].to_numpy()
            t = np.where(feas, h["time_ns"].to_numpy(), np.inf)
            within = np.flatnonzero(np.minimum.accumulate(t) <= 1.01 * opt)
            rows.append(
                {
                    "best_gap": r.best["time_ns"] / opt - 1 if r.best else np.inf,
                    "evals_to_1pct": int(within[0]) + 1 if len(within) else None,
                    "evals": r.evaluations,
                    "rate": r.evaluations / r.seconds,
                }
            )
        hit = [x["evals_to_1pct"] for x in rows if x["evals_to_1pct"] is not None]
        out[strategy] = {
            "runs": seeds,
            "max_evals": max_evals,
            "within_1pct": len(hit),
            "evals_to_1pct_median": int(np.median(hit)) if hit else None,
            "evals_to_1pct_max": max(hit) if hit else None,
            "best_gap_max": round(float(max(x["best_gap"] for x in rows)), 5),
            "evals_per_s_median": round(float(np.median([x["rate"] for x in rows]))),
        }
    return out


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def model_throughput(n: int = 1 << 20, reps: int = 5) -> dict:
    from dse.cli import _compose, build

    cfg, prov = _compose(["space=single"])
    _, base, _ = build(cfg, prov)
    rng = np.random.default_rng(0)
    swept = {
        "hw.pim.banks": rng.integers(1, 65, n),
        "hw.pim.lanes": rng.integers(1, 33, n),
        "hw.pim.tCCD_mac": rng.integers(1, 9, n),
        "hw.pim.tRCD_mac": rng.integers(10, 100, n),
        "hw.pim.tRP": rng.integers(8, 60, n),
        "hw.pim.row_bytes": 32 * rng.integers(8, 129, n),
        "hw.pim.gbuf_bytes": rng.integers(256, 8193, n),
        "policy.io": rng.integers(0, 2, n),
    }
    before = trace_count()
    _, compile_s, first_s = evaluate_points(base, swept)
    times = []
    for _ in range(reps):
        swept = {k: rng.permutation(v) for k, v in swept.items()}  # new data, same shape
        _, _, t = evaluate_points(base, swept)
        times.append(t)
    flops = flops_per_point("pim_gemv", base, swept)
    rate = n / min(times)
    peak = cpu_peak()
    return {
        "points": n,
        "compile_s": round(compile_s, 3),
        "first_call_s": round(first_s, 4),
        "eval_s_best": round(min(times), 4),
        "eval_s_median": round(float(np.median(times)), 4),
        "points_per_s": round(rate),
        "traces": trace_count() - before,
        "flops_per_point": round(flops, 1),
        "GFLOPs": round(flops * rate / 1e9, 2),
        **peak,
        "fraction_of_nominal_peak": round(flops * rate / 1e9 / peak["nominal_GFLOPs"], 4),
        "fraction_of_matmul_peak": round(flops * rate / 1e9 / peak["matmul_GFLOPs"], 4),
    }


def flops_per_point(model: str, base, swept: dict) -> float:
    """Arithmetic operations per design point of ``model``'s compiled call, as XLA's cost
    analysis counts them (its ``flops``: every elementwise operation, integer or floating
    point, counts one; an int64 floor division is about eleven), over every device's share."""
    from dse.explore import _executable, point_mesh

    mesh = point_mesh(0)
    exe, _ = _executable(model, base, swept, mesh)
    cost = exe.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    n = len(next(iter(swept.values())))
    per_device = n / (mesh.size if mesh is not None else 1)
    return float(cost["flops"]) / per_device


def cpu_peak(size: int = 2048, reps: int = 3) -> dict:
    """The CPU's float64 peak: nominal (cores × clock × flops per cycle from its vector
    width, with fused multiply-add and two FMA units per core, as server cores of AVX2 and
    AVX-512 have) and what a ``size``² float64 matrix product reaches through XLA on all
    cores (best of ``reps``)."""
    import time as _time

    import jax
    import jax.numpy as jnp

    from dse.process import host_cores

    flags, mhz = set(), 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "flags" and not flags:
                flags = set(value.split())
            elif key.strip() == "cpu MHz" and not mhz:
                mhz = float(value)
    except (OSError, ValueError):
        pass
    lanes = 8 if "avx512f" in flags else 4 if "avx" in flags else 2  # float64 per vector
    per_cycle = lanes * (2 if "fma" in flags else 1) * 2  # FMA = 2 flops; 2 units per core
    cores = host_cores()
    nominal = cores * (mhz or 2000.0) / 1e3 * per_cycle
    dev = jax.local_devices()[0]
    with jax.enable_x64(True):
        a = jax.device_put(jnp.ones((size, size), jnp.float64) * 0.5, dev)
        mm = jax.jit(lambda x: x @ x)
        jax.block_until_ready(mm(a))
        best = float("inf")
        for _ in range(reps):
            t0 = _time.perf_counter()
            jax.block_until_ready(mm(a))
            best = min(best, _time.perf_counter() - t0)
    return {
        "cores": cores,
        "clock_MHz": mhz,
        "flops_per_cycle_per_core": per_cycle,
        "nominal_GFLOPs": round(nominal, 1),
        "matmul_GFLOPs": round(2 * size**3 / best / 1e9, 1),
    }


def _attention_points(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "workload.kind": rng.integers(1, 3, n),  # score, context
        "workload.L": rng.integers(256, 131073, n),
        "workload.d": rng.choice([64, 128, 256], n),
        "workload.g": rng.choice([1, 4, 8], n),
        "policy.row_reuse": rng.integers(0, 2, n),
        "hw.pim.obuf_entries": rng.choice([1, 2, 8, 32], n),
        "hw.pim.dual_port": rng.integers(0, 2, n),
        "hw.pim.blocking_readout": rng.integers(0, 2, n),
    }


def kernel_throughput(n: int = 1 << 17, reps: int = 3, ref_points: int = 6) -> dict:
    """Dynamic-policy attention kernels: model points/s vs the reference simulator's."""
    from dse._pytree import get_path, replace_paths
    from dse.cli import _compose, build
    from dse.point import field_info
    from dse.reference.pim_kernel import simulate

    cfg, prov = _compose(["space=single", "model=pim_kernel"])
    _, base, _ = build(cfg, prov)
    base = replace_paths(base, {"policy.sched": 2})
    swept = _attention_points(n)
    before = trace_count("pim_kernel")
    out, compile_s, first_s = evaluate_points(base, swept, "pim_kernel")
    times = [evaluate_points(base, swept, "pim_kernel")[2] for _ in range(reps)]
    rate = n / min(times)
    # the reference on the first points of the same set
    flat = {k: get_path(base, k) for k in field_info(type(base))}
    flat = {k: v if isinstance(v, str) else np.asarray(v).item() for k, v in flat.items()}
    t0 = time.perf_counter()
    exact = 0
    for i in range(ref_points):
        point = {**flat, **{k: v[i].item() for k, v in swept.items()}}
        exact += simulate(point).cycles == int(out["cycles"][i])
    ref_rate = ref_points / (time.perf_counter() - t0)
    return {
        "points": n,
        "compile_s": round(compile_s, 3),
        "eval_s_best": round(min(times), 4),
        "points_per_s": round(rate),
        "reference_points_per_s": round(ref_rate, 3),
        "speedup": round(rate / ref_rate),
        "reference_sample": ref_points,
        "reference_exact": exact,
        "traces": trace_count("pim_kernel") - before,
    }


def attention_throughput(n: int = 1 << 15, reps: int = 3, ref_points: int = 20) -> dict:
    """Decode steps of a 64-request batch of variable lengths (LongBench QMSum, one seed per
    point) on the HBM3-PIM stack, Llama-3.1-8B, for each partitioning policy."""
    from dse._pytree import replace_paths
    from dse.cli import _compose, build
    from dse.models.pim_attention import grid_cycles, hyper
    from dse.reference.pim_attention import simulate
    from dse.workload.lengths import sample_lengths_np

    cfg, prov = _compose(
        ["space=single", "model=pim_attention", "pim=hbm3_attacc", "workload=llama3_8b_decode"]
    )
    _, base, _ = build(cfg, prov)
    rng = np.random.default_rng(0)
    rows = {}
    for part, name in enumerate(("hfp_rr", "hfp_greedy", "tcp")):
        b = replace_paths(base, {"policy.partition": part})
        swept = {"workload.seed": rng.integers(0, 1 << 40, n)}
        out, compile_s, _ = evaluate_points(b, swept, "pim_attention")
        times = []
        for _ in range(reps):
            swept = {"workload.seed": rng.integers(0, 1 << 40, n)}
            times.append(evaluate_points(b, swept, "pim_attention")[2])
        # the plain-Python reference on the first points of the last set
        seeds = swept["workload.seed"][:ref_points]
        grid = np.asarray(grid_cycles(b)).tolist()
        hp = {k: np.asarray(v).item() for k, v in hyper(b).items()}
        wl = b.workload
        live = [i < int(wl.batch) for i in range(wl.batch_max)]
        sample_lengths_np(int(wl.lengths), 0, wl.batch_max)  # compiled outside the timing
        t0 = time.perf_counter()
        for s in seeds:
            lengths = sample_lengths_np(
                int(wl.lengths), int(s), wl.batch_max, int(wl.L), float(wl.length_scale)
            )
            simulate(lengths.tolist(), live, hp, grid)
        ref_rate = ref_points / (time.perf_counter() - t0)
        rate = n / min(times)
        rows[name] = {
            "points": n,
            "compile_s": round(compile_s, 3),
            "eval_s_best": round(min(times), 4),
            "points_per_s": round(rate),
            "reference_points_per_s": round(ref_rate, 1),
            "speedup": round(rate / ref_rate),
        }
    return rows


def pipeline(points: int, chunk_size: int = 262144) -> dict:
    """A ``points``-point grid through the CLI's run() into a temporary directory."""
    from dse.cli import _compose, run

    side = int(round(points ** (1 / 4)))
    grid = {
        "hw.pim.tRCD_mac": list(range(10, 10 + side)),
        "hw.pim.tRP": list(range(8, 8 + side)),
        "workload.K": list(range(1024, 1024 + 64 * side, 64)),
    }
    last = -(-points // side**3)
    grid["workload.M"] = list(range(1024, 1024 + 64 * last, 64))
    overrides = [
        "space=single",
        "output.plot=true",
        f"chunk_size={chunk_size}",
        "study=bench",
        "progress=false",
    ]
    overrides += [f"+space.axes.{k}=[{','.join(map(str, v))}]" for k, v in grid.items()]
    cfg, prov = _compose(overrides)
    before = trace_count()
    with tempfile.TemporaryDirectory() as tmp:
        from rich.console import Console

        t0 = time.perf_counter()
        res = run(cfg, Path(tmp) / "run", prov, console=Console(file=open("/dev/null", "w")))
        wall = time.perf_counter() - t0
        size_mb = (Path(res.dir) / "points.parquet").stat().st_size / 2**20
    s = res.summary
    return {
        "points": s["points"],
        "chunks": s["chunks"],
        "chunk_size": s["chunk_size"],
        "compile_s": s["compile_s"],
        "evaluation_s": s["evaluation_s"],
        "model_points_per_s": s["points_per_s"],
        "wall_s": round(wall, 2),
        "end_to_end_points_per_s": round(s["points"] / wall),
        "traces": trace_count() - before,
        "parquet_MB": round(size_mb, 1),
        "peak_rss_MB": round(_peak_rss_mb(), 1),
    }


def system_throughput(n: int = 1 << 15, reps: int = 3, ref_points: int = 5) -> dict:
    """Serving steps of Llama-3.1-8B at batch 64 (ShareGPT contexts, one seed per point,
    sub-batch interleaving and row-buffer mode drawn per point) on each system kind, HBM2-PIM
    beside an A100-class host; and the list-scheduler reference on a few of them."""
    import jax

    from dse._pytree import get_path, replace_paths
    from dse.cli import _compose, build
    from dse.models import system
    from dse.point import field_info
    from dse.reference.system import simulate_point

    cfg, prov = _compose(
        ["space=single", "model=system", "pim=hbm2_neupims", "workload=llama3_8b_step"]
    )
    _, base, _ = build(cfg, prov)
    rng = np.random.default_rng(0)
    rows = {}
    for kind in system.SystemKind:
        b = replace_paths(base, {"policy.system": int(kind)})

        def swept():
            return {
                "workload.seed": rng.integers(0, 1 << 40, n),
                "policy.sbi": rng.integers(0, 2, n),
                "policy.dual_rb": rng.integers(0, 2, n),
            }

        out, compile_s, _ = evaluate_points(b, swept(), "system")
        times = [evaluate_points(b, swept(), "system")[2] for _ in range(reps)]
        rate = n / min(times)
        # the reference: the same step as an op graph, list-scheduled in plain Python
        sw = swept()
        flat = {k: get_path(b, k) for k, i in field_info().items() if not i.static}
        pts = [
            replace_paths(b, {k: np.asarray(v[i]) for k, v in sw.items()})
            for i in range(ref_points)
        ]
        fn = jax.jit(system.schedule_inputs)
        rows_in = [jax.tree.map(np.asarray, fn(p)) for p in pts]
        t0 = time.perf_counter()
        same = 0
        for i, row in enumerate(rows_in):
            fields = {k: float(np.asarray(v)) for k, v in flat.items()}
            fields.update({k: float(v[i]) for k, v in sw.items()})
            ref = simulate_point(fields, row)
            same += abs(ref["step_ns"] - float(row["step_ns"])) <= 1e-9 * ref["step_ns"]
        ref_rate = ref_points / (time.perf_counter() - t0)
        rows[kind.name] = {
            "points": n,
            "compile_s": round(compile_s, 3),
            "eval_s_best": round(min(times), 4),
            "points_per_s": round(rate),
            "reference_points_per_s": round(ref_rate, 2),
            "reference_identical": f"{same}/{ref_points}",
            "speedup": round(rate / ref_rate),
            "median_tokens_per_s": round(float(np.median(out["tokens_per_s"])), 1),
        }
    # the channel itself swept: every point has its own attention tile grid and GEMV times
    b = replace_paths(base, {"policy.system": int(system.SystemKind.npu_pim)})
    m = n // 4
    sweeps = {
        "channel timing swept (tCCD_mac, tRCD_mac per point)": lambda: {
            "workload.seed": rng.integers(0, 1 << 40, m),
            "hw.pim.tCCD_mac": rng.integers(1, 9, m),
            "hw.pim.tRCD_mac": rng.integers(10, 41, m),
        },
        "banks swept (8, 16, 32 per point)": lambda: {
            "workload.seed": rng.integers(0, 1 << 40, m),
            "hw.pim.banks": rng.choice([8, 16, 32], m),
        },
    }
    for name, draw in sweeps.items():
        evaluate_points(b, draw(), "system")
        times = [evaluate_points(b, draw(), "system")[2] for _ in range(reps)]
        rows[f"npu_pim, {name}"] = {
            "points": m,
            "eval_s_best": round(min(times), 4),
            "points_per_s": round(m / min(times)),
        }
    return rows


def sharding_worker(
    gemv_points: int = 1 << 20, system_points: int = 1 << 15, reps: int = 5
) -> dict:
    """Points/s of this process's devices (the design-point axis sharded over all of them) on
    the GEMV model and on the serving-step model (``system``: Llama-3.1-8B at batch 64 on
    HBM2-PIM beside an A100-class host, contexts, sub-batch interleaving and row-buffer mode
    drawn per point); compile time separate, best and median of ``reps`` calls on new data,
    and the CPU seconds the process spent per second of each call (the cores it kept busy)."""
    import jax

    from dse.cli import _compose, build

    rng = np.random.default_rng(0)
    out: dict = {
        "devices": jax.local_device_count(),
        "platform": jax.default_backend(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }

    def gemv_points_(n: int) -> dict:
        return {
            "hw.pim.banks": rng.integers(1, 65, n),
            "hw.pim.lanes": rng.integers(1, 33, n),
            "hw.pim.tCCD_mac": rng.integers(1, 9, n),
            "hw.pim.tRCD_mac": rng.integers(10, 100, n),
            "hw.pim.tRP": rng.integers(8, 60, n),
            "hw.pim.row_bytes": 32 * rng.integers(8, 129, n),
            "hw.pim.gbuf_bytes": rng.integers(256, 8193, n),
            "policy.io": rng.integers(0, 2, n),
        }

    def system_points_(n: int) -> dict:
        return {
            "workload.seed": rng.integers(0, 1 << 40, n),
            "policy.sbi": rng.integers(0, 2, n),
            "policy.dual_rb": rng.integers(0, 2, n),
        }

    cases = (
        ("gemv", "pim_gemv", ["space=single"], gemv_points_, gemv_points, reps),
        (
            "system",
            "system",
            ["space=single", "model=system", "pim=hbm2_neupims", "workload=llama3_8b_step"],
            system_points_,
            system_points,
            max(reps // 2, 3),
        ),
    )
    for name, model, overrides, draw, n, r in cases:
        cfg, prov = _compose(overrides)
        _, base, _ = build(cfg, prov)
        before = trace_count(model)
        _, compile_s, first_s = evaluate_points(base, draw(n), model)
        times, cores_busy = [], []
        for _ in range(r):
            points = draw(n)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            times.append(evaluate_points(base, points, model)[2])
            cores_busy.append((time.process_time() - cpu0) / (time.perf_counter() - wall0))
        out[name] = {
            "points": n,
            "compile_s": round(compile_s, 3),
            "first_call_s": round(first_s, 4),
            "eval_s_best": round(min(times), 4),
            "eval_s_median": round(float(np.median(times)), 4),
            "points_per_s": round(n / min(times)),
            "points_per_s_median": round(n / float(np.median(times))),
            "reps": r,
            "cpu_s_per_s": round(float(np.median(cores_busy)), 2),  # cores kept busy
            "traces": trace_count(model) - before,
        }
    return out


# (label, host devices, pinned to one core, Eigen's intra-op threads off)
SHARDING_VARIANTS = (
    ("1 device", 1, False, False),
    ("all cores as devices", 0, False, False),
    ("1 device pinned to 1 core", 1, True, False),
    ("1 device, Eigen threads off", 1, False, True),
)


def sharding_benchmark(
    gemv_points: int = 1 << 20, system_points: int = 1 << 15, reps: int = 5
) -> dict:
    """:func:`sharding_worker` in a fresh process per variant of :data:`SHARDING_VARIANTS`;
    the speedup of all cores over one device. On a GPU, this process's own devices, once (a
    second process could not have the memory this one has reserved)."""
    import jax

    from dse.process import FLAG, host_cores

    cores = host_cores()
    out: dict = {"cores": cores, "runs": {}}
    if jax.default_backend() != "cpu":
        out["runs"][jax.default_backend()] = sharding_worker(gemv_points, system_points, reps)
        return out
    base_flags = " ".join(
        f
        for f in os.environ.get("XLA_FLAGS", "").split()
        if not f.startswith((FLAG, "--xla_cpu_multi"))
    )
    for label, devices, pinned, no_threads in SHARDING_VARIANTS:
        env = dict(os.environ)
        env.pop("DSE_HOST_DEVICES", None)
        flags = [base_flags] if base_flags else []
        flags.append(f"{FLAG}={devices or cores}")
        if no_threads:
            flags.append("--xla_cpu_multi_thread_eigen=false")
        env["XLA_FLAGS"] = " ".join(flags)
        cmd = [sys.executable, "-m", "dse.bench", "--worker"]
        cmd += [str(gemv_points), str(system_points), str(reps), str(int(pinned))]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{label}: {proc.stderr.strip().splitlines()[-1:]}")
        out["runs"][label] = json.loads(proc.stdout.strip().splitlines()[-1])
    one, all_ = out["runs"]["1 device"], out["runs"]["all cores as devices"]
    for name in ("gemv", "system"):
        out[f"{name}_speedup"] = round(all_[name]["points_per_s"] / one[name]["points_per_s"], 2)
    return out


def _print_sharding(sh: dict) -> None:
    for label, r in sh["runs"].items():
        for name, what in (("gemv", "GEMV model"), ("system", "serving step (system)")):
            a = r[name]
            print(
                f"sharding, {label} ({r['devices']} {r['platform']} device(s), "
                f"{r['cores']} core(s)): {what}, {a['points']:,} points: compile "
                f"{a['compile_s']:.2f} s, evaluation {a['eval_s_best']:.3f} s (best of "
                f"{a['reps']}; median {a['eval_s_median']:.3f} s) -> {a['points_per_s']:,} "
                f"points/s, {a['cpu_s_per_s']:.2f} CPU s per s; traces {a['traces']}"
            )
    if "gemv_speedup" in sh:
        print(
            f"sharding speedup, {sh['cores']} devices over 1: GEMV {sh['gemv_speedup']}x, "
            f"serving step {sh['system_speedup']}x"
        )


@command
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m dse.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--points",
        type=int,
        default=10_000_000,
        help="design points in the pipeline benchmark (default 10,000,000)",
    )
    ap.add_argument("--skip-large", action="store_true", help="skip the pipeline benchmark")
    ap.add_argument(
        "--only",
        choices=[
            "gemv",
            "kernel",
            "attention",
            "system",
            "serving",
            "search",
            "pipeline",
            "sharding",
            "shards",
        ],
        help="run one benchmark (default: all)",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--worker", nargs=4, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:  # one process of the sharding benchmark: its JSON on the last line
        from dse.explore import enable_compilation_cache

        *sizes, pin = args.worker
        if pin and hasattr(os, "sched_setaffinity"):  # before XLA starts its threads
            os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:1])
        enable_compilation_cache()
        print(json.dumps(sharding_worker(*sizes)))
        return

    import jax

    from dse.explore import enable_compilation_cache

    enable_compilation_cache()
    dev = jax.devices()[0]
    out: dict = {"device": f"{dev.platform}:{dev.device_kind}", "devices": jax.device_count()}
    if not args.json:
        print(f"device: {out['device']} × {out['devices']}")
    run_ = lambda name: args.only in (None, name)  # noqa: E731
    if run_("pipeline") and not args.skip_large:  # first: the peak memory is its own
        out["pipeline"] = pipeline(args.points)
        if not args.json:
            p = out["pipeline"]
            print(
                f"pipeline, {p['points']:,} points in {p['chunks']} chunks of "
                f"{p['chunk_size']:,}: compile {p['compile_s']:.2f} s, evaluation "
                f"{p['evaluation_s']:.2f} s ({p['model_points_per_s']:,.0f} points/s), "
                f"wall {p['wall_s']:.1f} s incl. Parquet ({p['end_to_end_points_per_s']:,} "
                f"points/s), traces {p['traces']}, peak RSS {p['peak_rss_MB']:,.0f} MB, "
                f"points.parquet {p['parquet_MB']:,.0f} MB"
            )
    if run_("gemv"):
        out["model"] = model_throughput()
        if not args.json:
            m = out["model"]
            print(
                f"GEMV model, {m['points']:,} points in one call: compile "
                f"{m['compile_s']:.2f} s, evaluation {m['eval_s_best']:.3f} s (best of 5) -> "
                f"{m['points_per_s']:,.0f} points/s; traces {m['traces']}"
            )
            print(
                f"GEMV model: {m['flops_per_point']:.0f} operations per point (XLA's cost "
                f"analysis) -> {m['GFLOPs']:.1f} GFLOP/s = "
                f"{m['fraction_of_nominal_peak']:.1%} of the CPU's float64 peak "
                f"({m['nominal_GFLOPs']:.0f} GFLOP/s: {m['cores']} cores × "
                f"{m['clock_MHz']:.0f} MHz × {m['flops_per_cycle_per_core']} flops/cycle), "
                f"{m['fraction_of_matmul_peak']:.1%} of what a float64 matrix product reaches "
                f"here ({m['matmul_GFLOPs']:.0f} GFLOP/s)"
            )
    if run_("kernel"):
        out["kernel"] = k = kernel_throughput()
        if not args.json:
            print(
                f"attention kernels (pim_kernel, dynamic, L <= 128K), {k['points']:,} points "
                f"in one call: compile {k['compile_s']:.2f} s, evaluation "
                f"{k['eval_s_best']:.3f} s (best of 3) -> {k['points_per_s']:,.0f} points/s; "
                f"reference simulator {k['reference_points_per_s']:.2f} points/s on "
                f"{k['reference_sample']} of them ({k['reference_exact']} identical cycles) "
                f"-> {k['speedup']:,}x; traces {k['traces']}"
            )
    if run_("attention"):
        out["attention"] = rows = attention_throughput()
        if not args.json:
            for name, a in rows.items():
                print(
                    f"decode-step attention (pim_attention, {name}, batch 64 of QMSum lengths), "
                    f"{a['points']:,} points in one call: compile {a['compile_s']:.2f} s, "
                    f"evaluation {a['eval_s_best']:.3f} s (best of 3) -> "
                    f"{a['points_per_s']:,.0f} points/s; reference "
                    f"{a['reference_points_per_s']:,.1f} points/s -> {a['speedup']:,}x"
                )
    if run_("system"):
        out["system"] = rows = system_throughput()
        if not args.json:
            for name, a in rows.items():
                if "reference_points_per_s" not in a:
                    print(
                        f"serving step (system, {name}), "
                        f"{a['points']:,} points in one call: evaluation {a['eval_s_best']:.3f} s "
                        f"(best of 3) -> {a['points_per_s']:,.0f} points/s"
                    )
                    continue
                print(
                    f"serving step (system, {name}, Llama-3.1-8B, batch 64 of ShareGPT "
                    f"lengths), {a['points']:,} points in one call: compile "
                    f"{a['compile_s']:.2f} s, evaluation {a['eval_s_best']:.3f} s (best of 3) "
                    f"-> {a['points_per_s']:,.0f} points/s; list-scheduler reference "
                    f"{a['reference_points_per_s']:,.2f} points/s "
                    f"({a['reference_identical']} identical) -> {a['speedup']:,}x"
                )
    if run_("serving"):
        out["serving"] = sv = serving_throughput()
        if not args.json:
            for label, a in sv.items():
                if not isinstance(a, dict):
                    continue
                print(
                    f"serving simulation ({label}: {a['requests']:,} ShareGPT requests, "
                    f"{a['generated_tokens']:,} generated tokens, LLMServingSim's PIM node), "
                    f"{a['points']:,} design points in one call: compile {a['compile_s']:.1f} s "
                    f"(trace {a['trace_s']:.1f} s"
                    + (" loaded" if a["trace_loaded"] else "")
                    + f", XLA {a['xla_compile_s']:.1f} s), memory plan {a['memory_MB']:,.0f} MB "
                    f"({a['memory_MB_per_1024_points']:,.0f} MB per 1,024 points; resident "
                    f"memory rose {a['rss_rise_MB']:,.0f} MB), "
                    f"evaluation {a['eval_s_best']:.2f} s -> {a['simulations_per_s']:,.1f} "
                    f"simulations/s (≤ {a['iterations_max']:,} events, median "
                    f"{a['steps_median']:,} steps)"
                    + (
                        f"; per-step reference {a['reference_s_per_point']:.1f} s per point "
                        f"({a['reference_steps']:,} steps) -> {a['speedup']:,}x"
                        if "speedup" in a
                        else ""
                    )
                )
            print(
                f"serving: doubling every output costs {sv['doubling_ratio']}x the time, "
                f"four times every output {sv['x4_ratio']}x"
            )
    if run_("search"):
        out["search"] = se = search_benchmark()
        if not args.json:
            print(
                f"search problem: {se['grid_points']:,} grid points (4 parameters), optimum "
                f"{se['optimum_time_ns']:.0f} ns at {se['optimum']} (exhaustive grid "
                f"{se['grid_evals_per_s']:,} evaluations/s)"
            )
            for strategy in ("cmaes", "ga", "random"):
                a = se[strategy]
                print(
                    f"search {strategy}: {a['within_1pct']}/{a['runs']} runs within 1% of the "
                    f"optimum using ≤ {a['max_evals']:,} evaluations "
                    f"({a['max_evals'] / se['grid_points']:.0%} of the grid; median "
                    f"{a['evals_to_1pct_median']}, worst {a['evals_to_1pct_max']}); worst final "
                    f"gap {a['best_gap_max']:.2%}; {a['evals_per_s_median']:,} evaluations/s"
                )
    if args.only == "sharding":  # not in the default run: several processes, minutes
        out["sharding"] = sh = sharding_benchmark()
        if not args.json:
            _print_sharding(sh)
    if args.only == "shards":  # not in the default run: two jobs of 500,000 points
        from dse.merge import shard_benchmark

        out["shards"] = shard_benchmark(verbose=not args.json)
    if args.json:
        json.dump(out, sys.stdout, indent=1)
        print()


if __name__ == "__main__":
    main()
