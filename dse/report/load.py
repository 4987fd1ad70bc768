"""Reading a run for the report: the points table, the run's summary and its jobs.

A *run directory* holds ``points.parquet`` (or ``points.csv``) and ``summary.json``; a
*multirun directory* holds numbered job folders, each a run directory with Hydra's
``.hydra/overrides.yaml``; a *merged shard directory* is a run directory too, or holds one
run directory per shard (any folder names), whose tables are concatenated and deduplicated by
``point_id``. Jobs get a ``job`` column and the overrides that differ between them become
label columns (``overrides``, and one column per overridden key the table lacks).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from dse.errors import ConfigError

__all__ = ["Run", "load_run"]

#: result tables a run directory may hold, in the order they are looked for
TABLES = ("points.parquet", "points.csv", "history.parquet", "history.csv")


@dataclasses.dataclass
class Run:
    """One run as the report sees it.

    ``table``: every design point (a ``job`` column for multiruns); ``summary``: the first
    job's ``summary.json`` (``{}`` without one); ``jobs``: job name → (directory, summary,
    overrides); ``source``: what was read.
    """

    table: pd.DataFrame
    summary: dict[str, Any]
    jobs: dict[str, tuple[Path, dict[str, Any], list[str]]]
    source: Path

    @property
    def multirun(self) -> bool:
        return len(self.jobs) > 1


def _read_table(f: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(f) if f.suffix == ".csv" else pd.read_parquet(f)
    except Exception as exc:  # a truncated or foreign file
        raise ConfigError(
            str(f), "", "a readable Parquet or CSV table", type(exc).__name__
        ) from None


def _read_json(f: Path) -> dict[str, Any]:
    if not f.is_file():
        return {}
    try:
        data = json.loads(f.read_text())
    except (OSError, ValueError):
        raise ConfigError(str(f), "", "a JSON summary of the run", "unreadable JSON") from None
    return data if isinstance(data, dict) else {}


def _summary(d: Path) -> dict[str, Any]:
    """``summary.json`` of ``python -m dse``, else ``search.json`` of ``python -m dse.search``."""
    return _read_json(d / "summary.json") or _read_json(d / "search.json")


def _overrides(d: Path) -> list[str]:
    f = d / ".hydra" / "overrides.yaml"
    if not f.is_file():
        return []
    import yaml

    try:
        items = yaml.safe_load(f.read_text()) or []
    except yaml.YAMLError:
        return []
    return [str(o) for o in items] if isinstance(items, list) else []


def _table_in(d: Path) -> Path | None:
    return next((d / n for n in TABLES if (d / n).is_file()), None)


def _scalar(text: str) -> Any:
    """An override's value as YAML reads it (``4`` → 4, ``fp16`` → ``"fp16"``)."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, int | float | str | bool) else text


def _label_jobs(frames: dict[str, pd.DataFrame], overrides: Mapping[str, list[str]]) -> None:
    """Add the overrides that differ between jobs to each job's frame, in place."""
    parsed = {
        j: dict(o.lstrip("+~").split("=", 1) for o in ovs if "=" in o)
        for j, ovs in overrides.items()
    }
    keys = list(dict.fromkeys(k for p in parsed.values() for k in p))
    varying = [k for k in keys if len({p.get(k) for p in parsed.values()}) > 1]
    for j, frame in frames.items():
        mine = parsed.get(j, {})
        frame["overrides"] = " ".join(f"{k}={mine[k]}" for k in varying if k in mine) or j
        for k in varying:
            if k not in frame.columns and k in mine:
                frame[k] = _scalar(mine[k])


def load_run(path: str | Path) -> Run:
    """The points table and summaries of a run.

    Parameters
    ----------
    path : path-like
        A run directory (``points.parquet``/``.csv`` or a search's ``history.parquet``), a
        multirun directory of numbered job folders, a directory of shard run directories, or
        a Parquet/CSV table.

    Returns
    -------
    Run
        The table (multirun jobs concatenated with ``job`` and ``overrides`` columns; shards
        concatenated with a ``shard`` column and deduplicated by ``point_id``) and the
        summaries.

    Raises
    ------
    dse.errors.ConfigError
        Naming the path, when it does not exist, holds no table or an unreadable one.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(
            str(path), "", "a results directory or a .parquet/.csv table", "nothing there"
        )
    if path.is_file():
        if path.suffix not in (".parquet", ".csv"):
            raise ConfigError(str(path), "", "a results directory or a .parquet/.csv table")
        summary = _summary(path.parent)
        return Run(_read_table(path), summary, {"": (path.parent, summary, [])}, path)
    own = _table_in(path)
    if own is not None:
        summary = _summary(path)
        return Run(_read_table(own), summary, {"": (path, summary, _overrides(path))}, path)
    subdirs = sorted(
        (d for d in path.iterdir() if d.is_dir() and _table_in(d) is not None),
        key=lambda d: (not d.name.isdigit(), int(d.name) if d.name.isdigit() else 0, d.name),
    )
    numbered = [d for d in subdirs if d.name.isdigit()]
    jobs_dirs = numbered or subdirs
    if not jobs_dirs:
        raise ConfigError(
            str(path),
            "",
            f"a run directory holding one of {list(TABLES)}, a multirun directory of numbered "
            "job folders holding one, or a .parquet/.csv table",
            "none found",
        )
    frames: dict[str, pd.DataFrame] = {}
    jobs: dict[str, tuple[Path, dict[str, Any], list[str]]] = {}
    for d in jobs_dirs:
        frames[d.name] = _read_table(_table_in(d)).copy()
        jobs[d.name] = (d, _summary(d), _overrides(d))
    if numbered:
        _label_jobs(frames, {j: ov for j, (_, _, ov) in jobs.items()})
        for j, frame in frames.items():
            frame.insert(0, "job", int(j))
        table = pd.concat(frames.values(), ignore_index=True)
    else:  # shards of one space: the same columns, merged by design point
        for j, frame in frames.items():
            frame["shard"] = j
        table = pd.concat(frames.values(), ignore_index=True)
        if "point_id" in table.columns:
            table = table.drop_duplicates("point_id", keep="first", ignore_index=True)
    summary = next((s for _, s, _ in jobs.values() if s), {})
    return Run(table, summary, jobs, path)
