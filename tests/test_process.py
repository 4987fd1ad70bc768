"""``import dse`` changes nothing process-wide; the computations choose their own precision.

Each check runs in a fresh interpreter: this test process has x64 switched on for the whole
run (conftest), which is exactly what a program embedding the package must not need.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import dse
from tests.conftest import ROOT


def _python(code: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_ENABLE_X64")}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


IMPORT_EVERYTHING = r"""
import importlib, json, os, pkgutil
import jax
from jax._src import xla_bridge

before = {k: repr(v) for k, v in jax.config.values.items()}
flags = os.environ.get("XLA_FLAGS")
import dse
modules = [m.name for m in pkgutil.walk_packages(dse.__path__, "dse.")
           if not m.name.endswith("__main__")]
for name in modules:
    importlib.import_module(name)
after = {k: repr(v) for k, v in jax.config.values.items()}
print(json.dumps({
    "modules": len(modules),
    "changed": {k: [before.get(k), after.get(k)] for k in set(before) | set(after)
                if before.get(k) != after.get(k)},
    "xla_flags": [flags, os.environ.get("XLA_FLAGS")],
    "backend_started": xla_bridge.backends_are_initialized(),
}))
"""


def test_importing_every_module_leaves_jax_configuration_and_xla_flags_unchanged():
    r = _python(IMPORT_EVERYTHING)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["modules"] > 50
    assert got["changed"] == {}, f"import dse changed JAX's configuration: {got['changed']}"
    assert got["xla_flags"] == [None, None]
    # no computation at import either: the device count is still the program's to choose
    assert got["backend_started"] is False


# One point of each model through the Python API, in a process that never switches x64 on:
# the results equal this (x64) process's, bit for bit, and the process's setting is intact.
MODELS = {
    "pim_gemv": [],
    "system": ["model=system"],
    "pim_kernel": ["model=pim_kernel"],
    "pim_attention": ["model=pim_attention"],
}
SLOW = {"system", "pim_kernel", "pim_attention"}  # a compile each: the slow target

API_RUN = r"""
import json
import jax
import dse
from dse.explore import enable_compilation_cache
enable_compilation_cache()  # this test run's cache ($DSE_CACHE_DIR): the program traced above
df = dse.explore(["space=single", *json.loads({args!r})])
df.to_pickle({out!r})
print(json.dumps({{"x64_after": bool(jax.config.jax_enable_x64)}}))
"""


@pytest.mark.parametrize(
    "model", [pytest.param(m, marks=[pytest.mark.slow] if m in SLOW else []) for m in MODELS]
)
def test_the_api_computes_in_64_bits_without_changing_the_process(model, tmp_path):
    overrides = MODELS[model]
    ours = dse.explore(["space=single", *overrides])
    out = str(tmp_path / "rows.pkl")
    r = _python(API_RUN.format(args=json.dumps(overrides), out=out))
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["x64_after"] is False
    theirs = pd.read_pickle(out)
    assert len(theirs) == len(ours) == 1
    for col in ours.columns:
        if pd.api.types.is_numeric_dtype(ours[col]) and col in theirs:
            a, b = ours[col].to_numpy(float), theirs[col].to_numpy(float)
            np.testing.assert_array_equal(a, b, err_msg=f"{model}: {col}")


def test_use_host_cores_after_the_backend_started_says_so():
    code = (
        "import logging, jax, jax.numpy as jnp\n"
        "logging.basicConfig(level=logging.WARNING)\n"
        "jnp.zeros(1).block_until_ready()\n"
        "import dse\n"
        "dse.use_host_cores(4)\n"
        "print(len(jax.devices()))\n"
    )
    r = _python(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1"
    assert "already started with 1 device(s)" in r.stderr


def test_use_host_cores_before_the_first_computation_gives_one_device_per_core():
    code = "import dse, jax\ndse.use_host_cores(3)\nprint(len(jax.devices()))\n"
    r = _python(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "3"
