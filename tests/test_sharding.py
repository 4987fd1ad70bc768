"""Sharding the design-point axis over local devices (dse.explore): every metric and status of
a sharded evaluation is bitwise that of one device — in fresh processes with 2 and with 1
forced host devices, and in this process over many generated inputs — and each structure
still compiles once per mesh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dse.cli import _compose, build
from dse.errors import ConfigError
from dse.explore import evaluate, evaluate_points, point_mesh, trace_count
from dse.process import FLAG

ROOT = Path(__file__).resolve().parents[1]

# One process: evaluate the same random points with each `devices` value given, each twice
# (a second chunk of the same shape must reuse the executable), and save every output.
WORKER = r"""
import json, sys
import numpy as np
import dse, jax
from dse.cli import _compose, build
from dse.explore import evaluate_points, trace_count

model, n, seed, out, *devices = sys.argv[1:]
n, seed = int(n), int(seed)
rng = np.random.default_rng(seed)
if model == "pim_gemv":
    overrides = ["space=single"]
    swept = {
        "hw.pim.banks": rng.integers(1, 65, n),
        "hw.pim.lanes": rng.integers(1, 33, n),
        "hw.pim.tCCD_mac": rng.integers(1, 9, n),
        "hw.pim.tRCD_mac": rng.integers(10, 100, n),
        "hw.pim.tRP": rng.integers(8, 60, n),
        "hw.pim.row_bytes": 32 * rng.integers(1, 129, n),
        "hw.pim.gbuf_bytes": rng.integers(16, 8193, n),
        "hw.pim.tCK_ns": rng.uniform(0.25, 2.0, n),
        "workload.K": rng.integers(1, 20001, n),
        "policy.io": rng.integers(0, 2, n),
    }
elif model == "pim_kernel":
    overrides = ["space=single", "model=pim_kernel", "policy.sched=dynamic"]
    swept = {
        "workload.kind": rng.integers(1, 3, n),
        "workload.L": rng.integers(16, 16385, n),
        "workload.d": rng.choice([64, 128, 256], n),
        "workload.g": rng.choice([1, 4, 8], n),
        "policy.row_reuse": rng.integers(0, 2, n),
        "hw.pim.obuf_entries": rng.choice([1, 2, 8, 32], n),
        "hw.pim.dual_port": rng.integers(0, 2, n),
        "hw.pim.tCCD_mac": rng.integers(1, 9, n),
    }
else:
    overrides = ["space=single", "model=system", "pim=hbm2_neupims", "workload=llama3_8b_step"]
    swept = {
        "workload.seed": rng.integers(0, 1 << 40, n),
        "policy.sbi": rng.integers(0, 2, n),
        "policy.dual_rb": rng.integers(0, 2, n),
        "hw.pim.tCCD_mac": rng.integers(1, 9, n),
        "hw.pim.tRCD_mac": rng.integers(10, 41, n),
    }
cfg, prov = _compose(overrides)
_, base, _ = build(cfg, prov)
arrays = {}
for d in devices:
    for _ in range(2):
        res, _, _ = evaluate_points(base, swept, model, int(d))
    arrays.update({f"{d}/{k}": v for k, v in res.items()})
np.savez(out, **arrays)
print(json.dumps({"devices": jax.local_device_count(), "traces": trace_count(model)}))
"""


def _env(host_devices: int) -> dict[str, str]:
    env = dict(os.environ)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith(FLAG)]
    if host_devices > 1:
        env["XLA_FLAGS"] = " ".join([*flags, f"{FLAG}={host_devices}"])
        env.pop("DSE_HOST_DEVICES", None)
    else:  # through dse.process's own override
        env["XLA_FLAGS"] = " ".join(flags)
        env["DSE_HOST_DEVICES"] = str(host_devices)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _compare(model: str, n: int, seed: int, tmp_path: Path) -> None:
    """Two processes side by side: 2 host devices (sharded, then one device), 1 host device."""
    runs = {
        "two": (2, ["2", "1"]),
        "one": (1, ["0"]),
    }
    procs = {}
    for name, (host, devices) in runs.items():
        cmd = [sys.executable, "-c", WORKER, model, str(n), str(seed), str(tmp_path / name)]
        procs[name] = subprocess.Popen(
            [*cmd, *devices],
            env=_env(host),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    info = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-2000:]
        info[name] = json.loads(out.strip().splitlines()[-1])
    assert info["two"] == {"devices": 2, "traces": 2}  # one per mesh, each called twice
    assert info["one"] == {"devices": 1, "traces": 1}
    two = np.load(tmp_path / "two.npz")
    one = np.load(tmp_path / "one.npz")
    metrics = sorted(k.split("/", 1)[1] for k in one.files)
    assert "status" in metrics and len(metrics) > 3
    for m in metrics:
        ref = one[f"0/{m}"]
        assert ref.shape == (n,)
        for d in ("2", "1"):
            got = two[f"{d}/{m}"]
            assert got.dtype == ref.dtype, m
            # bitwise: the same bytes (NaNs included), not merely close values
            assert got.tobytes() == ref.tobytes(), (m, d)
    status = one["0/status"]
    assert (status == 0).any()


def test_gemv_sharded_is_bitwise_unsharded(tmp_path):
    # an odd count: the sharded call pads to a multiple of the devices and drops the pad
    _compare("pim_gemv", 301, 7, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["pim_kernel", "system"])
def test_blocked_models_sharded_are_bitwise_unsharded(model, tmp_path):
    # blocked models (lax.map over cost-sorted blocks) run under shard_map: each device sorts
    # and maps its own share, so blocks hold other neighbours than on one device
    _compare(model, 301, 11, tmp_path)


needs_two = pytest.mark.skipif(jax.local_device_count() < 2, reason="needs 2 local devices")


def _gemv_base():
    cfg, prov = _compose(["space=single"])
    return build(cfg, prov)[1]


@needs_two
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.sampled_from([1, 257]))
def test_sharded_points_equal_one_device(seed, n):
    rng = np.random.default_rng(seed)
    swept = {
        "hw.pim.banks": rng.integers(1, 65, n),
        "hw.pim.lanes": rng.integers(1, 33, n),
        "hw.pim.tRP": rng.integers(1, 80, n),
        "hw.pim.gbuf_bytes": rng.integers(1, 8193, n),
        "hw.pim.tCK_ns": rng.uniform(0.1, 3.0, n),
        "workload.M": rng.integers(1, 50001, n),
    }
    base = _gemv_base()
    one, _, _ = evaluate_points(base, swept, devices=1)
    two, _, _ = evaluate_points(base, swept, devices=2)
    assert one.keys() == two.keys()
    for k in one:
        assert one[k].shape == (n,)
        assert one[k].dtype == two[k].dtype and one[k].tobytes() == two[k].tobytes(), k


@needs_two
def test_chunked_run_sharded_equals_one_device():
    # 3 x 5 x 48 = 720 points in chunks of 256: the last chunk padded, frames identical
    cfg, prov = _compose(
        [
            "space=single",
            "+space.axes.hw.pim.banks=[4,16,32]",
            "+space.axes.hw.pim.lanes=[1,2,4,8,16]",
            "+space.axes.hw.pim.tRCD_mac={range:[10,57]}",
        ]
    )
    _, _, space = build(cfg, prov)
    frames = {}
    for d in (1, 2):
        before = trace_count()
        chunks = list(evaluate(space, "pim_gemv", 256, devices=d))
        assert [c.index for c in chunks] == [0, 1, 2]
        assert trace_count() - before <= 1  # one executable per mesh for every chunk
        frames[d] = pd.concat([c.frame for c in chunks], ignore_index=True)
    assert len(frames[1]) == 720
    pd.testing.assert_frame_equal(frames[1], frames[2], check_exact=True)


def test_point_mesh():
    n = jax.local_device_count()
    assert point_mesh(1) is None
    for asked in (0, n, n + 5):  # all of them, at most those present
        mesh = point_mesh(asked)
        assert (mesh.size if mesh is not None else 1) == n
        if mesh is not None:
            assert mesh.axis_names == ("points",)
    for bad in (-1, "2", 1.5, True):
        with pytest.raises(ConfigError, match="devices"):
            point_mesh(bad)
        with pytest.raises(ConfigError, match="devices"):
            next(evaluate(None, devices=bad))  # before any chunk is built
