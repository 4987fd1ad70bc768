"""Request traces for serving runs: LLMServingSim JSONL, NeuPIMs CSV, synthetic (DESIGN.md §4.8).

A :class:`Trace` is three int64 columns, one row per request in file order (the row is the
request id): ``arrival_ns``, ``input_toks``, ``output_toks``.

* :func:`read_jsonl`: LLMServingSim's dataset format, one JSON object per line with
  ``input_toks``, ``output_toks``, ``arrival_time_ns`` and, optionally, ``input_tok_ids`` /
  ``output_tok_ids`` (lists whose lengths must match the counts). Blank lines are skipped; a
  bad line raises :class:`~dse.errors.ConfigError` naming ``file:line`` and the key.
* :func:`read_neupims_csv`: NeuPIMs' request traces (``seq_len`` per request, the prompt;
  ``ch_idx`` ignored) with a given output length, all arriving at ``arrival_ns``.
* :func:`synthetic`: Poisson arrivals at ``rate`` requests/s, prompt and output lengths from
  :mod:`dse.workload.lengths` distributions (a trace distribution with prompt and output
  columns, e.g. ``sharegpt``, is sampled as pairs), all from one seed.
* :func:`write_jsonl`: a trace in LLMServingSim's format (without token ids).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from pathlib import Path

import numpy as np

from dse.errors import MAX_INPUT_INT, ConfigError, parse_json, read_input
from dse.workload.lengths import LengthDist, load_trace, sample_lengths_np

__all__ = ["Trace", "read_jsonl", "read_neupims_csv", "synthetic", "write_jsonl"]

_KEYS = ("input_toks", "output_toks", "arrival_time_ns")


@dataclasses.dataclass(frozen=True)
class Trace:
    arrival_ns: np.ndarray
    input_toks: np.ndarray
    output_toks: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.arrival_ns)
        for name in ("arrival_ns", "input_toks", "output_toks"):
            a = np.asarray(getattr(self, name), dtype=np.int64)
            if a.shape != (n,):
                raise ConfigError(self.source, name, f"{n} values", a.shape)
            a.setflags(write=False)
            object.__setattr__(self, name, a)

    def __len__(self) -> int:
        return len(self.arrival_ns)

    @property
    def tokens(self) -> int:
        """Prompt plus output tokens of every request."""
        return int(self.input_toks.sum() + self.output_toks.sum())


def _int(value: object, where: str, key: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value < MAX_INPUT_INT:
        raise ConfigError(where, key, f"an integer in [{low}, 2**62)", value)
    return value


def read_jsonl(path: str | os.PathLike) -> Trace:
    """An LLMServingSim dataset (see the module docstring)."""
    path = Path(path)
    text = read_input(path, "JSONL file")
    rows: list[tuple[int, int, int]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        obj = parse_json(line, where, "JSON, one object per line")
        if not isinstance(obj, dict):
            raise ConfigError(where, "", "a JSON object", type(obj).__name__)
        missing = [k for k in _KEYS if k not in obj]
        if missing:
            raise ConfigError(where, ", ".join(missing), "present (missing)")
        n_in = _int(obj["input_toks"], where, "input_toks", 1)
        n_out = _int(obj["output_toks"], where, "output_toks", 1)
        t = _int(obj["arrival_time_ns"], where, "arrival_time_ns", 0)
        for key, n in (("input_tok_ids", n_in), ("output_tok_ids", n_out)):
            if key in obj:
                ids = obj[key]
                if not isinstance(ids, list):
                    raise ConfigError(where, key, "a list of token ids", type(ids).__name__)
                if len(ids) != n:
                    raise ConfigError(
                        where, key, f"{n} token ids (the line's {key[:-4]}s)", len(ids)
                    )
        rows.append((t, n_in, n_out))
    if not rows:
        raise ConfigError(str(path), "", "at least one request")
    arr = np.asarray(rows, dtype=np.int64)
    return Trace(arr[:, 0], arr[:, 1], arr[:, 2], source=str(path))


def read_neupims_csv(path: str | os.PathLike, output_toks: int, arrival_ns: int = 0) -> Trace:
    """A NeuPIMs request trace: each ``seq_len`` is a prompt; every request generates
    ``output_toks`` tokens and arrives at ``arrival_ns``."""
    path = Path(path)
    _int(output_toks, str(path), "output_toks", 1)
    _int(arrival_ns, str(path), "arrival_ns", 0)
    text = read_input(path, "CSV file")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if reader.fieldnames is None or "seq_len" not in reader.fieldnames:
            raise ConfigError(str(path), "seq_len", "a CSV column", reader.fieldnames)
        lens = []
        for lineno, row in enumerate(reader, start=2):
            v = row["seq_len"]
            if v is None or not v.strip().isdigit() or not 1 <= int(v) < MAX_INPUT_INT:
                raise ConfigError(f"{path}:{lineno}", "seq_len", "an integer in [1, 2**62)", v)
            lens.append(int(v))
    except csv.Error as e:
        raise ConfigError(str(path), "", f"a CSV file ({e})") from None
    if not lens:
        raise ConfigError(str(path), "", "at least one request")
    n = len(lens)
    return Trace(
        np.full(n, arrival_ns), np.asarray(lens), np.full(n, output_toks), source=str(path)
    )


def synthetic(
    n: int,
    rate: float,
    seed: int = 0,
    input_dist: LengthDist | int | str = "sharegpt",
    output_dist: LengthDist | int | str | None = None,
    input_len: int = 512,
    output_len: int = 128,
) -> Trace:
    """``n`` requests with Poisson arrivals at ``rate`` requests/s (exponential gaps; the
    first at its gap after 0). Prompts from ``input_dist`` (``fixed``: ``input_len``); outputs
    from ``output_dist`` (``None``/``fixed``: ``output_len``). A trace distribution with
    prompt and output columns (``sharegpt``) as ``input_dist`` and no ``output_dist`` draws
    (prompt, output) pairs of its requests."""
    src = f"synthetic(n={n}, rate={rate}, seed={seed})"
    _int(n, src, "n", 1)
    _int(input_len, src, "input_len", 1)  # a length of 0 or less is refused, not raised to 1
    _int(output_len, src, "output_len", 1)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise ConfigError(src, "rate", "requests per second > 0", rate)
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1e9 / rate, n)
    arrival = np.floor(np.cumsum(gaps)).astype(np.int64)
    d_in = LengthDist[input_dist] if isinstance(input_dist, str) else LengthDist(input_dist)
    pairs = None
    if output_dist is None and d_in != LengthDist.fixed:
        try:
            t = load_trace(d_in)
        except ValueError:
            t = {}
        if "input_toks" in t and "output_toks" in t:
            pick = rng.integers(0, len(t["input_toks"]), n)
            pairs = t["input_toks"][pick], t["output_toks"][pick]
    if pairs is not None:
        inputs, outputs = pairs
    else:
        inputs = sample_lengths_np(d_in, seed, n, input_len)
        if output_dist is None:
            outputs = np.full(n, output_len)
        else:
            outputs = sample_lengths_np(output_dist, seed + 1, n, output_len)
    return Trace(arrival, np.maximum(inputs, 1), np.maximum(outputs, 1), source=src)


def write_jsonl(trace: Trace, path: str | os.PathLike) -> Path:
    """``trace`` as an LLMServingSim dataset (no token ids)."""
    path = Path(path)
    with path.open("w") as f:
        for t, i, o in zip(trace.arrival_ns, trace.input_toks, trace.output_toks, strict=True):
            row = {"input_toks": int(i), "output_toks": int(o), "arrival_time_ns": int(t)}
            f.write(json.dumps(row) + "\n")
    return path
