"""dse.hw.dram_interface: closed-form limits, monotonicity, JAX use, corpus agreement."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dse.hw import dram_interface as di
from tests.conftest import REFERENCE

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "dse" / "validation" / "data" / "corpus_dramsim3.csv"


def base(**kw) -> di.InterfaceParams:
    """A DDR4-3200-like channel (the numbers of DDR4_8Gb_x8_3200.ini), overridable."""
    p = dict(
        tCK_ns=0.63,
        request_bytes=64.0,
        burst=4.0,
        ranks=2.0,
        bankgroups=4.0,
        banks_per_group=4.0,
        reads_per_row=128.0,
        rows_per_group_run=1.0,
        AL=0.0,
        CL=22.0,
        CWL=16.0,
        tRCD=22.0,
        tRCD_rd=22.0,
        tRP=22.0,
        tRAS=52.0,
        tCCD_S=4.0,
        tCCD_L=8.0,
        tRRD_S=4.0,
        tRRD_L=8.0,
        tFAW=34.0,
        t32AW=np.inf,
        tRTRS=1.0,
        tRTP=12.0,
        tPPD=0.0,
        tWTR_S=4.0,
        tWTR_L=12.0,
        tRFC=560.0,
        tREFI=12480.0,
        trans_queue=32.0,
        cmd_queue=8.0,
        per_bank_queues=1.0,
        open_page=1.0,
        dual_cmd=0.0,
    )
    p.update(kw)
    return di.InterfaceParams(**p)


def _make(d: dict) -> di.InterfaceParams:
    d = dict(d)
    d["tCCD_L"] = d["tCCD_S"] + d.pop("tCCD_L_extra")  # JEDEC: tCCD_L >= tCCD_S
    return base(**d, tRRD_L=d["tRRD_S"] + 2.0, tRCD_rd=d["tRCD"])


params = st.fixed_dictionaries(
    {
        "burst": st.sampled_from([1.0, 2.0, 4.0, 8.0]),
        "tCCD_S": st.integers(1, 6).map(float),
        "tCCD_L_extra": st.integers(0, 8).map(float),
        "bankgroups": st.sampled_from([1.0, 2.0, 4.0]),
        "reads_per_row": st.sampled_from([16.0, 32.0, 64.0, 128.0]),
        "rows_per_group_run": st.sampled_from([1.0, 4.0]),
        "tRCD": st.integers(5, 40).map(float),
        "tRP": st.integers(5, 40).map(float),
        "tRAS": st.integers(15, 80).map(float),
        "tFAW": st.integers(10, 80).map(float),
        "tRRD_S": st.integers(2, 12).map(float),
        "tRFC": st.integers(50, 900).map(float),
        "tREFI": st.integers(1500, 20000).map(float),
        "cmd_queue": st.sampled_from([8.0, 16.0, 128.0]),
        "ranks": st.sampled_from([1.0, 2.0]),
    }
).map(_make)


def test_row_hit_latency_is_cl_plus_burst_plus_one():
    p = base()
    assert di.idle_read_latency_cycles(p, "hit") == 22 + 4 + 1
    assert di.idle_read_latency_cycles(p, "closed") == 22 + 22 + 4 + 1
    assert di.idle_read_latency_cycles(p, "conflict") == 22 + 22 + 22 + 4 + 1
    # close page: every read activates
    assert di.idle_read_latency_cycles(base(open_page=0.0), "hit") == 22 + 22 + 4 + 1
    assert np.isclose(di.idle_read_latency_ns(p, "hit"), 27 * 0.63)


def test_hbm2_example_of_the_doc():
    # HBM2_8Gb_x128: hit 17, closed 31, conflict 45 cycles (measured on single reads)
    p = base(CL=14.0, tRCD=14.0, tRP=14.0, burst=2.0)
    lat = [di.idle_read_latency_cycles(p, k) for k in ("hit", "closed", "conflict")]
    assert lat == [17.0, 31.0, 45.0]


def test_stream_bounds_ddr4_3200():
    p = base()
    bw = di.stream_read_GBps(p)
    peak = di.peak_GBps(p)
    ccd_bound = peak * 4 / 8 * di.refresh_factor(p)
    # between the single-bank-group tCCD_L bound and the peak; the documented 728-cycle row
    assert ccd_bound < bw < peak
    assert np.isclose(di.stream_cycles_per_request(p), 728 / 128)
    # deep command queues (LLMServingSim's 128): the bank groups always overlap -> peak
    assert np.isclose(di.stream_cycles_per_request(base(cmd_queue=128.0)), 4.0)


def test_one_bank_group_runs_at_tccd_s():
    # GDDR6 (bankgroup_enable = false): one read per max(burst, tCCD_S)
    p = base(bankgroups=1.0, banks_per_group=16.0, burst=1.0, tCCD_S=3.0, tCCD_L=4.0)
    assert np.isclose(di.stream_cycles_per_request(p), 3.0)


@given(params)
def test_bandwidths_never_exceed_peak(p):
    peak = di.peak_GBps(p)
    for bw in (di.stream_read_GBps(p), di.mixed_GBps(p, 0.3)):
        assert 0 < bw <= peak * (1 + 1e-12)


@given(params, st.integers(1, 400))
def test_longer_trfc_lowers_bandwidth_and_raises_latency(p, extra):
    q = p._replace(tRFC=p.tRFC + extra)
    assert di.stream_read_GBps(q) < di.stream_read_GBps(p)
    for pat in ("stream", "random"):
        assert di.idle_read_latency_cycles(q, pat) > di.idle_read_latency_cycles(p, pat)


@given(params, st.integers(1, 20))
def test_monotone_in_timings(p, extra):
    # slower column spacing never speeds a stream
    assert di.stream_read_GBps(p._replace(tCCD_L=p.tCCD_L + extra)) <= di.stream_read_GBps(p) * (
        1 + 1e-12
    )
    for pat in ("hit", "closed", "conflict", "stream", "random"):
        slower = p._replace(tRCD=p.tRCD + extra)
        assert di.idle_read_latency_cycles(slower, pat) >= di.idle_read_latency_cycles(p, pat)
    # more look-ahead never hurts a stream
    assert di.stream_read_GBps(p._replace(cmd_queue=p.cmd_queue * 2)) >= di.stream_read_GBps(p)


@given(params, st.floats(0.05, 0.95))
def test_mixing_writes_costs_turnaround(p, f):
    assert di.mixed_GBps(p, f) < di.mixed_GBps(p, 0.0)
    assert np.isclose(di.mixed_GBps(p, 0.0), di.stream_read_GBps(p))


def _generated_channels(n: int, seed: int) -> di.InterfaceParams:
    """``n`` channels with timings drawn uniformly (one array per field)."""
    rng = np.random.default_rng(seed)
    u = lambda lo, hi: rng.integers(lo, hi + 1, n).astype(float)  # noqa: E731
    tccd_s, trrd_s, trcd = u(1, 6), u(2, 12), u(5, 40)
    return base(
        burst=rng.choice([1.0, 2.0, 4.0, 8.0], n),
        ranks=rng.choice([1.0, 2.0], n),
        bankgroups=rng.choice([1.0, 2.0, 4.0], n),
        banks_per_group=rng.choice([2.0, 4.0], n),
        tCCD_S=tccd_s,
        tCCD_L=tccd_s + u(0, 8),
        tRRD_S=trrd_s,
        tRRD_L=trrd_s + 2.0,
        tRCD=trcd,
        tRCD_rd=trcd,
        tRP=u(5, 40),
        tRAS=u(15, 80),
        tRTP=u(3, 12),
        tFAW=u(10, 80),
        tRFC=u(50, 900),
        tREFI=u(3000, 20000),
        cmd_queue=rng.choice([8.0, 16.0, 128.0], n),
        dual_cmd=rng.choice([0.0, 1.0], n),
        open_page=rng.choice([0.0, 1.0], n, p=[0.2, 0.8]),
    )


def _stack(*ps: di.InterfaceParams) -> di.InterfaceParams:
    """Concatenate channel batches of one shape field by field."""
    shape = np.shape(ps[0].ranks)
    fields = zip(*ps, strict=True)
    return di.InterfaceParams(
        *(
            np.concatenate([np.broadcast_to(np.asarray(v, float), shape) for v in vs])
            for vs in fields
        )
    )


def test_random_reads_obey_every_rate_bound_and_slow_down_with_slower_timings():
    # 32 generated channels and three slower variants of each, in one scheduler run
    n = 32
    p = _generated_channels(n, seed=7)
    slower = [
        p._replace(tFAW=p.tFAW + 24),
        p._replace(tRAS=p.tRAS + 40),
        p._replace(tRFC=p.tRFC + 400),
    ]
    cyc = di.random_cycles_per_request(_stack(p, *slower)).reshape(4, n)
    base_cyc = cyc[0]
    avail = 1.0 - p.tRFC / p.tREFI  # a rank is refreshing the rest of the time
    banks = p.bankgroups * p.banks_per_group
    bounds = [
        p.burst,  # data bus
        np.where(p.dual_cmd > 0, 2.0, 3.0 - (1.0 - p.open_page)),  # commands per request
        p.tFAW / (4 * p.ranks) / avail,  # four activations per tFAW per rank
        (p.tRAS + p.tRP) / (banks * p.ranks) / avail,  # one row cycle per bank
    ]
    assert np.all(base_cyc >= np.max(bounds, axis=0) * (1 - 1e-9))
    # A slower timing slows random reads on average. Not at every point: the round-robin
    # scheduler has anomalies, in DRAMsim3 too (a 2-rank DDR4 channel with tFAW 77: tRAS
    # 63 -> 103 takes DRAMsim3 from 10.36 to 10.21 cycles per read); with the sampling noise
    # (~0.7%, common random numbers) no point speeds up by more than 5%.
    for v in cyc[1:]:
        assert np.all(v >= base_cyc * 0.95)
        assert v.mean() > base_cyc.mean()


def test_random_reads_reach_a_binding_activation_window_exactly():
    # one rank, tFAW dominant and refresh negligible: four reads per tFAW
    p = base(ranks=1.0, tFAW=200.0, tRFC=1.0, tREFI=40000.0, tRRD_S=2.0, tRRD_L=2.0)
    assert np.isclose(di.random_cycles_per_request(p), 50.0, rtol=0.01)
    # data-bus bound: burst 8 with cheap activations, 2 ranks -> 8 cycles plus rank switches
    q = base(burst=8.0, tFAW=8.0, tRRD_S=2.0, tRRD_L=2.0, tRFC=1.0, tREFI=40000.0, tRTRS=0.0)
    assert np.isclose(di.random_cycles_per_request(q), 8.0, rtol=0.01)


def test_random_read_scheduler_refuses_oversized_channels():
    with pytest.raises(ValueError, match="ranks x banks"):
        di.random_read_GBps(base(ranks=8.0, bankgroups=4.0, banks_per_group=4.0))


def test_works_on_jax_arrays_and_differentiates():
    assert jax.config.jax_enable_x64
    p = base()
    batched = p._replace(tCCD_L=jnp.array([5.0, 6.0, 8.0]), tRFC=jnp.array([300.0, 400.0, 560.0]))
    bw = di.stream_read_GBps(batched)
    assert bw.shape == (3,) and bw.dtype == jnp.float64
    for i, (ccd, rfc) in enumerate([(5.0, 300.0), (6.0, 400.0), (8.0, 560.0)]):
        assert np.isclose(bw[i], di.stream_read_GBps(base(tCCD_L=ccd, tRFC=rfc)))
    g = jax.grad(lambda t: di.idle_read_latency_ns(p._replace(tRFC=t), "random"))(560.0)
    assert g > 0
    v = jax.vmap(lambda t: di.random_read_GBps(p._replace(tFAW=t)))(jnp.array([20.0, 40.0]))
    assert v[0] > v[1]


@pytest.mark.reference
def test_interface_params_from_ini():
    from dse.hw.dram import read_ini

    p = di.interface_params(read_ini(REFERENCE / "dram" / "HBM2_8Gb_x128.ini"))
    assert (p.ranks, p.reads_per_row, p.rows_per_group_run, p.dual_cmd) == (1, 32, 4, 1)
    p = di.interface_params(read_ini(REFERENCE / "dram" / "GDDR6_8Gb_x16.ini"))
    assert (p.bankgroups, p.reads_per_row, p.t32AW) == (1, 128, 420)


@pytest.mark.reference
def test_corpus_agreement_within_ten_percent():
    rows = pd.read_csv(CORPUS)
    e = di.evaluate_corpus_rows(rows)
    assert len(e) == len(rows)
    assert {"model", "quantity", "measured", "model_value", "scope"} <= set(e.columns)
    ins = e[e["scope"] == "in"]
    assert set(ins["family"]) == set(di.IN_SCOPE_FAMILIES)
    assert ins["model_value"].notna().all()
    err = (ins["model_value"] - ins["measured"]).abs() / ins["measured"]
    worst = ins.assign(err=err).sort_values("err").iloc[-1]
    assert err.max() < 0.10, (worst["config"], worst["family"], worst["err"])
    assert err.groupby(ins["family"]).mean().max() < 0.04


def test_corpus_rows_without_reference_are_nan(tmp_path, monkeypatch):
    monkeypatch.setenv("DSE_REFERENCE", str(tmp_path / "absent"))
    rows = pd.read_csv(CORPUS).groupby("family").head(1)
    e = di.evaluate_corpus_rows(rows)
    assert len(e) == len(rows) and e["model_value"].isna().all()
    lat = e[e["family"].str.startswith("latency_idle")]
    assert (lat["quantity"] == "avg_read_latency_ns").all()
    assert e.loc[e["family"] == "builtin_stream", "scope"].str.startswith("out:").all()
