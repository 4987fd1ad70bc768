"""What every validation check group shares (DESIGN.md §6): the result row, where the
third-party reference files are, progress lines and the evaluation of dotted-path design
points. :mod:`dse.validation.report` (the runner), :mod:`dse.validation.corpus` and
:mod:`dse.validation.published` import it; it imports none of them."""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "LLMSS",
    "REFERENCE",
    "ROOT",
    "SHARED",
    "Result",
    "default_point",
    "evaluate_params",
    "progress",
    "skipped",
]

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("DSE_SHARED", ROOT.parent / "shared"))
REFERENCE = Path(os.environ.get("DSE_REFERENCE") or SHARED / "reference")
LLMSS = REFERENCE / "llmservingsim"


@dataclasses.dataclass
class Result:
    """One validation check: what was compared, on how many points, against which bound."""

    model: str
    ring: str  # "reference", "external" or "property"
    check: str
    points: int
    agreement: str
    bound: str
    passed: bool
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    skipped: bool = False  # its third-party input files are absent: reported, not counted


def skipped(model: str, ring: str, check: str, what: str) -> Result:
    """A check that compares with third-party files which are not here: one row saying so."""
    return Result(
        model,
        ring,
        check,
        0,
        f"skipped: {what} not found (third-party files under $DSE_REFERENCE, default "
        "../shared/reference)",
        "",
        True,
        skipped=True,
    )


def progress(msg: str) -> None:
    """A progress line on stderr."""
    print(f"dse.validation: {msg}", file=sys.stderr, flush=True)


@functools.lru_cache(maxsize=1)
@functools.cache
def default_point():
    """The default design point (``space=single``; composed once, immutable)."""
    from dse.cli import _compose, build

    cfg, prov = _compose(["space=single"])
    return build(cfg, prov)[1]


def evaluate_params(points: list[dict], model: str = "pim_gemv") -> list[dict]:
    """Evaluate dotted-path dicts with the vectorized ``model``: one compiled call per static
    combination (e.g. dtype), padded to a power of two; missing keys take the default point's
    value."""
    from dse._pytree import get_path, replace_paths
    from dse.explore import evaluate_points
    from dse.point import field_info

    base = default_point()
    infos = field_info()
    leaves = [p for p, info in infos.items() if not info.static]
    statics = sorted(p for p, info in infos.items() if info.static)

    def key(p):
        return tuple(p.get(s, get_path(base, s)) for s in statics)

    results: list[dict | None] = [None] * len(points)
    for combo in sorted({key(p) for p in points}, key=str):
        idx = [i for i, p in enumerate(points) if key(p) == combo]
        b = replace_paths(base, dict(zip(statics, combo, strict=True)))
        size = max(8, 1 << (len(idx) - 1).bit_length())
        rows = idx + [idx[-1]] * (size - len(idx))
        swept = {
            k: np.asarray([points[i].get(k, get_path(base, k)) for i in rows], infos[k].dtype)
            for k in leaves
        }
        out, _, _ = evaluate_points(b, swept, model)
        for j, i in enumerate(idx):
            results[i] = {k: v[j].item() for k, v in out.items()}
    return results  # type: ignore[return-value]
