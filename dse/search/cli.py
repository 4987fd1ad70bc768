"""``python -m dse.search``: a population search over design-point parameters as a Hydra app.

The config is ``conf/search.yaml``: the usual design point (``pim=``, ``host=``,
``workload=``, ``policy=``, ``model=``) and a ``search`` node (``search=cmaes|ga|random|grid``
in ``conf/search/``) naming the strategy, the parameters, the constraints and the stopping
rules. The run directory receives ``history.parquet`` (and ``.csv``: every evaluated
candidate), ``best.json``, ``search.json`` (the figures of the run) and ``convergence.png``.
Bad input gives one line naming the file and key, and exit status 2.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dse.cli import (
    _argv_config,
    _container,
    _discard_if_empty,
    _fail,
    _hydra_error,
    _provenance,
    build,
    catch_termination,
    enable_package_loggers,
    interrupted,
)
from dse.config import CONF_DIR, register_configs
from dse.errors import ConfigError
from dse.models import MODELS
from dse.precision import with_x64
from dse.process import command, use_host_cores
from dse.report import save_figure
from dse.search.area import AREA_METRICS
from dse.search.params import parse_params
from dse.search.run import STRATEGIES, Constraint, Problem, SearchResult, area_metrics, search

__all__ = ["main", "run_search"]

_KEYS = {
    "lr",
    "strategy",
    "objective",
    "minimize",
    "population",
    "generations",
    "max_evals",
    "patience",
    "tol",
    "seed",
    "grid_levels",
    "batch",
    "params",
    "constraints",
}


def problem_from(c: Mapping[str, Any], base: Any, source: str) -> tuple[Problem, dict]:
    """The :class:`~dse.search.run.Problem` and the search settings of a composed config."""
    node = dict(c.get("search") or {})
    unknown = sorted(set(node) - _KEYS)
    if unknown:
        raise ConfigError(source, f"search.{unknown[0]}", "one of " + ", ".join(sorted(_KEYS)))
    model = c.get("model", "pim_gemv")
    spec = MODELS[model]
    params = parse_params(node.get("params") or {}, source)
    cons = node.get("constraints") or []
    if isinstance(cons, str):
        cons = [cons]
    constraints = [
        Constraint.parse(t, f"search.constraints[{i}]", source) for i, t in enumerate(cons)
    ]
    objective = node.get("objective") or spec.objective
    minimize = node.get("minimize")
    if minimize is None:
        minimize = spec.minimize
    elif not isinstance(minimize, bool):  # "maybe" is not a direction
        raise ConfigError(source, "search.minimize", "true, false or null", minimize)
    strategy = node.get("strategy", "cmaes")
    if strategy not in STRATEGIES:
        raise ConfigError(source, "search.strategy", "one of " + ", ".join(STRATEGIES), strategy)
    settings = {"strategy": strategy}
    for key, default in (
        ("population", 64),
        ("generations", 60),
        ("patience", 0),
        ("seed", 0),
        ("grid_levels", 8),
        ("batch", node.get("population", 64)),  # one call per generation
    ):
        value = node.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(source, f"search.{key}", "a non-negative integer", value)
        settings[key] = value
    for key in ("population", "batch", "grid_levels"):
        if settings[key] < 1:
            raise ConfigError(source, f"search.{key}", "a positive integer", settings[key])
    max_evals = node.get("max_evals")
    if max_evals is not None and (
        not isinstance(max_evals, int) or isinstance(max_evals, bool) or max_evals < 1
    ):
        raise ConfigError(
            source, "search.max_evals", "an integer >= 1, or null (population x generations)",
            max_evals,
        )  # fmt: skip
    settings["max_evals"] = max_evals
    for key, default, low in (("tol", 0.0, 0.0), ("lr", 0.05, None)):
        value = node.get(key, default)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or (value < low if low is not None else value <= 0):
            want = "a finite number >= 0" if low is not None else "a finite number > 0"
            raise ConfigError(source, f"search.{key}", want, value)
        settings[key] = float(value)
    prob = Problem(
        base,
        model,
        params,
        objective,
        minimize,
        constraints,
        extra=area_metrics,
        extra_metrics=tuple(AREA_METRICS),
        batch=settings.pop("batch"),
        source=source,
    )
    return prob, settings


@with_x64
def run_search(
    cfg: Any, out: Path, prov: Any = None, progress: bool = True, source: str = "search"
) -> SearchResult | pd.DataFrame:
    """Run the search a composed config describes and write its files into ``out``;
    ``source`` names the search config file in error messages. ``search=sensitivity``
    returns the sensitivity table instead (:func:`run_sensitivity`)."""
    c, base, _ = build(cfg, prov)
    if (c.get("search") or {}).get("strategy") == "sensitivity":
        return run_sensitivity(c, base, out, source)
    prob, settings = problem_from(c, base, source)
    bar = _bar(progress)
    t0 = time.perf_counter()
    try:
        result = search(prob, progress=bar, **settings)
    finally:
        if bar is not None:
            bar.close()
    out.mkdir(parents=True, exist_ok=True)
    result.history.to_parquet(out / "history.parquet", index=False)
    result.history.to_csv(out / "history.csv", index=False)
    figures = {
        "model": prob.model,
        "objective": prob.objective,
        "minimize": prob.minimize,
        **settings,
        "evaluations": result.evaluations,
        "generations_run": result.generations,
        "stopped": result.stopped,
        "restarts": result.restarts,
        "seconds": round(time.perf_counter() - t0, 3),
        "evaluations_per_s": round(result.evaluations / max(result.seconds, 1e-9), 1),
        "feasible": int(result.history["feasible"].sum()) if len(result.history) else 0,
    }
    (out / "search.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    best = None
    if result.best is not None:
        best = {q.path: q.label(result.best[q.path]) for q in prob.params}
        best[prob.objective] = result.best[prob.objective]
        best["eval"] = result.best["eval"]
    (out / "best.json").write_text(json.dumps(best, indent=2, default=str) + "\n")
    _plot(result, prob, out / "convergence.png")
    _print(prob, result, figures, best, out)
    return result


_SENS_KEYS = {"strategy", "metric", "paths", "nonzero", "top"}


@with_x64
def run_sensitivity(c: Mapping[str, Any], base: Any, out: Path, source: str) -> pd.DataFrame:
    """``search=sensitivity``: the ranked elasticities of a metric at the configured design
    point (:func:`dse.search.gradient.sensitivities`), written as ``sensitivity.parquet`` /
    ``.csv`` and ``sensitivity.png`` and printed as a table."""
    from dse.search.gradient import plot_sensitivities, sensitivities

    node = dict(c.get("search") or {})
    unknown = sorted(set(node) - _SENS_KEYS)
    if unknown:
        raise ConfigError(source, f"search.{unknown[0]}", "one of " + ", ".join(sorted(_SENS_KEYS)))
    model = c.get("model", "pim_gemv")
    spec = MODELS[model]
    if spec.batched is not None:
        raise ConfigError(
            "model",
            "model",
            "a model with a point function (serving compiles whole batches)",
            model,
        )
    metric = node.get("metric") or spec.objective
    if metric not in spec.metrics:
        raise ConfigError(
            source, "search.metric", f"a metric of {model}: {list(spec.metrics)}", metric
        )
    paths = node.get("paths")
    if isinstance(paths, str):
        paths = [paths]
    top = node.get("top", 30)
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ConfigError(source, "search.top", "a positive integer", top)
    t0 = time.perf_counter()
    try:
        frame = sensitivities(base, model, metric, paths)
    except ValueError as err:  # unknown, static, categorical or non-relaxable paths
        raise ConfigError(source, "search.paths", str(err).split(": ", 1)[-1], paths) from None
    seconds = time.perf_counter() - t0
    if node.get("nonzero", True) and paths is None:
        frame = frame[frame["gradient"] != 0].reset_index(drop=True)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out / "sensitivity.parquet", index=False)
    frame.to_csv(out / "sensitivity.csv", index=False)
    plot_sensitivities(frame, out / "sensitivity.png", top=top)
    _print_sensitivity(frame, seconds, out)
    return frame


def _print_sensitivity(frame: pd.DataFrame, seconds: float, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    a = frame.attrs
    t = Table(
        title=f"{a.get('model')}: {a.get('metric')} = {a.get('metric_value', float('nan')):.6g}"
        f" ({len(frame)} parameters, {seconds:.1f} s)"
    )
    for col, just in (
        ("parameter", "left"),
        ("value", "right"),
        ("elasticity", "right"),
        ("finite diff.", "right"),
        ("gradient", "right"),
    ):
        t.add_column(col, justify=just)
    for r in frame.itertuples():
        t.add_row(
            r.path + (" (int)" if r.kind != "float" else ""),
            f"{r.value:.6g}",
            f"{r.elasticity:+.4f}",
            f"{r.fd_elasticity:+.4f}",
            f"{r.gradient:.4g}",
        )
    console = Console(stderr=False)
    console.print(t)
    console.print(f"wrote {out}/sensitivity.parquet, sensitivity.csv, sensitivity.png")


class _bar:
    """A rich progress bar on a terminal; elsewhere nothing (the summary follows)."""

    def __new__(cls, enabled: bool):
        if not enabled or not sys.stderr.isatty():
            return None
        return super().__new__(cls)

    def __init__(self, enabled: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._p = Progress(
            TextColumn("search"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[b]}")
        )
        self._t = self._p.add_task("", total=None, b="")
        self._p.start()

    def __call__(self, done: int, total: int, best: float | None) -> None:
        b = "no feasible point yet" if best is None else f"best {best:.6g}"
        self._p.update(self._t, completed=done, total=total, b=b)

    def close(self) -> None:
        self._p.stop()


def _plot(result: SearchResult, prob: Problem, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = result.history
    fig, ax = plt.subplots(figsize=(6, 4))
    if len(h):
        obj = h[prob.objective].to_numpy(dtype=float)
        feas = h["feasible"].to_numpy()
        ax.scatter(h["eval"][~feas], obj[~feas], s=4, c="0.8", label="infeasible")
        ax.scatter(h["eval"][feas], obj[feas], s=4, c="C0", alpha=0.5, label="feasible")
        signed = np.where(feas, obj if prob.minimize else -obj, np.inf)
        run = np.minimum.accumulate(signed)
        ok = np.isfinite(run)
        ax.plot(h["eval"][ok], (run if prob.minimize else -run)[ok], c="C3", label="best so far")
        ax.legend(loc="best", fontsize=8)
    ax.set_xlabel("evaluations")
    ax.set_ylabel(prob.objective)
    ax.set_title(f"{prob.model}: {prob.objective} ({'min' if prob.minimize else 'max'})")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def _print(prob: Problem, result: SearchResult, figures: dict, best: Any, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False)
    console.print(
        f"search [bold]{figures['strategy']}[/]: {result.evaluations:,} evaluations in "
        f"{result.generations} generations, {figures['seconds']} s "
        f"({figures['evaluations_per_s']:,} /s), stopped: {result.stopped}"
        + (f" ({result.restarts} restarts)" if result.restarts else "")
    )
    if best is None:
        console.print("[red]no feasible point found[/] (see history.csv: violation)")
    else:
        t = Table(title=f"best feasible point ({prob.objective})")
        t.add_column("parameter")
        t.add_column("value", justify="right")
        for k, v in best.items():
            t.add_row(k, f"{v:.6g}" if isinstance(v, float) else str(v))
        console.print(t)
    console.print(f"wrote {out}/history.parquet, best.json, search.json, convergence.png")


def _task(cfg: Any) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    use_host_cores(warn=False)  # a launcher's job starts here, not in main()
    enable_package_loggers()
    hc = HydraConfig.get()
    out = Path(cfg.output.dir) if cfg.output.get("dir") else Path(hc.runtime.output_dir)
    dirs = {s.provider: Path(s.path) for s in hc.runtime.config_sources if s.schema == "file"}
    cdir = dirs.get("command-line", dirs.get("main", CONF_DIR))
    prov = _provenance(
        dict(hc.runtime.choices), list(hc.overrides.task), cdir, hc.job.config_name or "search"
    )
    choice = dict(hc.runtime.choices).get("search")
    group_file = next((d / "search" / f"{choice}.yaml" for d in (cdir, CONF_DIR) if choice), None)
    source = str(group_file) if group_file is not None and group_file.exists() else "search"
    try:
        progress = bool(_container(cfg).get("progress", True))
        result = run_search(cfg, out, prov, progress=progress, source=source)
    except ConfigError as err:
        if err.source == source:  # set on the command line? name the override, not the file
            for ov in reversed(prov.overrides):
                key = ov.lstrip("+~").partition("=")[0]
                if err.key == key or err.key.startswith(key + "."):
                    err = ConfigError(
                        f"command line override '{ov}'", err.key, err.expected, err.got
                    )
                    break
        if not cfg.output.get("dir"):  # Hydra's run folder holds nothing of ours
            _discard_if_empty(out)
        _fail(err.oneline(), os.environ.get("DSE_FULL_ERROR") == "1", err)
        raise
    if isinstance(result, pd.DataFrame) or result.best is None:
        return None
    return float(result.best[result.objective])


@command
def main(argv: Sequence[str] | None = None) -> None:
    """``python -m dse.search``: Hydra app; bad input → one line on stderr, exit 2."""
    import hydra

    register_configs()
    argv = list(sys.argv[1:] if argv is None else argv)
    full = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    entry = hydra.main(config_path=str(CONF_DIR), config_name="search", version_base="1.3")(_task)
    saved = sys.argv
    sys.argv = [saved[0] if saved else "dse.search", *argv]
    try:
        with catch_termination() as caught:
            entry()
    except KeyboardInterrupt:
        interrupted(caught, "dse.search")
    except ConfigError as err:
        _fail(err.oneline(), full, err)
    except Exception as exc:
        cdir, cname, overrides = _argv_config(argv)
        err = _hydra_error(exc, overrides, cdir, cname if cname != "config" else "search")
        if err is None:
            raise
        _fail(err.oneline(), full, exc)
    finally:
        sys.argv = saved
        if not full:
            os.environ.pop("HYDRA_FULL_ERROR", None)
