"""Faces end to end: the CLI into a temporary directory, multirun, the Python API, resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import dse
from dse import cli

ROOT = Path(__file__).resolve().parents[1]


def _run_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob("summary.json"))


def test_default_main_job_end_to_end(tmp_path):
    """`python -m dse` with no arguments: ≥10,000 rows, summary.json and a PNG."""
    proc = subprocess.run(
        [sys.executable, "-m", "dse"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    (run,) = _run_dirs(tmp_path / "results" / "default")
    points = pd.read_parquet(run / "points.parquet")
    summary = json.loads((run / "summary.json").read_text())
    assert len(points) == summary["points"] >= 10_000
    assert (run / "tradeoff.png").stat().st_size > 10_000
    assert summary["feasible_points"] == int(points["feasible"].sum())
    assert summary["compile_s"] > 0 and summary["points_per_s"] > 0
    for key in ("versions", "device", "git_revision", "config", "evaluation_s"):
        assert key in summary
    assert points["point_id"].is_unique
    assert {"hw.pim.banks", "policy.io", "cycles", "time_ns", "status", "feasible"} <= set(points)
    assert "best 8 by time_ns" in proc.stdout and "dominant bottleneck" in proc.stdout
    assert not list(run.glob(".dse/chunks/*")), "chunk files are removed when finished"


def test_multirun_over_presets(tmp_path):
    cli.main(
        [
            "-m",
            "pim=aim_gddr6,hbm3_attacc",
            "space=single",
            f"hydra.sweep.dir={tmp_path}/multi",
            "progress=false",
        ]
    )
    runs = _run_dirs(tmp_path / "multi")
    assert len(runs) == 2
    names = {pd.read_parquet(r / "points.parquet")["pim"].iloc[0] for r in runs}
    assert names == {"aim_gddr6", "hbm3_attacc"}


def test_study_from_sweeps_with_csv(tmp_path):
    cli.main(
        [
            "-cd",
            str(ROOT / "sweeps"),
            "-cn",
            "pim_gemv_presets",
            "output.csv=true",
            f"hydra.run.dir={tmp_path}/run",
        ]
    )
    (run,) = _run_dirs(tmp_path)
    pq_ = pd.read_parquet(run / "points.parquet")
    csv = pd.read_csv(run / "points.csv")
    assert len(pq_) == len(csv) == 8
    assert (csv["cycles"].to_numpy() == pq_["cycles"].to_numpy()).all()


def test_python_api_matches_cli(tmp_path):
    overrides = [
        "space.axes.hw.pim.banks=[8,16]",
        "space.axes.hw.pim.lanes=[16]",
        "space.axes.hw.pim.tCCD_mac=[2]",
        "space.axes.hw.pim.row_bytes=[2048]",
        "space.axes.hw.pim.gbuf_bytes=[2048]",
        "space.axes.hw.pim.tRCD_mac=[56]",
        "space.axes.policy.io=[overlap]",
    ]
    df = dse.explore(overrides)
    assert len(df) == 2
    written = dse.explore(overrides, output_dir=tmp_path / "api")
    pd.testing.assert_frame_equal(
        df[["point_id", "cycles"]], written[["point_id", "cycles"]], check_dtype=False
    )
    assert (tmp_path / "api" / "summary.json").exists()
    # one point from a preset: AiM, 16 banks, the Llama-3.1-8B up projection
    one = dse.explore(["space=single"])
    assert len(one) == 1 and one["feasible"].all()


def test_resume_skips_completed_chunks(tmp_path, monkeypatch):
    """A run killed after two chunks resumes from the third and gives the same table."""
    args = [
        "space=timing_sobol",
        "space.n=4096",
        "chunk_size=512",
        "output.plot=false",
        "study=resume_test",
    ]
    ref = dse.explore(args, output_dir=tmp_path / "reference")

    real = cli.evaluate

    def killed_after_two(*a, **k):
        for i, chunk in enumerate(real(*a, **k)):
            if i == 2:
                raise KeyboardInterrupt
            yield chunk

    monkeypatch.setattr(cli, "evaluate", killed_after_two)
    study = tmp_path / "results" / "resume_test"
    with pytest.raises(SystemExit) as stop:  # one line and exit 130, chunks kept
        cli.main([*args, f"hydra.run.dir={study}/first"])
    assert stop.value.code == 130
    first = study / "first"
    assert not (first / "points.parquet").exists() and not (first / "summary.json").exists()
    assert len(list((first / ".dse" / "chunks").glob("*.parquet"))) == 2
    monkeypatch.setattr(cli, "evaluate", real)
    cli.main([*args, "resume=true", f"hydra.run.dir={study}/second"])
    summary = json.loads((first / "summary.json").read_text())
    assert summary["chunks_resumed"] == 2 and summary["chunks"] == 8
    got = pd.read_parquet(first / "points.parquet")
    pd.testing.assert_frame_equal(
        got.drop(columns=["pim", "workload"]), ref.drop(columns=["pim", "workload"])
    )
    assert not (study / "second").exists(), "the fresh run dir is dropped when resuming"


@pytest.mark.parametrize(
    "model,workload",
    [
        ("pim_kernel", "llama3_8b_attn_score"),
        pytest.param("pim_attention", "llama3_8b_decode", marks=pytest.mark.slow),
        pytest.param("system", "llama3_8b_step", marks=pytest.mark.slow),  # ~40 s compile
    ],
)
def test_single_point_runs_of_every_model(tmp_path, model, workload):
    """One point (nothing swept) of each model through the CLI: results, no trade-off plot
    (one point trades nothing off), exit 0."""
    overrides = [f"model={model}", "pim=hbm3_attacc", f"workload={workload}", "space=single"]
    df = dse.explore(overrides, output_dir=tmp_path)
    assert len(df) == 1 and bool(df["feasible"].iloc[0])
    assert (tmp_path / "summary.json").is_file() and not (tmp_path / "tradeoff.png").exists()
