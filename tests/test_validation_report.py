"""The validation report command (dse.validation.report): a quick run of the cheapest model
against an independent recomputation, the table and JSON it writes, bad input, exit status."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dse.reference.pim_gemv import gemv_reference
from dse.validation import report
from dse.validation.report import gemv_params as random_params
from tests.conftest import ROOT, evaluate_params


@pytest.fixture(scope="module")
def quick_gemv(tmp_path_factory):
    out = tmp_path_factory.mktemp("validation") / "validation.md"
    rc = report.main(["--quick", "--only", "pim_gemv", "--out", str(out)])
    return rc, out, json.loads(out.with_suffix(".json").read_text())


def test_quick_gemv_agrees_with_an_independent_recomputation(quick_gemv):
    """The reference row's counts and errors equal those recomputed here with the test
    suite's own generator, evaluator and the reference walk."""
    rc, _, doc = quick_gemv
    assert rc == 0 and doc["passed"] == len(doc["checks"])
    (row,) = [c for c in doc["checks"] if c["ring"] == "reference"]
    n = row["points"]
    assert n == 100  # --quick's stated count
    pts = random_params(np.random.default_rng(2024), n, small=True)
    got = evaluate_params(pts)
    ref = [gemv_reference(p) for p in pts]
    for key in ("cycles", "n_mac", "n_ref", "time_ns", "mac_util"):
        a = np.asarray([g[key] for g in got], float)
        b = np.asarray([r[key] for r in ref], float)
        m = row["details"]["metrics"][key]
        assert m["identical"] == pytest.approx(np.mean(a == b), abs=1e-12), key
        rel = [0.0 if x == y else abs(x - y) / abs(y) for x, y in zip(a, b, strict=True)]
        assert m["max_rel"] == pytest.approx(max(rel), rel=1e-9, abs=1e-300), key
    assert row["details"]["metrics"]["cycles"]["identical"] == 1.0


def test_quick_gemv_properties_are_counted(quick_gemv):
    """Each property row's passes + violations = its points, and it passes exactly when no
    point violates it."""
    _, _, doc = quick_gemv
    props = [c for c in doc["checks"] if c["ring"] == "property"]
    assert len(props) >= 4
    for c in props:
        d = c["details"]
        assert d["passes"] + d["violations"] == c["points"] > 0
        assert c["passed"] == (d["violations"] == 0)
    (overlap,) = [c for c in props if c["check"].startswith("overlapped I/O")]
    assert overlap["points"] == 200  # max(--quick's 100, 200) random points


def test_quick_gemv_markdown_table(quick_gemv):
    """One table row per JSON check, with its points, and the provenance lines."""
    _, out, doc = quick_gemv
    text = out.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == len(doc["checks"])
    for line, c in zip(rows, doc["checks"], strict=True):
        cells = [x.strip() for x in line.strip("|").split("|")]
        assert cells[0] == f"`{c['model']}`"
        assert cells[3] == f"{c['points']:,}"
        assert cells[-1] == "pass"
    assert "python -m dse.validation --quick --only pim_gemv" in text
    assert doc["git"] and doc["date"] in text and doc["versions"]["jax"] in text


def test_unknown_only_is_one_line_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "dse.validation", "--only", "no_such_model"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dse: error: ")
    assert "--only" in lines[0] and "no_such_model" in lines[0] and "pim_gemv" in lines[0]
    assert "Traceback" not in proc.stderr


def test_unwritable_output_is_exit_2_before_running(tmp_path, capsys):
    assert report.main(["--only", "pim_gemv", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dse: error: ") and str(tmp_path) in err[0]


def test_a_failed_bound_exits_1(tmp_path, monkeypatch):
    """A check that misses its bound: FAIL in the table, exit status 1; one that raises is
    a failed row, not a traceback."""

    def missed(n):
        return [report.Result("pim_gemv", "property", "x", n, "1/2 pass", "none", False)]

    def crashes(n):
        raise RuntimeError("boom")

    specs = [
        report.CheckSpec("pim_gemv", "missed", missed, 2, 2, "points"),
        report.CheckSpec("pim_gemv", "crashes", crashes, 1, 1, "points"),
    ]
    monkeypatch.setattr(report, "select", lambda only: specs)
    out = tmp_path / "v.md"
    assert report.main(["--quick", "--out", str(out)]) == 1
    doc = json.loads(out.with_suffix(".json").read_text())
    assert [c["passed"] for c in doc["checks"]] == [False, False]
    assert "RuntimeError: boom" in doc["checks"][1]["agreement"]
    assert out.read_text().count("**FAIL**") == 2


finite = st.floats(-1e12, 1e12, allow_nan=False)


@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=50), st.floats(0, 0.5))
def test_metric_stats_brute_force(pairs, rel):
    """Fractions identical and within tolerance, and the largest relative error, against a
    loop over the pairs."""
    a = [x for x, _ in pairs]
    b = [y for _, y in pairs]
    s = report.metric_stats({"m": a}, {"m": b}, rel=rel)["m"]
    assert s["identical"] == sum(x == y for x, y in pairs) / len(pairs)
    assert s["within"] == sum(abs(x - y) <= rel * abs(y) for x, y in pairs) / len(pairs)
    errs = [0.0 if x == y else abs(x - y) / max(abs(y), 1e-300) for x, y in pairs]
    assert s["max_rel"] == pytest.approx(max(errs), rel=1e-12)
