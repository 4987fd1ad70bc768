"""The vectorized serving simulator (dse.serving.sim) against the per-step plain-Python
reference (dse.reference.serving), its step against the system model's own path, and
properties of the runs."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dse._pytree import replace_paths
from dse.point import field_info
from dse.reference.serving import reference_step
from dse.reference.serving import simulate as ref_simulate
from dse.serving import sim, traces
from dse.serving import step as stepmod
from tests.conftest import REFERENCE

SLOTS = 16
LLMSS = REFERENCE / "llmservingsim/workloads"


def _base():
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


def _random(rng: np.random.Generator, n: int) -> list[dict]:
    """Random serving design points: every system kind, interleaving, both partitionings,
    chunked or whole prompts, the three KV policies, memory tight enough to preempt."""
    out = []
    for _ in range(n):
        kind = int(rng.integers(0, 4))
        alloc = int(rng.integers(0, 3))
        seqs = int(rng.integers(1, SLOTS + 1))
        out.append(
            {
                "policy.system": kind,
                "policy.sbi": int(rng.integers(0, 2)),
                "policy.dual_rb": int(rng.integers(0, 2)),
                "policy.partition": int(rng.choice([0, 2])),
                "policy.tp": int(rng.choice([1, 1, 2])),
                "policy.max_num_seqs": seqs,
                "policy.max_batched_tokens": int(rng.choice([seqs, 64, 256, 2048])),
                "policy.chunked_prefill": int(rng.integers(0, 2)),
                "policy.kv_alloc": alloc,
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


def _swept(points: list[dict]) -> dict:
    infos = field_info()
    return {
        k: jnp.asarray(np.asarray([q[k] for q in points], dtype=infos[k].dtype)) for k in points[0]
    }


def _traces() -> dict[str, traces.Trace]:
    ex = traces.read_jsonl(LLMSS / "example_trace.jsonl")
    sg = traces.read_jsonl(LLMSS / "sharegpt-llama-3.1-8b-300-sps10.noids.jsonl")
    sg = traces.Trace(sg.arrival_ns[:40], sg.input_toks[:40], np.minimum(sg.output_toks[:40], 40))
    npm = traces.read_neupims_csv(
        REFERENCE / "workloads/share-gpt2-bs512-ms7B-tp4-rr-0.csv", output_toks=12
    )
    npm = traces.Trace(
        npm.arrival_ns[:32], np.minimum(npm.input_toks[:32], 600), npm.output_toks[:32]
    )
    return {"example": ex, "sharegpt40": sg, "neupims32": npm}


def _trace(name: str) -> traces.Trace:
    """A named trace: ``synthetic40`` is generated here, the others read from the reference
    directory (:func:`_traces`)."""
    if name == "synthetic40":
        return traces.synthetic(
            40, 5.0, seed=11, input_dist="sharegpt", output_dist="fixed", output_len=40
        )
    return _traces()[name]


def _options(tr: traces.Trace, **kw) -> sim.Options:
    return sim.Options(slots=SLOTS, max_len=int((tr.input_toks + tr.output_toks).max()) + 1, **kw)


@functools.cache
def _batched(n_points: int, name: str, seed: int):
    base = replace_paths(_base(), {"workload.dtype": "fp16"})
    points = _random(np.random.default_rng(seed), n_points)
    tr = _trace(name)
    ta = sim.TraceArrays.from_trace(tr)
    opt = _options(tr)
    out = jax.jit(lambda s, t: sim.simulate_batch(base, s, t, opt))(_swept(points), ta)
    return base, points, tr, ta, {k: np.asarray(v) for k, v in out.items()}


TRACES = ("example", "sharegpt40", "neupims32")


def _agreement(n_points: int, seed: int, names: tuple[str, ...] = TRACES) -> None:
    for name in names:
        base, points, tr, ta, out = _batched(n_points, name, seed)
        arr = np.asarray(ta.arrival, float)
        n_out = np.asarray(ta.out)
        checked = 0
        for i, q in enumerate(points):
            if out["status"][i] & 1:  # bad_parameter: not simulated meaningfully
                continue
            p = replace_paths(base, q)
            ref = ref_simulate(p, tr, SLOTS)
            assert ref["finished"]
            np.testing.assert_array_equal(out["rejected"][i], ref["rejected"])
            ok = ~ref["rejected"]
            for what, a, b in (
                ("TTFT", out["first_ns"][i] - arr, ref["first_ns"] - arr),
                ("latency", out["end_ns"][i] - arr, ref["end_ns"] - arr),
                (
                    "TPOT",
                    (out["end_ns"][i] - out["first_ns"][i]) / np.maximum(n_out - 1, 1),
                    (ref["end_ns"] - ref["first_ns"]) / np.maximum(n_out - 1, 1),
                ),
            ):
                err = np.abs(a - b)[ok] / np.maximum(np.abs(b[ok]), 1.0)
                assert err.max(initial=0) <= 0.005, (name, i, what, err.max(), q)
            assert out["steps"][i] == ref["steps"], (name, i)
            checked += 1
        assert checked >= 0.9 * n_points, (name, checked)
        _properties(points, tr, ta, out)


@pytest.mark.reference
def test_vectorized_equals_reference():
    """Per-request TTFT, TPOT and latency within 0.5% of the per-step reference on 4
    random points of a 40-request ShareGPT trace (the slow target: 50 points × this, the
    LLMServingSim example and the NeuPIMs traces), and properties of the same runs."""
    _agreement(4, seed=1, names=("sharegpt40",))


def test_vectorized_equals_reference_synthetic():
    """The same agreement on a generated 40-request trace (no reference files needed)."""
    _agreement(4, seed=1, names=("synthetic40",))


@pytest.mark.slow
def test_blocks_ordered_by_kv_capacity_give_each_point_its_own_results():
    """Points run in blocks ordered by KV capacity (tight caches together): every point's
    results are those of the same points simulated in one block, in their own order (7
    points in blocks of 2: the last block padded). (Slow target: two compiles of the loop.)"""
    base = replace_paths(_base(), {"workload.dtype": "fp16"})
    points = _random(np.random.default_rng(5), 7)
    tr = _trace("synthetic40")
    ta, opt = sim.TraceArrays.from_trace(tr), _options(tr)
    swept = _swept(points)
    one = jax.jit(lambda s, t: sim.simulate_batch(base, s, t, opt, block=8))(swept, ta)
    two = jax.jit(lambda s, t: sim.simulate_batch(base, s, t, opt, block=2))(swept, ta)
    caps = [int(sim.memory(replace_paths(base, q))["cap"]) for q in points]
    assert len(set(caps)) > 2  # the order is not the given one
    for k in ("admit_ns", "first_ns", "end_ns", "acc", "hist", "steps", "it", "status"):
        np.testing.assert_array_equal(np.asarray(two[k]), np.asarray(one[k]), err_msg=k)


@pytest.mark.reference
@pytest.mark.slow
def test_vectorized_equals_reference_50():
    _agreement(50, seed=2)


_constants = jax.jit(functools.partial(stepmod.constants, max_len=5000))
_evaluate = jax.jit(stepmod.evaluate)


def test_step_equals_system_model():
    """dse.serving.step (per-slot tables, two halves) equals dse.models.system's own path
    (kernel grid interpolation, 16 groups) on random compositions."""
    rng = np.random.default_rng(3)
    base = replace_paths(_base(), {"workload.dtype": "fp16"})
    points = _random(rng, 40)
    for q in points:
        p = replace_paths(base, q)
        ref = reference_step(p)
        c = _constants(p)
        L = rng.integers(1, 4000, SLOTS)
        dec = rng.random(SLOTS) < 0.6
        chunk = ~dec & (rng.random(SLOTS) < 0.5)
        new = np.where(chunk, rng.integers(1, 500, SLOTS), 0)
        past = np.where(chunk, rng.integers(0, 500, SLOTS), 0)
        last = rng.random(SLOTS) < 0.5
        got = _evaluate(p, c, L, dec, new, past, last, chunk)
        want = ref(L, dec, new, past, last, chunk)
        for k in stepmod.STEP_KEYS:
            assert float(got[k]) == pytest.approx(want[k], rel=1e-9, abs=1e-12), (k, q)


def _properties(points, tr, ta, out) -> None:
    """Nobody ends before arriving, first token no later than the last, every generated token
    counted, KV reservations within capacity, a step count bounded below by the longest
    output, an iteration count bounded by the steps and the requests."""
    arr = np.asarray(ta.arrival, float)
    for i in range(len(points)):
        if out["status"][i] & 1:
            continue
        ok = ~out["rejected"][i]
        first, end = out["first_ns"][i][ok], out["end_ns"][i][ok]
        assert np.all(first > arr[ok]) and np.all(end >= first)
        assert np.all(out["admit_ns"][i][ok] >= arr[ok])
        assert out["gen_tok"][i] >= np.asarray(ta.out)[ok].sum()  # + recomputed tokens
        assert out["peak_kv"][i] <= out["cap"][i]
        assert out["steps"][i] >= np.asarray(ta.out)[ok].max(initial=0)
        # an iteration runs ≥ 1 step, or admits, rejects or waits for an arrival
        assert out["it"][i] <= out["steps"][i] + 2 * len(tr) + 1


@pytest.mark.reference
@pytest.mark.slow
def test_points_split_over_devices_give_the_same_results():
    """compile_batch runs each device's share of the points (one device per CPU core, as
    the commands and the test run ask of XLA): the same per-request times and step counts as
    one device. (Slow target: two more compiles of the serving loop.)"""
    from dse.process import host_cores

    if host_cores() > 1:
        assert jax.local_device_count() > 1
    base, points, tr, ta, one = _batched(4, "sharegpt40", 1)
    run = sim.compile_batch(base, _swept(points), ta, _options(tr), metrics=False)
    split = {k: np.asarray(v) for k, v in run(base, _swept(points), ta).items()}
    for k in ("admit_ns", "first_ns", "end_ns", "acc", "hist"):
        np.testing.assert_allclose(split[k], one[k], rtol=1e-12, atol=1e-6, err_msg=k)
    for k in ("steps", "it", "status", "preempts"):
        np.testing.assert_array_equal(split[k], one[k], err_msg=k)


def test_same_seed_same_results():
    tr1 = traces.synthetic(
        30, 5.0, seed=7, input_dist="sharegpt", output_dist="fixed", output_len=20
    )
    tr2 = traces.synthetic(
        30, 5.0, seed=7, input_dist="sharegpt", output_dist="fixed", output_len=20
    )
    p = _base()
    opt = _options(tr1)
    run = jax.jit(lambda t: sim.simulate(p, t, opt))  # one compile for both traces
    runs = [run(sim.TraceArrays.from_trace(t)) for t in (tr1, tr2)]
    for k in ("first_ns", "end_ns", "admit_ns", "hist", "acc"):
        np.testing.assert_array_equal(np.asarray(runs[0][k]), np.asarray(runs[1][k]))


@pytest.mark.reference
def test_cost_grows_with_events_not_tokens():
    """Quadrupling every output multiplies generated tokens by 4 but the loop iterations
    (events) by less than 1.3."""
    tr = traces.read_jsonl(LLMSS / "example_trace.jsonl")
    tr4 = traces.Trace(tr.arrival_ns, tr.input_toks, tr.output_toks * 4)
    p = replace_paths(_base(), {"policy.max_num_seqs": SLOTS})
    its = []
    opt = _options(tr4)
    run = jax.jit(lambda x: sim.simulate(p, x, opt))
    for t in (tr, tr4):
        r = run(sim.TraceArrays.from_trace(t))
        its.append(int(r["it"]))
        assert int(r["status"]) == 0
    assert its[1] < 1.3 * its[0], its
