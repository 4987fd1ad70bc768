"""LLMServingSim's per-request CSV (``--output``), written and read byte for byte (DESIGN.md §5).

LLMServingSim's scheduler (``save_output``) writes it with Python's ``csv.writer`` in its
default ``excel`` dialect: ``\\r\\n`` line ends, a field quoted only when it holds a comma,
quote or line break. One row per finished request in completion order, times in integer ns;
``ITL`` is ``str()`` of a Python list of ints, so ``"[a, b, c]"`` is quoted (it holds
commas) while a one-element ``[a]`` and the empty ``[]`` (one-token output) are not. The
shipped examples (``../shared/reference/llmservingsim/example_outputs/*.csv``) are
reproduced exactly by :func:`write_requests_csv` ∘ :func:`read_requests_csv`.

Columns (the header names on the left, :data:`COLUMNS` on the right)::

    instance id  instance_id     request id  request_id    model   model
    input        input           output      output        arrival arrival
    end_time     end_time        latency     latency       queuing_delay queuing_delay
    TTFT         TTFT            TPOT        TPOT          ITL     ITL
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dse.errors import ConfigError

__all__ = ["COLUMNS", "HEADER", "read_requests_csv", "write_requests_csv"]

HEADER = (
    "instance id,request id,model,input,output,arrival,end_time,latency,queuing_delay,TTFT,TPOT,ITL"
)
#: the DataFrame / dict column names, in the file's order
COLUMNS = (
    "instance_id",
    "request_id",
    "model",
    "input",
    "output",
    "arrival",
    "end_time",
    "latency",
    "queuing_delay",
    "TTFT",
    "TPOT",
    "ITL",
)
_INT_COLUMNS = tuple(c for c in COLUMNS if c not in ("model", "ITL"))
_HEADER_NAMES = tuple(HEADER.split(","))


def _as_int(v: Any, column: str, row: int) -> int:
    """An integer ns/count; an integral float is accepted, a fractional one is rounded to the
    nearest integer (LLMServingSim's clock is integer ns)."""
    if isinstance(v, (bool, np.bool_)):
        raise ValueError(f"column {column!r}, row {row}: expected an integer, got {v!r}")
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)) and math.isfinite(v):
        return int(round(float(v)))
    raise ValueError(f"column {column!r}, row {row}: expected an integer, got {v!r}")


def _itl_text(v: Any, row: int) -> str:
    """``str(list_of_ints)`` as LLMServingSim writes it: ``[a, b]``, ``[a]``, ``[]``."""
    if v is None:
        return "[]"
    if isinstance(v, str):  # already formatted
        v = json.loads(v)
    vals = np.asarray(v).ravel().tolist() if not isinstance(v, list) else v
    return "[" + ", ".join(str(_as_int(x, "ITL", row)) for x in vals) + "]"


def _columns(rows: Any) -> dict[str, Sequence[Any]]:
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # a pandas DataFrame
        cols = {c: rows[c].tolist() for c in rows.columns}
    elif isinstance(rows, Mapping):
        cols = {
            str(k): (v.tolist() if isinstance(v, np.ndarray) and k != "ITL" else list(v))
            for k, v in rows.items()
        }
    else:
        raise TypeError(f"rows: expected a pandas DataFrame or a dict of columns, got {type(rows)}")
    missing = [c for c in COLUMNS if c not in cols]
    if missing:
        raise ValueError(f"rows: missing column(s) {missing}; expected {list(COLUMNS)}")
    lengths = {c: len(cols[c]) for c in COLUMNS}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"rows: columns of different lengths {lengths}")
    return cols


def write_requests_csv(path: str | os.PathLike, rows: Any) -> Path:
    """Write ``rows`` (a DataFrame or dict of columns named :data:`COLUMNS`) as
    LLMServingSim's per-request CSV at ``path``, in the order given. The file appears whole
    or not at all (a temporary file in the same folder, then ``os.replace``); missing parent
    folders are created. Returns the path."""
    cols = _columns(rows)
    n = len(cols["model"])
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)  # the excel dialect, as LLMServingSim's save_output
    writer.writerow(_HEADER_NAMES)
    for i in range(n):
        rec: list[Any] = []
        for c in COLUMNS:
            v = cols[c][i]
            if c == "model":
                rec.append(str(v))
            elif c == "ITL":
                rec.append(_itl_text(v, i))
            else:
                rec.append(_as_int(v, c, i))
        writer.writerow(rec)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return out


def read_requests_csv(path: str | os.PathLike) -> Any:
    """A per-request CSV (LLMServingSim's or ours) as a pandas DataFrame with :data:`COLUMNS`:
    int64 columns, ``model`` as text, ``ITL`` as lists of ints. Raises ConfigError naming
    the file, the line and the column on a malformed file."""
    import pandas as pd

    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(source, "", f"a readable per-request CSV ({e.strerror})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or tuple(header) != _HEADER_NAMES:
        raise ConfigError(source, "header", f"the header line {HEADER!r}", ",".join(header or []))
    data: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    for line, rec in enumerate(reader, start=2):
        if not rec:
            continue
        if len(rec) != len(COLUMNS):
            raise ConfigError(f"{source}:{line}", "", f"{len(COLUMNS)} fields", len(rec))
        for c, v in zip(COLUMNS, rec, strict=True):
            if c == "model":
                data[c].append(v)
            elif c == "ITL":
                try:
                    itl = json.loads(v)
                    if not isinstance(itl, list) or not all(
                        isinstance(x, int) and not isinstance(x, bool) for x in itl
                    ):
                        raise ValueError
                except ValueError:
                    raise ConfigError(
                        f"{source}:{line}", "ITL", "a list of integers like [1, 2]", v
                    ) from None
                data[c].append(itl)
            else:
                try:
                    data[c].append(int(v))
                except ValueError:
                    name = _HEADER_NAMES[COLUMNS.index(c)]
                    raise ConfigError(f"{source}:{line}", name, "an integer", v) from None
    frame = pd.DataFrame(
        {
            c: (np.asarray(data[c], dtype=np.int64) if c in _INT_COLUMNS else data[c])
            for c in COLUMNS
        },
        columns=list(COLUMNS),
    )
    frame["model"] = frame["model"].astype(object)
    return frame
