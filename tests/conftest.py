"""Shared fixtures: strict JAX settings, the default design point, random point generators."""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

# One persistent compilation cache for the whole test run, shared by the xdist workers (the
# children of the pytest process): a model compiled by one worker loads in the other. Out of
# the user's home; removed when the run ends (pytest_sessionfinish below).
_RUN = os.getppid() if "PYTEST_XDIST_WORKER" in os.environ else os.getpid()
CACHE_DIR = Path(tempfile.gettempdir()) / f"dse-test-jax-cache-{_RUN}"
os.environ["DSE_CACHE_DIR"] = str(CACHE_DIR)
jax.config.update("jax_compilation_cache_dir", str(CACHE_DIR))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

import absl.logging  # noqa: E402

# absl's handler (optax imports absl) closes the stream it was created with whenever logging
# is reconfigured, as Hydra's job logging does in the in-process CLI tests; under pytest that
# stream is pytest's capture. The real stderr it never closes.
absl.logging.get_absl_handler().python_handler.stream = sys.__stderr__

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DSE_SHARED", ROOT.parent / "shared"))


def pytest_sessionfinish(session, exitstatus):
    """The controller (not an xdist worker) removes the run's compilation cache."""
    if not hasattr(session.config, "workerinput"):
        shutil.rmtree(CACHE_DIR, ignore_errors=True)


@functools.lru_cache(maxsize=1)
def default_point():
    from dse.cli import _compose, build

    cfg, prov = _compose(["space=single"])
    _, base, _ = build(cfg, prov)
    return base


@pytest.fixture(scope="session")
def base_point():
    return default_point()


def random_params(rng: np.random.Generator, n: int, small: bool = False) -> list[dict]:
    """``n`` random, physically sensible design points as dotted-path dicts.

    ``small`` bounds the work so the plain-Python reference walks them quickly.
    """
    out = []
    for _ in range(n):
        col = int(rng.choice([16, 32, 64]))
        dtype = str(rng.choice(["fp16", "bf16", "int8", "fp32"]))
        trfc = int(rng.choice([0, rng.integers(50, 600)]))
        tccd = int(rng.integers(1, 11))
        p = {
            "hw.pim.tCK_ns": float(rng.choice([0.5, 0.625, 0.769, 1.0, 1.25])),
            "hw.pim.data_rate": float(rng.choice([2.0, 2.016, 4.0, 8.0])),
            "hw.pim.bus_width_bits": int(rng.choice([16, 32, 64, 128])),
            "hw.pim.channels": int(rng.integers(1, 65)),
            "hw.pim.banks": int(rng.integers(8 if small else 1, 65)),
            "hw.pim.lanes": int(rng.integers(1, 33)),
            "hw.pim.col_bytes": col,
            "hw.pim.row_bytes": col * int(rng.integers(4 if small else 1, 129)),
            "hw.pim.rows": 1 << 20,
            "hw.pim.gbuf_bytes": int(rng.integers(col, 16385)),
            "hw.pim.out_bytes": int(rng.choice([1, 2, 4])),
            "hw.pim.BL": 4,
            "hw.pim.CL": int(rng.integers(5, 60)),
            "hw.pim.tRCD": int(rng.integers(5, 60)),
            "hw.pim.tCCD_mac": tccd,
            "hw.pim.tRCD_mac": int(rng.integers(tccd, 100)),  # real parts: tRCD >= tCCD
            "hw.pim.tRP": int(rng.integers(1, 60)),
            "hw.pim.tRAS": int(rng.integers(1, 120)),
            "hw.pim.tRTP": int(rng.integers(1, 20)),
            "hw.pim.tWR": int(rng.integers(1, 40)),
            "hw.pim.tCCD_S": int(rng.integers(1, 4)),
            "hw.pim.tCCD_L": int(rng.integers(1, 8)),
            "hw.pim.tRRD_S": int(rng.integers(1, 8)),
            "hw.pim.tRRD_L": int(rng.integers(1, 10)),
            "hw.pim.tFAW": int(rng.integers(10, 50)),
            "hw.pim.tRFC": trfc,
            "hw.pim.tREFI": int(rng.integers(trfc + 200, trfc + 10000)),
            "workload.K": int(rng.integers(1, 2049 if small else 20001)),
            "workload.M": int(rng.integers(1, 2049 if small else 50001)),
            "workload.dtype": dtype,
            "policy.io": int(rng.integers(0, 2)),
        }
        if p["hw.pim.col_bytes"] < {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}[dtype]:
            p["hw.pim.col_bytes"] = 32
        out.append(p)
    return out


def evaluate_params(points: list[dict], model: str = "pim_gemv") -> list[dict]:
    """Evaluate dotted-path dicts with the vectorized model (grouped by static dtype); keys a
    dict leaves out take the default point's value."""
    from dse._pytree import get_path, replace_paths
    from dse.explore import evaluate_points
    from dse.point import field_info

    base = default_point()
    leaves = [p for p, info in field_info().items() if not info.static]
    statics = sorted(p for p, info in field_info().items() if info.static)
    key = lambda p: tuple(p.get(s, get_path(base, s)) for s in statics)  # noqa: E731
    results: list[dict | None] = [None] * len(points)
    for combo in sorted({key(p) for p in points}, key=str):
        idx = [i for i, p in enumerate(points) if key(p) == combo]
        b = replace_paths(base, dict(zip(statics, combo, strict=True)))
        # pad to a power of two (≥ 8) with copies of the last point, so that calls with a
        # few points share one compiled executable per static combination
        size = max(8, 1 << (len(idx) - 1).bit_length())
        rows = idx + [idx[-1]] * (size - len(idx))
        swept = {
            k: np.asarray(
                [points[i].get(k, get_path(base, k)) for i in rows], dtype=field_info()[k].dtype
            )
            for k in leaves
        }
        out, _, _ = evaluate_points(b, swept, model)
        for j, i in enumerate(idx):
            results[i] = {k: v[j].item() for k, v in out.items()}
    return results  # type: ignore[return-value]
