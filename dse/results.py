"""Results store: one row per design point, written atomically and resumable.

A run directory (``results/<study>/<date>_<time>-<id>/``) receives

* ``points.parquet`` (and ``points.csv`` on request): ``point_id``, label columns, the
  static and swept parameters by dotted path, the model's metrics, ``feasible``, ``status``;
* ``summary.json``: counts, compile and evaluation seconds, points/s, versions, device, git
  revision, the best points and the resolved configuration;
* the trade-off PNG (written by :mod:`dse.report`).

While a run is in progress each evaluated chunk is written to ``.dse/chunks/`` (Parquet plus
a JSON sidecar, each via a temporary file and an atomic rename). The final files are built by
streaming those chunks, again through temporary files, so a killed run never leaves a
truncated table; ``resume=true`` finds the newest unfinished run of the same configuration and
skips its completed chunks.

One process writes a run directory at a time: :meth:`RunStore.acquire` takes an exclusive
lock (``.dse/lock``) for the life of the run, a second writer is refused, and
``resume=true`` passes over runs whose writer is still alive. Temporary files a killed
writer left behind are removed by the next writer that holds the lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import fcntl
import hashlib
import json
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "RunBusy",
    "RunStore",
    "atomic_write_text",
    "config_hash",
    "environment",
    "read_points",
    "study_hash",
]

SHARD_KEYS = ("shard", "num_shards")
STATE = ".dse"
POINTS = "points.parquet"
SUMMARY = "summary.json"


def config_hash(cfg: Mapping[str, Any]) -> str:
    """A hash of the parts of a resolved config that determine the results.

    It includes ``space.shard`` and ``space.num_shards``: the shards of one study are
    different runs (``resume=true`` never continues another shard's run). It leaves out
    what does not change a point's results: ``resume``, ``progress``, ``output`` and
    ``devices`` (the local devices a chunk is split over).
    """
    skip = ("resume", "progress", "output", "hydra", "devices")
    keep = {k: v for k, v in cfg.items() if k not in skip}
    blob = json.dumps(keep, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def study_hash(cfg: Mapping[str, Any]) -> str:
    """:func:`config_hash` without ``space.shard``/``space.num_shards``: the same for every
    shard of one study (``python -m dse.merge`` groups shard runs by it)."""
    space = {k: v for k, v in (cfg.get("space") or {}).items() if k not in SHARD_KEYS}
    return config_hash({**cfg, "space": space})


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling path that replaces ``path`` only on success."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    cols = []
    for field in table.schema:
        col = table.column(field.name)
        if pa.types.is_dictionary(field.type):
            col = col.cast(pa.string())
        cols.append(col)
    return pa.table(cols, names=table.schema.names)


def read_points(run_dir: str | os.PathLike) -> pd.DataFrame:
    """Read a run's ``points.parquet`` into a DataFrame."""
    return pd.read_parquet(Path(run_dir) / POINTS)


def environment() -> dict[str, Any]:
    """Versions, device and git revision, for summary.json."""
    import importlib.metadata as md

    import jax

    versions = {}
    for pkg in (
        "dse",
        "jax",
        "jaxlib",
        "numpy",
        "pandas",
        "pyarrow",
        "scipy",
        "hydra-core",
        "omegaconf",
        "matplotlib",
    ):
        with contextlib.suppress(md.PackageNotFoundError):
            versions[pkg] = md.version(pkg)
    versions["python"] = platform.python_version()
    dev = jax.devices()[0]
    root = Path(__file__).resolve().parents[1]
    rev = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if out.returncode == 0:
            rev = out.stdout.strip()
            dirty = subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--", "dse", "conf"],
                capture_output=True,
                text=True,
                timeout=5,
            )
            if dirty.stdout.strip():
                rev += "-dirty"
    return {
        "versions": versions,
        "device": {
            "platform": dev.platform,
            "kind": dev.device_kind,
            "count": jax.device_count(),
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
        },
        "git_revision": rev,
    }


class RunBusy(RuntimeError):
    """Another live process holds the run directory's lock."""

    def __init__(self, run_dir: Path, holder: str) -> None:
        super().__init__(f"{run_dir} is being written by another run ({holder})")
        self.dir = run_dir
        self.holder = holder


def _try_lock(path: Path) -> Any:
    """An open file holding an exclusive lock on ``path``, or None where another holds it."""
    fh = open(path, "a+")  # kept open for the life of the lock
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return None
    return fh


def is_busy(run_dir: str | os.PathLike) -> bool:
    """Whether a live process holds ``run_dir``'s lock."""
    lock = Path(run_dir) / STATE / "lock"
    if not lock.exists():
        return False
    fh = _try_lock(lock)
    if fh is None:
        return True
    fh.close()
    return False


@dataclasses.dataclass
class Digest:
    """What :meth:`RunStore.finalize` learned while streaming the chunks."""

    points: int
    raw_points: int
    feasible: int
    status_counts: dict[str, int]
    category_counts: dict[str, dict[str, int]]
    best: pd.DataFrame
    sample: pd.DataFrame
    compile_s: float
    eval_s: float
    chunks: int


class RunStore:
    """Chunk files, resume state and the final files of one run directory."""

    def __init__(self, run_dir: str | os.PathLike, cfg_hash: str) -> None:
        self.dir = Path(run_dir)
        self.hash = cfg_hash
        self.state = self.dir / STATE
        self.chunks = self.state / "chunks"
        self._lock: Any = None

    # --- the writer's lock --------------------------------------------------------------
    def acquire(self) -> None:
        """Lock the run directory for this process (:class:`RunBusy` where another holds it)
        and remove the temporary files a killed writer left behind."""
        self.state.mkdir(parents=True, exist_ok=True)
        lock = self.state / "lock"
        fh = _try_lock(lock)
        if fh is None:
            holder = ""
            with contextlib.suppress(OSError):
                holder = lock.read_text().strip()
            raise RunBusy(self.dir, holder or "its lock is held")
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        fh.flush()
        self._lock = fh
        for folder in (self.dir, self.state, self.chunks):
            for p in folder.glob(".*") if folder.is_dir() else ():
                if p.is_file() and (folder == self.chunks or _is_temporary(p.name)):
                    with contextlib.suppress(OSError):
                        p.unlink()

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # --- resume -----------------------------------------------------------------------
    @staticmethod
    def find_unfinished(
        study_root: str | os.PathLike, cfg_hash: str, exclude: Path | None = None
    ) -> Path | None:
        """The newest run directory under ``study_root`` of this config that did not finish."""
        root = Path(study_root)
        if not root.is_dir():
            return None
        found = []
        for state in root.glob(f"**/{STATE}/state.json"):
            run = state.parent.parent
            if exclude is not None and run.resolve() == exclude.resolve():
                continue
            if is_busy(run):  # its writer is alive: not ours to continue
                continue
            try:
                meta = json.loads(state.read_text())
            except (OSError, ValueError):
                continue
            if meta.get("config_hash") == cfg_hash and not meta.get("finished"):
                found.append((state.stat().st_mtime, run))
        return max(found)[1] if found else None

    def open(self, meta: Mapping[str, Any]) -> str | None:
        """Start or continue the run; returns what was found there where it was replaced:
        a finished run, or an unfinished run of another configuration (whose chunks must not
        be mistaken for this one's)."""
        state = self.state / "state.json"
        replaced = None
        if state.exists():
            try:
                old = json.loads(state.read_text())
            except (OSError, ValueError):
                old = {}
            if old.get("config_hash") != self.hash or old.get("finished"):
                replaced = (
                    "a finished run"
                    if old.get("finished")
                    else "an unfinished run of another configuration"
                )
                shutil.rmtree(self.chunks, ignore_errors=True)
                state.unlink()
        self.chunks.mkdir(parents=True, exist_ok=True)
        if not state.exists():
            atomic_write_text(
                state,
                json.dumps(
                    {"config_hash": self.hash, "finished": False, "started": time.time(), **meta},
                    indent=1,
                ),
            )
        return replaced

    def _name(self, combo: int, index: int) -> str:
        return f"c{combo:04d}-{index:07d}"

    def has_chunk(self, combo: int, index: int) -> bool:
        return (self.chunks / f"{self._name(combo, index)}.json").exists()

    def completed(self) -> int:
        return len(list(self.chunks.glob("*.json"))) if self.chunks.is_dir() else 0

    def write_chunk(self, combo: int, index: int, frame: pd.DataFrame, meta: dict) -> None:
        name = self._name(combo, index)
        with _atomic_path(self.chunks / f"{name}.parquet") as tmp:
            pq.write_table(_to_arrow(frame), tmp)
        atomic_write_text(self.chunks / f"{name}.json", json.dumps(meta))

    # --- final files ------------------------------------------------------------------
    def finalize(
        self,
        objective: str,
        minimize: bool,
        categories: tuple[str, ...],
        top: int = 8,
        sample_max: int = 200_000,
        csv: bool = False,
    ) -> Digest:
        """Stream the chunks into ``points.parquet`` (and CSV); return a :class:`Digest`."""
        names = sorted(p.stem for p in self.chunks.glob("*.json"))
        metas = [json.loads((self.chunks / f"{n}.json").read_text()) for n in names]
        total = sum(m["points"] for m in metas)
        stride = max(1, -(-total // sample_max))
        status: dict[str, int] = {}
        cats: dict[str, dict[str, int]] = {c: {} for c in categories}
        best: list[pd.DataFrame] = []
        samples: list[pd.DataFrame] = []
        feasible = seen = 0
        writer = None
        out = self.dir / POINTS
        csv_path = self.dir / "points.csv"
        with contextlib.ExitStack() as stack:
            tmp = stack.enter_context(_atomic_path(out))
            tmp_csv = stack.enter_context(_atomic_path(csv_path)) if csv else None
            for n in names:
                table = pq.read_table(self.chunks / f"{n}.parquet")
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                    stack.callback(writer.close)
                else:
                    table = table.cast(writer.schema)
                writer.write_table(table)
                frame = table.to_pandas()
                if tmp_csv is not None:
                    frame.to_csv(tmp_csv, mode="a", header=not tmp_csv.exists(), index=False)
                for s, c in frame["status"].value_counts().items():
                    status[str(s)] = status.get(str(s), 0) + int(c)
                ok = frame[frame["feasible"]]
                feasible += len(ok)
                for c in categories:
                    for k, v in ok[c].value_counts().items():
                        cats[c][str(k)] = cats[c].get(str(k), 0) + int(v)
                if len(ok):
                    best.append(
                        ok.nsmallest(top, objective) if minimize else ok.nlargest(top, objective)
                    )
                first = (-seen) % stride
                samples.append(frame.iloc[first::stride].copy())  # a view would pin the chunk
                seen += len(frame)
            if writer is None:  # no points at all: still a valid (empty) table
                pq.write_table(pa.table({"point_id": pa.array([], pa.uint64())}), tmp)
                if tmp_csv is not None:
                    tmp_csv.write_text("point_id\n")
        best_df = pd.concat(best) if best else pd.DataFrame()
        if len(best_df):
            best_df = (
                best_df.nsmallest(top, objective) if minimize else best_df.nlargest(top, objective)
            )
        return Digest(
            points=total,
            raw_points=sum(m.get("raw_points", m["points"]) for m in metas),
            feasible=feasible,
            status_counts=status,
            category_counts=cats,
            best=best_df,
            sample=pd.concat(samples) if samples else pd.DataFrame(),
            compile_s=sum(m["compile_s"] for m in metas),
            eval_s=sum(m["eval_s"] for m in metas),
            chunks=len(names),
        )

    def close(self, summary: Mapping[str, Any]) -> Path:
        """Write summary.json, mark the run finished and drop the chunk files."""
        path = self.dir / SUMMARY
        atomic_write_text(path, json.dumps(summary, indent=2, default=_json_default))
        state = self.state / "state.json"
        meta = json.loads(state.read_text()) if state.exists() else {}
        meta["finished"] = True
        atomic_write_text(state, json.dumps(meta, indent=1))
        shutil.rmtree(self.chunks, ignore_errors=True)
        return path


_FINAL = (POINTS, SUMMARY, "points.csv", "state.json", "lock")


def _is_temporary(name: str) -> bool:
    """A temporary sibling of :func:`atomic_write_text` or ``_atomic_path``."""
    return ".tmp-" in name or any(name.startswith(f".{f}.") for f in _FINAL)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, enum.Enum):  # config choices as their names, as the YAML spells them
        return obj.name
    return str(obj)
