"""Spaces: axis specs, samplers, constraints, static grouping, chunk independence, casting."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import qmc

from dse.errors import ConfigError
from dse.space import Space, build_space, parse_axes


def _all(space, combo=0):
    return space.raw_chunk(combo, 0, space.points_per_combo)


def test_grid_is_cartesian_product(base_point):
    sp = build_space(
        {
            "axes": {
                "hw": {
                    "pim": {
                        "banks": [8, 16],
                        "lanes": {"range": [4, 6]},
                        "tRP": {"linspace": [10, 30, 3]},
                    }
                },
                "policy": {"io": ["serial", "overlap"]},
            }
        },
        base_point,
    )
    assert sp.num_points == 2 * 3 * 3 * 2
    pts = _all(sp)
    combos = set(zip(*[pts[k].tolist() for k in sp.swept_paths], strict=True))
    assert len(combos) == 36
    assert set(pts["policy.io"].tolist()) == {0, 1}
    assert pts["hw.pim.banks"].dtype == np.int64 and pts["hw.pim.tRP"].dtype == np.int64
    assert sorted(set(pts["hw.pim.tRP"].tolist())) == [10, 20, 30]


def test_axis_kinds_cast_to_leaf_dtype(base_point):
    axes = {
        a.path: a
        for a in parse_axes(
            {
                "hw": {
                    "pim": {
                        "tCK_ns": {"geomspace": [0.5, 2.0, 3]},
                        "gbuf_bytes": {"logspace": [8, 12, 5], "base": 2},
                        "row_bytes": {"range": [512, 2048, 512]},
                    }
                }
            }
        )
    }
    np.testing.assert_allclose(axes["hw.pim.tCK_ns"].values, [0.5, 1.0, 2.0])
    assert axes["hw.pim.gbuf_bytes"].values.tolist() == [256, 512, 1024, 2048, 4096]
    assert axes["hw.pim.gbuf_bytes"].values.dtype == np.int64
    assert axes["hw.pim.row_bytes"].values.tolist() == [512, 1024, 1536, 2048]


@pytest.mark.parametrize("sampler", ["random", "sobol", "lhs"])
def test_samplers_stay_in_bounds_and_are_seeded(base_point, sampler):
    cfg = {
        "sampler": sampler,
        "n": 512,
        "seed": 3,
        "axes": {
            "hw": {
                "pim": {
                    "tRP": {"range": [10, 20]},
                    "tCK_ns": {"range": [0.5, 1.5]},
                    "gbuf_bytes": {"geomspace": [256, 8192, 6]},
                    "banks": [8, 16, 32],
                }
            }
        },
    }
    a = _all(build_space(cfg, base_point))
    b = _all(build_space(cfg, base_point))
    c = _all(build_space({**cfg, "seed": 4}, base_point))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["hw.pim.tCK_ns"], c["hw.pim.tCK_ns"])
    assert a["hw.pim.tRP"].min() >= 10 and a["hw.pim.tRP"].max() <= 20
    assert set(np.unique(a["hw.pim.tRP"])) == set(range(10, 21))  # inclusive integer range
    assert 0.5 <= a["hw.pim.tCK_ns"].min() and a["hw.pim.tCK_ns"].max() <= 1.5
    assert 256 <= a["hw.pim.gbuf_bytes"].min() and a["hw.pim.gbuf_bytes"].max() <= 8192
    assert set(a["hw.pim.banks"].tolist()) == {8, 16, 32}


def test_sobol_matches_scipy(base_point):
    sp = build_space(
        {
            "sampler": "sobol",
            "n": 256,
            "seed": 11,
            "axes": {"hw": {"pim": {"tCK_ns": {"range": [0.0001, 1.0001]}}}},
        },
        base_point,
    )
    got = _all(sp)["hw.pim.tCK_ns"] - 0.0001
    seed = np.random.default_rng(np.random.SeedSequence([11, 0]))
    ref = qmc.Sobol(1, scramble=True, seed=seed).random(256)[:, 0]
    np.testing.assert_allclose(got, ref, atol=1e-12)
    assert qmc.discrepancy(got[:, None]) < 1e-3  # low discrepancy, unlike random


@given(st.sampled_from(["grid", "random", "sobol", "lhs"]), st.integers(1, 700))
def test_chunks_do_not_depend_on_chunking(sampler, size):
    from tests.conftest import default_point

    sp = build_space(
        {
            "sampler": sampler,
            "n": 700,
            "seed": 5,
            "axes": {
                "hw": {
                    "pim": {
                        "tRP": {"range": [1, 40]},
                        "banks": list(range(1, 36)),
                        "tCK_ns": {"linspace": [0.5, 1.0, 20]},
                    }
                }
            },
        },
        default_point(),
    )
    whole = _all(sp)
    n = sp.points_per_combo
    parts = [sp.raw_chunk(0, s, min(s + size, n)) for s in range(0, n, size)]
    for k in whole:
        np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), whole[k])


def test_constraints_filter_points(base_point):
    sp = build_space(
        {
            "axes": {"hw": {"pim": {"banks": [4, 8, 16, 32], "lanes": [4, 8, 16]}}},
            "constraints": [
                "hw.pim.banks * hw.pim.lanes <= 128",
                "hw.pim.tRP == 14 or hw.pim.banks > 0",
            ],
        },
        base_point,
    )
    pts = _all(sp)
    mask = sp.accept(pts, sp.combos[0])
    kept = {
        (b, l) for b, l, m in zip(pts["hw.pim.banks"], pts["hw.pim.lanes"], mask, strict=True) if m
    }
    assert kept == {(b, l) for b in (4, 8, 16, 32) for l in (4, 8, 16) if b * l <= 128}


def test_static_axes_group_outside(base_point):
    sp = build_space(
        {
            "sampler": "random",
            "n": 10,
            "axes": {
                "workload": {"dtype": ["fp16", "int8", "fp16"]},
                "hw": {"pim": {"banks": {"range": [1, 64]}}},
            },
        },
        base_point,
    )
    assert sp.combos == [{"workload.dtype": "fp16"}, {"workload.dtype": "int8"}]
    assert sp.num_points == 20 and sp.swept_paths == ("hw.pim.banks",)


def test_single_point_space(base_point):
    sp = build_space({}, base_point)
    assert sp.num_points == 1 and sp.raw_chunk(0, 0, 1) == {}


@pytest.mark.parametrize(
    "axes,fragment",
    [
        ({"hw": {"pim": {"bankz": [1]}}}, "did you mean hw.pim.banks"),
        ({"hw": {"pim": {"banks": []}}}, "non-empty"),
        ({"hw": {"pim": {"banks": [1.5]}}}, "integer"),
        ({"hw": {"pim": {"tRP": {"range": [5, 1]}}}}, "low <= high"),
        ({"policy": {"io": {"range": [0, 1]}}}, "list of values"),
    ],
)
def test_bad_axes_name_the_key(base_point, axes, fragment):
    with pytest.raises(ConfigError) as err:
        build_space({"axes": axes}, base_point)
    assert "space.axes." in str(err.value) and fragment in str(err.value)


def test_grid_rejects_continuous_range(base_point):
    with pytest.raises(ConfigError, match="grid"):
        Space(base_point, parse_axes({"hw": {"pim": {"tCK_ns": {"range": [0.5, 1.0]}}}}))
