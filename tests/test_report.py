"""python -m dse.report: figures and report.md of real runs, checked against pandas and brute
force; bad input exits 2 with one line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dse import cli
from dse.report import analysis as an
from dse.report import tradeoff_plot
from dse.report.cli import main
from dse.report.load import load_run

NO_LOGGING = ("hydra/job_logging=disabled", "hydra/hydra_logging=disabled")
PNG = b"\x89PNG\r\n\x1a\n"
GEMV_AXES = (
    "space=single",
    "+space.axes.hw.pim.banks=[4,8,16,32]",
    "+space.axes.hw.pim.lanes=[4,16]",
    "+space.axes.hw.pim.row_bytes=[1024,2048]",
    "+space.axes.hw.pim.gbuf_bytes=[16,2048]",  # 16 B holds no 32 B column: infeasible
    "+space.axes.policy.io=[serial,overlap]",
    "progress=false",
    *NO_LOGGING,
)


# --- helpers ---------------------------------------------------------------------------
def _report(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(args)
    except SystemExit as exc:  # argparse errors
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def _tables(text: str) -> dict[str, pd.DataFrame]:
    """Each markdown table of ``text`` under the nearest heading above it (text cells)."""
    found: dict[str, pd.DataFrame] = {}
    heading, rows = "", []
    for line in [*text.splitlines(), ""]:
        if line.startswith("#"):
            heading = line.lstrip("#").strip().strip("`")
        if line.startswith("|"):
            rows.append([c.strip().strip("`") for c in line.strip().strip("|").split(" | ")])
        elif rows:
            found.setdefault(heading, pd.DataFrame(rows[2:], columns=rows[0]))
            rows = []
    return found


def _num(cells) -> np.ndarray:
    return np.array([np.nan if c == "–" else float(c.replace(",", "")) for c in cells])


def _feasible(df: pd.DataFrame) -> pd.Series:
    return df["feasible"].astype(bool) & (df["status"] == "ok")


def _brute_front(values: np.ndarray, minimize: list[bool]) -> np.ndarray:
    """Rows no other row dominates, by the definition (O(n²)); NaN rows never on it."""
    v = np.where(np.asarray(minimize)[None, :], values, -values)
    ok = ~np.isnan(v).any(axis=1)
    mask = np.zeros(len(v), dtype=bool)
    for i in np.flatnonzero(ok):
        others = v[ok]
        dom = (others <= v[i]).all(axis=1) & (others < v[i]).any(axis=1)
        mask[i] = not dom.any()
    return mask


def _union_area(pts: np.ndarray, ref: np.ndarray) -> float:
    """Area of the union of the boxes [x, ref_x] × [y, ref_y] (minimization), strip by strip
    between the distinct x values."""
    xs = np.unique(np.r_[pts[:, 0], ref[0]])
    area = 0.0
    for lo, hi in zip(xs[:-1], xs[1:], strict=True):
        ys = pts[pts[:, 0] <= lo, 1]
        if ys.size:
            area += (hi - lo) * max(0.0, ref[1] - ys.min())
    return area


# --- runs ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gemv_run(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("gemv")
    cli.main([*GEMV_AXES, f"output.dir={d}/run", f"hydra.run.dir={d}/hydra"])
    return d / "run"


@pytest.fixture(scope="module")
def gemv_report(gemv_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gemv_report")
    assert main([str(gemv_run), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def multirun(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("multi")
    cli.main(
        [
            "-m",
            "pim=aim_gddr6,hbm3_attacc",
            "space=single",
            "+space.axes.hw.pim.banks=[8,16]",
            "+space.axes.policy.io=[serial,overlap]",
            f"hydra.sweep.dir={d}/sweep",
            "output.plot=false",
            "progress=false",
            *NO_LOGGING,
        ]
    )
    return d / "sweep"


# --- pim_gemv run ----------------------------------------------------------------------
def test_merged_shards_are_deduplicated_by_point(gemv_run, tmp_path):
    df = pd.read_parquet(gemv_run / "points.parquet")
    half = len(df) // 2
    for name, part in (("shard-a", df.iloc[: half + 5]), ("shard-b", df.iloc[half:])):
        (tmp_path / "merged" / name).mkdir(parents=True)
        part.to_parquet(tmp_path / "merged" / name / "points.parquet")
    run = load_run(tmp_path / "merged")
    assert sorted(run.table["point_id"]) == sorted(df["point_id"])
    assert main([str(tmp_path / "merged"), "-o", "time_ns:min"]) == 0
    assert (tmp_path / "merged" / "report" / "report.md").is_file()


def test_figures_exist_and_report_embeds_each(gemv_run, gemv_report):
    expected = {
        "pareto_total_mm2.png",
        "pareto_pim_logic_mm2.png",
        "pareto_peak_internal_GBps.png",
        "time_breakdown.png",
        "ablation.png",
        "status.png",
        "tradeoff.png",
    }
    pngs = {p.name for p in gemv_report.glob("*.png")}
    assert pngs == expected  # no timeline, busy, energy or context figure for a GEMV run
    for name in pngs:
        assert (gemv_report / name).read_bytes()[:8] == PNG
    text = (gemv_report / "report.md").read_text()
    for name in pngs:
        assert re.search(rf"!\[[^\]]+\]\({re.escape(name)}\)", text), name
    assert not list(gemv_report.glob(".*tmp*")), "atomic writes leave no temporary files"
    facts = _tables(text)["Run"].set_index("fact")["value"]
    table = pd.read_parquet(gemv_run / "points.parquet")
    assert facts["model"] == "pim_gemv"
    assert facts["design points"] == f"{len(table):,}"
    assert facts["feasible points"].startswith(f"{int(_feasible(table).sum()):,} ")


def test_pareto_table_is_the_brute_force_front(gemv_run, gemv_report):
    df = pd.read_parquet(gemv_run / "points.parquet")
    feas = df[_feasible(df)]
    cols = ["time_ns", "peak_internal_GBps"]
    mask = _brute_front(feas[cols].to_numpy(float), [True, True])
    want = feas[mask]
    text = (gemv_report / "report.md").read_text()
    heading = "time_ns (min), peak_internal_GBps (min)"
    got = _tables(text)[heading]
    assert sorted(got["point_id"].astype(np.uint64)) == sorted(want["point_id"])
    by_id = want.set_index("point_id")
    for c in cols:
        exp = by_id.loc[got["point_id"].astype(np.uint64), c].to_numpy(float)
        np.testing.assert_allclose(_num(got[c]), exp, rtol=1e-5)
    csv = pd.read_csv(gemv_report / "pareto_peak_internal_GBps.csv")
    assert sorted(csv["point_id"].astype(np.uint64)) == sorted(want["point_id"])
    # reference point: each objective's worst feasible value plus 10% of its range
    v = feas[cols].to_numpy(float)
    ref = v.max(axis=0) + 0.1 * (v.max(axis=0) - v.min(axis=0))
    para = text[text.index(f"### {heading}") :].split("\n\n")[1]
    hv = float(re.search(r"hypervolume ([0-9.e+]+)", para).group(1))
    refs = [float(x) for x in re.findall(r"= ([0-9.e+]+)", para)]
    np.testing.assert_allclose(refs, ref, rtol=1e-5)
    np.testing.assert_allclose(hv, _union_area(want[cols].to_numpy(float), ref), rtol=1e-5)


def test_ablation_tables_equal_a_pandas_groupby(gemv_run, gemv_report):
    df = pd.read_parquet(gemv_run / "points.parquet")
    ok = _feasible(df)
    tables = _tables((gemv_report / "report.md").read_text())
    cols = ["policy.io", "hw.pim.banks", "hw.pim.lanes", "hw.pim.row_bytes", "hw.pim.gbuf_bytes"]
    for col in cols:
        got = tables[col].set_index(col)
        key = df[col].astype(str)
        feas = df[ok]
        exp = pd.DataFrame(
            {
                "points": key.value_counts(),
                "feasible": feas.groupby(key[ok]).size(),
                "best": feas.groupby(key[ok])["time_ns"].min(),
                "geomean": feas.groupby(key[ok])["time_ns"].agg(lambda s: np.exp(np.log(s).mean())),
            }
        ).reindex(got.index)
        np.testing.assert_array_equal(_num(got["points"]), exp["points"].to_numpy(float))
        np.testing.assert_array_equal(_num(got["feasible"]), exp["feasible"].fillna(0))
        for c in ("best", "geomean"):
            np.testing.assert_allclose(_num(got[c]), exp[c].to_numpy(float), rtol=1e-5)
    assert np.isnan(
        _num(tables["hw.pim.gbuf_bytes"].set_index("hw.pim.gbuf_bytes").loc[["16"], "best"])
    ).all()


def test_status_table_and_terminal_summary(gemv_run, gemv_report, capsys):
    df = pd.read_parquet(gemv_run / "points.parquet")
    status = _tables((gemv_report / "report.md").read_text())["Status"].set_index("status")
    assert status["points"].astype(int).to_dict() == df["status"].value_counts().to_dict()
    code, out, err = _report([str(gemv_run), "--out", str(gemv_report), "--top", "3"], capsys)
    assert code == 0 and not err
    assert "best 3 by time_ns" in out and "gbuf_too_small" in out and "time_ns by policy.io" in out


def test_area_front_uses_the_closed_form_area(gemv_run, gemv_report):
    """total_mm2 of every front row: channels × (DRAM array + MAC lanes + buffers) from the
    run's config and each point's parameters (DESIGN: dse.search.area's formula)."""
    import json

    from dse.search.area import AreaParams

    c, t = json.loads((gemv_run / "summary.json").read_text())["config"]["hw"]["pim"], AreaParams()
    front = pd.read_csv(gemv_report / "pareto_total_mm2.csv")
    banks, lanes = front["hw.pim.banks"], front["hw.pim.lanes"]
    dram = banks * c["rows"] * front["hw.pim.row_bytes"] * 8 * t.cell_um2_per_bit
    dram = dram / t.array_efficiency * 1e-6
    buffers = (front["hw.pim.gbuf_bytes"] + banks * c["obuf_entries"] * c["out_bytes"]) * (
        t.buffer_mm2_per_byte
    )
    want = c["channels"] * (dram + banks * lanes * t.mac_lane_mm2 + buffers)
    np.testing.assert_allclose(front["total_mm2"], want, rtol=1e-12)
    df = pd.read_parquet(gemv_run / "points.parquet")
    df = df[_feasible(df)]
    dram = df["hw.pim.banks"] * c["rows"] * df["hw.pim.row_bytes"] * 8 * t.cell_um2_per_bit
    area = c["channels"] * (
        dram / t.array_efficiency * 1e-6
        + df["hw.pim.banks"] * df["hw.pim.lanes"] * t.mac_lane_mm2
        + (df["hw.pim.gbuf_bytes"] + df["hw.pim.banks"] * c["obuf_entries"] * c["out_bytes"])
        * t.buffer_mm2_per_byte
    )
    mask = _brute_front(np.column_stack([df["time_ns"], area]), [True, True])
    assert sorted(front["point_id"].astype(np.uint64)) == sorted(df[mask]["point_id"])


def test_objectives_option_gives_its_own_front(gemv_run, tmp_path):
    out = tmp_path / "rep"
    assert main([str(gemv_run), "--out", str(out), "-o", "time_ns:min", "mac_util:max"]) == 0
    df = pd.read_parquet(gemv_run / "points.parquet")
    feas = df[_feasible(df)]
    mask = _brute_front(feas[["time_ns", "mac_util"]].to_numpy(float), [True, False])
    got = _tables((out / "report.md").read_text())["time_ns (min), mac_util (max)"]
    assert sorted(got["point_id"].astype(np.uint64)) == sorted(feas[mask]["point_id"])
    assert (out / "pareto_mac_util.png").read_bytes()[:8] == PNG


# --- multirun --------------------------------------------------------------------------
def test_multirun_jobs_are_labelled_by_their_overrides(multirun):
    frames = []
    for d in sorted(p for p in multirun.iterdir() if p.name.isdigit()):
        frames.append(pd.read_parquet(d / "points.parquet").assign(job=int(d.name)))
    df = pd.concat(frames, ignore_index=True)
    run = load_run(multirun)
    assert len(run.table) == len(df) and set(run.table["job"]) == {0, 1}
    assert run.table["point_id"].tolist() == df["point_id"].tolist()
    labels = run.table.groupby("job")["overrides"].first().to_dict()
    assert labels == {0: "pim=aim_gddr6", 1: "pim=hbm3_attacc"}
    assert (run.table.groupby("job")["pim"].first() == ["aim_gddr6", "hbm3_attacc"]).all()


def test_multirun_report_compares_the_jobs(multirun, tmp_path):
    out = tmp_path / "rep"
    assert main([str(multirun), "--out", str(out)]) == 0
    df = load_run(multirun).table
    text = (out / "report.md").read_text()
    got = _tables(text)["overrides"].set_index("overrides")
    best = df[_feasible(df)].groupby("pim")["time_ns"].min()
    for label, value in best.items():
        np.testing.assert_allclose(_num(got.loc[[f"pim={label}"], "best"]), [value], rtol=1e-5)
    facts = _tables(text)["Run"].set_index("fact")["value"]
    assert facts["jobs"].startswith("2 ")
    assert (out / "pareto_total_mm2.png").read_bytes()[:8] == PNG


# --- bad input -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["{tmp}/nothing"],
        ["{tmp}"],  # a directory without a table
        ["{run}", "-o", "no_such_metric:min"],
        ["{run}", "-o", "time_ns"],
        ["{run}", "-o", "status:min"],
        ["{run}", "--top", "0"],
        ["{run}", "--no-such-flag"],
        ["{tmp}/table.txt"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, gemv_run, tmp_path, capsys):
    (tmp_path / "table.txt").write_text("not a table\n")
    argv = [a.format(tmp=tmp_path, run=gemv_run) for a in args]
    code, out, err = _report(argv, capsys)
    assert code == 2
    assert err.startswith("dse: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_bad_input_from_the_command_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "dse.report", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("dse: error: ") and proc.stderr.count("\n") == 1


# --- properties of the tables -----------------------------------------------------------
@settings(max_examples=30)
@given(
    values=hnp.arrays(
        np.float64,
        st.integers(1, 40),
        elements=st.one_of(st.floats(0.5, 1e3), st.just(np.nan)),
    ),
    data=st.data(),
)
def test_ablation_equals_groupby_on_random_tables(values, data):
    n = len(values)
    keys = data.draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n))
    feasible = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    minimize = data.draw(st.booleans())
    df = pd.DataFrame({"policy.x": keys, "m": values, "feasible": feasible})
    got = an.ablation(df, "policy.x", an.Objective("m", minimize))
    for key in set(keys):
        rows = df[(df["policy.x"] == key)]
        ok = rows[rows["feasible"]]
        assert got.loc[key, "points"] == len(rows)
        assert got.loc[key, "feasible"] == len(ok)
        finite = ok["m"].dropna()
        if len(finite):
            best = finite.min() if minimize else finite.max()
            assert got.loc[key, "best"] == best
            assert np.isclose(got.loc[key, "geomean"], np.exp(np.log(finite).mean()))
        else:
            assert np.isnan(got.loc[key, "best"]) and np.isnan(got.loc[key, "geomean"])


@given(
    values=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 30), st.just(2)),
        elements=st.one_of(st.integers(0, 6).map(float), st.just(np.nan)),
    ),
    minimize=st.lists(st.booleans(), min_size=2, max_size=2),
)
def test_front_and_hypervolume_match_brute_force(values, minimize):
    df = pd.DataFrame({"a": values[:, 0], "b": values[:, 1], "feasible": True})
    fr = an.front(df, {"a": "min" if minimize[0] else "max", "b": "min" if minimize[1] else "max"})
    want = _brute_front(values, minimize)
    assert sorted(fr.rows.index) == list(np.flatnonzero(want))
    if want.any():
        sign = np.where(minimize, 1.0, -1.0)
        ref = np.array([fr.reference["a"], fr.reference["b"]]) * sign
        pts = values[want] * sign
        assert np.isclose(fr.hypervolume, _union_area(pts, ref))


def test_tradeoff_plot_draws_a_text_axis(tmp_path):
    df = pd.DataFrame(
        {
            "policy.system": ["gpu", "gpu_pim", "npu_pim", "pim_only"] * 2,
            "tokens_per_s": [3.0, 2.0, 2.5, 0.5, 3.1, 2.1, 2.4, 0.6],
            "feasible": True,
        }
    )
    path = tradeoff_plot(df, "policy.system", "tokens_per_s", "", tmp_path / "t.png")
    assert path.read_bytes()[:8] == PNG


# --- a serving-step run (compiles the system model: slow) -------------------------------
@pytest.mark.slow
def test_system_run_report(tmp_path):
    cli.main(
        [
            "model=system",
            "workload=llama3_8b_step",
            "space=single",
            "workload.lengths=fixed",
            "+space.axes.workload.L=[512,2048,8192]",
            "+space.axes.policy.system=[gpu,gpu_pim,npu_pim,pim_only]",
            f"output.dir={tmp_path}/run",
            f"hydra.run.dir={tmp_path}/hydra",
            "output.timeline=false",  # the report draws it
            "progress=false",
            *NO_LOGGING,
        ]
    )
    out = tmp_path / "rep"
    assert main([str(tmp_path / "run"), "--out", str(out)]) == 0
    pngs = {p.name for p in out.glob("*.png")}
    for name in (
        "busy.png",
        "energy_breakdown.png",
        "ablation.png",
        "context_scaling.png",
        "timeline.png",
        "pareto_J_per_token.png",
    ):
        assert name in pngs and (out / name).read_bytes()[:8] == PNG
    text = (out / "report.md").read_text()
    for name in pngs:
        assert f"]({name})" in text
    df = pd.read_parquet(tmp_path / "run" / "points.parquet")
    feas = df[_feasible(df)]
    tables = _tables(text)
    got = tables["policy.system"].set_index("policy.system")
    best = feas.groupby("policy.system")["tokens_per_s"].max()
    np.testing.assert_allclose(_num(got.loc[best.index, "best"]), best.to_numpy(), rtol=1e-5)
    ctx = tables["Context scaling: best tokens_per_s by workload.L"].set_index("workload.L")
    pivot = feas.pivot_table("tokens_per_s", "workload.L", "policy.system", aggfunc="max")
    for kind in pivot.columns:
        np.testing.assert_allclose(
            _num(ctx[kind]), pivot.loc[_num(ctx.index).astype(int), kind].to_numpy(), rtol=1e-5
        )
    mask = _brute_front(feas[["tokens_per_s", "J_per_token"]].to_numpy(float), [False, True])
    front = tables["tokens_per_s (max), J_per_token (min)"]
    assert sorted(front["point_id"].astype(np.uint64)) == sorted(feas[mask]["point_id"])
