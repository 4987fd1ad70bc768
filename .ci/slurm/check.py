"""CI on a real SLURM cluster (.ci/slurm/start): sharded studies submitted to the scheduler,
one job cancelled mid-run and resubmitted with resume=true, merged, and compared point for
point with a one-process run of the same study.

1. ``python -m dse -m hydra/launcher=dse_slurm space.num_shards=4 space.shard=0,1,2,3``: four
   array jobs; shard 2 is cancelled (``scancel``) after it has written some chunks; then
   shard 2 alone is submitted again with ``resume=true`` and continues the cancelled run in
   place; ``python -m dse.merge`` on the first sweep equals one process's table.
2. A plain SLURM job array (``sbatch --array=0-3``), each task one shard of a
   ``model=serving`` space, picking its shard from ``$SLURM_ARRAY_TASK_ID``; merged, it equals
   one process's table.

Run from the repository root: ``.venv/bin/python .ci/slurm/check.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
ENV = {**os.environ, "DSE_HOST_DEVICES": "1", "PYTHONUNBUFFERED": "1"}
QUIET = ("progress=false", "output.plot=false", "output.timeline=false")
LAUNCHER = (
    "hydra/launcher=dse_slurm",
    "hydra.launcher.partition=ci",
    "hydra.launcher.gpus_per_node=null",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=2",
    "hydra.launcher.timeout_min=20",
)
# 4 x 8 x 8 x 64 x 2 = 32,768 points; on the cluster in chunks of 8, 1,024 chunks per shard,
# so that a job runs long enough to be cancelled part-way (the one-process run: one chunk)
STUDY = (
    "space=single",
    "study=slurm_ci",
    "+space.axes.hw.pim.banks=[4,8,16,32]",
    "+space.axes.hw.pim.lanes=[1,2,4,8,16,32,64,128]",
    "+space.axes.hw.pim.tCCD_mac={range:[1,8]}",
    "+space.axes.hw.pim.tRCD_mac={range:[10,73]}",
    "+space.axes.policy.io=[serial,overlap]",
    "space.num_shards=4",
)
CHUNKS = 1024
SHARDED = (*STUDY, "chunk_size=8")
SERVING = (
    "model=serving",
    "space=single",
    "study=slurm_serving",
    "workload=llama3_8b_step",
    "policy.system=gpu_pim",
    f"serving.cluster={ROOT / 'conf/serving/single_node_pim_instance.json'}",
    f"serving.dataset={ROOT / 'conf/serving/example_trace.jsonl'}",
    "+space.axes.hw.pim.channels=[8,16,32,64]",
    "+space.axes.policy.sbi=[0,1]",
    "space.num_shards=4",
)


def say(msg: str) -> None:
    print(f"slurm: {msg}", flush=True)


def run(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=ROOT, env=ENV, capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        head = " ".join(args[:4])
        sys.exit(f"slurm: {head} ... failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def same_table(merged_dir: Path, single_dir: Path, what: str) -> None:
    a = pd.read_parquet(merged_dir / "points.parquet")
    b = pd.read_parquet(single_dir / "points.parquet")
    cols = sorted(b.columns)
    if sorted(a.columns) != cols:
        sys.exit(f"slurm: {what}: columns differ: {set(a.columns) ^ set(b.columns)}")
    a = a[cols].sort_values("point_id", kind="stable").reset_index(drop=True)
    b = b[cols].sort_values("point_id", kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    say(f"{what}: merged table equals the one-process run ({len(a)} points, {len(cols)} columns)")


def wait_for(cond, what: str, timeout: float, poll: float = 0.01) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            sys.exit(f"slurm: timed out waiting for {what}")
        time.sleep(poll)


def launcher_study(work: Path) -> None:
    sweep = work / "results" / "slurm_ci" / "first"
    launcher = subprocess.Popen(
        [PY, "-m", "dse", "-m", *LAUNCHER, *SHARDED, *QUIET, "space.shard=0,1,2,3"]
        + [f"hydra.sweep.dir={sweep}"],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    chunks = sweep / "2" / ".dse" / "chunks"
    wait_for(lambda: len(list(chunks.glob("*.json"))) >= 3, "shard 2's first chunks", 600)
    jobs = [p.name for p in (sweep / ".submitit").iterdir() if re.fullmatch(r"\d+_2", p.name)]
    if len(jobs) != 1:
        sys.exit(f"slurm: shard 2's job not found in {sweep / '.submitit'}: {jobs}")
    run("scancel", jobs[0])
    say(f"cancelled job {jobs[0]} (shard 2) after {len(list(chunks.glob('*.json')))} chunks")

    def others_done() -> bool:
        return all((sweep / str(i) / "summary.json").exists() for i in (0, 1, 3))

    def gone() -> bool:
        out = run("squeue", "-h", "-j", jobs[0], "-o", "%i", check=False).stdout
        return not out.strip()

    wait_for(lambda: others_done() and gone(), "shards 0, 1, 3 and the cancelled job", 600, 0.5)
    if (sweep / "2" / "summary.json").exists():
        sys.exit("slurm: the cancelled shard finished anyway (cancel came too late)")
    # without SLURM accounting, submitit cannot tell that a cancelled job ended: stop the
    # launcher's wait ourselves, as a user would
    launcher.send_signal(signal.SIGINT)
    try:
        launcher.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        launcher.kill()
        launcher.communicate()
    kept = len(list(chunks.glob("*.json")))

    again = work / "results" / "slurm_ci" / "requeue"
    run(
        PY, "-m", "dse", "-m", *LAUNCHER, *SHARDED, *QUIET, "space.shard=2", "resume=true",
        f"hydra.sweep.dir={again}", timeout=900,
    )  # fmt: skip
    summary = json.loads((sweep / "2" / "summary.json").read_text())
    if not 0 < summary["chunks_resumed"] == kept or summary["chunks"] != CHUNKS:
        sys.exit(f"slurm: resume did not continue the cancelled run: {summary['chunks_resumed']}")
    say(f"shard 2 resubmitted with resume=true: continued in place, {kept}/{CHUNKS} chunks reused")
    stray = [p for p in (sweep / "2").rglob(".*") if p.is_file() and ".tmp" in p.name]
    if stray:
        sys.exit(f"slurm: temporary files left in the resumed run: {stray}")

    merged = work / "merged_ci"
    run(PY, "-m", "dse.merge", str(sweep), "--out", str(merged))
    single = work / "single_ci"
    run(PY, "-m", "dse", *STUDY[:-1], *QUIET, f"hydra.run.dir={single}", timeout=900)  # unsharded
    same_table(merged, single, "launcher study (4 shards, one cancelled and resumed)")


def array_serving(work: Path) -> None:
    runs = work / "results" / "slurm_serving" / "array"
    script = work / "serving_array.sh"
    args = " ".join(f"'{a}'" for a in (*SERVING, *QUIET))
    script.write_text(
        "#!/bin/bash\n"
        f"cd {ROOT}\n"
        f"exec {PY} -m dse {args} space.shard=$SLURM_ARRAY_TASK_ID "
        f"hydra.run.dir={runs}/$SLURM_ARRAY_TASK_ID\n"
    )
    out = work / "array-%A_%a.out"
    proc = run(
        "sbatch", "--wait", "--array=0-3", "--partition=ci", "--cpus-per-task=1", "--mem=2G",
        f"--output={out}", str(script), timeout=1200,
    )  # fmt: skip
    job = proc.stdout.split()[-1]
    missing = [i for i in range(4) if not (runs / str(i) / "summary.json").exists()]
    if missing:
        logs = "\n".join(p.read_text()[-1500:] for p in work.glob("array-*.out"))
        sys.exit(f"slurm: array tasks {missing} of job {job} wrote no results:\n{logs}")
    say(f"job array {job}: 4 serving shards finished")
    merged = work / "merged_serving"
    run(PY, "-m", "dse.merge", str(runs), "--out", str(merged))
    single = work / "single_serving"
    run(PY, "-m", "dse", *SERVING[:-1], *QUIET, f"hydra.run.dir={single}", timeout=900)
    same_table(merged, single, "serving job array (4 shards)")


def main() -> None:
    if shutil.which("sbatch") is None:
        sys.exit("slurm: no sbatch on PATH: run .ci/slurm/start first")
    work = Path(tempfile.mkdtemp(prefix="dse-slurm-ci-", dir=os.environ.get("DSE_SLURM_WORK")))
    t0 = time.monotonic()
    try:
        launcher_study(work)
        array_serving(work)
    finally:
        if os.environ.get("DSE_SLURM_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)
    say(f"all checks passed in {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
