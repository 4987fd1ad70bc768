"""Merge the shard runs of a study: ``python -m dse.merge DIR_OR_RUN_DIRS... [--out OUT]``.

A study split over cluster jobs (``space.shard=i space.num_shards=n``, :mod:`dse.space`)
leaves one run directory per shard, each with ``points.parquet`` and ``summary.json`` (a Hydra
multirun puts them in numbered job folders). This command finds every finished run under the
given directories, groups them by study (:func:`dse.results.study_hash`: the config without
the shard keys, and the shard count) and writes one ``points.parquet`` and one
``summary.json`` to ``OUT`` (default: ``<the directories' common parent>/merged``).

* Rows are streamed with pyarrow: the ``point_id`` column of every shard is read once to find
  duplicates, then the full tables once, batch by batch, into the merged file. Rows keep
  their shards' order (shard 0's rows first); sort by ``point_id`` for a canonical order.
* Duplicates: an id found in more than one run (a shard run twice, or two shards drawing the
  same design point) is kept from the first run only; the count and the ids are reported.
  Repeats inside one run (a random sampler drawing the same point twice) are kept, as in an
  unsharded run.
* Missing points: every shard's summary says which shard of how many it is and how many raw
  design points (before constraints) each holds; shard indices with no finished run are
  named, with their raw point count. Unfinished runs (a killed job) are listed: rerun the
  shard with ``resume=true`` to continue from its finished chunks.

Exit status: 0 when complete; 1 when points are missing (the merged files are still written;
``--allow-missing`` exits 0); 2 for bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dse.errors import EXIT_BAD_INPUT, ConfigError, make_dir
from dse.results import (
    POINTS,
    STATE,
    SUMMARY,
    _atomic_path,
    _json_default,
    atomic_write_text,
    study_hash,
)
from dse.space import shard_bounds

__all__ = [
    "MergeResult",
    "ShardRun",
    "find_runs",
    "main",
    "merge",
    "print_report",
    "shard_benchmark",
]

EXIT_MISSING = 1
BATCH_ROWS = 262_144
LIST_MAX = 1000  # duplicate ids listed in summary.json


@dataclasses.dataclass
class ShardRun:
    """One run directory: a finished shard (``summary`` set) or an unfinished one."""

    dir: Path
    study: str
    study_hash: str
    index: int
    count: int
    total_raw_points: int
    combos: int
    raw_points: int = 0
    rows: int = 0
    summary: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        return self.summary is not None

    @property
    def group(self) -> tuple[str, int]:
        return self.study_hash, self.count


@dataclasses.dataclass
class MergeResult:
    """What :func:`merge` wrote and found."""

    out: Path
    summary: dict[str, Any]
    runs: list[ShardRun]

    @property
    def complete(self) -> bool:
        return bool(self.summary["complete"])


def _natural(path: Path) -> list[Any]:
    """Sort key that puts job folder 2 before 10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(str(path), "", "a JSON file written by python -m dse", str(exc)) from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", "a JSON object written by python -m dse", type(data))
    return data


def _shard_of(meta: dict[str, Any], path: Path) -> dict[str, Any]:
    """The ``shard`` block of a summary or state file; a run made without sharding is shard
    0 of 1."""
    shard = meta.get("shard")
    if isinstance(shard, dict):
        need = ("index", "count", "study_hash", "total_raw_points")
        missing = [k for k in need if k not in shard]
        if missing:
            raise ConfigError(str(path), "shard", f"the keys {list(need)}", sorted(shard))
        for k in ("index", "count", "total_raw_points", "static_combinations", "raw_points"):
            v = shard.get(k, 0)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(str(path), f"shard.{k}", "a non-negative integer", v)
        if not shard["index"] < shard["count"]:
            want = f"less than shard.count ({shard['count']})"
            raise ConfigError(str(path), "shard.index", want, shard["index"])
        return shard
    cfg = meta.get("config")
    points = meta.get("raw_points", meta.get("points"))
    if not isinstance(cfg, dict) or not isinstance(points, int):
        raise ConfigError(
            str(path), "shard", "a summary.json of python -m dse (shard, config, raw_points)"
        )
    return {"index": 0, "count": 1, "study_hash": study_hash(cfg), "total_raw_points": points}


def _run(run_dir: Path) -> ShardRun:
    """The finished run in ``run_dir`` (``summary.json`` + ``points.parquet``)."""
    summary = _read_json(run_dir / SUMMARY)
    shard = _shard_of(summary, run_dir / SUMMARY)
    table = run_dir / POINTS
    if not table.is_file():
        raise ConfigError(str(table), "", "the run's points table beside its summary.json")
    try:
        rows = pq.ParquetFile(table).metadata.num_rows
    except (OSError, pa.ArrowException) as exc:
        raise ConfigError(str(table), "", "a Parquet table", str(exc)) from None
    if rows != summary.get("points"):
        raise ConfigError(
            str(table), "", f"{summary.get('points')} rows (its summary.json)", f"{rows} rows"
        )
    return ShardRun(
        dir=run_dir,
        study=str(summary.get("study")),
        study_hash=str(shard["study_hash"]),
        index=int(shard["index"]),
        count=int(shard["count"]),
        total_raw_points=int(shard["total_raw_points"]),
        combos=int(shard.get("static_combinations", summary.get("static_combinations", 1))),
        raw_points=int(summary.get("raw_points", rows)),
        rows=rows,
        summary=summary,
    )


def _unfinished(state_file: Path) -> ShardRun | None:
    """The unfinished run whose ``.dse/state.json`` this is, or None (finished, or a state
    file from before shard records)."""
    try:
        meta = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return None
    shard = meta.get("shard")
    if meta.get("finished") or not isinstance(shard, dict):
        return None
    run_dir = state_file.parent.parent
    return ShardRun(
        dir=run_dir,
        study=str(meta.get("study")),
        study_hash=str(shard.get("study_hash")),
        index=int(shard.get("index", 0)),
        count=int(shard.get("count", 1)),
        total_raw_points=int(shard.get("total_raw_points", 0)),
        combos=int(shard.get("static_combinations", 1)),
        raw_points=int(shard.get("raw_points", 0)),
    )


def find_runs(paths: Iterable[str | os.PathLike], exclude: Path | None = None) -> list[ShardRun]:
    """Every run under ``paths`` (run directories or directories holding them), finished and
    unfinished, in a natural path order; merged outputs and ``exclude`` are skipped."""
    found: dict[Path, ShardRun] = {}
    skip = exclude.resolve() if exclude is not None else None
    for raw in paths:
        root = Path(raw)
        if not root.is_dir():
            raise ConfigError(
                str(root),
                "",
                "a run directory or a directory of runs (summary.json + points.parquet)",
                "no such directory",
            )
        summaries = [root / SUMMARY] if (root / SUMMARY).is_file() else []
        summaries += sorted(root.rglob(SUMMARY), key=_natural)
        for s in summaries:
            run_dir = s.parent.resolve()
            if (
                run_dir in found
                or STATE in s.parts
                or (skip and skip in (run_dir, *run_dir.parents))
            ):
                continue
            if _read_json(s).get("merged"):
                continue
            found[run_dir] = _run(s.parent)
        for state in sorted(root.rglob(f"{STATE}/state.json"), key=_natural):
            run_dir = state.parent.parent.resolve()
            if run_dir in found or (run_dir / SUMMARY).is_file():
                continue
            if skip and skip in (run_dir, *run_dir.parents):
                continue
            run = _unfinished(state)
            if run is not None:
                found[run_dir] = run
    if not any(r.finished for r in found.values()):
        raise ConfigError(
            ", ".join(str(p) for p in paths),
            "",
            "at least one finished run of python -m dse (summary.json + points.parquet)",
            "none found",
        )
    return list(found.values())


def _raw_points_of(run: ShardRun, index: int) -> int:
    per = run.total_raw_points // max(run.combos, 1)
    start, stop = shard_bounds(per, index, run.count)
    return (stop - start) * run.combos


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    cols = []
    for field in schema:
        i = batch.schema.get_field_index(field.name)
        if i < 0:
            cols.append(pa.nulls(batch.num_rows, field.type))
        else:
            col = batch.column(i)
            cols.append(col if col.type == field.type else col.cast(field.type))
    return pa.RecordBatch.from_arrays(cols, schema=schema)


def merge(
    paths: Sequence[str | os.PathLike],
    out: str | os.PathLike | None = None,
) -> MergeResult:
    """Merge the finished shard runs under ``paths`` into ``out``; see the module docstring.

    Raises :class:`~dse.errors.ConfigError` for bad input (no runs, unreadable files).
    """
    t0 = time.perf_counter()
    if not paths:
        raise ConfigError("command line", "paths", "one or more run directories", "none")
    out_dir = Path(out) if out is not None else _default_out(paths)
    runs = find_runs(paths, exclude=out_dir)
    finished = sorted(
        (r for r in runs if r.finished), key=lambda r: (r.study, r.group, r.index, _natural(r.dir))
    )
    # pass 1: the ids of every run; an id already seen in an earlier run is a duplicate
    seen = np.empty(0, np.uint64)
    drop: list[np.ndarray] = []
    for run in finished:
        ids = pq.read_table(run.dir / POINTS, columns=["point_id"]).column(0)
        ids = np.unique(ids.to_numpy(zero_copy_only=False).astype(np.uint64, copy=False))
        dup = ids[np.isin(ids, seen, assume_unique=True)]
        drop.append(dup)
        seen = np.union1d(seen, ids)
    dup_ids = np.unique(np.concatenate(drop)) if drop else np.empty(0, np.uint64)
    # pass 2: stream every run's rows into one table
    schemas = [pq.read_schema(r.dir / POINTS) for r in finished if r.rows]
    schema = (
        pa.unify_schemas(schemas, promote_options="permissive").remove_metadata()
        if schemas
        else pa.schema([("point_id", pa.uint64())])
    )
    make_dir(out_dir, "command line", "--out")
    rows = feasible = dropped = 0
    status: dict[str, int] = {}
    kept: dict[Path, int] = {}
    with _atomic_path(out_dir / POINTS) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for run, dup in zip(finished, drop, strict=True):
            kept[run.dir] = 0
            for batch in pq.ParquetFile(run.dir / POINTS).iter_batches(BATCH_ROWS):
                if len(dup):
                    ids = batch.column("point_id").to_numpy(zero_copy_only=False)
                    keep = ~np.isin(ids.astype(np.uint64, copy=False), dup)
                    dropped += int((~keep).sum())
                    batch = batch.filter(pa.array(keep))
                if not batch.num_rows:
                    continue
                writer.write_batch(_conform(batch, schema))
                kept[run.dir] += batch.num_rows
                if "status" in batch.schema.names:
                    for item in pc.value_counts(batch.column("status")).to_pylist():
                        key = str(item["values"])
                        status[key] = status.get(key, 0) + int(item["counts"])
                if "feasible" in batch.schema.names:
                    feasible += int(pc.sum(batch.column("feasible")).as_py() or 0)
            rows += kept[run.dir]
        if not rows and not schemas:
            writer.write_table(schema.empty_table())
    groups = _groups(runs)
    missing_points = sum(g["missing_raw_points"] for g in groups)
    first = finished[0].summary or {}
    summary = {
        "merged": True,
        "study": first.get("study"),
        "model": first.get("model"),
        "complete": missing_points == 0 and not any(g["shards_missing"] for g in groups),
        "points": rows,
        "unique_point_ids": int(len(seen)),
        "feasible_points": feasible,
        "status_counts": status,
        "missing_raw_points": missing_points,
        "duplicates": {
            "ids": int(len(dup_ids)),
            "rows_dropped": dropped,
            "listed": [int(i) for i in dup_ids[:LIST_MAX]],
        },
        "groups": groups,
        "runs": [
            {
                "dir": str(r.dir),
                "study": r.study,
                "shard": r.index,
                "num_shards": r.count,
                "finished": r.finished,
                "rows": r.rows,
                "rows_kept": kept.get(r.dir, 0),
                "raw_points": r.raw_points,
                "wall_s": (r.summary or {}).get("wall_s"),
                "compile_s": (r.summary or {}).get("compile_s"),
                "evaluation_s": (r.summary or {}).get("evaluation_s"),
                "chunks_resumed": (r.summary or {}).get("chunks_resumed"),
            }
            for r in sorted(runs, key=lambda r: (r.study, r.group, r.index, not r.finished))
        ],
        "objective": first.get("objective"),
        "best": _best(finished),
        "files": [POINTS],
        "merge_s": round(time.perf_counter() - t0, 3),
    }
    atomic_write_text(out_dir / SUMMARY, json.dumps(summary, indent=2, default=_json_default))
    return MergeResult(out_dir, summary, runs)


def _default_out(paths: Sequence[str | os.PathLike]) -> Path:
    try:
        common = Path(os.path.commonpath([Path(p).resolve() for p in paths]))
    except ValueError:  # different drives
        common = Path(paths[0]).resolve()
    return common / "merged"


def _groups(runs: Sequence[ShardRun]) -> list[dict[str, Any]]:
    """Per study and shard count: shards present, missing, unfinished; raw points missing."""
    by: dict[tuple[str, int], list[ShardRun]] = {}
    for r in runs:
        by.setdefault(r.group, []).append(r)
    out = []
    for (h, count), members in by.items():
        present = sorted({r.index for r in members if r.finished})
        missing = [i for i in range(count) if i not in present]
        ref = members[0]
        out.append(
            {
                "study": ref.study,
                "study_hash": h,
                "num_shards": count,
                "total_raw_points": ref.total_raw_points,
                "shards_present": present,
                "shards_missing": missing,
                "missing_raw_points": sum(_raw_points_of(ref, i) for i in missing),
                "unfinished": sorted(
                    ({"shard": r.index, "dir": str(r.dir)} for r in members if not r.finished),
                    key=lambda d: (d["shard"], d["dir"]),
                ),
            }
        )
    return sorted(out, key=lambda g: (str(g["study"]), g["study_hash"], g["num_shards"]))


def _best(finished: Sequence[ShardRun]) -> list[dict[str, Any]]:
    """The best points of the merged table: the best of the shards' best lists (each shard
    lists its own top points, so the top of their union is the top of the whole)."""
    objective = (finished[0].summary or {}).get("objective") or {}
    metric, minimize = objective.get("metric"), objective.get("minimize", True)
    if not metric:
        return []
    rows: dict[Any, dict[str, Any]] = {}
    top = 0
    for r in finished:
        best = (r.summary or {}).get("best") or []
        top = max(top, len(best))
        for row in best:
            if isinstance(row.get(metric), (int, float)):
                rows.setdefault(row.get("point_id"), row)
    ranked = sorted(rows.values(), key=lambda row: row[metric], reverse=not minimize)
    return ranked[:top]


def print_report(result: MergeResult, console: Any = None) -> None:
    """A rich table of the runs, then the merged counts, duplicates and missing shards."""
    from rich.console import Console
    from rich.table import Table

    con = console or Console(highlight=False)
    s = result.summary
    table = Table(title=f"dse.merge: {s['study']}", title_justify="left")
    for col, just in (
        ("shard", "right"),
        ("run", "left"),
        ("rows", "right"),
        ("kept", "right"),
        ("wall s", "right"),
        ("eval s", "right"),
        ("state", "left"),
    ):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in s["runs"]:
        state = "finished" if r["finished"] else "unfinished (rerun with resume=true)"
        if r["finished"] and r["rows_kept"] < r["rows"]:
            state = f"finished, {r['rows'] - r['rows_kept']:,} duplicate rows dropped"
        table.add_row(
            f"{r['shard']}/{r['num_shards']}",
            _short(r["dir"]),
            f"{r['rows']:,}",
            f"{r['rows_kept']:,}",
            "" if r["wall_s"] is None else f"{r['wall_s']:.1f}",
            "" if r["evaluation_s"] is None else f"{r['evaluation_s']:.2f}",
            state,
        )
    con.print(table)
    con.print(
        f"merged {s['points']:,} rows ({s['unique_point_ids']:,} unique point_ids, "
        f"{s['feasible_points']:,} feasible) in {s['merge_s']:.2f} s"
    )
    dup = s["duplicates"]
    if dup["ids"]:
        shown = ", ".join(str(i) for i in dup["listed"][:10])
        more = f", … ({dup['ids']:,} in all; summary.json lists {len(dup['listed']):,})"
        con.print(
            f"duplicates: {dup['ids']:,} point_ids in more than one run, "
            f"{dup['rows_dropped']:,} rows dropped (kept the first run's): {shown}"
            + (more if dup["ids"] > 10 else "")
        )
    for g in s["groups"]:
        if g["shards_missing"]:
            con.print(
                f"missing: study {g['study']} ({g['study_hash']}): shards "
                f"{', '.join(map(str, g['shards_missing']))} of {g['num_shards']} "
                f"({g['missing_raw_points']:,} of {g['total_raw_points']:,} raw design points)"
            )
    con.print(f"results: {result.out}/ ({', '.join(s['files'] + [SUMMARY])})")


def _short(path: str) -> str:
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _usage_error(message: str) -> None:
    print(f"dse: error: command line: {message} (see python -m dse.merge --help)", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dse.merge``: exit 0 complete, 1 points missing, 2 bad input."""
    parser = argparse.ArgumentParser(
        prog="python -m dse.merge",
        description="Merge the shard runs of a study (space.shard/space.num_shards) into one "
        "points.parquet and summary.json, by point_id.",
    )
    parser.add_argument(
        "paths", nargs="+", metavar="DIR", help="run directories or directories of runs"
    )
    parser.add_argument(
        "--out", help="output directory (default: <the DIRs' common parent>/merged)"
    )
    parser.add_argument(
        "--allow-missing",
        action="store_true",
        help="exit 0 even when shards or points are missing",
    )
    parser.error = _usage_error  # type: ignore[method-assign]
    args = parser.parse_args(argv)
    try:
        result = merge(args.paths, args.out)
    except ConfigError as err:
        print(f"dse: error: {err.oneline()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as err:
        print(f"dse: error: {err.filename or ''}: {err.strerror or err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print_report(result)
    if not result.complete and not args.allow_missing:
        print(
            f"dse: error: {result.summary['missing_raw_points']:,} design points missing "
            "(rerun the missing shards, with resume=true for unfinished ones, or pass "
            "--allow-missing)",
            file=sys.stderr,
        )
        return EXIT_MISSING
    return 0


def shard_benchmark(
    points: int = 1_000_000,
    shards: int = 2,
    out: str | os.PathLike | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """A ``points``-point steady-state study (``sweeps/steady_million.yaml``) run as
    ``shards`` jobs through Hydra's ``submitit_local`` launcher, then merged.

    Each job is its own process with one JAX device (``DSE_HOST_DEVICES=1`` unless set), the
    jobs running side by side. Returns rows, unique point_ids (``points`` when every shard
    arrived), per-shard wall, compile and evaluation seconds, the launcher's wall time and
    the merge time.
    """
    import subprocess
    import tempfile

    from dse.paths import ROOT, SWEEPS_DIR

    keep = out is not None
    root = Path(out) if keep else Path(tempfile.mkdtemp(prefix="dse-shard-bench-"))
    sweep = root / "multirun"
    cmd = [
        sys.executable,
        "-m",
        "dse",
        "-cd",
        str(SWEEPS_DIR),
        "-cn",
        "steady_million",
        "-m",
        "hydra/launcher=submitit_local",
        f"space.n={points}",
        f"space.num_shards={shards}",
        f"space.shard={','.join(map(str, range(shards)))}",
        f"hydra.sweep.dir={sweep}",
        "hydra/job_logging=disabled",
        "hydra/hydra_logging=disabled",
    ]
    env = {**os.environ, "DSE_HOST_DEVICES": os.environ.get("DSE_HOST_DEVICES", "1")}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    launch_s = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"sharded run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    result = merge([sweep], root / "merged")
    s = result.summary
    per_shard = [
        {
            "shard": r["shard"],
            "rows": r["rows"],
            "wall_s": r["wall_s"],
            "compile_s": r["compile_s"],
            "evaluation_s": r["evaluation_s"],
        }
        for r in s["runs"]
    ]
    size_mb = (result.out / POINTS).stat().st_size / 1e6
    figures = {
        "points": points,
        "shards": shards,
        "rows": s["points"],
        "unique_point_ids": s["unique_point_ids"],
        "complete": s["complete"],
        "per_shard": per_shard,
        "launcher_wall_s": round(launch_s, 2),
        "merge_s": s["merge_s"],
        "merged_parquet_MB": round(size_mb, 1),
        "dir": str(root) if keep else None,
    }
    if verbose:
        shard_txt = "; ".join(
            f"shard {p['shard']}: {p['rows']:,} rows, wall {p['wall_s']:.1f} s "
            f"(compile {p['compile_s']:.1f} s, evaluation {p['evaluation_s']:.1f} s)"
            for p in per_shard
        )
        print(
            f"shard benchmark: {points:,} steady-state points in {shards} submitit_local jobs: "
            f"{shard_txt}; launcher wall {launch_s:.1f} s; merge {s['merge_s']:.2f} s → "
            f"{s['points']:,} rows, {s['unique_point_ids']:,} unique point_ids "
            f"({size_mb:.0f} MB)"
        )
    if not keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return figures


if __name__ == "__main__":
    sys.exit(main())
