"""Points whose arithmetic leaves the number range are flagged, never reported ``ok``."""

from __future__ import annotations

import numpy as np

from dse.point import STATUS_CODE, decode_status, flag_invalid

NONFINITE, OVERFLOW = STATUS_CODE["nonfinite"], STATUS_CODE["overflow"]


def test_flag_invalid_over_random_batches():
    """Over 300 random batches: a point is flagged ``nonfinite`` exactly when one of its
    float metrics is NaN or infinite and ``overflow`` exactly when one of its metrics is
    negative (an integer that wrapped, or a float derived from one); the bits it had are
    kept, and clean points keep their status."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 40))
        f = np.abs(rng.normal(size=(n,))) * 1e3
        f2 = np.abs(rng.normal(size=(n, 3)))
        f2[rng.random(f2.shape) < 0.03] *= -1  # a wrapped quantity's fraction
        i = rng.integers(0, 1 << 40, size=n)
        for arr, bad in ((f, (np.nan, np.inf, -np.inf)), (f2, (np.nan,))):
            hit = rng.random(arr.shape) < 0.1
            arr[hit] = rng.choice(bad, size=int(hit.sum()))
        neg = rng.random(n) < 0.1
        i[neg] = -rng.integers(1, 1 << 62, size=int(neg.sum()))
        status = rng.choice([0, 0, 0, STATUS_CODE["capacity_exceeded"]], size=n)
        out = flag_invalid({"status": status, "t": f, "parts": f2, "cycles": i})
        want_nf = ~np.isfinite(f) | ~np.isfinite(f2).all(axis=1)
        np.testing.assert_array_equal((out["status"] & NONFINITE) > 0, want_nf)
        with np.errstate(invalid="ignore"):
            want_ov = neg | (f < 0) | (f2 < 0).any(axis=1)
        np.testing.assert_array_equal((out["status"] & OVERFLOW) > 0, want_ov)
        np.testing.assert_array_equal(out["status"] & ~(NONFINITE | OVERFLOW), status)


def test_system_point_past_float_range_is_flagged():
    """A host bandwidth of 1e-300 GB/s turns the system model's times infinite: the row is
    ``nonfinite``, not feasible, its metrics masked; the other points are untouched."""
    from dse.cli import _compose, build
    from dse.explore import evaluate_points, results_frame

    cfg, prov = _compose(["space=single", "model=system", "workload=llama3_8b_step"])
    base = build(cfg, prov)[1]
    bw = np.asarray([1e-300, 2000.0])
    res, _, _ = evaluate_points(base, {"hw.host.mem_GBps": bw}, "system")
    assert list(decode_status(res["status"])) == ["nonfinite", "ok"]
    df = results_frame(base, {}, {"hw.host.mem_GBps": bw}, res, 2, "system")
    assert list(df["feasible"]) == [False, True]
    assert np.isnan(df["tokens_per_s"].iloc[0]) and df["tokens_per_s"].iloc[1] > 0
