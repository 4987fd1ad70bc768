"""Gradients over relaxed design points (dse.search.gradient).

References: central finite differences of the model itself (float leaves, relative step
1e-4), the integer model evaluated exactly by the evaluator (relaxed integer leaves, ±1),
closed forms read off the models (pim_gemv's time is cycles · tCK_ns with cycles independent
of tCK; a memory-bound host step is bytes / bandwidth; Euler's theorem for the system step,
a function homogeneous of degree one in time), and analytic functions with known optima.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dse._pytree import get_path, replace_paths
from dse.explore import evaluate_points
from dse.models import MODELS
from dse.point import field_info
from dse.search.gradient import (
    _jvp_program,
    adam_search,
    differentiable_paths,
    plot_sensitivities,
    sensitivities,
)
from dse.validation.report import gemv_params as random_params

# --- system: one compile shared by the tests below (same model, same paths) ----------------
RATES = [
    "hw.host.tflops",
    "hw.host.vector_tflops",
    "hw.host.mem_GBps",
    "hw.module.hub_GBps",
    "hw.module.epu_Gops",
    "hw.module.link_GBps",
    "hw.link.host_GBps",
    "hw.link.dev_GBps",
]
TIMES = [
    "hw.pim.tCK_ns",
    "hw.host.launch_ns",
    "hw.module.hub_latency_ns",
    "hw.module.link_latency_ns",
    "hw.link.host_latency_ns",
    "hw.link.dev_latency_ns",
]
SYSTEM_PATHS = RATES + TIMES + ["hw.host.mem_eff", "hw.host.gemm_eff"]
FD_RTOL = 1e-5  # observed worst case 5e-7 over 100 random system points
FD_ATOL = 1e-10  # on elasticities: FD rounding, ~eps / (2 · 1e-4)


def _point(base, values: dict):
    """``base`` with ``values`` cast to each leaf's dtype."""
    infos = field_info()
    return replace_paths(base, {k: infos[k].dtype.type(v) for k, v in values.items()})


@functools.lru_cache(maxsize=1)
def _system_base():
    from dse.cli import _compose, build

    cfg, prov = _compose(["space=single", "workload=llama3_8b_step"])
    return build(cfg, prov)[1]


def _random_system(rng: np.random.Generator) -> dict:
    return {
        "hw.host.tflops": rng.uniform(50, 1000),
        "hw.host.vector_tflops": rng.uniform(10, 200),
        "hw.host.mem_GBps": rng.uniform(200, 8000),
        "hw.module.hub_GBps": rng.uniform(8, 256),
        "hw.module.epu_Gops": rng.uniform(4, 128),
        "hw.module.link_GBps": rng.uniform(8, 256),
        "hw.link.host_GBps": rng.uniform(8, 256),
        "hw.link.dev_GBps": rng.uniform(50, 900),
        "hw.pim.tCK_ns": rng.uniform(0.3, 2.0),
        "hw.host.launch_ns": rng.uniform(0, 10000),
        "hw.module.hub_latency_ns": rng.uniform(0, 500),
        "hw.module.link_latency_ns": rng.uniform(0, 1000),
        "hw.link.host_latency_ns": rng.uniform(0, 5000),
        "hw.link.dev_latency_ns": rng.uniform(0, 5000),
        "hw.host.mem_eff": rng.uniform(0.3, 1.0),
        "hw.host.gemm_eff": rng.uniform(0.3, 1.0),
        "policy.system": rng.integers(0, 4),  # gpu, gpu_pim, npu_pim, pim_only
        "policy.partition": rng.integers(0, 3),
        "policy.tp": rng.choice([1, 2, 4, 8]),
        "workload.batch": rng.integers(1, 65),
        "workload.prefill_reqs": rng.integers(0, 3),
    }


@pytest.mark.slow  # one compile of the system model's Jacobian (~30 s)
def test_system_gradient_matches_finite_differences_and_euler():
    """24 random points over all four system kinds: forward-mode gradients of tokens_per_s
    agree with central differences (relative step 1e-4) within FD_RTOL, and the elasticities
    obey Euler's theorem: the step is homogeneous of degree 1 in time (every latency and
    tCK_ns scaled by λ, every rate by 1/λ scales it by λ), so for tokens_per_s
    Σ_rates e − Σ_times e = 1."""
    base = _system_base()
    rng = np.random.default_rng(7)
    nonzero, worst = 0, 0.0
    for _ in range(24):
        df = sensitivities(_point(base, _random_system(rng)), "system", paths=SYSTEM_PATHS)
        assert (df["fd_scheme"] == "central").all()
        assert np.isfinite(df["gradient"]).all()
        # elasticities: relative FD_RTOL plus FD_ATOL (rounding floor eps / 2e-4 ~ 1e-12)
        e, e_fd = df["elasticity"], df["fd_elasticity"]
        bad = df[(e - e_fd).abs() > FD_RTOL * e.abs() + FD_ATOL]
        assert bad.empty, bad[["path", "gradient", "fd_gradient", "fd_rel_err"]]
        worst = max(worst, df.loc[e.abs() > 1e-6, "fd_rel_err"].max())
        nonzero += int((df["gradient"] != 0).sum())
        el = dict(zip(df["path"], e, strict=True))
        euler = sum(el[p] for p in RATES) - sum(el[p] for p in TIMES)
        assert euler == pytest.approx(1.0, abs=1e-9)
    assert nonzero >= 24 * 3  # not vacuous: several parameters matter at every point
    assert worst < FD_RTOL
    assert _jvp_program(MODELS["system"].fn, tuple(SYSTEM_PATHS))._cache_size() == 1


@pytest.mark.slow  # one compile of the system model's Jacobian (~30 s)
def test_system_memory_bound_host_elasticity_is_one():
    """gpu system, decode batch 64 of llama3-8b: every host op is memory-bound (tflops has
    zero gradient), so with no launch overhead the step is bytes / (mem_GBps · mem_eff):
    tokens_per_s has elasticity +1 to mem_GBps and mem_eff and step_ns −1. With the launch
    cost back, e(mem_GBps) − e(launch_ns) = 1 (Euler, only these two matter here)."""
    base = _point(_system_base(), {"policy.system": 0, "hw.host.launch_ns": 0.0})
    df = sensitivities(base, "system", paths=SYSTEM_PATHS).set_index("path")
    assert df.loc["hw.host.mem_GBps", "elasticity"] == pytest.approx(1.0, abs=1e-12)
    assert df.loc["hw.host.mem_eff", "elasticity"] == pytest.approx(1.0, abs=1e-12)
    assert df.loc["hw.host.tflops", "gradient"] == 0.0
    assert df.loc["hw.host.mem_GBps", "fd_elasticity"] == pytest.approx(1.0, rel=1e-6)
    step = sensitivities(base, "system", metric="step_ns", paths=SYSTEM_PATHS)
    assert step.set_index("path").loc["hw.host.mem_GBps", "elasticity"] == pytest.approx(-1.0)

    launch = _point(base, {"hw.host.launch_ns": 4000.0})
    df = sensitivities(launch, "system", paths=SYSTEM_PATHS).set_index("path")
    e_bw, e_launch = (
        df.loc["hw.host.mem_GBps", "elasticity"],
        df.loc["hw.host.launch_ns", "elasticity"],
    )
    assert 0.5 < e_bw < 1.0 and e_launch < 0.0
    assert e_bw - e_launch == pytest.approx(1.0, abs=1e-12)
    assert df.index[0] in ("hw.host.mem_GBps", "hw.host.mem_eff")  # ranked by |elasticity|


@pytest.mark.slow  # one compile of the system model's Jacobian (~30 s)
def test_system_rejects_integer_leaves_it_needs_exact():
    """Integer leaves that set loop bounds or feed integer-only ops cannot be relaxed: the
    trace says why (found by tracing; nothing is compiled)."""
    base = _system_base()
    with pytest.raises(ValueError, match="policy.pp.*fori_loop"):
        sensitivities(base, "system", paths=["policy.pp"])
    with pytest.raises(ValueError, match="hw.pim.channels.*gcd"):
        sensitivities(base, "system", paths=["hw.pim.channels"])
    with pytest.raises(ValueError, match="categorical"):
        sensitivities(base, "system", paths=["policy.system"])
    with pytest.raises(ValueError, match="static"):
        sensitivities(base, "system", paths=["workload.dtype"])


# --- pim_gemv ---------------------------------------------------------------------------


def _gemv_points(n: int, seed: int, **fixed) -> list[dict]:
    infos = field_info()
    pts = random_params(np.random.default_rng(seed), n)
    return [{k: v for k, v in p.items() if not infos[k].static} | fixed for p in pts]


def test_pim_gemv_differentiable_paths(base_point):
    paths = differentiable_paths(base_point, "pim_gemv")
    assert {"hw.pim.tCK_ns", "hw.pim.data_rate", "hw.pim.tRCD_mac", "hw.pim.banks"} <= set(paths)
    assert {"hw.pim.tCCD_mac", "workload.K", "hw.host.mem_GBps"} <= set(paths)
    # categorical choices, [0, 1] switches and static fields never qualify
    for p in ("policy.io", "policy.sched", "workload.kind", "policy.dual_rb", "workload.dtype"):
        assert p not in paths
    moving = differentiable_paths(base_point, "pim_gemv", nonzero=True)
    assert {"hw.pim.tCK_ns", "hw.pim.tRCD_mac", "hw.pim.tCCD_mac", "hw.pim.tRP"} <= set(moving)
    assert not any(p.startswith("hw.host.") for p in moving)  # the GEMV runs on the PIM only
    # banks enters through ceil divisions: its relaxation is flat at this point
    assert "hw.pim.banks" not in moving


def test_pim_gemv_clock_elasticity_is_one(base_point):
    """Every pim_gemv duration is an integer cycle count that does not depend on tCK_ns
    (transfers are counted per tCK via data_rate), and time_ns = cycles · tCK_ns, so
    e(time_ns, tCK_ns) = 1 and e(internal_GBps, tCK_ns) = −1 exactly; external_GBps =
    channels · width/8 · data_rate / tCK has elasticities +1 (data_rate) and −1 (tCK_ns)."""
    paths = ["hw.pim.tCK_ns", "hw.pim.data_rate", "hw.pim.tRCD_mac"]
    for values in _gemv_points(20, seed=3):
        pt = _point(base_point, values)
        e = sensitivities(pt, "pim_gemv", paths=paths).set_index("path")["elasticity"]
        assert e["hw.pim.tCK_ns"] == pytest.approx(1.0, abs=1e-12)
        for metric, expected in (
            ("internal_GBps", {"hw.pim.tCK_ns": -1.0}),
            ("external_GBps", {"hw.pim.tCK_ns": -1.0, "hw.pim.data_rate": 1.0}),
        ):
            df = sensitivities(pt, "pim_gemv", metric=metric, paths=paths).set_index("path")
            for p, want in expected.items():
                assert df.loc[p, "elasticity"] == pytest.approx(want, abs=1e-12)
                assert df.loc[p, "fd_elasticity"] == pytest.approx(want, rel=1e-6)


def test_pim_gemv_relaxed_integers_match_integer_model(base_point):
    """Relaxed integer timings: (1) the relaxed model at integer values is the integer
    model (the ±1 differences equal those of the exact evaluator); (2) the gradient equals
    the integer model's central ±1 slope wherever no kink of a max(·) lies within ±1 cycle
    (refresh off, tCCD_mac >= 2 so the clamp max(tCCD_mac, 1) is not at its tie)."""
    paths = ["hw.pim.tRCD_mac", "hw.pim.tRP", "hw.pim.tRTP", "hw.pim.tCCD_mac"]
    points = _gemv_points(40, seed=11, **{"hw.pim.tRFC": 0})
    for p in points:
        p["hw.pim.tCCD_mac"] = max(p["hw.pim.tCCD_mac"], 2)
        p["hw.pim.tRCD_mac"] = max(p["hw.pim.tRCD_mac"], p["hw.pim.tCCD_mac"])
    frames = [sensitivities(_point(base_point, p), "pim_gemv", paths=paths) for p in points]

    # exact integer evaluation of x ± 1 for every (point, path) in one evaluator call
    leaves = [k for k, info in field_info().items() if not info.static]
    rows = []
    for p in points:
        full = {k: p.get(k, get_path(base_point, k)) for k in leaves}
        for q in paths:
            rows += [full | {q: full[q] - 1}, full | {q: full[q] + 1}, full]
    swept = {k: np.asarray([r[k] for r in rows], dtype=field_info()[k].dtype) for k in leaves}
    exact = evaluate_points(base_point, swept, "pim_gemv")[0]["time_ns"].reshape(len(points), -1, 3)

    agree = 0
    for i, df in enumerate(frames):
        df = df.set_index("path")
        assert df.attrs["metric_value"] == exact[i, 0, 2]  # relaxed model at x == exact model
        for j, q in enumerate(paths):
            assert df.loc[q, "fd_scheme"] == "central" and df.loc[q, "fd_step"] == 1.0
            assert df.loc[q, "fd_gradient"] == (exact[i, j, 1] - exact[i, j, 0]) / 2.0
            agree += df.loc[q, "fd_rel_err"] <= 1e-12
    assert agree >= 0.95 * len(points) * len(paths)
    fn = MODELS["pim_gemv"].fn
    assert _jvp_program(fn, tuple(paths))._cache_size() == 1  # one compile for every point


def test_plot_sensitivities(base_point, tmp_path):
    df = sensitivities(base_point, "pim_gemv")
    assert list(df.columns[:6]) == ["path", "kind", "value", "doc", "gradient", "elasticity"]
    assert df["elasticity"].abs().is_monotonic_decreasing
    assert df.attrs["metric"] == "time_ns" and df.attrs["model"] == "pim_gemv"
    out = plot_sensitivities(df, tmp_path / "sens.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- Adam search ---------------------------------------------------------------------------

BOWL_PATHS = ["hw.host.mem_GBps", "hw.pim.tCK_ns", "hw.pim.banks"]
BOWL_BOUNDS = {
    "hw.host.mem_GBps": (100.0, 10000.0),
    "hw.pim.tCK_ns": (0.25, 2.0),
    "hw.pim.banks": (1, 64),
}


def bowl(p):
    """Minimum 0 at mem_GBps = 700, tCK_ns = 0.8, banks = 13."""
    x, y, k = p.hw.host.mem_GBps, p.hw.pim.tCK_ns, p.hw.pim.banks
    f = jnp.log(x / 700.0) ** 2 + (y - 0.8) ** 2 + ((k - 13.0) / 10.0) ** 2
    return {"f": f, "neg_f": -f}


@pytest.mark.parametrize(("metric", "minimize"), [("f", True), ("neg_f", False)])
def test_adam_finds_analytic_optimum(base_point, metric, minimize):
    r = adam_search(
        base_point,
        bowl,
        BOWL_PATHS,
        BOWL_BOUNDS,
        metric=metric,
        minimize=minimize,
        starts=16,
        steps=200,
    )
    v = r["values"]
    assert v["hw.host.mem_GBps"] == pytest.approx(700.0, rel=0.01)
    assert v["hw.pim.tCK_ns"] == pytest.approx(0.8, rel=0.01)
    assert v["hw.pim.banks"] == 13 and isinstance(v["hw.pim.banks"], int)
    assert abs(r["objective"]) < 1e-6
    assert r["scale"] == {
        "hw.host.mem_GBps": "log",
        "hw.pim.tCK_ns": "linear",
        "hw.pim.banks": "linear",
    }
    traj = r["trajectory"]
    assert list(traj.columns) == ["start", "step", "objective", "loss"]
    assert len(traj) == 16 * 201
    best_per_step = traj.groupby("step")["loss"].min()
    assert best_per_step.iloc[-1] < best_per_step.iloc[0]


def test_adam_penalty_shifts_the_optimum(base_point):
    """(y − 0.8)² + (y − 1.2)² is least at y = 1.0."""

    def penalty(point, metrics):
        return (point.hw.pim.tCK_ns - 1.2) ** 2

    r = adam_search(
        base_point, bowl, BOWL_PATHS, BOWL_BOUNDS, metric="f", starts=8, steps=300, penalty=penalty
    )
    assert r["values"]["hw.pim.tCK_ns"] == pytest.approx(1.0, rel=0.01)
    assert r["loss"] == pytest.approx(r["objective"] + (r["values"]["hw.pim.tCK_ns"] - 1.2) ** 2)


def test_adam_on_pim_gemv_stays_in_bounds_and_improves(base_point):
    paths = ["hw.pim.tCK_ns", "hw.pim.tRCD_mac", "hw.pim.tCCD_mac", "hw.pim.channels"]
    bounds = [(0.5, 2.0), (10, 100), (1, 8), (1, 64)]
    r = adam_search(base_point, "pim_gemv", paths, bounds, starts=16, steps=100, seed=3)
    per = r["starts"]
    for p, (lo, hi) in zip(paths, bounds, strict=True):
        assert per[p].between(lo, hi).all(), p
    assert per["hw.pim.tRCD_mac"].dtype == np.int64
    assert r["feasible"] and r["minimize"] and r["metric"] == "time_ns"
    assert r["objective"] < per["initial_objective"].min()
    assert (per["objective"] <= per["initial_objective"]).mean() >= 0.9
    # re-evaluated exactly at the rounded point
    exact = jax.jit(MODELS["pim_gemv"].fn)(r["point"])
    assert float(exact["time_ns"]) == r["objective"]
    assert get_path(r["point"], "hw.pim.channels") == r["values"]["hw.pim.channels"]


def test_adam_rejects_bad_inputs(base_point):
    with pytest.raises(ValueError, match="hw.pim.tCK_ns"):
        adam_search(base_point, "pim_gemv", ["hw.pim.tCK_ns"], [(-1.0, 2.0)])
    with pytest.raises(ValueError, match="categorical"):
        adam_search(base_point, "pim_gemv", ["policy.io"], [(0, 1)])
    with pytest.raises(ValueError, match="minimize"):
        adam_search(base_point, "pim_gemv", ["hw.pim.tCK_ns"], [(0.5, 1.0)], metric="mac_util")
    with pytest.raises(ValueError, match="no metric"):
        sensitivities(base_point, "pim_gemv", metric="tokens_per_s")
