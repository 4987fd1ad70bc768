"""Command-line and Python faces of the explorer.

``python -m dse [overrides]`` is a Hydra app over ``conf/config.yaml``; ``-cd sweeps -cn
<study>`` runs a named study; ``-m`` runs Hydra multiruns. :func:`run` does the work for one
composed config and returns data; :func:`explore` is the same through Hydra's compose API.

Bad input exits with status 2 and one line on stderr naming the file, the key and what was
expected; no result files are left behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from dse import trace_cache
from dse.config import CONF_DIR, register_configs
from dse.errors import EXIT_BAD_INPUT, ConfigError, make_dir
from dse.explore import chunk_size_for, enable_compilation_cache, evaluate
from dse.models import MODELS
from dse.point import (
    ADVISORY,
    GROUP_PACKAGES,
    STATUS_BITS,
    DesignPoint,
    Provenance,
    field_info,
    from_config,
    override_for,
)
from dse.precision import with_x64
from dse.process import command, use_host_cores
from dse.results import RunBusy, RunStore, config_hash, environment, study_hash
from dse.space import Space, build_space
from dse.trace_cache import compile_cached

__all__ = ["run", "explore", "main", "RunResult", "build"]

log = logging.getLogger("dse")
_USER_FULL_ERROR = False  # HYDRA_FULL_ERROR=1 from the user: show tracebacks
_RUNNING: list[RunStore] = []  # the run in progress, named when it is interrupted


@dataclasses.dataclass
class RunResult:
    dir: Path
    summary: dict[str, Any]


def _container(cfg: Any) -> dict[str, Any]:
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True, enum_to_str=False, throw_on_missing=False)
    cfg = dict(cfg)
    cfg.pop("hydra", None)
    return cfg


def _ini_loader(node: Mapping[str, Any], prov: Provenance) -> dict[str, Any]:
    path = node.get("ini")
    if not path:
        return {}
    from dse.hw.dram import pim_fields_from_ini

    fields = pim_fields_from_ini(path)
    overridden = {ov.split("=", 1)[0].lstrip("+~") for ov in prov.overrides}
    return {k: v for k, v in fields.items() if f"hw.pim.{k}" not in overridden}


def _chunk_request(c: Mapping[str, Any]) -> int:
    """Points per compiled call: the config's ``chunk_size``, at most the model's limit."""
    size = c.get("chunk_size", 262144)
    cap = MODELS[c.get("model", "pim_gemv")].max_chunk
    return min(size, cap) if cap else size


def with_cluster(overrides: Sequence[str]) -> list[str]:
    """``serving.cluster=<LLMServingSim cluster JSON>`` among the overrides: the cluster's own
    overrides (host and pim presets, fields; :mod:`dse.serving.cluster`) go first, so the
    command line's later ones win."""
    out = list(overrides)
    for ov in overrides:
        key, _, value = ov.lstrip("+~").partition("=")
        if key == "serving.cluster" and value and value != "null":
            if "," in value:
                raise ConfigError("command line", "serving.cluster", "one cluster config", value)
            from dse.serving.cluster import read_cluster

            mine = {o.lstrip("+~").partition("=")[0] for o in out}
            own = [
                o for o in read_cluster(value).hydra_overrides() if o.partition("=")[0] not in mine
            ]
            return own + out
    return out


#: keys a preset may carry beside its fields (descriptions, not parameters)
_DESCRIPTIVE = ("name", "source", "description", "notes", "citation")


def _check_added_keys(prov: Provenance) -> None:
    """A key added with ``+`` under hw/workload/policy must be a parameter of the design
    point: Hydra adds any name, and an unknown one would be silently ignored."""
    fields = field_info()
    for ov in prov.overrides:
        if not ov.startswith("+") or "=" not in ov:
            continue
        key = ov.lstrip("+").partition("=")[0]
        package = key.split(".", 1)[0]
        if package not in ("hw", "workload", "policy") or key in fields:
            continue
        if key.rpartition(".")[2] in _DESCRIPTIVE:
            continue
        close = difflib.get_close_matches(key, list(fields), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(
            f"command line override '{ov}'", key, f"a parameter of the design point{hint}", key
        )


def build(cfg: Any, provenance: Provenance | None = None) -> tuple[dict, DesignPoint, Space]:
    """Config → (plain config dict, base design point, space). Raises ConfigError."""
    c = _container(cfg)
    prov = provenance or Provenance()
    model = c.get("model", "pim_gemv")
    if model not in MODELS and model != "serving":
        raise ConfigError(prov.source_of("model"), "model", f"one of {[*MODELS, 'serving']}", model)
    _check_added_keys(prov)
    base = from_config(c, prov, loader=_ini_loader)
    if base.workload.trace:
        from dse.workload.pim_trace import load_aim_trace

        chosen = any(o.lstrip("+~").partition("=")[0] == "model" for o in prov.overrides)
        if model == "pim_gemv" and not chosen:  # a trace is a pim_kernel workload
            model = c["model"] = "pim_kernel"
        if model != "pim_kernel":
            raise ConfigError(
                prov.source_of("workload.trace"), "model", "pim_kernel for a command trace", model
            )
        load_aim_trace(base.workload.trace)  # a bad trace is reported before any evaluation
    elif str((c.get("workload") or {}).get("name", "")) == "trace":
        raise ConfigError(
            prov.source_of("workload.trace"), "workload.trace", "the path of an AiM ISR trace", ""
        )
    if model == "serving":
        from dse.serving.model import configure

        try:
            configure(c, base)
        except ConfigError as err:
            if err.source != "serving":
                raise
            raise ConfigError(prov.source_of(err.key), err.key, err.expected, err.got) from None
    try:
        space = build_space(c.get("space") or {}, base)
    except ConfigError as err:  # name the file or override that set the offending key
        raise ConfigError(prov.source_of(err.key), err.key, err.expected, err.got) from None
    output = c.get("output") or {}
    known = set(MODELS[model].metrics) | set(field_info()) | {"pim", "workload", "status"}
    for key in ("x", "y", "color"):
        if output.get(key) and output[key] not in known:
            close = difflib.get_close_matches(str(output[key]), sorted(known), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(
                prov.source_of(f"output.{key}"),
                f"output.{key}",
                "a metric or parameter column" + hint,
                output[key],
            )
    chunk = c.get("chunk_size", 262144)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ConfigError(prov.source_of("chunk_size"), "chunk_size", "an integer >= 1", chunk)
    dv = c.get("devices", 0)
    if isinstance(dv, bool) or not isinstance(dv, int) or dv < 0:
        raise ConfigError(
            prov.source_of("devices"), "devices", "an integer >= 0 (0: all local devices)", dv
        )
    return c, base, space


def _labels(c: Mapping[str, Any]) -> dict[str, str]:
    return {
        "pim": str(c["hw"]["pim"].get("name", "")),
        "workload": str(c["workload"].get("name", "")),
    }


@with_x64
def run(
    cfg: Any,
    out_dir: str | os.PathLike,
    provenance: Provenance | None = None,
    study_root: str | os.PathLike | None = None,
    console: Any = None,
) -> RunResult:
    """Evaluate the space of ``cfg`` into ``out_dir``; return the summary."""
    enable_package_loggers()
    t_start = time.perf_counter()
    trace_before = trace_cache.SECONDS["trace"]
    c, base, space = build(cfg, provenance)
    spec = MODELS[c.get("model", "pim_gemv")]
    out = Path(c.get("output", {}).get("dir") or out_dir)
    h = config_hash(c)
    if c.get("resume"):
        root = Path(study_root) if study_root else out.parent
        prev = RunStore.find_unfinished(root, h, exclude=None)
        if prev is not None and prev.resolve() != out.resolve():
            _discard_if_empty(out, moved_to=prev)
            out = prev
        elif prev is None:
            log.warning(
                "resume=true: no unfinished run of this configuration under %s "
                "(or its writer is still running); starting fresh in %s",
                root,
                out,
            )
    src = prov.source_of("output.dir") if (prov := provenance) else "output.dir"
    given = (c.get("output") or {}).get("dir")
    make_dir(out, src if given else "the Hydra run directory", "output.dir")
    store = RunStore(out, h)
    try:
        store.acquire()
    except RunBusy as err:
        raise ConfigError(
            src,
            "output.dir",
            "a run directory no other run is writing (leave output.dir unset: each run "
            f"gets its own); {err}",
            str(out),
        ) from None
    try:  # the lock is released on every way out; _RUNNING names the run if interrupted
        shard = _shard_info(space, c)
        replaced = store.open({"study": c.get("study"), "points": space.num_points, "shard": shard})
        if replaced:
            log.warning("%s held %s; its chunks are discarded, starting afresh", out, replaced)
        resumed = store.completed()
        if c.get("resume") and resumed:
            log.warning("resume=true: continuing %s (%d chunks already done)", out, resumed)
        _RUNNING[:] = [store]
        enable_compilation_cache()
        chunk_size = chunk_size_for(
            space, _chunk_request(c), 1 if MODELS[c.get("model", "pim_gemv")].max_chunk else 256
        )
        evaluated = 0
        for res in evaluate(
            space,
            c.get("model", "pim_gemv"),
            chunk_size,
            labels=_labels(c),
            skip=store.has_chunk,
            progress=bool(c.get("progress", True)),
            devices=c.get("devices", 0),
        ):
            store.write_chunk(
                res.combo,
                res.index,
                res.frame,
                {
                    "points": len(res.frame),
                    "raw_points": res.raw_points,
                    "compile_s": res.compile_s,
                    "eval_s": res.eval_s,
                },
            )
            evaluated += 1
        output = c.get("output") or {}
        categories = tuple(spec.categories)
        digest = store.finalize(
            spec.objective,
            spec.minimize,
            categories,
            top=int(output.get("top", 8)),
            csv=bool(output.get("csv", False)),
        )
        files = ["points.parquet"] + (["points.csv"] if output.get("csv") else [])
        if output.get("plot", True) and digest.points > 1:  # one point trades nothing off
            from dse.report import tradeoff_plot

            x = output.get("x") or spec.tradeoff[0]
            y = (output.get("y") or spec.objective) if output.get("x") else spec.tradeoff[1]
            sample = digest.sample
            swept = [k for k in space.swept_paths if k in sample and sample[k].nunique() > 1]
            color = output.get("color") or _color_column(sample, swept, spec)
            title = f"{c.get('study')}: {_labels(c)['workload']} on {_labels(c)['pim']}"
            if x not in sample:  # a parameter the space does not sweep: plot against one it does
                cand = [k for k in sample if k in field_info() and k != y]
                cand.sort(key=lambda k: sample[k].dtype.kind not in "iuf")  # numeric first
                x = cand[0] if cand else None
            if x is not None and y in sample:
                if output.get("x"):
                    sense = (_lower_is_better(x, spec), _lower_is_better(y, spec))
                else:
                    sense = spec.tradeoff_min
                png = tradeoff_plot(
                    sample,
                    x,
                    y,
                    color,
                    out / "tradeoff.png",
                    title=title,
                    minimize=sense,
                    total_points=digest.points,
                    label=[k for k in swept if k != color][:3],
                )
                files.append(png.name)
        timeline = c.get("model") in ("system", "steady") and len(digest.best)
        if output.get("timeline", True) and timeline:
            files.append(_timeline(base, digest.best.iloc[0], out / "timeline.png").name)
        pts_s = digest.points / digest.eval_s if digest.eval_s > 0 else None
        summary = {
            "study": c.get("study"),
            "model": c.get("model"),
            "points": digest.points,
            "raw_points": digest.raw_points,
            "constrained_out": digest.raw_points - digest.points,
            "feasible_points": digest.feasible,
            "status_counts": digest.status_counts,
            "static_combinations": space.num_combos,
            "chunks": digest.chunks,
            "chunks_resumed": resumed,
            "chunks_evaluated": evaluated,
            "shard": shard,
            "chunk_size": chunk_size,
            "compile_s": round(digest.compile_s, 4),
            "trace_s": round(trace_cache.SECONDS["trace"] - trace_before, 4),
            "evaluation_s": round(digest.eval_s, 4),
            "points_per_s": round(pts_s, 1) if pts_s else None,
            "wall_s": round(time.perf_counter() - t_start, 3),
            "swept": list(space.swept_paths),
            "static": [a.path for a in space.static_axes],
            "objective": {"metric": spec.objective, "minimize": spec.minimize},
            "category_counts": digest.category_counts,
            "best": digest.best.to_dict(orient="records") if len(digest.best) else [],
            "files": files,
            **environment(),
            "config": c,
        }
        store.close(summary)
    except BaseException:
        store.release()
        raise
    store.release()
    _RUNNING.clear()
    _print_summary(summary, digest.best, spec, out, console)
    return RunResult(out, summary)


#: swept parameters that name a kind of system or policy: the trade-off plot's colour
_COLOR_FIRST = (
    "policy.system",
    "policy.partition",
    "policy.sched",
    "policy.kv_alloc",
    "policy.sbi",
    "policy.dual_rb",
    "policy.io",
    "policy.mapping",
    "workload.dtype",
)


def _color_column(sample: Any, swept: Sequence[str], spec: Any) -> str:
    """The policy or system kind the run sweeps, else the model's first categorical metric,
    else a swept parameter with at most 10 values; "" for none."""
    for k in _COLOR_FIRST:
        if k in swept and sample[k].nunique() <= 10:
            return k
    return next(iter(spec.categories), "") or next(
        (k for k in swept if sample[k].nunique() <= 10), ""
    )


def _lower_is_better(col: str, spec: Any) -> bool:
    """An axis's direction: the objective's own; else lower for times, energies, areas and
    tail latencies, higher for the rest (throughputs, utilizations, bandwidths)."""
    if col == spec.objective:
        return bool(spec.minimize)
    low = ("_ns", "_ms", "cycles", "J_", "energy", "_mm2", "area", "_J")
    return any(t in col for t in low)


def _shard_info(space: Space, c: Mapping[str, Any]) -> dict[str, Any]:
    """What ``python -m dse.merge`` needs to know of this run's shard of its study."""
    start, stop = space.shard_range
    return {
        "index": space.shard,
        "count": space.num_shards,
        "study_hash": study_hash(c),
        "raw_points": space.num_points,
        "total_raw_points": space.total_points,
        "static_combinations": space.num_combos,
        "range_per_combination": [start, stop],
    }


def _timeline(base: DesignPoint, row: Any, path: Path) -> Path:
    """Gantt chart of the first two layers of the best point's step: the op graph of
    :mod:`dse.reference.system`, list-scheduled, one lane per device."""
    import jax
    import numpy as np

    from dse._pytree import get_path, replace_paths
    from dse.models import system
    from dse.reference.system import simulate_point, timeline_plot

    infos = field_info()
    values = {
        k: np.asarray(infos[k].check(row[k], "results"))
        for k in row.index
        if k in infos and not infos[k].static
    }
    point = replace_paths(base, values)
    schedule = compile_cached(system.schedule_inputs, (point,), "schedule_inputs")
    inputs = jax.tree.map(np.asarray, schedule(point))
    fields = {k: float(np.asarray(get_path(point, k))) for k, i in infos.items() if not i.static}
    ref = simulate_point(fields, inputs)
    kind = system.SystemKind(int(fields["policy.system"])).name
    title = (
        f"{kind}: first two layers of the step "
        f"({ref['step_ns'] / 1e6:.3f} ms; host busy {ref['host_busy']:.0%}, "
        f"PIM busy {ref['pim_busy']:.0%})"
    )
    return timeline_plot(ref["ops"], path, title=title, layers=2)


def enable_package_loggers() -> None:
    """Hydra's ``hydra/job_logging=disabled`` disables every logger that exists when a job
    starts, and the flag outlives the job: a later run in the same process (the Python API,
    a merge's own jobs, a test) lost the package's messages. Each job starts with them
    enabled again; the job's logging config still sets levels and handlers (with
    ``disabled``, the root logger's ERROR level still holds back warnings)."""
    for name, lg in logging.Logger.manager.loggerDict.items():
        if isinstance(lg, logging.Logger) and (name == "dse" or name.startswith("dse.")):
            lg.disabled = False


def _discard_if_empty(path: Path, moved_to: Path | None = None) -> None:
    """Remove a Hydra run dir that holds only Hydra's own records (no results). Log files
    open there (Hydra's job log) move to ``moved_to`` first, appending, so that the run's
    later log lines land in the directory it continues; without one they are closed."""
    if not path.is_dir():
        return
    names = {p.name for p in path.iterdir()}
    if names <= {".hydra", "main.log", "__main__.log", "cli.log", "dse.log", "multirun.yaml"}:
        loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
        for lg in loggers:
            for h in list(getattr(lg, "handlers", ())):
                if isinstance(h, logging.FileHandler) and Path(h.baseFilename).parent == path:
                    h.acquire()
                    try:
                        h.close()
                        if moved_to is not None:
                            target = moved_to / Path(h.baseFilename).name
                            h.baseFilename, h.mode = str(target), "a"
                            h.stream = None  # reopened at the next record
                    finally:
                        h.release()
                    if moved_to is None:  # nothing of this run stays: its log goes too
                        lg.removeHandler(h)
        shutil.rmtree(path, ignore_errors=True)
        _prune_empty_parents(path.parent)


def _prune_empty_parents(path: Path) -> None:
    """Remove ``path`` and its parents while they are empty folders (a run's study and
    results folders made for a run that wrote nothing), up to the working directory."""
    stop = Path.cwd().resolve()
    path = path.resolve()
    while path != stop and stop in path.parents:
        try:
            path.rmdir()  # only ever an empty folder
        except OSError:
            return
        path = path.parent


def _print_summary(summary: dict, best: Any, spec: Any, out: Path, console: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    con = console or Console(highlight=False)
    if console is None and not con.is_terminal:
        con = Console(highlight=False, width=160)
    n, feas = summary["points"], summary["feasible_points"]
    rate = summary["points_per_s"]
    con.print(
        f"[bold]dse[/] {summary['study']}: {n:,} design points ({feas:,} feasible), "
        f"compile {summary['compile_s']:.2f} s"
        + (f" (tracing {summary['trace_s']:.2f} s of it)" if summary.get("trace_s") else "")
        + f", evaluation {summary['evaluation_s']:.3f} s"
        + (f" ({rate:,.0f} points/s)" if rate else "")
    )
    dropped = summary.get("constrained_out", 0)
    if dropped:  # say where the rest of the points asked for went
        raw = summary["raw_points"]
        con.print(
            f"space.constraints dropped {dropped:,} of the {raw:,} points sampled "
            f"({dropped / raw:.0%}); {n:,} evaluated"
        )
    if len(best):
        params = [p for p in summary["swept"] + summary["static"] if p in best]
        cols = params + list(spec.headline)
        if "status" in best and (best["status"].astype(str) != "ok").any():
            cols.append("status")  # a note (batch_limited) on a feasible point
        table = Table(title=f"best {len(best)} by {spec.objective}", title_justify="left")
        for col in cols:
            short = col.split(".")[-1]
            # a parameter's short name unless a metric has it (workload.batch vs batch)
            label = short if col in params and short not in spec.metrics else col
            table.add_column(label, justify="right")
        for _, row in best.iterrows():
            table.add_row(*[_fmt(row[col]) for col in cols])
        con.print(table)
    for cat, counts in summary["category_counts"].items():
        total = sum(counts.values())
        if total:
            parts = sorted(counts.items(), key=lambda kv: -kv[1])
            text = ", ".join(f"{k} {v / total:.0%}" for k, v in parts if v)
            con.print(f"dominant {cat} over feasible points: {text}")
    advisory = {n for b, n in STATUS_BITS.items() if b & ADVISORY}
    notes: dict[str, int] = {}
    infeasible: dict[str, int] = {}
    for k, v in summary["status_counts"].items():
        if k != "ok":
            (notes if set(k.split("|")) <= advisory else infeasible)[k] = v
    if infeasible:
        con.print("infeasible: " + ", ".join(f"{k} {v:,}" for k, v in infeasible.items()))
    if notes:  # feasible, metrics kept, but not quite what was asked
        text = ", ".join(f"{k} {v:,}" for k, v in notes.items())
        con.print(f"feasible with a note: {text}" + _NOTE_HELP)
    shard = summary.get("shard") or {}
    if shard.get("count", 1) > 1:
        con.print(
            f"shard {shard['index']} of {shard['count']}: {shard['raw_points']:,} of "
            f"{shard['total_raw_points']:,} raw design points (merge: python -m dse.merge)"
        )
    con.print(f"results: {out}/ ({', '.join(summary['files'] + ['summary.json'])})")


_NOTE_HELP = (
    " (batch_limited: fewer decode requests fit the KV memory than workload.batch asked "
    "for; the metrics are the admitted batch's, column 'admitted')"
)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    return str(v)


# --- Python API ---------------------------------------------------------------------------
def _compose(
    overrides: Sequence[str],
    config_name: str = "config",
    config_dir: str | os.PathLike | None = None,
) -> tuple[Any, Provenance]:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_configs()
    overrides = with_cluster(overrides)
    cdir = Path(config_dir or CONF_DIR).resolve()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(cdir), version_base="1.3"):
            cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    except Exception as exc:
        err = _hydra_error(exc, list(overrides), cdir, config_name)
        if err is None:
            raise
        raise err from None
    from omegaconf import open_dict

    choices = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, _provenance(choices, overrides, cdir, config_name)


def _provenance(
    choices: Mapping[str, Any], overrides: Sequence[str], cdir: Path, config_name: str
) -> Provenance:
    files = {}
    for group, package in GROUP_PACKAGES.items():
        choice = choices.get(group)
        if choice:
            files[package] = str(_group_file(group, str(choice), cdir))
    primary = next(
        (p for p in (cdir / f"{config_name}.yaml", CONF_DIR / f"{config_name}.yaml") if p.exists()),
        cdir / f"{config_name}.yaml",
    )
    return Provenance(files, tuple(overrides), str(primary), _yaml_keys(primary))


def _yaml_keys(path: Path) -> frozenset[str]:
    """Dotted keys a config file sets itself (its defaults list and hydra node excluded)."""
    from omegaconf import DictConfig, OmegaConf

    keys: set[str] = set()

    def walk(node: Any, prefix: str) -> None:
        for k, v in node.items():
            if not prefix and k in ("defaults", "hydra"):
                continue
            if isinstance(v, DictConfig) and len(v):
                walk(v, f"{prefix}{k}.")
            else:
                keys.add(f"{prefix}{k}")

    with contextlib.suppress(Exception):
        walk(OmegaConf.load(path), "")
    return frozenset(keys)


def _group_file(group: str, choice: str, cdir: Path) -> Path:
    for d in (cdir, CONF_DIR):
        p = d / group / f"{choice}.yaml"
        if p.exists():
            return p
    return CONF_DIR / group / f"{choice}.yaml"


@with_x64
def explore(
    overrides: Sequence[str] = (),
    config_name: str = "config",
    config_dir: str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
) -> Any:
    """Evaluate the space that ``overrides`` (the CLI's syntax) select; return a DataFrame.

    With ``output_dir`` the run also writes its files there, as the CLI does.
    """
    import pandas as pd

    cfg, prov = _compose(overrides, config_name, config_dir)
    if output_dir is not None:
        res = run(cfg, output_dir, prov, console=_quiet_console())
        return pd.read_parquet(res.dir / "points.parquet")
    c, base, space = build(cfg, prov)
    size = chunk_size_for(
        space, _chunk_request(c), 1 if MODELS[c.get("model", "pim_gemv")].max_chunk else 256
    )
    model, devices = c.get("model", "pim_gemv"), c.get("devices", 0)
    frames = [r.frame for r in evaluate(space, model, size, labels=_labels(c), devices=devices)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _quiet_console() -> Any:
    from rich.console import Console

    return Console(file=open(os.devnull, "w"))  # noqa: SIM115


# --- Hydra entry ----------------------------------------------------------------------------
def _task(cfg: Any) -> dict[str, Any] | float:
    from hydra.core.hydra_config import HydraConfig

    use_host_cores(warn=False)  # a launcher's job starts here, not in main()
    enable_package_loggers()
    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    dirs = {s.provider: Path(s.path) for s in hc.runtime.config_sources if s.schema == "file"}
    cdir = dirs.get("command-line", dirs.get("main", CONF_DIR))  # -cd wins over conf/
    prov = _provenance(
        dict(hc.runtime.choices), list(hc.overrides.task), cdir, hc.job.config_name or "config"
    )
    multirun = str(hc.mode) == "RunMode.MULTIRUN"
    study_root = out.parent.parent if multirun else out.parent
    try:
        summary = run(cfg, out, prov, study_root=study_root).summary
    except ConfigError as err:
        _discard_if_empty(out)
        if multirun:
            _discard_if_empty(out.parent)
        # Report here: a job that raises makes Hydra add "Error executing job with
        # overrides: ..." to stderr, and bad input gets one line.
        _fail(err.oneline(), _USER_FULL_ERROR, err)
        raise
    if cfg.output.get("objective"):
        return objective_value(summary)
    return summary


def objective_value(summary: Mapping[str, Any]) -> float:
    """The best point's objective (``output.objective=true``: what ``python -m dse`` returns
    to Hydra, for a sweeper that optimizes it, such as Optuna's); NaN when no point is
    feasible (Optuna records the trial as failed)."""
    best = summary.get("best") or []
    metric = summary["objective"]["metric"]
    return float(best[0][metric]) if best and metric in best[0] else float("nan")


def _hydra_error(
    exc: BaseException, overrides: list[str], cdir: Path, config_name: str
) -> ConfigError | None:
    """Turn a Hydra/OmegaConf/YAML composition error into a one-line ConfigError."""
    import difflib

    import yaml
    from hydra.errors import HydraException, MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    from dse.point import field_info

    chain, e = [], exc
    while e is not None and e not in chain:
        chain.append(e)
        e = e.__cause__ or e.__context__

    def raised_in_hydra(e: BaseException) -> bool:  # e.g. a ValueError of the override parser
        tb, last = e.__traceback__, ""
        while tb is not None:
            last, tb = tb.tb_frame.f_code.co_filename, tb.tb_next
        return any(f"{os.sep}{m}{os.sep}" in last for m in ("hydra", "omegaconf"))

    if not any(
        isinstance(e, (HydraException, OmegaConfBaseException, yaml.YAMLError))
        or raised_in_hydra(e)
        for e in chain
    ):
        return None
    primary = cdir / f"{config_name}.yaml"
    if not primary.exists() and (CONF_DIR / f"{config_name}.yaml").exists():
        primary = CONF_DIR / f"{config_name}.yaml"

    bad_yaml = next((e for e in chain if isinstance(e, yaml.YAMLError)), None)
    if bad_yaml is not None:  # a config file that is not YAML
        mark = getattr(bad_yaml, "problem_mark", None) or getattr(bad_yaml, "context_mark", None)
        name = str(getattr(mark, "name", "") or "")
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(bad_yaml, "problem", None) or str(bad_yaml).splitlines()[0]
        return ConfigError(
            name if name and not name.startswith("<") else str(primary),
            "",
            f"valid YAML ({problem}{where})",
        )
    bad_override = next((e for e in chain if isinstance(e, OverrideParseException)), None)
    if bad_override is not None:  # not Hydra's override grammar
        ov = str(bad_override.override)
        causes = [str(e).strip() for e in chain[chain.index(bad_override) + 1 :] if str(e).strip()]
        got = (causes or [str(bad_override.message).strip()])[0].splitlines()[0]
        return ConfigError(
            f"command line override '{ov}'",
            ov.split("=", 1)[0].lstrip("+~"),
            "key=value in Hydra's override grammar (quote a value with spaces or special "
            "characters: 'key=\"a > b\"')",
            got,
        )
    missing = next((e for e in chain if isinstance(e, MissingConfigException)), None)
    if missing is not None and missing.options is not None:  # unknown preset of a group
        group = (missing.missing_cfg_file or "").split("/")[0]
        return ConfigError(
            _override_source(group, overrides) or str(primary),
            group or "config",
            f"one of {sorted(missing.options)}",
            (missing.missing_cfg_file or "").split("/")[-1],
        )
    text_all = " ".join(str(e) for e in chain)
    bad_dir = re.search(r"config directory '([^']*)'", text_all)
    if bad_dir:  # -cd to a directory that is not there
        return ConfigError(
            f"command line option '--config-dir {bad_dir.group(1)}'",
            "--config-dir",
            "an existing config directory",
            bad_dir.group(1),
        )
    if missing is not None and missing.missing_cfg_file == config_name:  # -cn of no file
        names = sorted(p.stem for p in cdir.glob("*.yaml")) if cdir.is_dir() else []
        return ConfigError(
            str(cdir / f"{config_name}.yaml"),
            "--config-name",
            f"the name of a config in {cdir}: one of {names}",
            config_name,
        )

    key = next((getattr(e, "full_key", None) for e in chain if getattr(e, "full_key", None)), None)
    texts: list[str] = []
    for e in chain:
        t = str(e).split("\n    full_key:")[0]
        t = re.sub(r"^In '[^']*': \w+ raised while composing config:", "", t.strip())
        t = re.sub(r"^Error merging override \S+", "", t.strip())
        t = t.replace("To append to your config use", "; to add a new key use")
        t = " ".join(t.split())
        if t and "$VALUE" not in t and not any(t in x for x in texts):
            texts.append(t)
    text = " ".join(texts)
    composing = next((m.group(1) for e in chain if (m := re.match(r"In '([^']+)'", str(e)))), None)
    in_file = None
    if composing:  # the config file whose merge failed
        group, _, choice = composing.rpartition("/")
        in_file = str(
            _group_file(group, choice, cdir)
            if group
            else next(
                (p for p in (cdir / f"{choice}.yaml", CONF_DIR / f"{choice}.yaml") if p.exists()),
                primary,
            )
        )
    if not key and composing and "Cannot merge" in text:
        key, expected = _merge_conflict(in_file, composing, overrides, cdir, config_name)
        if key:
            return ConfigError(in_file, key, expected)
    if not key and composing and "/" in composing:  # a group file that is no mapping of values
        key = GROUP_PACKAGES.get(composing.split("/")[0])
    if key:
        # With the failing file known, a group choice (space=x) only says which file it was.
        source = (
            _override_source(
                key,
                [
                    o
                    for o in overrides
                    if not in_file or o.split("=", 1)[0].lstrip("+~/") not in GROUP_PACKAGES
                ],
            )
            or in_file
        )
        if source is None:
            group = next(
                (g for g, pkg in GROUP_PACKAGES.items() if key == pkg or key.startswith(pkg + ".")),
                None,
            )
            choice = _choice(group, overrides, cdir, config_name) if group else None
            source = str(_group_file(group, choice, cdir)) if choice else str(primary)
        fields = field_info()
        if key in fields:
            expected = f"{fields[key].expected()} ({text})"
        elif "not in" in text or "Could not override" in text:
            from omegaconf import OmegaConf

            from dse.config import Config

            schema = OmegaConf.structured(Config)
            known = [
                *fields,
                *(
                    f"{k}.{k2}" if k2 else k
                    for k in schema
                    for k2 in ([""] + list(schema[k]) if k in ("space", "output") else [""])
                ),
            ]
            close = difflib.get_close_matches(key, known, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            expected = f"a known key{hint}: {text}"
        elif "Cannot merge" in text and key.startswith("space.axes."):
            expected = (
                "the form of the axis it replaces: a list and a {range: ...}-style "
                f"mapping do not merge (delete it first with ~{key}, or start from "
                "space=single)"
            )
        else:
            expected = "a valid value: " + text
        return ConfigError(source, key, expected)
    return ConfigError(
        in_file or _override_source("", overrides) or str(primary),
        "",
        "a valid configuration: " + text,
    )


def _merge_conflict(
    path: str | None, composing: str, overrides: Sequence[str], cdir: Path, config_name: str
) -> tuple[str, str]:
    """The axis of ``path`` that a list/mapping mismatch with the space preset's axis broke."""
    from omegaconf import OmegaConf

    from dse.space import _flatten

    choice = _choice("space", overrides, cdir, config_name)
    if not path or not choice or "/" in composing:
        return "", ""
    with contextlib.suppress(Exception):
        mine: dict[str, Any] = {}
        base: dict[str, Any] = {}
        _flatten(
            OmegaConf.to_container(OmegaConf.load(path)).get("space", {}).get("axes") or {},
            "",
            mine,
        )
        _flatten(
            OmegaConf.to_container(OmegaConf.load(_group_file("space", choice, cdir))).get("axes")
            or {},
            "",
            base,
        )
        for axis, spec in mine.items():
            if axis in base and isinstance(spec, Mapping) != isinstance(base[axis], Mapping):
                return (
                    f"space.axes.{axis}",
                    f"the form of the axis in space preset '{choice}' "
                    f"({'a mapping' if isinstance(base[axis], Mapping) else 'a list'}): a "
                    "list and a {range: ...}-style mapping do not merge (use "
                    f"'override /space: single' to define the axes afresh), got {spec!r}",
                )
    return "", ""


def _override_source(key: str, overrides: Sequence[str]) -> str | None:
    """``command line override '...'`` for ``key``; with no key, all the overrides."""
    ov = override_for(key, overrides)
    if ov is not None:
        return f"command line override '{ov}'"
    if not key and overrides:
        return "command line overrides " + " ".join(f"'{o}'" for o in overrides)
    return None


def _choice(group: str, overrides: Sequence[str], cdir: Path, config_name: str) -> str | None:
    """The option of ``group`` chosen by the overrides, else by the defaults lists (followed
    from the primary config into the configs it reuses, e.g. a study's ``- config``)."""
    for ov in overrides:
        name, _, val = ov.partition("=")
        if name.lstrip("+~").lstrip("/") == group and val and "," not in val:
            return val
    from omegaconf import OmegaConf

    queue, seen = [config_name], set()
    while queue:
        name = queue.pop(0)
        path = next(
            (p for p in (cdir / f"{name}.yaml", CONF_DIR / f"{name}.yaml") if p.exists()), None
        )
        if name in seen or path is None:
            continue
        seen.add(name)
        with contextlib.suppress(Exception):
            for item in OmegaConf.load(path).get("defaults", []):
                if isinstance(item, Mapping):
                    for k, v in item.items():
                        if str(k).replace("override ", "").strip("/ ") == group:
                            return str(v)
                elif isinstance(item, str) and item != "_self_" and "/" not in item:
                    queue.append(item)
    return None


def _argv_config(argv: Sequence[str]) -> tuple[Path, str, list[str]]:
    cdir, cname, rest = CONF_DIR, "config", []
    it = iter(argv)
    for a in it:
        if a in ("-cd", "--config-dir"):
            cdir = Path(next(it, "."))
        elif a.startswith("--config-dir="):
            cdir = Path(a.split("=", 1)[1])
        elif a in ("-cp", "--config-path"):
            cdir = Path(next(it, "."))
        elif a in ("-cn", "--config-name"):
            cname = next(it, "config")
        elif a.startswith("--config-name="):
            cname = a.split("=", 1)[1]
        elif a in ("-c", "--cfg", "-p", "--package", "--experimental-rerun"):
            next(it, None)  # an option's value, not an override
        elif not a.startswith("-"):
            rest.append(a)
    return cdir.resolve(), cname, rest


@command
def main(argv: Sequence[str] | None = None) -> None:
    """``python -m dse``: Hydra app; bad input → one line on stderr, exit 2."""
    import hydra

    register_configs()
    argv = list(sys.argv[1:] if argv is None else argv)
    global _USER_FULL_ERROR
    user_full_error = _USER_FULL_ERROR = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # exceptions reach us instead of Hydra's printer
    entry = hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(_task)
    saved = sys.argv
    try:
        argv = _expand_cluster_argv(argv)
    except ConfigError as err:
        _fail(err.oneline(), user_full_error, err)
    sys.argv = [saved[0] if saved else "dse", *argv]
    try:
        with catch_termination() as caught:
            entry()
    except KeyboardInterrupt:
        interrupted(caught)
    except ConfigError as err:
        _fail(err.oneline(), user_full_error, err)
    except Exception as exc:
        cdir, cname, overrides = _argv_config(argv)
        err = _hydra_error(exc, overrides, cdir, cname)
        if err is None:
            raise
        _fail(err.oneline(), user_full_error, exc)
    finally:
        sys.argv = saved
        if not user_full_error:
            os.environ.pop("HYDRA_FULL_ERROR", None)


def _expand_cluster_argv(argv: list[str]) -> list[str]:
    """:func:`with_cluster` on the overrides of a command line (options kept in place)."""
    _, _, overrides = _argv_config(argv)
    expanded = with_cluster(overrides)
    extra = expanded[: len(expanded) - len(overrides)]
    return [*extra, *argv] if extra else argv


@contextlib.contextmanager
def catch_termination() -> Iterator[list[str]]:
    """Within the block, SIGTERM (``kill``, ``scancel``) raises KeyboardInterrupt as SIGINT
    does, so that a terminated run cleans up like an interrupted one; yields a list that
    receives the name of the signal that arrived. The previous handlers come back after."""
    import signal

    caught: list[str] = []

    def handler(signum: int, frame: Any) -> None:
        caught.append(signal.Signals(signum).name)
        raise KeyboardInterrupt

    saved = {}
    with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
        for sig in (signal.SIGTERM, signal.SIGINT):
            saved[sig] = signal.signal(sig, handler)
    try:
        yield caught
    finally:
        for sig, previous in saved.items():
            signal.signal(sig, previous)


def interrupted(caught: Sequence[str], prog: str = "dse") -> None:
    """One line for an interrupted run, exit 130; the finished chunks stay for resume."""
    name = caught[0] if caught else "SIGINT"
    where = ""
    if _RUNNING:
        store = _RUNNING[0]
        store.release()
        where = (
            f"; {store.completed()} finished chunks kept in {store.dir} "
            "(rerun with resume=true to continue)"
        )
    print(f"{prog}: interrupted by {name}{where}", file=sys.stderr)
    sys.exit(130)


def _fail(line: str, full: bool, exc: BaseException) -> None:
    if full:
        raise exc
    print(f"dse: error: {line}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)
