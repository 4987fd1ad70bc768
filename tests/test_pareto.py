"""dse.search.pareto against brute force: an O(n²) dominance check for the fronts, exact
unit-cell counting and Monte Carlo for the hypervolume, closed forms for small cases."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dse.errors import ConfigError
from dse.search.pareto import hypervolume, pareto_front, pareto_mask, plot_front


def brute_mask(values: np.ndarray, minimize) -> np.ndarray:
    """O(n²) definition: row i is on the front iff it has no NaN and no NaN-free row j is
    <= it everywhere and < it somewhere (after negating maximized columns)."""
    v = np.asarray(values, float)
    v = np.where(np.asarray(minimize, bool)[None, :], v, -v)
    ok = ~np.isnan(v).any(axis=1)
    out = np.zeros(len(v), bool)
    for i in np.flatnonzero(ok):
        others = v[ok]
        dominated = ((others <= v[i]).all(axis=1) & (others < v[i]).any(axis=1)).any()
        out[i] = not dominated
    return out


def random_matrix(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """Values with many ties and exact duplicates (small integer grids), some continuous
    columns, a sprinkle of NaN rows/cells and of ±inf."""
    if rng.random() < 0.6:
        v = rng.integers(0, int(rng.integers(2, 6)), size=(n, k)).astype(float)
    else:
        v = rng.normal(size=(n, k))
    if n and rng.random() < 0.5:  # exact duplicates of existing rows
        dup = rng.integers(0, n, size=max(1, n // 4))
        v[rng.integers(0, n, size=dup.size)] = v[dup]
    if n and rng.random() < 0.5:
        v[rng.random((n, k)) < 0.08] = np.nan
    if n and rng.random() < 0.2:
        v[rng.random((n, k)) < 0.05] = rng.choice([np.inf, -np.inf])
    return v


def test_pareto_mask_matches_brute_force_on_random_inputs():
    rng = np.random.default_rng(20240611)
    checked = 0
    for _ in range(600):
        k = int(rng.choice([1, 2, 2, 3, 3, 4]))
        n = int(rng.integers(0, 70))
        v = random_matrix(rng, n, k)
        minimize = rng.random(k) < 0.5
        got = pareto_mask(v, minimize)
        np.testing.assert_array_equal(got, brute_mask(v, minimize), err_msg=f"{v!r} {minimize}")
        checked += n
    assert checked > 10_000


@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(0, 40), st.sampled_from([2, 3])),
        elements=st.one_of(st.integers(-3, 3).map(float), st.just(np.nan)),
    ),
    st.data(),
)
def test_pareto_mask_hypothesis(values, data):
    minimize = data.draw(
        st.lists(st.booleans(), min_size=values.shape[1], max_size=values.shape[1])
    )
    np.testing.assert_array_equal(pareto_mask(values, minimize), brute_mask(values, minimize))


def test_pareto_mask_small_cases_by_hand():
    v = np.array([[1, 5], [2, 2], [2, 2], [3, 1], [3, 3], [np.nan, 0], [1, 6], [4, 1]])
    # (2,2) twice kept; (3,3) dominated by (2,2); (1,6) by (1,5); (4,1) by (3,1); NaN never
    np.testing.assert_array_equal(pareto_mask(v, [True, True]), [1, 1, 1, 1, 0, 0, 0, 0])
    # maximize both: (4,1) and (1,6) and (3,3) survive, (2,2) is dominated by (3,3)
    np.testing.assert_array_equal(pareto_mask(v, [False, False]), [0, 0, 0, 0, 1, 0, 1, 1])
    assert not pareto_mask(np.full((3, 2), np.nan), [True, True]).any()
    assert pareto_mask(np.zeros((0, 3)), [True] * 3).shape == (0,)
    with pytest.raises(ValueError, match="minimize flags"):
        pareto_mask(v, [True])


def _check_front_property(v: np.ndarray, mask: np.ndarray, minimize) -> None:
    """Independent check for sizes brute force cannot handle: front rows are mutually
    non-dominated, and every other row is dominated by some front row."""
    s = np.where(np.asarray(minimize)[None, :], v, -v)
    ok = ~np.isnan(s).any(axis=1)
    assert not mask[~ok].any()
    s, mask = s[ok], mask[ok]
    f = s[mask]
    le = (f[None, :, :] <= f[:, None, :]).all(axis=2)
    lt = (f[None, :, :] < f[:, None, :]).any(axis=2)
    assert not (le & lt).any()
    rest = s[~mask]
    for lo in range(0, len(rest), 20_000):
        r = rest[lo : lo + 20_000]
        dom = ((f[None, :, :] <= r[:, None, :]).all(axis=2)) & (
            (f[None, :, :] < r[:, None, :]).any(axis=2)
        )
        assert dom.any(axis=1).all()


def test_pareto_mask_million_points_2d_is_fast_and_correct():
    rng = np.random.default_rng(7)
    v = rng.random((1_000_000, 2))
    v[::1000] = np.round(v[::1000], 2)  # some ties
    t0 = time.perf_counter()
    mask = pareto_mask(v, [True, False])
    elapsed = time.perf_counter() - t0
    assert elapsed < 5.0, elapsed  # O(n log n): ~0.3 s on one core
    _check_front_property(v, mask, np.array([True, False]))


def test_pareto_mask_3d_larger_input():
    rng = np.random.default_rng(11)
    v = rng.random((30_000, 3))
    minimize = np.array([True, False, True])
    mask = pareto_mask(v, minimize)
    _check_front_property(v, mask, minimize)
    sub = rng.choice(len(v), 400, replace=False)  # brute force on a subsample
    np.testing.assert_array_equal(pareto_mask(v[sub], minimize), brute_mask(v[sub], minimize))
    # many ties and duplicates on a large front (integer points near the plane
    # x + y + z = 40), NaN rows, at a size that takes the pivot pre-pass
    xy = rng.integers(0, 20, size=(8_000, 2))
    g = np.c_[xy, 40 - xy.sum(axis=1) + rng.integers(0, 3, 8_000)].astype(float)
    g[rng.random(8_000) < 0.05, 1] = np.nan
    mask = pareto_mask(g, [True, True, True])
    assert mask.sum() > 500
    _check_front_property(g, mask, np.array([True, True, True]))
    # a front of every row (the plane x + y + z = 1) and a 4-D Gaussian cloud
    plane = rng.random((5_000, 3))
    plane[:, 2] = 1.0 - plane[:, 0] - plane[:, 1]
    assert pareto_mask(plane, [True, True, True]).all()
    cloud = rng.normal(size=(8_000, 4))
    _check_front_property(cloud, pareto_mask(cloud, [False] * 4), np.array([False] * 4))


# --- hypervolume -----------------------------------------------------------------------


def test_hypervolume_single_point_is_product_of_differences():
    p = np.array([[1.0, 10.0, 0.5]])
    ref = np.array([4.0, 2.0, 3.0])
    minimize = [True, False, True]
    assert hypervolume(p, ref, minimize) == pytest.approx((4 - 1) * (10 - 2) * (3 - 0.5), 1e-12)
    assert hypervolume(p[:, :2], ref[:2], minimize[:2]) == pytest.approx(24.0, 1e-12)
    assert hypervolume(p[:, :1], ref[:1], minimize[:1]) == pytest.approx(3.0, 1e-12)


def test_hypervolume_two_points_2d_by_hand():
    # minimize both, ref (4, 4): rectangles 3x1 and 2x3 overlap in 2x1 -> 3 + 6 - 2 = 7
    p = np.array([[1.0, 3.0], [2.0, 1.0]])
    assert hypervolume(p, np.array([4.0, 4.0]), [True, True]) == pytest.approx(7.0, 1e-12)
    # the same points with a maximized second objective mirrored: y -> -y, ref -4
    q = p * np.array([1.0, -1.0])
    assert hypervolume(q, np.array([4.0, -4.0]), [True, False]) == pytest.approx(7.0, 1e-12)
    # points not strictly better than ref in every objective add nothing; nor do
    # dominated points, duplicates and NaN rows
    extra = np.array([[0.0, 4.0], [5.0, 0.0], [3.0, 3.0], [1.0, 3.0], [np.nan, 0.0]])
    assert hypervolume(np.r_[p, extra], np.array([4.0, 4.0]), [True, True]) == pytest.approx(
        7.0, 1e-12
    )
    assert hypervolume(np.zeros((0, 2)), np.array([1.0, 1.0]), [True, True]) == 0.0


def _grid_hypervolume(points: np.ndarray, ref: np.ndarray) -> int:
    """Exact brute force for integer points (minimization): count the unit cells
    [c, c+1) with integer lower corner c < ref that some point is <= (all coordinates)."""
    axes = [np.arange(int(points[:, j].min()), int(ref[j])) for j in range(points.shape[1])]
    cells = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, points.shape[1])
    inside = points[(points < ref).all(axis=1)]
    dominated = np.zeros(len(cells), bool)
    for p in inside:
        dominated |= (p <= cells).all(axis=1)
    return int(dominated.sum())


@pytest.mark.parametrize("k,n,grid", [(3, 40, 12), (3, 150, 16), (4, 25, 8), (5, 10, 5)])
def test_hypervolume_matches_exact_cell_count_on_integer_fronts(k, n, grid):
    rng = np.random.default_rng(1000 * k + n)
    for _ in range(5):
        pts = rng.integers(0, grid, size=(n, k)).astype(float)
        ref = rng.integers(grid // 2, grid + 1, size=k).astype(float)
        want = _grid_hypervolume(pts, ref)
        assert hypervolume(pts, ref, [True] * k) == pytest.approx(want, abs=1e-9)
        # mixed directions: maximize the negated columns, same volume
        flip = rng.random(k) < 0.5
        sign = np.where(flip, -1.0, 1.0)
        assert hypervolume(pts * sign, ref * sign, ~flip) == pytest.approx(want, abs=1e-9)


def test_hypervolume_monte_carlo_random_3d_fronts():
    """Continuous random 3-D fronts (points near the unit sphere's negative octant) against
    a seeded Monte-Carlo estimate with 250,000 uniform samples of the box [min, ref].
    Tolerance: 5 standard errors of the estimate, 5 * sqrt(p(1-p)/N) * box volume (at most
    0.5% of the box volume)."""
    rng = np.random.default_rng(3)
    n_samples = 250_000
    for n in (5, 60, 150):
        d = np.abs(rng.normal(size=(n, 3)))
        pts = 1.0 - d / np.linalg.norm(d, axis=1, keepdims=True) * rng.uniform(0.8, 1.0, (n, 1))
        ref = np.array([1.1, 1.05, 1.2])
        lo = pts.min(axis=0)
        vol = float(np.prod(ref - lo))
        x = lo + rng.random((n_samples, 3)) * (ref - lo)
        hit = np.zeros(n_samples, bool)
        for p in pts:
            hit |= (p <= x).all(axis=1)
        frac = hit.mean()
        est = vol * frac
        tol = 5 * vol * np.sqrt(frac * (1 - frac) / n_samples)
        got = hypervolume(pts, ref, [True, True, True])
        assert abs(got - est) <= tol, (n, got, est, tol)


def test_hypervolume_3d_slab_reduces_to_2d():
    rng = np.random.default_rng(5)
    p2 = rng.random((50, 2))
    ref2 = np.array([1.0, 1.0])
    p3 = np.c_[p2, np.full(50, 0.25)]
    hv2 = hypervolume(p2, ref2, [True, True])
    assert hypervolume(p3, np.r_[ref2, 2.0], [True] * 3) == pytest.approx(hv2 * 1.75, 1e-12)
    # permutation invariance and dominated points add nothing
    p4 = np.r_[p3, p3 + 0.01][rng.permutation(100)]
    assert hypervolume(p4, np.r_[ref2, 2.0], [True] * 3) == pytest.approx(hv2 * 1.75, 1e-12)


# --- tables --------------------------------------------------------------------------


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "point_id": np.arange(8),
            "time_ns": [5.0, 3.0, 3.0, 8.0, 1.0, 2.0, np.nan, 4.0],
            "tokens_per_J": [10.0, 8.0, 8.0, 20.0, 100.0, 7.0, 50.0, 8.0],
            "status_code": [0, 0, 0, 0, 8, 0, 0, 0],
            "status": pd.Categorical(
                ["ok", "ok", "ok", "ok", "capacity_exceeded", "ok", "ok", "ok"]
            ),
            "name": list("abcdefgh"),
        }
    )


def test_pareto_front_excludes_infeasible_and_sorts(table):
    front = pareto_front(table, {"time_ns": "min", "tokens_per_J": "max"})
    # by hand: row 4 (1 ns, 100) would dominate every row but is infeasible; row 6 has a
    # NaN time; rows 1 and 2 are the duplicate (3, 8), both kept; row 7 (4, 8) is
    # dominated by (3, 8); (2, 7), (5, 10) and (8, 20) are each best somewhere
    by_hand = [5, 1, 2, 0, 3]
    assert front["point_id"].tolist() == by_hand
    assert front["time_ns"].is_monotonic_increasing
    # a numeric status column behaves the same
    t2 = table.drop(columns=["status_code"]).assign(status=table["status_code"])
    assert (
        pareto_front(t2, {"time_ns": "min", "tokens_per_J": "max"})["point_id"].tolist() == by_hand
    )
    # without any status column row 4 wins alone (1 ns, 100 tokens/J)
    t3 = table.drop(columns=["status", "status_code"])
    assert pareto_front(t3, {"time_ns": "min", "tokens_per_J": "max"})["point_id"].tolist() == [4]


def test_pareto_front_parquet_roundtrip(table, tmp_path):
    path = tmp_path / "points.parquet"
    table.to_parquet(path)
    back = pd.read_parquet(path)
    a = pareto_front(table, {"tokens_per_J": "max", "time_ns": "min"})
    b = pareto_front(back, {"tokens_per_J": "max", "time_ns": "min"})
    assert a["point_id"].tolist() == b["point_id"].tolist() == [5, 1, 2, 0, 3]
    assert a["tokens_per_J"].is_monotonic_increasing


def test_pareto_front_unknown_column_names_available(table):
    with pytest.raises(ConfigError) as err:
        pareto_front(table, {"time_ns": "min", "tokens_per_j": "max"})
    assert err.value.key == "tokens_per_j"
    assert "tokens_per_J" in str(err.value) and "status_code" in str(err.value)
    with pytest.raises(ConfigError, match="'min' or 'max'"):
        pareto_front(table, {"time_ns": "minimize"})
    with pytest.raises(ConfigError, match="numeric"):
        pareto_front(table, {"name": "min"})
    with pytest.raises(ConfigError):
        pareto_front(table, {})


def test_plot_front_writes_png(table, tmp_path):
    import matplotlib.image as mpimg

    front = pareto_front(table, {"time_ns": "min", "tokens_per_J": "max"})
    out = plot_front(table, "time_ns", "tokens_per_J", front, tmp_path / "front.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(out)
    assert img.shape[0] > 100 and img.shape[1] > 100
    mask = table["point_id"].isin(front["point_id"]).to_numpy()
    out2 = plot_front(table, "time_ns", "tokens_per_J", mask, tmp_path / "mask.png")
    assert out2.stat().st_size > 1000
    with pytest.raises(ConfigError):
        plot_front(table, "time", "tokens_per_J", front, tmp_path / "bad.png")


# ------------------------------------------------------------------------------------------
# python -m dse.search.pareto
# ------------------------------------------------------------------------------------------


def _run_table(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """A results table with integer objectives (exact brute-force hypervolume), a few
    infeasible rows and parameter columns."""
    return pd.DataFrame(
        {
            "point_id": np.arange(n, dtype=np.uint64),
            "hw.pim.lanes": rng.integers(1, 33, n),
            "time_ns": rng.integers(1, 40, n).astype(float),
            "tokens_per_s": rng.integers(1, 40, n).astype(float),
            "feasible": rng.random(n) > 0.1,
            "status": "ok",
        }
    )


def test_pareto_command_front_and_hypervolume_against_brute_force(tmp_path):
    """On random integer tables: pareto.csv holds exactly the brute-force front of the
    feasible rows; pareto.json's hypervolume to --ref equals the exact unit-cell count."""
    import json

    from dse.search.pareto import main

    rng = np.random.default_rng(7)
    for trial in range(6):
        df = _run_table(rng, 200)
        run = tmp_path / f"run{trial}"
        run.mkdir()
        df.to_parquet(run / "points.parquet")
        argv = [str(run), "-o", "time_ns:min", "-o", "tokens_per_s:max", "--ref", "45", "0"]
        assert main(argv) == 0
        front = pd.read_csv(run / "pareto.csv")
        feas = df[df["feasible"]]
        v = feas[["time_ns", "tokens_per_s"]].to_numpy()
        want = set(feas["point_id"][brute_mask(v, [True, False])].tolist())
        assert set(front["point_id"].tolist()) == want
        # tokens_per_s maximized: negate it into a minimization with ref -0
        pts = np.column_stack([v[:, 0], -v[:, 1]])
        summary = json.loads((run / "pareto.json").read_text())
        assert summary["hypervolume"] == _grid_hypervolume(pts, np.array([45.0, 0.0]))
        assert summary["front_points"] == len(want)
        assert summary["feasible_rows"] == int(df["feasible"].sum())
        assert (run / "pareto.png").stat().st_size > 0


def test_pareto_command_defaults_multirun_and_bad_input(tmp_path, capsys):
    """A multirun directory (numbered jobs) is read whole; the objectives default to the
    run's objective and total_mm2; bad input is one line and exit 2."""
    import json

    from dse.search.pareto import REF_MARGIN, main

    rng = np.random.default_rng(3)
    frames = []
    for job in range(3):
        d = tmp_path / "multi" / str(job)
        d.mkdir(parents=True)
        df = _run_table(rng, 50).assign(total_mm2=rng.integers(1, 30, 50).astype(float))
        df.to_parquet(d / "points.parquet")
        (d / "summary.json").write_text(
            json.dumps({"objective": {"metric": "time_ns", "minimize": True}})
        )
        frames.append(df)
    assert main([str(tmp_path / "multi"), "--out", str(tmp_path / "o")]) == 0
    summary = json.loads((tmp_path / "o" / "pareto.json").read_text())
    assert summary["objectives"] == {"time_ns": "min", "total_mm2": "min"}
    allrows = pd.concat(frames)
    feas = allrows[allrows["feasible"]]
    assert summary["rows"] == 150 and summary["feasible_rows"] == len(feas)
    worst = feas[["time_ns", "total_mm2"]].max()
    span = worst - feas[["time_ns", "total_mm2"]].min()
    got = summary["reference_point"]
    assert got["time_ns"] == pytest.approx(worst["time_ns"] + REF_MARGIN * span["time_ns"])
    front = pd.read_csv(tmp_path / "o" / "pareto.csv")
    assert set(front["job"]) <= {0, 1, 2}
    capsys.readouterr()
    for argv in (
        [str(tmp_path / "missing")],
        [str(tmp_path / "multi"), "-o", "time_ns"],
        [str(tmp_path / "multi"), "-o", "time_ns:min", "-o", "area:min"],
        [str(tmp_path / "multi"), "-o", "time_ns:min", "-o", "total_mm2:min", "--ref", "1"],
        [str(tmp_path / "multi"), "-o", "time_ns:min"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("dse: error: ") and "\n" not in err and "Traceback" not in err


# ------------------------------------------------------------------------------------------
# moocore-backed fronts and hypervolume (dse.pareto) against closed forms
# ------------------------------------------------------------------------------------------

_SPECIAL = [np.inf, -np.inf, np.finfo(np.float64).max, -np.finfo(np.float64).max, np.nan]


@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(0, 60), st.integers(1, 5)),
        elements=st.one_of(
            st.integers(-3, 3).map(float),
            st.floats(-10, 10, allow_nan=False),
            st.sampled_from(_SPECIAL),
        ),
    ),
    st.data(),
)
def test_pareto_mask_any_dimension_and_non_finite_values(values, data):
    """Any k from 1 to 5, ties, ±inf and ±float max (moocore's sentinels) against the O(n²)
    dominance check."""
    k = values.shape[1]
    minimize = data.draw(st.lists(st.booleans(), min_size=k, max_size=k))
    np.testing.assert_array_equal(pareto_mask(values, minimize), brute_mask(values, minimize))


def test_pareto_mask_infinities_in_three_or_more_objectives():
    """moocore 0.3.2 crashes the process on -inf in its 3-D sweep and in its k >= 4 divide
    and conquer: these inputs reach it as ranks."""
    inf = np.inf
    v = np.array(
        [[2, 2, 1], [1, 2, 0], [1, 2, 1], [1, 2, 1], [2, -inf, -inf], [1, 2, 1], [0, 0, -inf]]
        + [[1, -inf, 0], [0, 2, 1], [0, 0, 1], [-inf, 0, 2]]
    )
    np.testing.assert_array_equal(pareto_mask(v, [True] * 3), brute_mask(v, [True] * 3))
    rng = np.random.default_rng(12)
    for k in (3, 4, 5):
        w = rng.integers(0, 5, size=(3_000, k)).astype(float)
        w[rng.random(w.shape) < 0.02] = -np.inf
        w[rng.random(w.shape) < 0.02] = np.inf
        minimize = rng.random(k) < 0.5
        mask = pareto_mask(w, minimize)
        _check_front_property(w, mask, minimize)
        sub = rng.choice(len(w), 300, replace=False)
        np.testing.assert_array_equal(pareto_mask(w[sub], minimize), brute_mask(w[sub], minimize))


def inclusion_exclusion_hypervolume(points: np.ndarray, ref: np.ndarray) -> float:
    """Closed form for a few minimization points: the union of the boxes [p, ref] of the
    points strictly below ref, by inclusion-exclusion over every non-empty subset (the
    intersection of boxes is the box of their coordinate-wise maximum)."""
    import itertools

    pts = points[(points < ref).all(axis=1)]
    total = 0.0
    for size in range(1, len(pts) + 1):
        for subset in itertools.combinations(range(len(pts)), size):
            corner = pts[list(subset)].max(axis=0)
            total += (-1) ** (size + 1) * float(np.prod(ref - corner))
    return total


@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(0, 9), st.integers(1, 4)),
        elements=st.one_of(st.integers(-4, 6).map(float), st.just(np.nan)),
    ),
    st.data(),
)
def test_hypervolume_matches_inclusion_exclusion(values, data):
    """Small integer fronts (ties, duplicates, dominated points, NaN rows, points outside the
    reference point) in 1 to 4 objectives, either direction: the exact integer volume."""
    k = values.shape[1]
    minimize = np.array(data.draw(st.lists(st.booleans(), min_size=k, max_size=k)))
    ref_min = np.array(data.draw(st.lists(st.integers(-2, 7), min_size=k, max_size=k)), float)
    sign = np.where(minimize, 1.0, -1.0)
    as_min = values * sign
    want = inclusion_exclusion_hypervolume(as_min[~np.isnan(as_min).any(axis=1)], ref_min)
    got = hypervolume(values, ref_min * sign, minimize)
    assert got == want  # integers well below 2**53: exact
    # the front alone has the same volume
    assert hypervolume(values[pareto_mask(values, minimize)], ref_min * sign, minimize) == want


def test_hypervolume_unbounded_and_extreme_points():
    big = np.finfo(np.float64).max
    ref = np.array([1.0, 1.0, 1.0])
    # a point infinitely better in one objective: an unbounded box
    assert hypervolume(np.array([[0.0, -np.inf, 0.0]]), ref, [True] * 3) == np.inf
    assert hypervolume(np.array([[0.0, 0.0]]), np.array([np.inf, 1.0]), [True, True]) == np.inf
    # +inf in a minimized objective is outside any finite reference point
    assert hypervolume(np.array([[0.0, np.inf], [0.5, 0.5]]), ref[:2], [True, True]) == 0.25
    # -float max is one of moocore's sentinels: no crash, a volume past the float range
    for k in (2, 3, 4, 5):
        pts = np.zeros((4, k))
        pts[1, 0] = pts[2, k - 1] = -big
        assert hypervolume(pts, np.ones(k), [True] * k) == np.inf
    # a huge but representable volume stays finite
    huge = hypervolume(np.zeros((1, 3)), np.full(3, 1e100), [True] * 3)
    assert huge == pytest.approx(1e300, rel=1e-12)


def test_pareto_home_and_reexports():
    """The fronts live in dse.pareto and the figure in dse.report.plots; the command module
    re-exports them unchanged."""
    import dse.pareto
    import dse.report.plots
    import dse.search.pareto

    for name in ("pareto_mask", "pareto_front", "hypervolume", "default_reference"):
        assert getattr(dse.search.pareto, name) is getattr(dse.pareto, name)
    assert dse.search.pareto.REF_MARGIN == dse.pareto.REF_MARGIN
    assert dse.search.pareto.plot_front is dse.report.plots.plot_front


def test_pareto_command_help(capsys):
    """--help prints the usage (the reference rule's percent sign is escaped for argparse)."""
    from dse.search.pareto import main

    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    assert "10% of its range" in capsys.readouterr().out
