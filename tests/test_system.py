"""The system-iteration model (dse.models.system) against the list-scheduler reference
(dse.reference.system), closed forms and properties."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dse._pytree import get_path, replace_paths
from dse.models import system
from dse.models.pim_attention import attention
from dse.point import field_info, is_feasible
from dse.policy import SystemKind
from dse.reference.system import simulate_point, timeline_plot
from dse.workload.llm import Llm
from tests.conftest import default_point


def _random(rng: np.random.Generator, n: int, kind: int, slots: int = 8) -> list[dict]:
    """Random design points of one system kind: custom shapes of a few layers (the
    reference walks every op), presets now and then; up to ``slots`` micro-batches."""
    out = []
    for _ in range(n):
        pp = int(rng.choice([1, 1, 2, 3, 4]))
        layers = int(rng.integers(pp, 13))
        preset = rng.random() < 0.1
        p = {
            "policy.system": kind,
            "policy.tp": int(rng.choice([1, 2, 4, 16])),  # 16: more modules than KV heads
            "policy.pp": pp if not preset else 1,
            "policy.micro_batches": int(rng.integers(1, slots + 1)),
            "policy.sbi": int(rng.integers(0, 2)),
            "policy.dual_rb": int(rng.integers(0, 2)),
            "policy.partition": int(rng.choice([0, 1, 2, 5])),
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
            "hw.host.sample_ns": float(rng.choice([0.0, 150e3])),
            "hw.host.sfm_ns_per_score": float(rng.choice([0.0, 0.1])),
            "hw.host.sfm_ns_per_head": float(rng.choice([0.0, 9.0])),
            "hw.host.rope_ns_per_elem": float(rng.choice([0.0, 0.19])),
            "hw.pim.host_share": float(rng.choice([1.0, 0.8, 0.3])),
            "hw.host.channels": int(rng.choice([0, 0, 32])),
            "hw.host.spad_bytes": int(rng.choice([0, 0, 1 << 20, 1 << 27])),
            "policy.lm_head": int(rng.integers(0, 2)),
        }
        # TP over any head count, but not over more devices than attention heads
        if not preset:
            p["policy.tp"] = min(p["policy.tp"], p["workload.heads"] * p["workload.g"])
        out.append(p)
    return out


def _batch(points: list[dict], slots: int = 8):
    """One batched point (fp16, ``slots`` micro-batch slots) with every leaf an array over
    ``points``."""
    base = replace_paths(default_point(), {"workload.dtype": "fp16", "policy.mb_slots": slots})
    infos = field_info()
    n = len(points)
    leaves = {}
    for k, info in infos.items():
        if info.static:
            continue
        if k in points[0]:
            v = np.asarray([q[k] for q in points], dtype=info.dtype)
        else:
            v = np.broadcast_to(np.asarray(get_path(base, k), dtype=info.dtype), (n,))
        leaves[k] = jnp.asarray(v)
    return replace_paths(base, leaves)


CHUNK = 512  # every call evaluates this many points: one compile per function


@functools.cache
def _jit(name: str):
    return jax.jit(jax.vmap(getattr(system, name)))


def _fn(name: str):
    """``system.<name>`` over a batched point, in chunks of :data:`CHUNK` (padded)."""

    def run(bp):
        n = np.asarray(bp.policy.system).shape[0]
        outs = []
        for lo in range(0, n, CHUNK):
            idx = np.minimum(np.arange(lo, lo + CHUNK), n - 1)
            part = jax.tree.map(lambda x, idx=idx: x[idx], bp)
            outs.append(jax.tree.map(np.asarray, _jit(name)(part)))
        cat = jax.tree.map(lambda *xs: np.concatenate(xs), *outs)
        return jax.tree.map(lambda x: x[:n], cat)

    return run


def _flat(bp, i: int) -> dict:
    return {
        k: float(np.asarray(get_path(bp, k))[i])
        for k, info in field_info().items()
        if not info.static
    }


@pytest.mark.slow  # its own compile of CENT's mapping (~28 s); partition cent is in the default run
def test_cent_placement_matches_list_scheduler():
    """CENT's placement (``mapping=cent``: vector work over every head on each device) on
    pim_only points with sampling, near-memory softmax/rotary and staging costs and up to 16
    micro-batches (twice the default slots): the vectorized step equals the list
    scheduler's."""
    points = _random(np.random.default_rng(11), 24, int(SystemKind.pim_only), slots=16)
    for q in points:
        q.update(
            {"policy.partition": 5, "hw.host.sample_ns": 150e3, "hw.host.rope_ns_per_elem": 0.19}
        )
    bp = replace_paths(_batch(points, slots=16), {"policy.mapping": "cent"})
    si = jax.tree.map(np.asarray, jax.jit(jax.vmap(system.schedule_inputs))(bp))
    checked = 0
    for i in range(len(points)):
        if si["status"][i]:
            continue
        row = {k: v[i] for k, v in si.items()}
        ref = simulate_point({**_flat(bp, i), "policy.mapping": "cent"}, row)
        assert ref["step_ns"] == pytest.approx(si["step_ns"][i], rel=1e-9), (i, points[i])
        assert ref["period_ns"] == pytest.approx(si["period_ns"][i], rel=1e-9), (i, points[i])
        checked += 1
    assert checked >= 12


@pytest.mark.parametrize(
    "kind,n",
    [(k, 40) for k in SystemKind]
    + [pytest.param(k, 500, marks=pytest.mark.slow) for k in SystemKind],
    ids=lambda x: x.name if isinstance(x, SystemKind) else str(x),
)
def test_matches_list_scheduler(kind, n):
    """Step and steady-state period equal the list scheduler's on random points per system
    kind (sub-batch interleaving, blocked/dual row buffers, TP, PP, micro-batches and prompts
    mixed in): 40 per kind in the default run, 500 per kind in the slow target."""
    points = _random(np.random.default_rng(100 + int(kind) + 7 * (n == 500)), n, int(kind))
    bp = _batch(points)
    si = out = _fn("schedule_inputs")(bp)
    checked = 0
    for i in range(len(points)):
        if not is_feasible(out["status"][i]):  # e.g. nothing admitted
            continue
        row = {k: v[i] for k, v in si.items()}
        ref = simulate_point(_flat(bp, i), row)
        assert ref["step_ns"] == pytest.approx(si["step_ns"][i], rel=1e-9), (i, points[i])
        assert ref["period_ns"] == pytest.approx(si["period_ns"][i], rel=1e-9), (i, points[i])
        assert ref["host_busy"] == pytest.approx(out["host_busy"][i], rel=1e-9, abs=1e-12)
        assert ref["pim_busy"] == pytest.approx(out["pim_busy"][i], rel=1e-9, abs=1e-12)
        checked += 1
    assert checked >= 0.96 * n


def _props(n=2000, seed=0, **fixed):
    rng = np.random.default_rng(seed)
    pts = []
    for kind in SystemKind:
        for q in _random(rng, n // 4, int(kind)):
            pts.append({**q, **fixed})
    return pts


@pytest.mark.slow  # its own compile (~30 s)
def test_dual_row_buffers_never_slower():
    pts = _props(n=1000)
    blocked = [{**q, "policy.system": 2, "policy.dual_rb": 0} for q in pts]
    dual = [{**q, "policy.system": 2, "policy.dual_rb": 1} for q in pts]
    a = _fn("schedule_inputs")(_batch(blocked))
    b = _fn("schedule_inputs")(_batch(dual))
    ok = np.asarray(a["status"]) == 0
    assert ok.sum() > 500
    sa, sb = np.asarray(a["step_ns"])[ok], np.asarray(b["step_ns"])[ok]
    assert np.all(sb <= sa * (1 + 1e-12))
    # and strictly faster somewhere: overlap exists
    assert np.mean(sb < sa * (1 - 1e-6)) > 0.3


def test_busy_fractions_and_energy_breakdown():
    pts = _props(n=1000, seed=1)
    out = jax.tree.map(np.asarray, _fn("schedule_inputs")(_batch(pts)))
    ok = out["status"] == 0
    for k in ("host_busy", "pim_busy", "link_busy"):
        assert np.all((out[k][ok] >= 0) & (out[k][ok] <= 1 + 1e-12)), k
    parts = sum(out[k] for k in system.ENERGY_PARTS)
    np.testing.assert_allclose(parts, out["energy_J"], rtol=1e-12)
    assert np.all(out["energy_J"][ok] > 0)
    np.testing.assert_allclose(
        (out["J_per_token"] * out["tokens"])[ok], out["energy_J"][ok], rtol=1e-12
    )
    # blocked NPU+PIM and PIM-only: one device, so host + PIM busy <= 1
    merged = ok & (
        (np.asarray([q["policy.system"] for q in pts]) == 3)
        | (
            (np.asarray([q["policy.system"] for q in pts]) == 2)
            & (np.asarray([q["policy.dual_rb"] for q in pts]) == 0)
        )
    )
    merged &= np.asarray([q["policy.pp"] for q in pts]) == 1
    assert np.all(out["host_busy"][merged] + out["pim_busy"][merged] <= 1 + 1e-9)


def test_sub_batches_never_split_a_request():
    """Every live request is in exactly one group, both halves of its own micro-batch; the
    halves' context sums differ by at most the longest request (the greedy bound)."""
    rng = np.random.default_rng(3)
    split = jax.jit(jax.vmap(system.split, in_axes=(0, 0, 0, None)))
    n, b = 400, 64
    lengths = rng.integers(1, 100_000, (n, b))
    live = np.arange(b)[None, :] < rng.integers(1, b + 1, n)[:, None]
    m = rng.integers(1, system.M_SYS + 1, n)
    group, slot = (np.asarray(x) for x in split(lengths, live, m, 1))
    assert np.all((group >= 0) == live)
    pos = np.cumsum(live, axis=1) - 1
    np.testing.assert_array_equal(
        np.where(live, group // 2, 0), np.where(live, pos % m[:, None], 0)
    )
    for i in range(n):
        for k in range(int(m[i])):
            a = lengths[i][live[i] & (group[i] == 2 * k)].sum()
            c = lengths[i][live[i] & (group[i] == 2 * k + 1)].sum()
            in_mb = lengths[i][live[i] & (group[i] // 2 == k)]
            if in_mb.size:
                assert abs(a - c) <= in_mb.max()
            # slots are positions within the group
            for g in (2 * k, 2 * k + 1):
                sel = live[i] & (group[i] == g)
                np.testing.assert_array_equal(slot[i][sel], np.arange(sel.sum()))


def test_one_request_interleaving_is_a_no_op():
    """A batch of one request cannot be split: interleaving leaves the step as it is."""
    pts = [
        {**q, "workload.batch": 1, "workload.prefill_reqs": 0, "policy.micro_batches": 1}
        for q in _props(n=400, seed=4)
    ]
    a = _fn("schedule_inputs")(_batch([{**q, "policy.sbi": 0} for q in pts]))
    b = _fn("schedule_inputs")(_batch([{**q, "policy.sbi": 1} for q in pts]))
    np.testing.assert_allclose(np.asarray(a["step_ns"]), np.asarray(b["step_ns"]), rtol=1e-12)


def test_single_device_limit_is_the_sum_of_its_ops():
    """TP = PP = 1, one micro-batch, no interleaving, decode only: nothing overlaps, so the
    step is layers × (pre + host attention + link in + PIM attention + link out + post) +
    LM head; the PIM attention op is pim_attention's layer time of the same batch."""
    pts = [
        {
            **q,
            "policy.tp": 1,
            "policy.pp": 1,
            "policy.micro_batches": 1,
            "policy.sbi": 0,
            "workload.prefill_reqs": 0,
        }
        for q in _props(n=400, seed=5)
    ]
    bp = _batch(pts)
    out = si = _fn("schedule_inputs")(bp)
    d = {k: si[f"d.{k}"][:, 0] for k in system.OPS}
    layers = si["shape.layers"]
    expect = layers * sum(d[k] for k in ("pre", "pattn", "xin", "att", "xout", "post")) + d["lm"]
    expect = expect + si["sample"][:, 0]  # the host's sampling after the last layer
    ok = (out["status"] == 0) & (out["batch"] == np.asarray([q["workload.batch"] for q in pts]))
    assert ok.sum() > 200
    np.testing.assert_allclose(out["step_ns"][ok], expect[ok], rtol=1e-12)

    # the PIM attention op against pim_attention on the same batch and shape
    kinds = np.asarray([q["policy.system"] for q in pts])
    sel = [i for i in range(len(pts)) if ok[i] and kinds[i] != 0][:64]
    sub = _batch([pts[i] for i in sel])
    shaped = replace_paths(
        sub,
        {
            "workload.heads": jnp.asarray(si["shape.heads"][sel]),
            "workload.g": jnp.asarray(si["shape.g"][sel]),
            "workload.d": jnp.asarray(si["shape.d"][sel]),
            "workload.layers": jnp.asarray(si["shape.layers"][sel]),
            "policy.kv_alloc": jnp.zeros(len(sel), jnp.int64) + 1,
            "hw.pim.rows": jnp.zeros(len(sel), jnp.int64) + (1 << 40),
        },
    )
    pa = jax.tree.map(np.asarray, jax.jit(jax.vmap(attention))(shaped))
    np.testing.assert_allclose(si["att"][sel, 0], pa["layer_ns"], rtol=1e-12)


def _cent_pipeline(n=300, seed=12, **fixed):
    """pim_only pipelines of one request per stage (batch = micro-batches = pp, CENT's),
    equal contexts, whole layers per stage, no interleaving or prompts."""
    rng = np.random.default_rng(seed)
    pts = []
    for q in _random(rng, n, int(SystemKind.pim_only)):
        pp = int(rng.choice([2, 3, 4, 8]))
        pts.append(
            {
                **q,
                "workload.llm": 0,
                "workload.layers": pp * int(rng.integers(1, 4)),
                "workload.lengths": 0,
                "workload.prefill_reqs": 0,
                "policy.pp": pp,
                "policy.micro_batches": pp,
                "workload.batch": pp,
                "policy.sbi": 0,
                **fixed,
            }
        )
    return pts


def test_lm_head_spread_closed_form():
    """A pipeline of pp identical stages (t each) with m = pp micro-batches and an LM head
    of ``lm``: on the last stage the period is max(m (t + lm), m sampling, the cycle); spread
    over the stages max(m (t + lm / pp), m sampling, the cycle), the cycle being pp t + lm +
    (pp - 1) hops + sampling; CENT's PP / T_token is the spread pipeline's."""
    for head in (0, 1):
        pts = _cent_pipeline(**{"policy.lm_head": head})
        si = _fn("schedule_inputs")(_batch(pts))
        ok = si["status"] == 0
        assert ok.sum() > 200
        pp = np.asarray([q["policy.pp"] for q in pts], float)
        n_lo = si["shape.layers"] / pp
        d = {k: si[f"d.{k}"][:, 0] for k in system.OPS}
        t = n_lo * sum(d[k] for k in ("pre", "pattn", "xin", "att", "xout", "post"))
        cycle = pp * t + d["lm"] + (pp - 1) * si["hop"][:, 0] + si["sample"][:, 0]
        load = pp * (t + (d["lm"] / pp if head else d["lm"]))
        sampling = pp * si["sample"][:, 0]  # the sampling machine's load
        expect = np.maximum(np.maximum(load, sampling), cycle)
        np.testing.assert_allclose(si["period_ns"][ok], expect[ok], rtol=1e-9)


def test_lockstep_stages_share_the_device_units():
    """CENT's pipeline-parallel mode: a stage on ``hw.pim.channels`` of a device whose units
    serve ``hw.host.channels`` shares them with ``hw.host.channels // hw.pim.channels``
    stages in lockstep: every op's vector work and operand staging (all but the PIM GEMVs
    and attention kernels, and the CXL traffic) take that many times as long."""
    for ch, n in ((8, 4), (10, 3), (16, 2), (32, 1)):
        pts = _cent_pipeline(
            n=60, seed=13, **{"hw.pim.channels": ch, "policy.tp": 1, "hw.host.channels": 0}
        )
        own = _fn("schedule_inputs")(_batch(pts))
        shared = _fn("schedule_inputs")(_batch([{**q, "hw.host.channels": 32} for q in pts]))
        ok = (own["status"] == 0) & (own["n_dec"][:, 0] > 0)
        assert ok.sum() > 30
        tok = own["n_dec"][:, 0]
        g = own["gemv_ns"]  # per token: qkv, o, up, down, lm
        pim = {
            "pre": tok * g[:, 0],
            "post": tok * (g[:, 1] + g[:, 2] + g[:, 3]),
            "lm": tok * g[:, 4],
            "att": own["att"][:, 0],
        }
        for op, kernel in pim.items():
            a, b = own[f"d.{op}"][:, 0], shared[f"d.{op}"][:, 0]
            np.testing.assert_allclose(
                (b - kernel)[ok], n * (a - kernel)[ok], rtol=1e-9, err_msg=f"{op}, {ch} ch"
            )


def test_gemm_tiles_as_neupims_cuts_them():
    """NeuPIMs' tiler (largest dimension halved while a tile exceeds half the scratchpad):
    by hand at its 134,218 KiB scratchpad, GPT3-7B's QKV at TP 4 and 512 tokens (29.4 MB) is
    one tile; 7B's FFN up at TP 1 (155 MB, then 79.7 MB with n halved once) is four; no
    scratchpad limit is infinitely many (loads hidden). Over 500 random GEMMs and scratchpads
    the vectorized count equals the reference's loop and is a power of two."""
    from dse.models.system import gemm_tiles
    from dse.reference.system import _tiles

    spad = 134218 * 1024
    assert float(gemm_tiles(512.0, 4096, 3072, 2, spad)) == 1
    assert float(gemm_tiles(512.0, 4096, 16384, 2, spad)) == 4
    assert np.isinf(float(gemm_tiles(512.0, 4096, 16384, 2, 0)))
    rng = np.random.default_rng(14)
    m, k, n = (np.round(np.exp(rng.uniform(0, np.log(1 << 17), 500))) for _ in range(3))
    sp = np.round(np.exp(rng.uniform(np.log(64), np.log(1 << 31), 500)))
    got = np.asarray(jax.jit(jax.vmap(gemm_tiles, (0, 0, 0, None, 0)))(m, k, n, 2, sp))
    want = [_tiles(a, b, c, 2, d) for a, b, c, d in zip(m, k, n, sp, strict=True)]
    np.testing.assert_array_equal(got, want)
    assert np.all(np.log2(got) == np.round(np.log2(got))) and got.max() > 1


def test_gpu_decode_is_memory_bound_closed_form():
    """GPU-only, batch 1, no launch cost: a decode step streams every weight and the KV
    cache once: step = bytes / (bandwidth · mem_eff) within the compute-bound ops' share."""
    from dse.workload.llm import load_preset

    rng = np.random.default_rng(6)
    names = [n for n in Llm.__members__ if n != "custom"]
    pts = []
    for name in names:
        pts.append(
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
        )
    out = jax.tree.map(np.asarray, _fn("schedule_inputs")(_batch(pts)))
    base = default_point()
    bw = float(base.hw.host.mem_GBps) * float(base.hw.host.mem_eff)
    for i, name in enumerate(names):
        s = load_preset(name)
        L = pts[i]["workload.L"]
        w = s.layers * s.params_per_layer + s.vocab * s.hidden  # the LM head, not the embedding
        nbytes = 2 * (w + L * 2 * s.layers * s.kv_dim)
        assert out["step_ns"][i] == pytest.approx(nbytes / bw, rel=0.01), name


@pytest.mark.slow  # its own compile (~30 s)
def test_steady_batch_fits_memory():
    """The steady-state model runs the largest batch the KV capacity admits: one more
    request of the same mix would not fit."""
    pts = [
        {**q, "workload.batch": 64, "hw.pim.rows": int(r)}
        for q, r in zip(
            _props(n=200, seed=7),
            np.random.default_rng(8).integers(2**12, 2**16, 200),
            strict=False,
        )
    ]
    out = jax.tree.map(np.asarray, _fn("steady")(_batch(pts)))
    ok = out["status"] == 0
    assert ok.sum() > 20
    assert np.all(out["batch"][ok] == np.minimum(out["max_batch"][ok], 64))


def test_timeline_plot(tmp_path):
    pts = _random(np.random.default_rng(9), 1, 2)
    pts[0].update({"policy.sbi": 1, "policy.pp": 1, "policy.micro_batches": 1})
    bp = _batch(pts)
    si = jax.tree.map(np.asarray, _fn("schedule_inputs")(bp))
    ref = simulate_point(_flat(bp, 0), {k: v[0] for k, v in si.items()})
    path = timeline_plot(ref["ops"], tmp_path / "gantt.png", layers=2)
    assert path.stat().st_size > 10_000


def test_llmservingsim_power_block():
    """The power block of LLMServingSim's PIM example (shared/reference/README.md) maps onto
    host and link fields; a bad value names its key."""
    from dse.errors import ConfigError
    from dse.hw.host import from_llmservingsim_power

    power = {
        "base_node_power": 60,
        "npu": {
            "RTXPRO6000": {
                "idle_power": 35,
                "standby_power": 300,
                "active_power": 600,
                "standby_duration": 18,
            }
        },
        "cpu": {"idle_power": 10, "active_power": 200, "util": 0.15},
        "dram": {"dimm_size": 32, "idle_power": 2.0, "energy_per_bit": 6.0},
        "link": {"num_links": 1, "idle_power": 5, "energy_per_bit": 4.0},
        "nic": {"num_nics": 1, "idle_power": 20},
        "storage": {"num_devices": 2, "idle_power": 5},
    }
    got = from_llmservingsim_power(power, "RTXPRO6000")
    assert got == {
        "hw.host.active_W": 600.0,
        "hw.host.idle_W": 35.0,
        "hw.host.standby_W": 300.0,
        "hw.host.base_W": 60 + 10 + 20 + 2 * 5,
        "hw.link.host_pJ_per_bit": 4.0,
        "hw.host.mem_pJ_per_bit": 6.0,
    }
    import yaml

    from dse.config import CONF_DIR

    preset = yaml.safe_load((CONF_DIR / "host" / "rtx_pro_6000.yaml").read_text())
    for k, v in got.items():
        if k.startswith("hw.host.") and k != "hw.host.mem_pJ_per_bit":
            assert preset[k.split(".")[-1]] == v, k
    bad = {**power, "npu": {"RTXPRO6000": {"active_power": "600W"}}}
    with pytest.raises(ConfigError, match="power.npu.RTXPRO6000.active_power"):
        from_llmservingsim_power(bad, "RTXPRO6000", source="cluster.json")
    with pytest.raises(ConfigError, match="H100"):
        from_llmservingsim_power(power, "H100")


def test_weights_must_fit_the_device_that_holds_them():
    """GPU kinds hold the weights in GPU memory, NPU+PIM and PIM-only in the PIM: a point
    whose share of the weights exceeds that memory is flagged, whatever the KV capacity."""
    from dse.point import STATUS_CODE

    pts = []
    for kind in SystemKind:
        for gb in (10.0, 1e4):
            pts.append(
                {
                    "policy.system": int(kind),
                    "workload.llm": int(Llm.llama3_1_70b),
                    "hw.host.mem_GB": gb,
                    "hw.pim.rows": 1 << 16,
                    "workload.batch": 1,
                    "workload.lengths": 0,
                    "workload.L": 128,
                }
            )
    out = _fn("schedule_inputs")(_batch(pts))
    flagged = (out["status"] & STATUS_CODE["capacity_exceeded"]) > 0
    # 70B in bf16 is 141 GB; 10 GB of GPU memory cannot hold it, 10 TB can; the PIM
    # (channels x banks x 65536 rows x row) is far smaller than 141 GB
    assert flagged.tolist() == [True, False, True, False, True, True, True, True]


def test_hf_config_fills_the_shape(tmp_path):
    """workload.hf_config=<config.json> sets the shape fields (llm becomes custom); a key the
    command line sets wins; a broken file is a ConfigError naming it."""
    import json

    from dse.cli import _compose, build
    from dse.errors import ConfigError

    cfg_json = {
        "model_type": "llama",
        "num_hidden_layers": 3,
        "hidden_size": 256,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "intermediate_size": 512,
        "vocab_size": 1000,
        "hidden_act": "silu",
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg_json))
    cfg, prov = _compose(
        [
            "model=system",
            "workload=llama3_8b_step",
            f"workload.hf_config={path}",
            "space=single",
            "workload.vocab=2000",
        ]
    )
    _, base, _ = build(cfg, prov)
    wl = base.workload
    assert int(wl.llm) == 0
    assert (int(wl.layers), int(wl.hidden), int(wl.heads), int(wl.g), int(wl.d)) == (
        3,
        256,
        2,
        4,
        32,
    )
    assert (int(wl.ffn), int(wl.gated_ffn), int(wl.vocab)) == (512, 1, 2000)
    path.write_text("{not json")
    cfg, prov = _compose(["workload=llama3_8b_step", f"workload.hf_config={path}"])
    with pytest.raises(ConfigError, match="config.json"):
        build(cfg, prov)


@pytest.mark.slow
def test_prompt_chunks():
    """Chunked prefill: a prompt cut into chunks (each with the context before it) has the
    causal pairs and new tokens of the whole prompt; whole prompts without past context give
    the same op durations as the point's own ``prefill_reqs`` × ``prefill_len``."""
    rng = np.random.default_rng(11)
    sums = jax.jit(system.chunk_sums)
    for _ in range(50):
        L = int(rng.integers(1, 5000))
        cuts = (
            np.sort(rng.choice(np.arange(1, L), size=min(3, L - 1), replace=False)) if L > 1 else []
        )
        bounds = [0, *[int(c) for c in cuts], L]
        new = np.diff(bounds)
        past = np.asarray(bounds[:-1])
        last = np.arange(len(new)) == len(new) - 1
        s = sums(new, past, last, np.ones(len(new), bool), 1, 0)
        assert float(np.asarray(s["pairs"]).sum()) == L * (L + 1) / 2
        assert float(np.asarray(s["tok"]).sum()) == L and float(np.asarray(s["last"]).sum()) == 1

    pts = [
        {**q, "workload.prefill_reqs": int(r), "workload.prefill_len": int(n)}
        for q, r, n in zip(
            _props(n=64, seed=12), rng.integers(0, 9, 64), rng.integers(1, 3000, 64), strict=True
        )
    ]
    bp = _batch(pts)
    P = 8

    def both(p):
        wl = p.workload
        from dse.workload.lengths import sample_lengths

        lengths = sample_lengths(wl.lengths, wl.seed, wl.batch_max, wl.L, wl.length_scale)
        live = jnp.arange(wl.batch_max) < wl.batch
        on = jnp.arange(P) < wl.prefill_reqs
        chunks = system.chunk_sums(
            jnp.full(P, wl.prefill_len),
            jnp.zeros(P, jnp.int64),
            on,
            on,
            jnp.clip(p.policy.micro_batches, 1, p.policy.mb_slots),
            p.policy.sbi,
            p.policy.mb_slots,
        )
        a = system.durations(p, lengths, live)[0]
        b = system.durations(p, lengths, live, chunks)[0]
        return a, b

    a, b = jax.tree.map(np.asarray, jax.jit(jax.vmap(both))(bp))
    for k in system.OPS:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12, err_msg=k)
