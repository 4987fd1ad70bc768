"""The study runner (``python -m dse.studies``): its command line, the registry against the
scripts in ``sweeps/``, and the curated outputs in ``results/<study>/`` against closed forms
and the shipped reference data; one study end to end (slow target)."""

from __future__ import annotations

import ast

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dse import studies
from dse.serving.csvout import read_requests_csv
from dse.studies import ROOT, STUDIES, SWEEPS, markdown_table, resolve
from dse.workload.lengths import STATS, LengthDist
from tests.conftest import REFERENCE

RESULTS = ROOT / "results"
LSIM_OUTPUTS = REFERENCE / "llmservingsim" / "example_outputs"


def _committed(name: str) -> pd.DataFrame:
    path = RESULTS / name / f"{name}.csv"
    assert path.exists(), f"{path} is missing: run python -m dse.studies {name}"
    return pd.read_csv(path)


# --- command line ------------------------------------------------------------------------


def test_list_names_every_study(capsys):
    assert studies.main(["--list"]) == 0
    out = capsys.readouterr().out
    for name, s in STUDIES.items():
        assert name in out
        assert s.runtime in out


def test_unknown_name_is_one_line_exit_2(capsys):
    assert studies.main(["kv_capacity", "no_such_study"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dse: error:") and "\n" not in err
    assert "no_such_study" in err
    assert all(name in err for name in STUDIES)


def test_bad_option_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        studies.main(["--no-such-option"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dse: error:") and "\n" not in err


def test_unwritable_out_is_one_line_exit_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert studies.main(["kv_capacity", "--out", str(blocker)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dse: error:") and "--out" in err and "\n" not in err


@given(st.lists(st.sampled_from([*STUDIES, "all"]), max_size=12))
def test_resolve_keeps_registry_order_once_each(names):
    got = [s.name for s in resolve(names)]
    want = list(STUDIES) if "all" in names else [n for n in STUDIES if n in names]
    assert got == want


# --- registry against the scripts ----------------------------------------------------------


def test_every_script_is_a_registered_study():
    assert {p.stem for p in SWEEPS.glob("*.py")} == set(STUDIES)


@pytest.mark.parametrize("name", list(STUDIES))
def test_study_script_documents_its_command(name):
    s = STUDIES[name]
    assert s.script.exists() and s.notes.exists()
    doc = s.docstring()
    assert doc.startswith("Question: ") and s.question().endswith(("?", "."))
    assert f"python sweeps/{name}.py" in doc
    tree = ast.parse(s.script.read_text())
    mains = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
    assert len(mains) == 1
    main = mains[0]
    assert ast.unparse(main.returns) == "pd.DataFrame"  # the key numbers, written as the CSV
    assert len(main.args.args) == 1 and main.args.defaults  # main(out=<the sweeps/ PNG>)
    assert ast.get_docstring(main)


# --- the pipe-table writer -----------------------------------------------------------------


@given(
    st.lists(
        st.tuples(
            st.integers(-(10**6), 10**6),
            st.floats(allow_nan=True, allow_infinity=False, width=32),
            st.text("ab|c ", max_size=5),
        ),
        max_size=30,
    ),
    st.integers(1, 40),
)
def test_markdown_table_shape(rows, limit):
    df = pd.DataFrame(rows, columns=["n", "x", "s"])
    lines = markdown_table(df, limit).split("\n")
    shown = min(len(df), limit)
    assert lines[1] == "|---|---|---|"
    for line in lines[: 2 + shown]:  # an escaped | in a cell is not a column separator
        assert line.replace("\\|", "").count("|") == 4
    assert len(lines) == 2 + shown + (2 if len(df) > limit else 0)


# --- curated results: closed forms and shipped reference data --------------------------------


@pytest.mark.parametrize("name", list(STUDIES))
def test_curated_results_are_small_and_complete(name):
    out = RESULTS / name
    for suffix in (".png", ".csv", ".md", ".txt"):
        assert (out / f"{name}{suffix}").exists(), f"{name}{suffix}"
    assert (out / f"{name}.png").stat().st_size <= 320_000
    assert (out / f"{name}.csv").stat().st_size <= 100_000
    md = (out / f"{name}.md").read_text()
    assert STUDIES[name].command in md and "## Key numbers" in md
    assert len(_committed(name)) > 0


def test_kv_capacity_results_closed_form():
    df = _committed("kv_capacity")
    tokens = 2**34 // (16 * 1024)  # 16 GiB stack, 16 KiB of KV per token (one head per layer)
    for lengths, g in df.groupby("workload.lengths"):
        g = g.set_index("policy.kv_alloc")
        longest = STATS[LengthDist[lengths]].max
        assert g.loc["static", "max_batch"] == tokens // longest  # every seed reserves the max
        assert g.loc["dynamic", "max_batch"] >= g.loc["static", "max_batch"]
        mean = STATS[LengthDist[lengths]].mean
        assert g.loc["dynamic", "max_batch"] <= tokens / mean * 1.02  # FCFS under capacity
    assert df["capacity_util"].between(0, 1).all()


@pytest.mark.reference
def test_llmservingsim_results_quote_the_shipped_outputs():
    df = _committed("llmservingsim_pim")
    files = {
        "GPU-only": "example_single_run.csv",
        "offload": "example_pim_run.csv",
        "offload+SBI": "example_pim_sub_batch_run.csv",
    }
    for _, r in df.iterrows():
        theirs = read_requests_csv(LSIM_OUTPUTS / files[r["config"]])
        for col in ("TPOT", "TTFT", "latency"):
            assert r[f"{col}_theirs"] == pytest.approx(theirs[col].mean() / 1e6, rel=1e-5)
            assert r[f"{col}_diff"] == pytest.approx(
                r[f"{col}_ours"] / r[f"{col}_theirs"] - 1, rel=1e-4, abs=1e-5
            )


def test_sbi_crossover_results_batch_one_unchanged():
    df = _committed("sbi_crossover")
    one = df[df["batch"] == 1]
    assert len(one) == df["line"].nunique()
    np.testing.assert_allclose(one["tok_ratio_sbi1_over_sbi0"], 1.0, rtol=1e-5)
    # the throughput ratio is the inverse ratio of the steady-state periods
    np.testing.assert_allclose(
        df["tok_ratio_sbi1_over_sbi0"], df["period_ms_sbi0"] / df["period_ms_sbi1"], rtol=1e-4
    )


def test_neupims_results_dual_rb_never_slower_than_naive():
    # dual row buffers: cheaper programs (NewtonSim's dual mode) and balanced placement, the
    # same schedule otherwise, so never slower than naive (blocked, round-robin requests)
    df = _committed("neupims_comparison")
    assert (df["dual_rb"] >= df["naive"] * (1 - 1e-9)).all()
    np.testing.assert_allclose(df["sbi_over_naive"], df["sbi"] / df["naive"], rtol=1e-4)


def test_pim_kernel_policies_results_never_slower_than_static():
    df = _committed("pim_kernel_policies")
    assert (df["speedup_pingpong"] >= 1 - 1e-9).all()
    assert (df["speedup_dynamic"] >= 1 - 1e-9).all()
    for p in ("static", "pingpong", "dynamic"):
        assert df[f"mac_util_{p}"].between(0, 1).all()


def test_pim_attention_partitioning_results_utilization_bounds():
    df = _committed("pim_attention_partitioning")
    util = df.filter(like="chan_util_mean_")
    assert util.shape[1] == 3 and ((util > 0) & (util <= 1 + 1e-9)).all().all()
    one = df[(df["lengths"] == "fixed") & (df["workload.batch"] == 1)]
    # one request, 8 KV heads: head-first uses 8 of the 32 channels
    np.testing.assert_allclose(one["chan_util_mean_hfp_rr"], 8 / 32, rtol=1e-5)


# --- end to end (slow) -----------------------------------------------------------------------


@pytest.mark.slow
def test_fastest_study_reproduces_its_committed_numbers(tmp_path):
    """kv_capacity (about a minute on 2 cores) into tmp_path: the CSV equals the committed one
    to 1e-5 relative (both written with 6 significant digits; the run is deterministic)."""
    name = "kv_capacity"
    committed = _committed(name)
    wall = studies.run_study(STUDIES[name], tmp_path)
    assert wall > 0
    got = pd.read_csv(tmp_path / name / f"{name}.csv")
    pd.testing.assert_frame_equal(got, committed, check_exact=False, rtol=1e-5)
    md = (tmp_path / name / f"{name}.md").read_text()
    assert "1,048,576" in md  # the findings of sweeps/kv_capacity.md travel with the numbers
