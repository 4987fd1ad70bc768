"""Cluster batch jobs: space sharding, ``python -m dse.merge``, resume after a killed job,
and the Hydra submitit launcher."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dse
from dse import cli, merge
from dse.errors import ConfigError
from dse.explore import point_ids
from dse.results import RunStore, config_hash, study_hash
from dse.space import Space, build_space, parse_axes, shard_bounds
from tests.conftest import slow_dse

ROOT = Path(__file__).resolve().parents[1]
NO_LOGGING = ("hydra/job_logging=disabled", "hydra/hydra_logging=disabled")
# a small grid: 2 x 3 x 4 x 2 = 48 points per static combination, 2 combinations
SMALL = (
    "space=single",
    "+space.axes.hw.pim.banks=[8,16]",
    "+space.axes.hw.pim.lanes=[4,8,16]",
    "+space.axes.hw.pim.tCCD_mac=[1,2,4,8]",
    "+space.axes.policy.io=[serial,overlap]",
    "+space.axes.workload.dtype=[bf16,int8]",
    "output.plot=false",
    "progress=false",
)


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "DSE_HOST_DEVICES": "1", **extra}


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("point_id", kind="stable").reset_index(drop=True)


# --- sharding the space -------------------------------------------------------------------
@given(st.integers(0, 10**9), st.integers(1, 1000))
def test_shard_bounds_partition_exactly(points, n):
    bounds = [shard_bounds(points, i, n) for i in range(n)]
    assert bounds[0][0] == 0 and bounds[-1][1] == points
    for (_, stop), (start, _) in zip(bounds, bounds[1:], strict=False):
        assert stop == start  # contiguous, no overlap
    sizes = [b - a for a, b in bounds]
    assert sum(sizes) == points and max(sizes) - min(sizes) <= 1


_AXES = {
    "hw": {"pim": {"banks": [4, 8, 16], "lanes": {"range": [1, 16]}, "tRP": {"range": [8, 40]}}},
    "policy": {"io": ["serial", "overlap"]},
    "workload": {"dtype": ["bf16", "int8"]},
}


@functools.cache
def _axes() -> list:
    return parse_axes(_AXES)


def test_build_space_reads_the_shard_keys(base_point):
    sp = build_space({"axes": _AXES, "shard": 2, "num_shards": 3}, base_point)
    whole = build_space({"axes": _AXES}, base_point)
    assert (sp.shard, sp.num_shards, sp.total_points) == (2, 3, whole.num_points)
    assert sp.shard_range == shard_bounds(whole.points_per_combo, 2, 3)


@given(
    st.sampled_from(["grid", "random", "sobol", "lhs"]),
    st.integers(1, 300),
    st.integers(1, 9),
    st.integers(0, 3),
)
def test_shards_are_disjoint_slices_of_the_whole_space(base_point, sampler, n, num_shards, seed):
    """Every static combination's points, shard by shard, are the unsharded points in order:
    the union is exactly the space and each point keeps its values (and so its id)."""
    whole = Space(base_point, _axes(), sampler, n, seed)
    shards = [
        Space(base_point, _axes(), sampler, n, seed, shard=i, num_shards=num_shards)
        for i in range(num_shards)
    ]
    assert sum(s.num_points for s in shards) == whole.num_points
    assert all(s.total_points == whole.num_points for s in shards)
    sizes = [s.points_per_combo for s in shards]
    assert max(sizes) - min(sizes) <= 1
    for ci, combo in enumerate(whole.combos):
        ref = whole.raw_chunk(ci, 0, whole.points_per_combo)
        parts = [s.raw_chunk(ci, 0, s.points_per_combo) for s in shards]
        for path in whole.swept_paths:
            np.testing.assert_array_equal(np.concatenate([p[path] for p in parts]), ref[path])
        if ci == 0:  # ids are a function of the values: one combination shows it
            ids = np.concatenate(
                [point_ids(base_point, combo, p, len(p[whole.swept_paths[0]])) for p in parts]
            )
            np.testing.assert_array_equal(ids, point_ids(base_point, combo, ref, len(ids)))


@given(st.integers(1, 5), st.integers(1, 200))
def test_shards_of_a_chunked_shard_are_the_same(base_point, num_shards, size):
    """A shard read in chunks of any size gives the same points as in one piece."""
    for i in range(num_shards):
        sp = Space(base_point, _axes(), "sobol", 257, shard=i, num_shards=num_shards)
        n = sp.points_per_combo
        whole = sp.raw_chunk(1, 0, n)
        parts = [sp.raw_chunk(1, s, min(s + size, n)) for s in range(0, n, size)]
        for path in sp.swept_paths:
            joined = np.concatenate([p[path] for p in parts]) if parts else whole[path]
            np.testing.assert_array_equal(joined, whole[path])


@pytest.mark.parametrize(
    ("shard", "num_shards", "key"),
    [(2, 2, "space.shard"), (-1, 2, "space.shard"), (0, 0, "space.num_shards"),
     (0, -3, "space.num_shards"), (5, 1, "space.shard")],
)  # fmt: skip
def test_bad_shard_settings_name_the_key(shard, num_shards, key):
    with pytest.raises(ConfigError) as err:
        dse.explore(["space=single", f"space.shard={shard}", f"space.num_shards={num_shards}"])
    assert err.value.key == key
    assert "command line override" in err.value.source


def test_bad_shard_on_the_command_line_is_one_line():
    proc = subprocess.run(
        [sys.executable, "-m", "dse", "space=single", "space.shard=3", "space.num_shards=2"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dse: error: ")
    assert "space.shard" in lines[0] and "Traceback" not in proc.stderr


def test_config_hash_separates_shards_study_hash_joins_them():
    cfgs = [
        cli.build(cli._compose([*SMALL, f"space.shard={i}", "space.num_shards=3"])[0])[0]
        for i in range(3)
    ]
    whole = cli.build(cli._compose(list(SMALL))[0])[0]
    assert len({config_hash(c) for c in cfgs}) == 3
    assert len({study_hash(c) for c in [*cfgs, whole]}) == 1
    assert config_hash(whole) not in {config_hash(c) for c in cfgs}


def _shard_runs(tmp_path: Path, num_shards: int, extra: tuple[str, ...] = ()) -> list[Path]:
    dirs = []
    for i in range(num_shards):
        d = tmp_path / "multirun" / str(i)
        dse.explore(
            [*SMALL, *extra, f"space.shard={i}", f"space.num_shards={num_shards}"], output_dir=d
        )
        dirs.append(d)
    return dirs


def test_sharded_runs_merge_into_the_unsharded_table(tmp_path, capsys):
    """3 shard runs (in-process) merged equal one unsharded run: same ids, same metrics;
    summaries record the shards; the merged summary counts what the whole run counts."""
    full = pd.read_parquet(
        cli.run(cli._compose(list(SMALL))[0], tmp_path / "full", console=cli._quiet_console()).dir
        / "points.parquet"
    )
    dirs = _shard_runs(tmp_path, 3)
    for i, d in enumerate(dirs):
        s = json.loads((d / "summary.json").read_text())
        assert s["shard"]["index"] == i and s["shard"]["count"] == 3
        assert s["shard"]["raw_points"] == 2 * 16 and s["shard"]["total_raw_points"] == 96
        assert s["points"] == 32
    assert merge.main([str(tmp_path / "multirun")]) == 0
    out = tmp_path / "multirun" / "merged"
    merged = pd.read_parquet(out / "points.parquet")
    assert len(merged) == len(full) == 96 and merged["point_id"].is_unique
    pd.testing.assert_frame_equal(_sorted(merged), _sorted(full[merged.columns]))
    s = json.loads((out / "summary.json").read_text())
    whole = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert s["complete"] and s["points"] == s["unique_point_ids"] == 96
    assert s["feasible_points"] == whole["feasible_points"]
    assert s["status_counts"] == whole["status_counts"]
    assert [b["point_id"] for b in s["best"]] == [b["point_id"] for b in whole["best"]]
    text = capsys.readouterr().out
    assert "merged 96 rows (96 unique point_ids" in text
    # merging again skips the merged output
    assert merge.main([str(tmp_path / "multirun")]) == 0


def test_merge_reports_missing_shards_and_duplicates(tmp_path, capsys):
    dirs = _shard_runs(tmp_path, 4)
    # shard 2 never ran; shard 1 was run twice (a second copy of its directory)
    import shutil

    shutil.rmtree(dirs[2])
    shutil.copytree(dirs[1], tmp_path / "multirun" / "9")
    code = merge.main([str(tmp_path / "multirun"), "--out", str(tmp_path / "m")])
    assert code == merge.EXIT_MISSING
    s = json.loads((tmp_path / "m" / "summary.json").read_text())
    (group,) = s["groups"]
    assert group["shards_missing"] == [2] and group["shards_present"] == [0, 1, 3]
    per = 48
    start, stop = shard_bounds(per, 2, 4)
    assert group["missing_raw_points"] == s["missing_raw_points"] == 2 * (stop - start)
    shard1 = pd.read_parquet(dirs[1] / "points.parquet")
    assert s["duplicates"]["ids"] == shard1["point_id"].nunique()
    assert s["duplicates"]["rows_dropped"] == len(shard1)
    assert sorted(s["duplicates"]["listed"]) == sorted(int(i) for i in shard1["point_id"])
    merged = pd.read_parquet(tmp_path / "m" / "points.parquet")
    expected = sum(len(pd.read_parquet(dirs[i] / "points.parquet")) for i in (0, 1, 3))
    assert len(merged) == expected and merged["point_id"].is_unique
    captured = capsys.readouterr()
    assert "shards 2 of 4" in captured.out and "duplicates:" in captured.out
    assert "design points missing" in captured.err
    assert merge.main([str(tmp_path / "multirun"), "--out", str(tmp_path / "m2"),
                       "--allow-missing"]) == 0  # fmt: skip


def test_merge_lists_unfinished_runs(tmp_path):
    """A run with chunk files but no summary (a killed job) counts as missing and is named."""
    dirs = _shard_runs(tmp_path, 2)
    killed = dirs[1]
    state = json.loads((killed / ".dse" / "state.json").read_text())
    state["finished"] = False
    (killed / ".dse" / "state.json").write_text(json.dumps(state))
    (killed / "summary.json").unlink()
    result = merge.merge([tmp_path / "multirun"])
    (group,) = result.summary["groups"]
    assert group["shards_missing"] == [1]
    assert group["unfinished"] == [{"shard": 1, "dir": str(killed.resolve())}]
    assert not result.complete


@pytest.mark.parametrize("case", ["no_dir", "empty", "bad_summary", "no_points", "short_table"])
def test_merge_bad_input_is_one_line(tmp_path, capsys, case):
    if case != "no_dir":
        (tmp_path / "d").mkdir()
    if case in ("bad_summary", "no_points", "short_table"):
        (d,) = _shard_runs(tmp_path, 1)
        if case == "bad_summary":
            (d / "summary.json").write_text("{not json")
        elif case == "no_points":
            (d / "points.parquet").unlink()
        else:
            table = pq.read_table(d / "points.parquet")
            pq.write_table(table.slice(0, 5), d / "points.parquet")
        target = tmp_path / "multirun"
    else:
        target = tmp_path / "d"
    assert merge.main([str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dse: error: ")


# --- resume after a killed job --------------------------------------------------------------
RESUME = (
    "space=single",
    "+space.axes.hw.pim.banks=[4,8,16,32]",
    "+space.axes.hw.pim.lanes=[4,8,16]",
    "+space.axes.hw.pim.tCCD_mac={range:[1,8]}",
    "+space.axes.hw.pim.tRCD_mac={range:[10,73]}",
    "+space.axes.policy.io=[serial,overlap]",
    "space.num_shards=2",
    "space.shard=1",
    "chunk_size=256",
    "output.plot=false",
    "progress=false",
)  # 12,288 points, 6,144 in shard 1: 24 chunks of 256


def test_killed_shard_job_resumes_without_recomputing(tmp_path, monkeypatch):
    """`python -m dse` killed (SIGKILL) after some chunks, rerun with resume=true: the
    finished chunks are not evaluated again and the table equals an uninterrupted run's."""
    study = tmp_path / "study"
    proc = subprocess.Popen(
        [sys.executable, "-c", slow_dse(), *RESUME, f"hydra.run.dir={study / 'first'}"]
        + list(NO_LOGGING),
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    chunks = study / "first" / ".dse" / "chunks"
    deadline = time.monotonic() + 240
    try:
        while len(list(chunks.glob("*.json"))) < 4:
            assert proc.poll() is None, f"finished before it could be killed: {proc.stderr}"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = {p.stem: p.stat().st_mtime_ns for p in chunks.glob("*.json")}
    done_parquet = {p.stem: p.stat().st_mtime_ns for p in chunks.glob("*.parquet")}
    assert 4 <= len(done) < 24 and not (study / "first" / "summary.json").exists()

    written: list[str] = []
    unchanged: list[bool] = []
    write_chunk, close = RunStore.write_chunk, RunStore.close

    def spy_write(self, combo, index, frame, meta):
        written.append(self._name(combo, index))
        return write_chunk(self, combo, index, frame, meta)

    def spy_close(self, summary):  # before the chunk files are removed
        unchanged.append(
            all((self.chunks / f"{n}.json").stat().st_mtime_ns == t for n, t in done.items())
            and all(
                (self.chunks / f"{n}.parquet").stat().st_mtime_ns == t
                for n, t in done_parquet.items()
                if n in done
            )
        )
        return close(self, summary)

    monkeypatch.setattr(RunStore, "write_chunk", spy_write)
    monkeypatch.setattr(RunStore, "close", spy_close)
    cfg, prov = cli._compose([*RESUME, "resume=true"])
    res = cli.run(cfg, study / "second", prov, study_root=study, console=cli._quiet_console())
    assert res.dir == study / "first"  # continued the killed run in place
    s = res.summary
    assert s["chunks"] == 24 and s["chunks_resumed"] == len(done) > 0
    assert s["chunks_evaluated"] == 24 - len(done) == len(written)
    assert not set(written) & set(done), "a finished chunk was evaluated again"
    assert unchanged == [True]
    monkeypatch.undo()

    resumed = pd.read_parquet(study / "first" / "points.parquet")
    cfg, prov = cli._compose(list(RESUME))
    fresh = cli.run(cfg, tmp_path / "fresh", prov, console=cli._quiet_console())
    pd.testing.assert_frame_equal(resumed, pd.read_parquet(fresh.dir / "points.parquet"))
    assert fresh.summary["chunks_resumed"] == 0 and len(resumed) == 6_144


def test_shards_do_not_resume_each_other(tmp_path):
    """An unfinished run of shard 0 is not picked up by shard 1 (their config hashes
    differ), but is by shard 0."""
    cfg0, prov0 = cli._compose([*SMALL, "space.shard=0", "space.num_shards=2"])
    c0 = cli.build(cfg0, prov0)[0]
    killed = tmp_path / "study" / "a"
    RunStore(killed, config_hash(c0)).open({"study": "default"})
    cfg1, prov1 = cli._compose([*SMALL, "space.shard=1", "space.num_shards=2", "resume=true"])
    res = cli.run(cfg1, tmp_path / "study" / "b", prov1, console=cli._quiet_console())
    assert res.dir == tmp_path / "study" / "b"
    cfg0, prov0 = cli._compose([*SMALL, "space.shard=0", "space.num_shards=2", "resume=true"])
    res = cli.run(cfg0, tmp_path / "study" / "c", prov0, console=cli._quiet_console())
    assert res.dir == killed


# --- the Hydra submitit launcher ---------------------------------------------------------------
@pytest.mark.slow  # two job processes and a merge process: ~35 s on 2 busy cores
def test_submitit_local_shards_merge_to_the_unsharded_run(tmp_path):
    """`python -m dse -m hydra/launcher=submitit_local space.num_shards=2 space.shard=0,1`
    (two jobs), then `python -m dse.merge` on the multirun: the same rows as one run."""
    sweep = tmp_path / "multirun"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dse",
            "-m",
            "hydra/launcher=submitit_local",
            "space.num_shards=2",
            "space.shard=0,1",
            *SMALL,
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (sweep / ".submitit").is_dir()
    proc = subprocess.run(
        [sys.executable, "-m", "dse.merge", str(sweep), "--out", str(tmp_path / "merged")],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "merged 96 rows (96 unique point_ids" in proc.stdout
    merged = pd.read_parquet(tmp_path / "merged" / "points.parquet")
    full = dse.explore(list(SMALL), output_dir=tmp_path / "full")
    assert set(merged.columns) == set(full.columns)
    pd.testing.assert_frame_equal(_sorted(merged), _sorted(full[merged.columns]))
    summary = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert [r["shard"] for r in summary["runs"]] == [0, 1]
    assert all(r["finished"] for r in summary["runs"])


def test_launcher_configs_compose():
    """The launcher configs shipped in conf/hydra/launcher compose onto the submitit plugin's
    schemas (SLURM with its JAX setup lines)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from dse.config import CONF_DIR, register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        slurm = compose(
            "config", ["hydra/launcher=dse_slurm", "hydra.launcher.partition=gpu"], True
        ).hydra.launcher
        local = compose("config", ["hydra/launcher=dse_local"], True).hydra.launcher
    GlobalHydra.instance().clear()
    assert slurm._target_.endswith("SlurmLauncher") and local._target_.endswith("LocalLauncher")
    assert slurm.partition == "gpu" and slurm.gpus_per_node == 1 and slurm.tasks_per_node == 1
    setup = "\n".join(slurm.setup)
    assert "XLA_PYTHON_CLIENT_PREALLOCATE=false" in setup and "DSE_CACHE_DIR=" in setup


def test_steady_million_study_has_exactly_a_million_points():
    cfg, prov = cli._compose([], config_name="steady_million", config_dir=ROOT / "sweeps")
    c, _, space = cli.build(cfg, prov)
    assert c["model"] == "steady" and space.num_combos == 1
    assert space.total_points == space.num_points == 1_000_000 and not space.constraints
    halves = [
        cli.build(cli._compose([f"space.shard={i}", "space.num_shards=2"], "steady_million",
                               ROOT / "sweeps")[0])[2]
        for i in range(2)
    ]  # fmt: skip
    assert [h.num_points for h in halves] == [500_000, 500_000]


@pytest.mark.parametrize("argv", [[], ["--no-such-option", "x"]])
def test_merge_bad_command_line_is_one_line(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        merge.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dse: error: command line: ")


def test_slurm_launcher_config_makes_an_sbatch_script(tmp_path, monkeypatch):
    """dse_slurm.yaml through submitit's own SLURM executor (a stand-in `srun` on PATH):
    one task with one GPU per job, the JAX setup lines before `srun`."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf
    from submitit import AutoExecutor
    from submitit.slurm.slurm import _make_sbatch_string

    from dse.config import CONF_DIR, register_configs

    (tmp_path / "srun").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", ["hydra/launcher=dse_slurm", "hydra.launcher.partition=gpu"], True)
    GlobalHydra.instance().clear()
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
    params.pop("_target_")
    params["name"] = "dse"
    # the mapping of hydra_plugins.hydra_submitit_launcher's SlurmLauncher.launch
    executor = AutoExecutor(
        cluster="slurm", folder=tmp_path / "%j", slurm_max_num_timeout=params["max_num_timeout"]
    )
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(
        **{
            k if k in base else f"slurm_{k}": v
            for k, v in params.items()
            if k not in ("max_num_timeout", "submitit_folder")
        }
    )
    script = _make_sbatch_string(
        command="python -m dse", folder=tmp_path / "%j", **executor._executor.parameters
    )
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --time=120",
        "export XLA_PYTHON_CLIENT_PREALLOCATE=false",
    ):
        assert line in script
    assert script.index("export DSE_CACHE_DIR=") < script.index("srun ")
