"""The first-order PIM GEMV model: closed-form limits, properties, and agreement with the
plain-Python reference walk (dse.reference.pim_gemv)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dse.reference.pim_gemv import gemv_reference
from dse.validation.report import gemv_params as random_params
from tests.conftest import evaluate_params


def _point(**kw):
    rng = np.random.default_rng(0)
    p = random_params(rng, 1)[0]
    p.update(
        {
            "hw.pim.tCK_ns": 1.0,
            "hw.pim.data_rate": 2.0,
            "hw.pim.bus_width_bits": 128,
            "hw.pim.channels": 1,
            "hw.pim.banks": 16,
            "hw.pim.lanes": 16,
            "hw.pim.col_bytes": 32,
            "hw.pim.row_bytes": 1024,
            "hw.pim.gbuf_bytes": 2048,
            "hw.pim.out_bytes": 2,
            "hw.pim.tRCD_mac": 14,
            "hw.pim.tRP": 14,
            "hw.pim.tRAS": 34,
            "hw.pim.tRTP": 6,
            "hw.pim.tCCD_mac": 2,
            "hw.pim.tRFC": 0,
            "hw.pim.tREFI": 3900,
            "workload.K": 4096,
            "workload.M": 4096,
            "workload.dtype": "fp16",
            "policy.io": 1,
        }
    )
    p.update({k if "." in k else _path(k): v for k, v in kw.items()})
    return p


def _path(name):
    if name in ("K", "M", "dtype"):
        return f"workload.{name}"
    if name == "io":
        return "policy.io"
    return f"hw.pim.{name}"


def test_long_rows_reach_internal_bandwidth():
    """Rows long enough to amortise ACT/PRE: achieved → peak internal bandwidth."""
    peaks = []
    for row in (1024, 16384, 1 << 20):
        r = evaluate_params([_point(row_bytes=row, bus_width_bits=1024)])[0]
        peaks.append(r["internal_GBps"] / r["peak_internal_GBps"])
        assert r["status"] == 0
    assert peaks[0] < peaks[1] < peaks[2]
    assert peaks[2] == pytest.approx(1.0, rel=0.01)
    # peak = banks * 32 B / (tCCD_mac * tCK) = 16 * 32 / 2 = 256 GB/s
    assert r["peak_internal_GBps"] == pytest.approx(256.0)


def test_one_column_rows_are_row_overhead_bound():
    """One column per row: every MAC pays ACT→MAC, MAC→PRE (or tRAS) and PRE→ACT."""
    p = _point(row_bytes=32, bus_width_bits=1024)
    r = evaluate_params([p])[0]
    n_mac = math.ceil(4096 / 16) * math.ceil(4096 / 16)  # m_bank * ceil(K / e)
    per_row = max(14 + 6, 34) + 14
    t_compute = n_mac * per_row
    exposed = (math.ceil(1024 * 2 / 32) + 1) * 1  # first GBuf fill (1024 elems) + last burst
    assert r["n_act"] == r["n_mac"] == n_mac
    assert r["cycles"] == t_compute + exposed
    assert r["frac_row"] == pytest.approx(1 - 2 / per_row, rel=1e-3)
    assert r["bottleneck"] == 1  # row


def test_serial_io_adds_transfers_exactly():
    p = _point(io=0)
    r = evaluate_params([p])[0]
    ref = gemv_reference(p)
    n_wr = math.ceil(4096 * 2 / 32)
    n_rd = math.ceil(4096 / 1024) * math.ceil(4096 * 2 / 32)  # chunks * packed outputs
    assert (r["n_wr_inp"], r["n_rd_out"]) == (n_wr, n_rd)
    assert r["cycles"] == ref["cycles"]


def test_discrete_refresh_count():
    """A refresh every tREFI stalls tRFC; the count is discrete, not a uniform stretch."""
    base = evaluate_params([_point(tRFC=0)])[0]["cycles"]
    r = evaluate_params([_point(tRFC=260, tREFI=3900)])[0]
    n = max(0, math.ceil((base - 3900) / (3900 - 260)))
    assert r["n_ref"] == n > 0
    assert r["cycles"] == base + n * 260
    # just below one refresh interval nothing is added
    short = evaluate_params([_point(tRFC=260, tREFI=base)])[0]
    assert short["n_ref"] == 0 and short["cycles"] == base


def test_fractions_sum_to_one_and_status_masks():
    pts = random_params(np.random.default_rng(1), 300)
    for r in evaluate_params(pts):
        assert r["frac_mac"] + r["frac_row"] + r["frac_io"] + r["frac_refresh"] == pytest.approx(1)
        assert 0 < r["mac_util"] <= 1 + 1e-12


def test_infeasible_points_are_flagged_not_nan():
    pts = [
        _point(tRFC=4000, tREFI=3900),  # refresh starved
        _point(gbuf_bytes=16),  # smaller than a column
        _point(rows=1),  # weights do not fit
        _point(lanes=0),  # bad parameter from a sampler
    ]
    codes = [r["status"] for r in evaluate_params(pts)]
    assert codes == [4, 2, 8, 1]


def test_cycles_exact_int64_at_large_sizes():
    """Exact integer cycles where float32 (or int32) would not be."""
    p = _point(K=1 << 20, M=1 << 16, banks=1, channels=1, tCCD_mac=7, tRFC=260)
    r = evaluate_params([p])[0]
    assert isinstance(r["cycles"], int) and r["cycles"] > 2**32
    ref_free = evaluate_params([_point(K=1 << 20, M=1 << 16, banks=1, channels=1, tCCD_mac=7)])[0]
    n = math.ceil((ref_free["cycles"] - 3900) / (3900 - 260))
    assert r["cycles"] == ref_free["cycles"] + 260 * n


def test_agrees_with_reference_walk():
    """Vectorized closed forms == explicit walk over rows, chunks and refreshes, exactly."""
    rng = np.random.default_rng(2024)
    pts = random_params(rng, 500, small=True)
    got = evaluate_params(pts)
    for p, r in zip(pts, got, strict=True):
        ref = gemv_reference(p)
        for key in ("cycles", "n_mac", "n_act", "n_wr_inp", "n_rd_out", "n_ref"):
            assert r[key] == ref[key], (key, p)
        for key in (
            "time_ns",
            "frac_mac",
            "frac_row",
            "frac_io",
            "frac_refresh",
            "mac_util",
            "internal_GBps",
        ):
            assert r[key] == pytest.approx(ref[key], rel=1e-12), (key, p)


_seeds = st.integers(0, 2**31 - 1)


def _pair(seed, field, lo, hi):
    p = random_params(np.random.default_rng(seed), 1)[0]
    q = dict(p)
    q[field] = p[field] + int(np.random.default_rng(seed + 1).integers(lo, hi))
    return p, q


@given(_seeds, st.sampled_from(["hw.pim.banks", "hw.pim.lanes", "hw.pim.channels"]))
def test_more_mac_units_never_slower(seed, field):
    p, q = _pair(seed, field, 1, 33)
    a, b = evaluate_params([p, q])
    assert b["cycles"] <= a["cycles"]


@given(
    _seeds,
    st.sampled_from(
        ["hw.pim.tRCD_mac", "hw.pim.tRP", "hw.pim.tRAS", "hw.pim.tRTP", "hw.pim.tCCD_mac"]
    ),
)
def test_slower_timing_never_faster(seed, field):
    p, q = _pair(seed, field, 1, 50)
    a, b = evaluate_params([p, q])
    assert b["cycles"] >= a["cycles"]


@given(_seeds)
def test_overlap_never_slower_than_serial(seed):
    p = random_params(np.random.default_rng(seed), 1)[0]
    a, b = evaluate_params([{**p, "policy.io": 0}, {**p, "policy.io": 1}])
    assert b["cycles"] <= a["cycles"]


@given(_seeds)
def test_longer_rows_never_slower(seed):
    p, q = _pair(seed, "hw.pim.row_bytes", 0, 1)
    q["hw.pim.row_bytes"] = p["hw.pim.row_bytes"] * 2
    a, b = evaluate_params([p, q])
    assert b["cycles"] <= a["cycles"]
