"""The trace cache (dse.trace_cache): a later process loads the traced program instead of
tracing it, with the same results; a damaged file or a changed key costs a trace, never a
result; ``DSE_TRACE_CACHE=0`` turns it off."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT

RUN = r"""
import json, sys
import dse
from dse import trace_cache
from dse.explore import enable_compilation_cache
enable_compilation_cache()  # $DSE_CACHE_DIR, as every command does
df = dse.explore(["space=single", *json.loads(sys.argv[1])])
df.to_pickle(sys.argv[2])
print(json.dumps(trace_cache.STATS))
"""


def _run(tmp_path, overrides, out, **env):
    e = {**os.environ, "DSE_CACHE_DIR": str(tmp_path / "cache"), **env}
    e.pop("XLA_FLAGS", None)
    r = subprocess.run(
        [sys.executable, "-c", RUN, json.dumps(overrides), str(tmp_path / out)],
        cwd=ROOT,
        env=e,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1]), pd.read_pickle(tmp_path / out)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    for col in a.columns:
        if pd.api.types.is_numeric_dtype(a[col]):
            np.testing.assert_array_equal(a[col].to_numpy(), b[col].to_numpy(), err_msg=col)


@pytest.mark.parametrize(
    "model", ["pim_gemv", pytest.param("pim_attention", marks=pytest.mark.slow)]
)
def test_a_second_process_loads_the_trace_and_gets_the_same_results(tmp_path, model):
    overrides = [f"model={model}"]
    first, a = _run(tmp_path, overrides, "a.pkl")
    assert first["saved"] >= 1 and first["loaded"] == 0
    files = sorted((tmp_path / "cache" / "traces").glob("*.jaxexport"))
    assert len(files) == first["saved"]
    second, b = _run(tmp_path, overrides, "b.pkl")
    assert second == {"saved": 0, "loaded": first["saved"]}
    _same(a, b)

    # a damaged program is traced again (and replaced), with the same results
    for f in files:
        f.write_bytes(b"not a program")
    third, c = _run(tmp_path, overrides, "c.pkl")
    assert third == {"saved": first["saved"], "loaded": 0}
    _same(a, c)

    # another structure (an axis swept) is another key
    fourth, _ = _run(tmp_path, [*overrides, "+space.axes.hw.pim.banks=[8,16]"], "d.pkl")
    assert fourth["saved"] >= 1


def test_switched_off_nothing_is_written(tmp_path):
    stats, _ = _run(tmp_path, [], "a.pkl", DSE_TRACE_CACHE="0")
    assert stats == {"saved": 0, "loaded": 0}
    assert not (tmp_path / "cache" / "traces").exists()
