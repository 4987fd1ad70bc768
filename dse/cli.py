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
import logging
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dse.config import CONF_DIR, register_configs
from dse.errors import EXIT_BAD_INPUT, ConfigError
from dse.explore import chunk_size_for, enable_compilation_cache, evaluate
from dse.models import MODELS
from dse.point import DesignPoint, Provenance, from_config
from dse.results import RunStore, config_hash, environment
from dse.space import Space, build_space

__all__ = ["run", "explore", "main", "RunResult", "build"]

log = logging.getLogger("dse")
GROUP_PACKAGES = {"pim": "hw.pim", "workload": "workload", "policy": "policy", "space": "space"}


@dataclasses.dataclass
class RunResult:
    dir: Path
    summary: dict[str, Any]


def _container(cfg: Any) -> dict[str, Any]:
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True, enum_to_str=False,
                                     throw_on_missing=False)
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


def build(cfg: Any, provenance: Provenance | None = None) -> tuple[dict, DesignPoint, Space]:
    """Config → (plain config dict, base design point, space). Raises ConfigError."""
    c = _container(cfg)
    prov = provenance or Provenance()
    model = c.get("model", "pim_gemv")
    if model not in MODELS:
        raise ConfigError(prov.source_of("model"), "model", f"one of {list(MODELS)}", model)
    base = from_config(c, prov, loader=_ini_loader)
    space = build_space(c.get("space") or {}, base, source=prov.source_of("space"))
    chunk = c.get("chunk_size", 262144)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ConfigError(prov.source_of("chunk_size"), "chunk_size", "an integer >= 1", chunk)
    return c, base, space


def _labels(c: Mapping[str, Any]) -> dict[str, str]:
    return {"pim": str(c["hw"]["pim"].get("name", "")),
            "workload": str(c["workload"].get("name", ""))}


def run(
    cfg: Any,
    out_dir: str | os.PathLike,
    provenance: Provenance | None = None,
    study_root: str | os.PathLike | None = None,
    console: Any = None,
) -> RunResult:
    """Evaluate the space of ``cfg`` into ``out_dir``; return the summary."""
    t_start = time.perf_counter()
    c, base, space = build(cfg, provenance)
    spec = MODELS[c.get("model", "pim_gemv")]
    out = Path(c.get("output", {}).get("dir") or out_dir)
    h = config_hash(c)
    if c.get("resume"):
        root = Path(study_root) if study_root else out.parent
        prev = RunStore.find_unfinished(root, h, exclude=None)
        if prev is not None and prev.resolve() != out.resolve():
            log.info("resuming %s", prev)
            _discard_if_empty(out)
            out = prev
    out.mkdir(parents=True, exist_ok=True)
    store = RunStore(out, h)
    store.open({"study": c.get("study"), "points": space.num_points})
    resumed = store.completed()
    enable_compilation_cache()
    chunk_size = chunk_size_for(space, c.get("chunk_size", 262144))
    evaluated = 0
    for res in evaluate(
        space, c.get("model", "pim_gemv"), chunk_size, labels=_labels(c),
        skip=store.has_chunk, progress=bool(c.get("progress", True)),
    ):
        store.write_chunk(res.combo, res.index, res.frame, {
            "points": len(res.frame), "raw_points": res.raw_points,
            "compile_s": res.compile_s, "eval_s": res.eval_s,
        })
        evaluated += 1
    output = c.get("output") or {}
    categories = tuple(spec.categories)
    digest = store.finalize(spec.objective, spec.minimize, categories,
                            top=int(output.get("top", 8)), csv=bool(output.get("csv", False)))
    files = ["points.parquet"] + (["points.csv"] if output.get("csv") else [])
    if output.get("plot", True):
        from dse.report import tradeoff_plot

        x = output.get("x") or spec.tradeoff[0]
        y = output.get("y") if output.get("x") else spec.tradeoff[1]
        color = output.get("color") or "bottleneck"
        title = f"{c.get('study')}: {_labels(c)['workload']} on {_labels(c)['pim']}"
        png = tradeoff_plot(digest.sample, x, y, color, out / "tradeoff.png", title=title,
                            maximize_y=y not in ("time_ns", "cycles"),
                            total_points=digest.points)
        files.append(png.name)
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
        "chunk_size": chunk_size,
        "compile_s": round(digest.compile_s, 4),
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
    _print_summary(summary, digest.best, spec, out, console)
    return RunResult(out, summary)


def _discard_if_empty(path: Path) -> None:
    """Remove a Hydra run dir that holds only Hydra's own records (no results)."""
    if not path.is_dir():
        return
    names = {p.name for p in path.iterdir()}
    if names <= {".hydra", "main.log", "__main__.log", "cli.log"} or not names:
        shutil.rmtree(path, ignore_errors=True)


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
        f"compile {summary['compile_s']:.2f} s, evaluation {summary['evaluation_s']:.3f} s"
        + (f" ({rate:,.0f} points/s)" if rate else "")
    )
    if len(best):
        params = [p for p in summary["swept"] + summary["static"] if p in best]
        table = Table(title=f"best {len(best)} by {spec.objective}", title_justify="left")
        for col in params + list(spec.headline):
            table.add_column(col.split(".")[-1] if col in params else col, justify="right")
        for _, row in best.iterrows():
            table.add_row(*[_fmt(row[col]) for col in params + list(spec.headline)])
        con.print(table)
    for cat, counts in summary["category_counts"].items():
        total = sum(counts.values())
        if total:
            parts = sorted(counts.items(), key=lambda kv: -kv[1])
            text = ", ".join(f"{k} {v / total:.0%}" for k, v in parts if v)
            con.print(f"dominant {cat} over feasible points: {text}")
    infeasible = {k: v for k, v in summary["status_counts"].items() if k != "ok"}
    if infeasible:
        con.print("infeasible: " + ", ".join(f"{k} {v:,}" for k, v in infeasible.items()))
    con.print(f"results: {out}/ ({', '.join(summary['files'] + ['summary.json'])})")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    return str(v)


# --- Python API ---------------------------------------------------------------------------
def _compose(overrides: Sequence[str], config_name: str = "config",
             config_dir: str | os.PathLike | None = None) -> tuple[Any, Provenance]:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_configs()
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


def _provenance(choices: Mapping[str, Any], overrides: Sequence[str], cdir: Path,
                config_name: str) -> Provenance:
    files = {}
    for group, package in GROUP_PACKAGES.items():
        choice = choices.get(group)
        if choice:
            files[package] = str(_group_file(group, str(choice), cdir))
    primary = cdir / f"{config_name}.yaml"
    return Provenance(files, tuple(overrides), str(primary))


def _group_file(group: str, choice: str, cdir: Path) -> Path:
    for d in (cdir, CONF_DIR):
        p = d / group / f"{choice}.yaml"
        if p.exists():
            return p
    return CONF_DIR / group / f"{choice}.yaml"


def explore(overrides: Sequence[str] = (), config_name: str = "config",
            config_dir: str | os.PathLike | None = None,
            output_dir: str | os.PathLike | None = None) -> Any:
    """Evaluate the space that ``overrides`` (the CLI's syntax) select; return a DataFrame.

    With ``output_dir`` the run also writes its files there, as the CLI does.
    """
    import pandas as pd

    cfg, prov = _compose(overrides, config_name, config_dir)
    if output_dir is not None:
        res = run(cfg, output_dir, prov, console=_quiet_console())
        return pd.read_parquet(res.dir / "points.parquet")
    c, base, space = build(cfg, prov)
    size = chunk_size_for(space, c.get("chunk_size", 262144))
    frames = [r.frame for r in evaluate(space, c.get("model", "pim_gemv"), size,
                                                     labels=_labels(c))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _quiet_console() -> Any:
    from rich.console import Console

    return Console(file=open(os.devnull, "w"))  # noqa: SIM115


# --- Hydra entry ----------------------------------------------------------------------------
def _task(cfg: Any) -> dict[str, Any]:
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    src = next((s for s in hc.runtime.config_sources if s.provider == "main"), None)
    cdir = Path(src.path.replace("file://", "")) if src is not None else CONF_DIR
    prov = _provenance(dict(hc.runtime.choices), list(hc.overrides.task), cdir,
                       hc.job.config_name or "config")
    multirun = str(hc.mode) == "RunMode.MULTIRUN"
    study_root = out.parent.parent if multirun else out.parent
    try:
        return run(cfg, out, prov, study_root=study_root).summary
    except ConfigError:
        _discard_if_empty(out)
        if multirun:
            _discard_if_empty(out.parent)
        raise


def _hydra_error(exc: BaseException, overrides: list[str], cdir: Path,
                 config_name: str) -> ConfigError | None:
    """Turn a Hydra/OmegaConf composition error into a one-line ConfigError."""
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    chain, e = [], exc
    while e is not None:
        chain.append(e)
        e = e.__cause__ or e.__context__
    if not any(isinstance(e, (HydraException, OmegaConfBaseException)) for e in chain):
        return None
    key = next((getattr(e, "full_key", None) for e in chain if getattr(e, "full_key", None)),
               None)
    texts = []
    for e in chain:
        t = str(e).split("\n    full_key:")[0]
        t = t.replace("To append to your config use", "; to add a new key use")
        if t and t not in texts:
            texts.append(t)
    text = " ".join(" ".join(texts).split())
    if isinstance(exc, MissingConfigException) and exc.options is not None:
        group = (exc.missing_cfg_file or "").split("/")[0]
        return ConfigError(
            _override_source(group, overrides) or str(cdir / f"{config_name}.yaml"),
            group or "config", f"one of {sorted(exc.options)}",
            (exc.missing_cfg_file or "").split("/")[-1],
        )
    if key:
        source = _override_source(key, overrides)
        if source is None:
            group = next((g for g, pkg in GROUP_PACKAGES.items()
                          if key == pkg or key.startswith(pkg + ".")), None)
            choice = _choice(group, overrides, cdir, config_name) if group else None
            source = (str(_group_file(group, choice, cdir)) if choice
                      else str(cdir / f"{config_name}.yaml"))
        return ConfigError(source, key, "a valid value: " + text)
    return ConfigError(_override_source("", overrides) or str(cdir / f"{config_name}.yaml"),
                       "", "a valid configuration: " + text)


def _override_source(key: str, overrides: Sequence[str]) -> str | None:
    for ov in overrides:
        name = ov.split("=", 1)[0].lstrip("+~")
        if key and (name == key or key.startswith(name + ".") or name.startswith(key + ".")):
            return f"command line override '{ov}'"
    if not key and overrides:
        return "command line overrides " + " ".join(f"'{o}'" for o in overrides)
    return None


def _choice(group: str, overrides: Sequence[str], cdir: Path, config_name: str) -> str | None:
    for ov in overrides:
        name, _, val = ov.partition("=")
        if name.lstrip("+~").lstrip("/") == group and val and "," not in val:
            return val
    with contextlib.suppress(Exception):
        from omegaconf import OmegaConf

        for d in (cdir, CONF_DIR):
            p = d / f"{config_name}.yaml"
            if p.exists():
                for item in OmegaConf.load(p).get("defaults", []):
                    if isinstance(item, Mapping):
                        for k, v in item.items():
                            if str(k).replace("override ", "").strip("/ ") == group:
                                return str(v)
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
        elif not a.startswith("-"):
            rest.append(a)
    return cdir.resolve(), cname, rest


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m dse``: Hydra app; bad input → one line on stderr, exit 2."""
    import hydra

    register_configs()
    argv = list(sys.argv[1:] if argv is None else argv)
    user_full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # exceptions reach us instead of Hydra's printer
    entry = hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(_task)
    saved = sys.argv
    sys.argv = [saved[0] if saved else "dse", *argv]
    try:
        entry()
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


def _fail(line: str, full: bool, exc: BaseException) -> None:
    if full:
        raise exc
    print(f"dse: error: {line}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)
