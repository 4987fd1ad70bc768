"""Run directories that nothing shares: concurrent runs, a writer's lock, interrupted runs
(SIGINT, SIGTERM, SIGKILL at each phase) that resume to the same table with no stray files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from dse import cli
from dse.errors import ConfigError
from dse.results import RunStore, config_hash, is_busy
from tests.conftest import slow_dse

ROOT = Path(__file__).resolve().parents[1]
NO_LOGGING = ("hydra/job_logging=disabled", "hydra/hydra_logging=disabled")
SOBOL = (
    "space=single",
    "space.sampler=sobol",
    "space.n=512",
    "+space.axes.hw.pim.banks={range:[4,32]}",
    "+space.axes.hw.pim.tCCD_mac={range:[1,8]}",
    "+space.axes.hw.pim.tRCD_mac={range:[10,73]}",
    "chunk_size=64",
    "output.plot=false",
    "progress=false",
    "study=clash",
)  # 512 points in 8 chunks


def _env() -> dict[str, str]:
    return {**os.environ, "DSE_HOST_DEVICES": "1"}


def _stray(run: Path) -> list[str]:
    """Temporary files anywhere under a run directory."""
    return sorted(
        str(p.relative_to(run))
        for p in run.rglob(".*")
        if p.is_file() and (".tmp" in p.name or p.parent.name == "chunks" or p.name.count(".") > 2)
    )


def test_two_sweeps_started_at_once_write_two_tables(tmp_path):
    """Two sweeps of one study with different seeds, started in the same second from the same
    directory: two run directories, each table its own run's points and summary."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "dse", *SOBOL, f"space.seed={seed}", *NO_LOGGING],
            cwd=tmp_path,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=380)
        assert p.returncode == 0, err[-2000:]
    runs = sorted((tmp_path / "results" / "clash").iterdir())
    assert len(runs) == 2, runs
    seeds = set()
    for run in runs:
        summary = json.loads((run / "summary.json").read_text())
        table = pd.read_parquet(run / "points.parquet")
        seeds.add(summary["config"]["space"]["seed"])
        assert len(table) == summary["points"] == 512
        assert table["point_id"].is_unique
        assert _stray(run) == []
    assert seeds == {1, 2}
    a, b = (pd.read_parquet(r / "points.parquet") for r in runs)
    assert not a["hw.pim.tRCD_mac"].equals(b["hw.pim.tRCD_mac"])  # different samples


def test_a_second_writer_of_one_directory_is_refused(tmp_path):
    """output.dir naming a directory another live run holds: one ConfigError naming
    output.dir, nothing written there."""
    cfg, prov = cli._compose([*SOBOL, f"output.dir={tmp_path / 'run'}"])
    c = cli.build(cfg, prov)[0]
    holder = RunStore(tmp_path / "run", config_hash(c))
    holder.acquire()
    try:
        assert is_busy(tmp_path / "run")
        with pytest.raises(ConfigError) as err:
            cli.run(cfg, tmp_path / "unused", prov, console=cli._quiet_console())
        assert err.value.key == "output.dir" and "another run" in err.value.oneline()
        assert not (tmp_path / "run" / "points.parquet").exists()
        # resume=true passes over a run whose writer is alive
        assert RunStore.find_unfinished(tmp_path, config_hash(c)) is None
    finally:
        holder.release()
    assert not is_busy(tmp_path / "run")


def test_a_directory_of_another_configuration_is_not_reused(tmp_path):
    """An unfinished run of one configuration in output.dir, then a run of another there: the
    first run's chunks are discarded, not taken as the second's (its table equals a fresh
    run's)."""
    out = tmp_path / "run"
    cfg1, prov1 = cli._compose([*SOBOL, "space.seed=1", f"output.dir={out}"])
    c1 = cli.build(cfg1, prov1)[0]
    res1 = cli.run(cfg1, out, prov1, console=cli._quiet_console())
    first = pd.read_parquet(res1.dir / "points.parquet")
    # make it look unfinished, its chunks still there
    st = RunStore(out, config_hash(c1))
    st.chunks.mkdir(parents=True, exist_ok=True)
    for i in range(8):
        part = first.iloc[i * 64 : (i + 1) * 64]
        st.write_chunk(0, i, part, {"points": 64, "compile_s": 0.0, "eval_s": 0.0})
    meta = json.loads((st.state / "state.json").read_text())
    (st.state / "state.json").write_text(json.dumps({**meta, "finished": False}))
    cfg2, prov2 = cli._compose([*SOBOL, "space.seed=2", f"output.dir={out}"])
    res2 = cli.run(cfg2, out, prov2, console=cli._quiet_console())
    assert res2.summary["chunks_resumed"] == 0
    second = pd.read_parquet(out / "points.parquet")
    fresh = cli.run(cfg2, tmp_path / "fresh", *cli._compose([*SOBOL, "space.seed=2"])[1:])
    pd.testing.assert_frame_equal(second, pd.read_parquet(fresh.dir / "points.parquet"))
    assert not second["hw.pim.tRCD_mac"].equals(first["hw.pim.tRCD_mac"])


CHUNKED = (*SOBOL, "space.n=2048", "chunk_size=128", "output.csv=true")  # 16 chunks


@pytest.mark.parametrize(
    ("phase", "sig"),
    [
        ("evaluation", signal.SIGINT),
        ("finalisation", signal.SIGTERM),
        ("finalisation", signal.SIGKILL),
        pytest.param("evaluation", signal.SIGTERM, marks=pytest.mark.slow),
        pytest.param("evaluation", signal.SIGKILL, marks=pytest.mark.slow),
        pytest.param("finalisation", signal.SIGINT, marks=pytest.mark.slow),
    ],
)
def test_interrupted_run_resumes_to_the_same_table(tmp_path, phase, sig):
    """A run stopped by a signal while it evaluates chunks or while it writes the final
    table: SIGINT/SIGTERM exit 130 with one line naming the kept chunks and leave no
    temporary file; after any of them (SIGKILL too), ``resume=true`` finishes the run, reuses
    the finished chunks, leaves no temporary file, and its table equals an uninterrupted
    run's."""
    run = tmp_path / "results" / "clash" / "first"
    proc = subprocess.Popen(
        [sys.executable, "-c", slow_dse(0.05, 0.2), *CHUNKED, f"hydra.run.dir={run}", *NO_LOGGING],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    chunks = run / ".dse" / "chunks"

    def reached() -> bool:
        if phase == "evaluation":
            return len(list(chunks.glob("*.json"))) >= 4
        return any(run.glob(".points.parquet.tmp-*"))

    deadline = time.monotonic() + 300
    try:
        while not reached():
            assert proc.poll() is None, f"ended before the signal: {proc.stderr.read()}"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130, err
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith(f"dse: interrupted by {sig.name}; ")
        assert "resume=true" in lines[0] and str(run) in lines[0]
        assert _stray(run) == []
    assert not (run / "summary.json").exists() and not (run / "points.parquet").exists()
    kept = len(list(chunks.glob("*.json")))
    assert kept >= 4

    cfg, prov = cli._compose([*CHUNKED, "resume=true"])
    res = cli.run(
        cfg,
        tmp_path / "results" / "clash" / "second",
        prov,
        study_root=tmp_path / "results" / "clash",
        console=cli._quiet_console(),
    )
    assert res.dir == run and res.summary["chunks_resumed"] == kept
    assert _stray(run) == [] and not chunks.exists()
    cfg, prov = cli._compose(list(CHUNKED))
    fresh = cli.run(cfg, tmp_path / "fresh", prov, console=cli._quiet_console())
    for name in ("points.parquet", "points.csv"):
        read = pd.read_parquet if name.endswith("parquet") else pd.read_csv
        pd.testing.assert_frame_equal(read(run / name), read(fresh.dir / name))
