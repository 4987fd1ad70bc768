"""Shared fixtures: strict JAX settings, the default design point, random point generators."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from dse.process import use_host_cores

use_host_cores()  # one JAX device per core, as the commands have (before any computation)

import jax  # noqa: E402

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

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

from dse.validation.common import default_point, evaluate_params  # noqa: E402, F401

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parents[1]

# Third-party reference files (DRAMSim3 INIs, LLMServingSim traces and outputs, NeuPIMs
# traces, AttAcc's Ramulator cache, the presets table): not part of the repository. Tests that
# read them are marked ``reference`` and skip, with one line, where the directory is absent.
REFERENCE = Path(os.environ.get("DSE_REFERENCE") or ROOT.parent / "shared" / "reference")
HAVE_REFERENCE = REFERENCE.is_dir()
REFERENCE_MISSING = (
    "third-party reference files not found: set DSE_REFERENCE (default ../shared/reference)"
)


def require_reference() -> Path:
    """The reference directory; skips the calling test (one line) where it is absent."""
    if not HAVE_REFERENCE:
        pytest.skip(REFERENCE_MISSING)
    return REFERENCE


def reference_params(paths, ids=None) -> list:
    """Parametrize values over files found in the reference directory. Where the directory is
    absent: one placeholder that skips, so the parametrized test still shows (as skipped);
    where it is present but holds none of them: one ``None`` value, which fails the test."""
    paths = list(paths)
    if not HAVE_REFERENCE:
        return [pytest.param(None, id="no-reference", marks=pytest.mark.skip(REFERENCE_MISSING))]
    if not paths:
        return [pytest.param(None, id="none-found")]
    ids = list(ids) if ids is not None else [str(p) for p in paths]
    return [pytest.param(p, id=i) for p, i in zip(paths, ids, strict=True)]


def pytest_collection_modifyitems(config, items):
    """Skip the ``reference``-marked tests where the reference directory is absent."""
    if HAVE_REFERENCE:
        return
    skip = pytest.mark.skip(reason=REFERENCE_MISSING)
    for item in items:
        if item.get_closest_marker("reference"):
            item.add_marker(skip)


def pytest_sessionfinish(session, exitstatus):
    """The controller (not an xdist worker) removes the run's compilation cache."""
    if not hasattr(session.config, "workerinput"):
        shutil.rmtree(CACHE_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def base_point():
    return default_point()


def slow_dse(chunk_s: float = 0.05, table_s: float = 0.0) -> str:
    """Code for ``python -c`` that runs ``python -m dse`` with each chunk write slowed by
    ``chunk_s`` and each row group of the final table by ``table_s`` (a slow disk), so that
    a test's signal reliably lands in the phase it waits for, on a fast machine too."""
    return f"""
import runpy, time
import pyarrow.parquet as pq
from dse.results import RunStore
write = RunStore.write_chunk
def slow(self, *args):
    time.sleep({chunk_s})
    return write(self, *args)
RunStore.write_chunk = slow
table = pq.ParquetWriter.write_table
def slow_table(self, *args, **kw):
    time.sleep({table_s})
    return table(self, *args, **kw)
pq.ParquetWriter.write_table = slow_table
runpy.run_module("dse", run_name="__main__", alter_sys=True)
"""
