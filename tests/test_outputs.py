"""Outputs that cannot be misread: a batch that did not fit is reported as such, a sampler's
dropped points are counted, resume says what it did, default outputs are never tracked files."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from dse import cli
from dse._pytree import get_path, replace_paths
from dse.models import system
from dse.point import ADVISORY, STATUS_CODE, decode_status, is_feasible

ROOT = Path(__file__).resolve().parents[1]
NO_LOGGING = ("hydra/job_logging=disabled", "hydra/hydra_logging=disabled")
# Llama-3.1-8B beside the default AiM GDDR6 PIM: its KV memory holds 5 of the 64 requests
SMALL_KV = ("model=system", "workload=llama3_8b_step", "space=single", "policy.system=npu_pim")


def _step_point():
    cfg, prov = cli._compose(list(SMALL_KV))
    return cli.build(cfg, prov)[1]


def test_a_batch_that_does_not_fit_is_flagged_not_ok():
    """A system step asked for more decode requests than its KV memory holds runs the ones
    that fit (FCFS) and says so: status `batch_limited` (advisory: the point stays feasible,
    its metrics those of the admitted batch), `admitted` < `workload.batch`. It was `ok`."""
    base = _step_point()
    fits = jax.tree.map(np.asarray, system.step(base))
    cap = int(fits["max_batch"])
    assert cap >= 1
    asked = min(int(get_path(base, "workload.batch_max")), cap + 7)
    assert asked > cap, "the preset's batch_max leaves no room above the capacity"
    over = replace_paths(base, {"workload.batch": asked})
    out = jax.tree.map(np.asarray, system.step(over))
    assert int(out["admitted"]) == cap < asked
    assert int(out["status"]) == STATUS_CODE["batch_limited"]
    assert decode_status(np.asarray([out["status"]]))[0] == "batch_limited"
    assert is_feasible(out["status"]) and not is_feasible(STATUS_CODE["capacity_exceeded"])
    under = replace_paths(base, {"workload.batch": cap})
    assert int(system.step(under)["status"]) == 0
    # the steady model picks the largest batch that fits by design: no note there
    assert int(system.steady(over)["status"]) & ADVISORY == 0


def test_cli_table_shows_requested_and_admitted_batch(tmp_path):
    """The best-points table of `model=system` names the swept parameter `workload.batch`
    (not `batch`, a metric's name), shows `admitted` beside it and the status of a
    batch-limited row, and the summary line says what the note means."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dse",
            *SMALL_KV,
            "+space.axes.workload.batch=[1,64]",
            "progress=false",
            "output.plot=false",
            "output.timeline=false",
            f"hydra.run.dir={tmp_path / 'run'}",
            *NO_LOGGING,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = pd.read_parquet(tmp_path / "run" / "points.parquet")
    limited = table[table["status"] == "batch_limited"]
    assert len(limited) and (limited["admitted"] < limited["workload.batch"]).all()
    assert limited["feasible"].all()
    assert "workload.batch" in proc.stdout and "admitted" in proc.stdout
    assert "feasible with a note: batch_limited" in proc.stdout


def test_sampler_reports_the_points_its_constraints_dropped(tmp_path):
    """A Sobol run asked for N points whose constraint drops some says how many, of how
    many, in the summary line and summary.json."""
    cfg, prov = cli._compose(
        [
            "space=timing_sobol",
            "space.n=2048",
            'space.constraints=["hw.pim.tRCD_mac <= hw.pim.tRP + 20"]',
            "output.plot=false",
            "progress=false",
        ]
    )
    from rich.console import Console

    con = Console(record=True, width=200)
    res = cli.run(cfg, tmp_path / "run", prov, console=con)
    s = res.summary
    assert s["raw_points"] == 2048 and 0 < s["constrained_out"] < 2048
    assert s["points"] == 2048 - s["constrained_out"]
    text = con.export_text()
    assert f"space.constraints dropped {s['constrained_out']:,} of the 2,048 points" in text


def test_resume_says_what_it_resumed_or_that_it_started_fresh(tmp_path, caplog):
    """`resume=true` with nothing to continue logs that it starts fresh (it said nothing);
    with a killed run of the same configuration it names the run and its finished chunks."""
    args = ["space=timing_sobol", "space.n=1024", "chunk_size=256", "output.plot=false"]
    cfg, prov = cli._compose([*args, "resume=true", "progress=false"])
    with caplog.at_level(logging.WARNING, logger="dse"):
        res = cli.run(cfg, tmp_path / "s" / "a", prov, console=cli._quiet_console())
    assert "no unfinished run of this configuration" in caplog.text
    assert "starting fresh" in caplog.text and res.summary["chunks_resumed"] == 0
    caplog.clear()
    # a killed run: its first two chunks on disk, no summary
    killed = tmp_path / "s" / "b"
    real = cli.evaluate

    def two_chunks(*a, **k):
        for i, chunk in enumerate(real(*a, **k)):
            if i == 2:
                raise KeyboardInterrupt
            yield chunk

    cli.evaluate = two_chunks
    try:
        cfg2, prov2 = cli._compose([*args, "progress=false"])
        try:
            cli.run(cfg2, killed, prov2, console=cli._quiet_console())
        except KeyboardInterrupt:
            pass
    finally:
        cli.evaluate = real
    with caplog.at_level(logging.WARNING, logger="dse"):
        res = cli.run(cfg, tmp_path / "s" / "c", prov, console=cli._quiet_console())
    assert res.dir == killed and res.summary["chunks_resumed"] == 2
    assert f"continuing {killed} (2 chunks already done)" in caplog.text


def test_default_outputs_are_not_tracked_files():
    """`python -m dse.validation` writes results/validation/ unless told --out; studies
    (`python -m dse.studies`, a study script run by hand) write results/studies/<name>/, not
    over the committed outputs in results/<name>/ or sweeps/."""
    from dse.studies import DEFAULT_OUT, default_figure
    from dse.validation.report import parser

    assert DEFAULT_OUT == "results/studies"
    assert parser().parse_args([]).out == Path("results/validation/validation.md")
    tracked = subprocess.run(
        ["git", "ls-files", "results"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    for name in ("kv_capacity", "cent_parallelism"):
        path = default_figure(name)
        assert path == Path("results/studies") / name / f"{name}.png"
        assert str(path) not in tracked


def test_tradeoff_plots_are_metric_against_metric_coloured_by_the_swept_kind(monkeypatch):
    """Every model's trade-off pair is two metrics (a front over an input axis such as
    `workload.batch` means nothing); the colour is the swept policy or system kind; the
    front's points carry labels naming their swept values; the axes say which way is
    better."""
    import dse.report as report
    from dse.models import MODELS
    from dse.serving.model import SPEC

    for name, spec in [*MODELS.items(), ("serving", SPEC)]:
        assert all(m in spec.metrics for m in spec.tradeoff), (name, spec.tradeoff)
    sample = pd.DataFrame(
        {
            "policy.system": ["gpu", "gpu_pim", "npu_pim", "pim_only"] * 3,
            "workload.batch": [1] * 4 + [8] * 4 + [64] * 4,
            "J_per_token": np.geomspace(0.05, 5, 12)[::-1],
            "tokens_per_s": np.geomspace(90, 4000, 12),
            "feasible": True,
        }
    )
    swept = ["policy.system", "workload.batch"]
    assert cli._color_column(sample, swept, MODELS["system"]) == "policy.system"
    assert cli._color_column(sample, ["workload.batch"], MODELS["system"]) == "workload.batch"
    figs = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path, **kw: figs.append(fig) or path)
    report.tradeoff_plot(
        sample,
        *MODELS["system"].tradeoff,
        "policy.system",
        "t.png",
        minimize=MODELS["system"].tradeoff_min,
        label=["workload.batch"],
    )
    ax = figs[0].axes[0]
    labels = [t.get_text() for t in ax.texts]
    assert labels and all(t.startswith("workload.batch=") for t in labels)
    assert ax.get_xlabel() == "J_per_token (lower is better)"
    assert ax.get_ylabel() == "tokens_per_s (higher is better)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"gpu", "gpu_pim", "npu_pim", "pim_only", "Pareto front"} <= set(legend)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"  # 100x and 44x ranges


def test_static_kv_batch_cut_by_a_long_request_is_flagged():
    """Static KV allocation with QMSum lengths: the step admits the requests before the first
    that does not fit (4 of 64 on one HBM3-PIM stack with 30,000-token reservations), while
    max_batch stays the capacity figure. The row says `batch_limited` (it said `ok`); a
    max_context below the first request's length admits none and is infeasible."""
    from dse.models import pim_attention

    cfg, prov = cli._compose(
        [
            "model=pim_attention",
            "pim=hbm3_attacc",
            "workload=llama3_8b_decode",
            "space=single",
            "policy.kv_alloc=static",
            "workload.max_context=30000",
        ]
    )
    base = cli.build(cfg, prov)[1]
    out = jax.tree.map(np.asarray, pim_attention.attention(base))
    assert 0 < int(out["admitted"]) < 64
    assert int(out["status"]) == STATUS_CODE["batch_limited"] and is_feasible(out["status"])
    short = replace_paths(base, {"workload.max_context": 8000})
    out = jax.tree.map(np.asarray, pim_attention.attention(short))
    assert int(out["admitted"]) == 0 and not is_feasible(out["status"])
