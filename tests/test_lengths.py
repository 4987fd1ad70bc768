"""Context-length generators (dse.workload.lengths).

Statistical tolerances (fixed seeds, so the tests are deterministic; the bounds say how
unlikely a failure of a correct sampler would be for an arbitrary seed):

* Beta sets, N = 200,000 draws: the sample mean within 1% of the published mean is >= 8.5
  standard errors for every set (relative SE <= 0.117%); the std within 2% is >= 8.8 SEs
  (SE of the std from each Beta's kurtosis).
* Sample extremes: the min must fall at or below the model's quantile ``p`` and the max at
  or above ``1 - p``, with ``p = ln(1e9) / n``: a correct sampler misses with probability
  ``(1 - p)^n <= 1e-9``. (A fixed "within 2% of the range end" would not be principled:
  Musique's Beta has alpha ~ 3.8, so the bottom 2% of its range holds ~1e-7 of the mass.)
* Distribution shape: the Kolmogorov distance between the empirical CDF and the exact CDF
  of the model (integer-valued, so compared at every integer) must be below the DKW bound
  ``sqrt(ln(2 / 1e-6) / (2 n))``, exceeded with probability <= 1e-6.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from dse.workload import lengths as L
from dse.workload.lengths import (
    STATS,
    LengthDist,
    beta_params,
    describe,
    sample_lengths,
    sample_lengths_np,
)
from tests.conftest import REFERENCE

DATA = Path(L.__file__).resolve().parent / "data"
REF = REFERENCE
BETA_SETS = list(STATS)
TRACES = [LengthDist.sharegpt, LengthDist.neupims_sharegpt, LengthDist.mixed]

# The design brief's numbers (mean, std, max, min), restated as an independent source.
PUBLISHED = {
    "qmsum": (13_966, 6_182, 30_456, 2_651),
    "musique": (16_362, 1_651, 17_917, 6_820),
    "multifieldqa": (60_780, 31_025, 119_480, 20_333),
    "loogle_sd": (50_693, 26_506, 109_221, 13_347),
}
N = 200_000  # one batch size for the statistical tests: one compilation
SEED = 2024


def dkw_eps(n: int, delta: float = 1e-6) -> float:
    return math.sqrt(math.log(2 / delta) / (2 * n))


def ks_integer(x: np.ndarray, cdf) -> float:
    """sup_x |F_n(x) - G(x)| for integer-valued samples and model CDF ``G`` at integers."""
    ks = np.arange(x.min() - 1, x.max() + 1)
    emp = np.searchsorted(np.sort(x), ks, side="right") / len(x)
    return float(np.max(np.abs(emp - cdf(ks))))


@functools.cache
def draws(d: LengthDist) -> np.ndarray:
    """N lengths of ``d`` with seed SEED, drawn once per test process."""
    x = sample_lengths_np(d, SEED, N)
    x.setflags(write=False)
    return x


def trace_model(d: LengthDist) -> tuple[np.ndarray, np.ndarray]:
    """(smallest context, count of equally likely contexts) per request, read from the CSV."""
    df = pd.read_csv(DATA / L.TRACE_FILES[d])
    if "seq_len" in df:
        return df.seq_len.to_numpy(), np.ones(len(df), np.int64)
    return df.input_toks.to_numpy() + 1, df.output_toks.to_numpy()


# --- Beta-modelled long-context sets ---------------------------------------------------


def test_stats_are_the_published_numbers():
    assert {d.name: tuple(s) for d, s in STATS.items()} == PUBLISHED


@pytest.mark.parametrize("d", BETA_SETS, ids=lambda d: d.name)
def test_beta_sets_match_published(d):
    mean, std, hi, lo = PUBLISHED[d.name]
    x = draws(d)
    assert x.dtype == np.int64 and x.shape == (N,)
    assert abs(x.mean() / mean - 1) < 0.01
    assert abs(x.std() / std - 1) < 0.02
    assert lo <= x.min() and x.max() <= hi

    a, b = beta_params(mean, std, lo, hi)
    p = math.log(1e9) / N
    w = hi - lo
    assert x.min() <= lo + w * stats.beta.ppf(p, a, b) + 0.5
    assert x.max() >= lo + w * stats.beta.ppf(1 - p, a, b) - 0.5
    # rounded to whole tokens: P(X <= k) = F_beta((k + 0.5 - lo) / w)
    ks = ks_integer(x, lambda k: stats.beta.cdf(np.clip((k + 0.5 - lo) / w, 0, 1), a, b))
    assert ks < dkw_eps(N)


@given(
    lo=st.floats(-1e6, 1e6),
    width=st.floats(1e-3, 1e7),
    m=st.floats(1e-3, 1 - 1e-3),
    r=st.floats(1e-3, 1 - 1e-3),
)
def test_beta_params_round_trip(lo, width, m, r):
    hi = lo + width
    width = hi - lo  # the width as floats represent it
    mean = lo + m * width
    std = width * math.sqrt(r * m * (1 - m))
    a, b = beta_params(mean, std, lo, hi)
    assert a > 0 and b > 0
    got_mean = lo + width * a / (a + b)
    got_std = width * math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    assert got_mean == pytest.approx(mean, rel=1e-9, abs=1e-9 * width)
    assert got_std == pytest.approx(std, rel=1e-9)


@given(
    lo=st.floats(-1e6, 1e6),
    width=st.floats(1e-3, 1e7),
    m=st.floats(1e-3, 1 - 1e-3),
    excess=st.floats(0, 10),
)
def test_beta_params_rejects_too_large_std(lo, width, m, excess):
    hi = lo + width
    width = hi - lo
    mean = lo + m * width
    m = (mean - lo) / width  # the fraction as floats represent it
    std = width * math.sqrt(m * (1 - m)) * (1 + 1e-9 + excess)
    with pytest.raises(ValueError, match="too large"):
        beta_params(mean, std, lo, hi)


@pytest.mark.parametrize(
    "args",
    [
        (5, 1, 5, 10),
        (10, 1, 5, 10),
        (4, 1, 5, 10),
        (7, 0, 5, 10),
        (7, -1, 5, 10),
        (7, 1, 10, 5),
        (7, 1, 5, 5),
        (float("nan"), 1, 5, 10),
    ],
)
def test_beta_params_rejects_bad_inputs(args):
    with pytest.raises(ValueError, match="beta_params"):
        beta_params(*args)


# --- trace-based distributions ---------------------------------------------------------


@pytest.mark.parametrize("d", TRACES, ids=lambda d: d.name)
def test_trace_draws_follow_the_csv(d):
    base, count = trace_model(d)
    x = draws(d)
    assert x.dtype == np.int64
    # every draw is a context of some request: base_j <= x < base_j + count_j
    v = np.unique(x)
    inside = (v[:, None] >= base[None, :]) & (v[:, None] < (base + count)[None, :])
    assert inside.any(axis=1).all()
    if d == LengthDist.neupims_sharegpt:
        assert np.isin(v, base).all()

    # exact CDF: request uniform over rows, then uniform over its count_j contexts
    def cdf(k):
        return np.clip((k[:, None] - base[None, :] + 1) / count[None, :], 0, 1).mean(axis=1)

    assert ks_integer(x, cdf) < dkw_eps(N)


@pytest.mark.reference
def test_packaged_csvs_equal_the_sources():
    jsonl = REF / "llmservingsim" / "workloads"
    pairs = {
        "sharegpt_llama31_8b.csv": (
            pd.read_json(jsonl / "sharegpt-llama-3.1-8b-300-sps10.noids.jsonl", lines=True),
            ["input_toks", "output_toks"],
        ),
        "mixed_first50.csv": (
            pd.read_json(jsonl / "workload_me2_01_mixed.first50.jsonl", lines=True),
            ["input_toks", "output_toks"],
        ),
        "neupims_sharegpt.csv": (
            pd.read_csv(REF / "workloads" / "share-gpt2-bs512-ms7B-tp4-rr-0.csv"),
            ["seq_len"],
        ),
    }
    assert set(L.TRACE_FILES.values()) == set(pairs)
    for name, (src, cols) in pairs.items():
        ours = pd.read_csv(DATA / name)
        assert list(ours.columns) == cols
        pd.testing.assert_frame_equal(ours, src[cols].astype(np.int64), check_dtype=False)
    assert len(pairs["sharegpt_llama31_8b.csv"][0]) == 300
    assert len(pairs["mixed_first50.csv"][0]) == 50
    assert len(pairs["neupims_sharegpt.csv"][0]) == 512


def test_load_trace_reads_the_package_data():
    for d in TRACES:
        df = pd.read_csv(DATA / L.TRACE_FILES[d])
        t = L.load_trace(d)
        assert list(t) == list(df.columns)
        for c in df.columns:
            np.testing.assert_array_equal(t[c], df[c].to_numpy())


# --- API behaviour ---------------------------------------------------------------------


def test_fixed():
    np.testing.assert_array_equal(sample_lengths_np("fixed", 3, 16, fixed_len=777), [777] * 16)
    np.testing.assert_array_equal(sample_lengths_np(0, 3, 16, fixed_len=1, scale=0.01), [1] * 16)
    np.testing.assert_array_equal(sample_lengths_np(0, 3, 16, fixed_len=3, scale=2.5), [8] * 16)


def test_deterministic_seeded_and_prefix_stable():
    for d in list(LengthDist)[1:]:
        a = sample_lengths_np(d, SEED, 16)
        np.testing.assert_array_equal(a, sample_lengths_np(int(d), SEED, 16))
        np.testing.assert_array_equal(a, sample_lengths_np(d.name, SEED, 16))
        assert not np.array_equal(a, sample_lengths_np(d, SEED + 1, 16))
        assert a.dtype == np.int64 and a.min() >= 1
        if d in (LengthDist.qmsum, LengthDist.sharegpt):  # request i independent of B_max
            np.testing.assert_array_equal(a, draws(d)[:16])


def test_jit_and_vmap_over_dist_and_seed_match_single_calls():
    dists = jnp.repeat(jnp.arange(len(LengthDist)), 3)
    seeds = jnp.tile(jnp.asarray([0, 1, 2**40 + 5]), len(LengthDist))
    fixed = jnp.arange(dists.shape[0]) + 500
    scale = jnp.linspace(0.5, 3.0, dists.shape[0])
    f = jax.jit(jax.vmap(lambda d, s, fl, sc: sample_lengths(d, s, 16, fl, sc)))
    got = np.asarray(f(dists, seeds, fixed, scale))
    assert got.dtype == np.int64 and got.shape == (dists.shape[0], 16) and got.min() >= 1
    for i in range(dists.shape[0]):
        want = sample_lengths_np(int(dists[i]), int(seeds[i]), 16, int(fixed[i]), float(scale[i]))
        np.testing.assert_array_equal(got[i], want)
        if dists[i] == LengthDist.fixed:
            np.testing.assert_array_equal(got[i], np.round(int(fixed[i]) * float(scale[i])))


def test_scale_stretches_without_overflow():
    base = draws(LengthDist.multifieldqa)
    big = sample_lengths_np("multifieldqa", SEED, N, scale=64)
    np.testing.assert_array_equal(big, base * 64)
    assert big.dtype == np.int64
    assert 20_333 * 64 <= big.min() and big.max() <= 119_480 * 64
    assert big.max() > 7_500_000


def test_bad_dist_raises():
    with pytest.raises(ValueError, match="unknown length distribution"):
        sample_lengths_np("longbench", 0, 4)
    with pytest.raises(ValueError, match="not in"):
        sample_lengths(8, 0, 4, 1)
    with pytest.raises(ValueError, match="not in"):
        sample_lengths_np(-1, 0, 4)


def test_describe():
    df = describe(fixed_len=100)
    assert list(df.name) == [d.name for d in LengthDist]
    for name, (mean, std, hi, lo) in PUBLISHED.items():
        row = df.set_index("name").loc[name]
        assert row["mean"] == pytest.approx(mean, rel=1e-12)
        assert row["std"] == pytest.approx(std, rel=1e-12)
        assert (row["min"], row["max"]) == (lo, hi)
        assert (row.target_mean, row.target_std, row.target_min, row.target_max) == (
            mean,
            std,
            lo,
            hi,
        )
    fixed = df.set_index("name").loc["fixed"]
    assert (fixed["mean"], fixed["std"], fixed["min"], fixed["max"]) == (100, 0, 100, 100)
    for d in TRACES:
        base, count = trace_model(d)
        row = df.set_index("name").loc[d.name]
        assert row["mean"] == pytest.approx(np.mean(base + (count - 1) / 2), rel=1e-12)
        assert (row["min"], row["max"]) == (base.min(), (base + count - 1).max())
        assert math.isnan(row.target_mean)
