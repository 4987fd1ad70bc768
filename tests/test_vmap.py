"""Transforms: vmap equals a Python loop; no retrace on a new batch of the same shape; one
trace per static combination."""

from __future__ import annotations

import numpy as np

from dse._pytree import replace_paths
from dse.explore import evaluate, evaluate_points, trace_count
from dse.models import MODELS
from dse.point import field_info
from dse.space import Space, parse_axes
from dse.validation.report import gemv_params as random_params


def _swept(points):
    leaves = [p for p, info in field_info().items() if not info.static and p in points[0]]
    return {k: np.asarray([p[k] for p in points], dtype=field_info()[k].dtype) for k in leaves}


def test_vmap_equals_python_loop(base_point):
    pts = [p for p in random_params(np.random.default_rng(7), 200) if p["workload.dtype"] == "fp16"]
    pts = pts[:40]
    base = replace_paths(base_point, {"workload.dtype": "fp16"})
    batched, _, _ = evaluate_points(base, _swept(pts))
    fn = MODELS["pim_gemv"].fn
    for i, p in enumerate(pts):
        one = fn(
            replace_paths(
                base,
                {
                    k: np.asarray(v, dtype=field_info()[k].dtype)
                    for k, v in p.items()
                    if k != "workload.dtype"
                },
            )
        )
        for key, val in one.items():
            if batched[key].dtype.kind == "f":  # XLA may fuse differently: 1e-12 relative
                np.testing.assert_allclose(
                    np.asarray(val), batched[key][i], rtol=1e-12, err_msg=key
                )
            else:  # integer metrics (cycles, counts, status) are exact
                np.testing.assert_array_equal(np.asarray(val), batched[key][i], err_msg=key)


def test_new_batch_same_shape_does_not_retrace(base_point):
    rng = np.random.default_rng(3)
    a = [p | {"workload.dtype": "bf16"} for p in random_params(rng, 64)]
    b = [p | {"workload.dtype": "bf16"} for p in random_params(rng, 64)]
    base = replace_paths(base_point, {"workload.dtype": "bf16"})
    out_a, _, _ = evaluate_points(base, _swept(a))
    before = trace_count()
    out_b, compile_s, _ = evaluate_points(base, _swept(b))
    assert trace_count() == before
    assert compile_s == 0.0
    assert not np.array_equal(out_a["cycles"], out_b["cycles"])
    # new constants (another preset's values) are arguments too: still no retrace
    other = replace_paths(base, {"hw.pim.tRP": np.int64(99), "hw.pim.tCK_ns": np.float64(1.0)})
    evaluate_points(other, _swept(b))
    assert trace_count() == before


def test_one_trace_per_static_combination(base_point):
    axes = parse_axes(
        {
            "workload": {"dtype": ["fp16", "int8", "fp32"]},
            "hw": {"pim": {"tWR": list(range(1, 1001))}},
        }
    )  # tWR: unique structure
    space = Space(base_point, axes)
    before = trace_count()
    chunks = list(evaluate(space, chunk_size=256))  # 4 chunks per combination
    assert trace_count() - before == 3
    assert len(chunks) == 12
    assert sum(len(c.frame) for c in chunks) == 3000
    assert sum(c.compile_s > 0 for c in chunks) == 3  # only the first chunk of each compiles


def test_padding_does_not_leak(base_point):
    axes = parse_axes({"hw": {"pim": {"banks": list(range(1, 301))}}})
    frames = [c.frame for c in evaluate(Space(base_point, axes), chunk_size=256)]
    assert [len(f) for f in frames] == [256, 44]
    import pandas as pd

    df = pd.concat(frames)
    assert df["hw.pim.banks"].tolist() == list(range(1, 301))
    assert df["point_id"].is_unique
