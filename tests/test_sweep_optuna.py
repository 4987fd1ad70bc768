"""sweeps/optuna_gemv.yaml: Hydra's Optuna sweeper drives `python -m dse`, which returns each
trial's objective (output.objective=true)."""

from __future__ import annotations

import pandas as pd
import yaml

from dse import cli
from tests.conftest import ROOT


def test_optuna_sweeper_runs_trials_and_reports_the_best(tmp_path):
    sweep = tmp_path / "optuna"
    cli.main(
        [
            "-cd",
            str(ROOT / "sweeps"),
            "-cn",
            "optuna_gemv",
            "-m",
            "hydra.sweeper.n_trials=4",
            f"hydra.sweep.dir={sweep}",
            "hydra/job_logging=disabled",  # Hydra's logging would hold pytest's capture
            "hydra/hydra_logging=disabled",
        ]
    )
    runs = sorted(p.parent for p in sweep.glob("*/points.parquet"))
    assert len(runs) == 4
    times = [float(pd.read_parquet(r / "points.parquet")["time_ns"].iloc[0]) for r in runs]
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    # the value Optuna kept is the best of what the app returned, i.e. of the runs' own rows
    assert result["best_value"] == min(times)
    best = runs[times.index(min(times))]
    overrides = yaml.safe_load((best / ".hydra" / "overrides.yaml").read_text())
    chosen = dict(o.split("=", 1) for o in overrides)
    assert {k: str(v) for k, v in result["best_params"].items()} == chosen
