"""The PIM timing presets table (``shared/reference/pim/pim_timing_presets.csv``).

One row per preset (NeuPIMs HBM2-PIM, AttAcc HBM3-PIM, SK hynix GDDR6-AiM as CENT uses it,
Samsung HBM2-PIM, plain HBM2/HBM3), transcribed from the simulators' sources. Cells are
mostly plain numbers, but some carry their derivation or a note, e.g.
``max(BL/2;tCCD_S)=2``, ``JEDEC(350ns @8Gb)=456``, ``5 (preset 11; JEDEC x16 table
override)``, ``tXAW=16 (XAW=4)`` or ``table lookup out of range for 128Gb (refresh never
issued)``.

:func:`read_presets` keeps every cell's text (``row["raw"][column]``) and exposes a number
per cell (``row["num"][column]``, ``None`` when the cell has none) by this rule:

1. a cell that *starts* with a number gives that leading number
   (``"5 (preset 11; ...)"`` → 5, ``"16 (pseudo) per stack ..."`` → 16, ``"0.769"``);
2. otherwise the number right after the first ``=`` outside parentheses
   (``"max(BL/2;tCCD_S)=2"`` → 2, ``"JEDEC(350ns @8Gb)=456"`` → 456,
   ``"tXAW=16 (XAW=4)"`` → 16, ``"nRFCpb=320"`` → 320);
3. otherwise ``None`` (empty cells, ``"table lookup out of range ..."``).

Numbers written without a point or exponent are ``int``, others ``float``. The text columns
``preset``, ``source_file`` and ``notes`` have no number.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dse.errors import ConfigError

__all__ = ["read_presets", "cell_number", "REQUIRED_COLUMNS", "TEXT_COLUMNS"]

#: Columns every presets table must have (the timing fields a PimChannel takes from it).
REQUIRED_COLUMNS: tuple[str, ...] = (
    "preset",
    "source_file",
    "sim_clock_ns",
    "data_rate_Gbps_per_pin",
    "BL",
    "CL",
    "tRCDRD",
    "tRP",
    "tRAS",
    "tRTP_or_tRTPL",
    "tWR",
    "tCCD_S",
    "tCCD_L",
    "tCCD_allbank_MAC",
    "tRRD_S",
    "tRRD_L",
    "tFAW",
    "tRFC",
    "tREFI",
)
TEXT_COLUMNS: tuple[str, ...] = ("preset", "source_file", "notes")

_NUM = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_LEADING = re.compile(rf"\s*({_NUM})(?![\w.])")


def _to_number(text: str) -> int | float:
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)


def cell_number(cell: str) -> int | float | None:
    """The number a presets-table cell stands for (module docstring: rule 1, 2, 3)."""
    m = _LEADING.match(cell)
    if m:
        return _to_number(m.group(1))
    depth = 0
    for i, ch in enumerate(cell):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(depth - 1, 0)
        elif ch == "=" and depth == 0:
            m = _LEADING.match(cell, i + 1)
            return _to_number(m.group(1)) if m else None
    return None


def read_presets(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read the presets CSV: ``{preset: {"raw": {column: text}, "num": {column: number}}}``.

    Raises :class:`ConfigError` for a missing/unreadable file, a missing required column
    (:data:`REQUIRED_COLUMNS`), an empty or repeated preset name.
    """
    import pandas as pd

    p = Path(path)
    src = str(p)
    if not p.is_file():
        raise ConfigError(src, "file", "an existing presets CSV file", "no such file")
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, na_filter=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(src, "file", "a readable presets CSV file", msg) from None
    columns = [str(c).strip() for c in df.columns]
    df.columns = columns
    for col in REQUIRED_COLUMNS:
        if col not in columns:
            raise ConfigError(src, col, "a column of that name in the header", columns)
    if len(set(columns)) != len(columns):
        dup = next(c for c in columns if columns.count(c) > 1)
        raise ConfigError(src, dup, "each column once", "repeated column")
    out: dict[str, dict[str, Any]] = {}
    for i, rec in enumerate(df.to_dict(orient="records"), start=2):
        name = str(rec["preset"]).strip()
        if not name:
            raise ConfigError(src, "preset", "a preset name on every row", f"empty on line {i}")
        if name in out:
            raise ConfigError(src, "preset", "each preset name once", name)
        raw = {c: str(rec[c]).strip() for c in columns}
        num = {c: (None if c in TEXT_COLUMNS else cell_number(raw[c])) for c in columns}
        out[name] = {"raw": raw, "num": num}
    return out
