"""What the report computes from a points table (plain pandas/numpy, no plotting).

* :func:`feasible_mask`: rows that are feasible (``feasible`` and a zero / ``"ok"`` status);
* :func:`categorical_columns`, :func:`context_columns`: the columns that vary and which
  figures they call for;
* :func:`fronts`: the Pareto front of the objective against each natural cost axis the table
  holds, with the exact hypervolume and its reference point (:mod:`dse.pareto`);
* :func:`ablation`: the objective per value of each varying categorical or discrete column
  (points, feasible points, best, geometric mean);
* :func:`best_rows`, :func:`group_means`: the rows the breakdown bars show.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from dse.errors import ConfigError
from dse.pareto import default_reference, hypervolume, pareto_front

__all__ = [
    "Front",
    "Objective",
    "ablation",
    "best_rows",
    "categorical_columns",
    "context_columns",
    "cost_axes",
    "feasible_mask",
    "front",
    "group_means",
    "numeric",
]

#: columns that name a run's labels rather than its metrics
LABELS = ("pim", "workload", "host", "job", "overrides", "shard")
#: never a category, an axis or a label
NOT_PARAMS = ("point_id", "status", "status_code", "feasible", "eval", "generation")
#: natural cost axes of a front against the objective, in order of preference: (column,
#: direction). Silicon area, energy per token, tail latency, then provisioned bandwidth.
COSTS = (
    ("total_mm2", "min"),
    ("pim_logic_mm2", "min"),
    ("J_per_token", "min"),
    ("energy_J", "min"),
    ("ttft_p99_ms", "min"),
    ("tpot_p99_ms", "min"),
    ("peak_internal_GBps", "min"),
    ("kv_reserved_bytes", "min"),
)
#: the objective against which the front of a throughput is drawn in a latency model
SECONDARY = {"tokens_per_s": ("step_ns", "min"), "gen_tok_per_s": ("tpot_p50_ms", "min")}
#: time-fraction, busy-fraction and energy-term columns (breakdown bars)
BUSY = ("host_busy", "pim_busy", "link_busy", "gpu_busy", "chan_util_mean", "chan_util_max")
#: columns along which context scaling is drawn, when they vary
CONTEXT = ("workload.L", "workload.max_context", "workload.prefill_len", "workload.batch")


@dataclasses.dataclass(frozen=True)
class Objective:
    """A metric and its direction."""

    metric: str
    minimize: bool

    @property
    def sense(self) -> str:
        return "min" if self.minimize else "max"


@dataclasses.dataclass
class Front:
    """A Pareto front: its objectives, rows, hypervolume and reference point."""

    objectives: dict[str, str]
    rows: pd.DataFrame
    hypervolume: float
    reference: dict[str, float]
    candidates: int  # feasible rows with every objective finite

    @property
    def name(self) -> str:
        return "pareto_" + "_".join(c.replace(".", "_") for c in list(self.objectives)[1:])


def numeric(s: pd.Series) -> bool:
    """A numeric column that is not boolean."""
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def feasible_mask(df: pd.DataFrame) -> np.ndarray:
    """Feasible rows: ``feasible`` true (when present) and a zero or ``"ok"`` status."""
    ok = np.ones(len(df), dtype=bool)
    if "feasible" in df.columns:
        ok &= df["feasible"].fillna(False).to_numpy(dtype=bool)
    if "status_code" in df.columns and numeric(df["status_code"]):
        ok &= df["status_code"].fillna(1).to_numpy(dtype=np.float64) == 0
    elif "status" in df.columns:
        if numeric(df["status"]):
            ok &= df["status"].fillna(1).to_numpy(dtype=np.float64) == 0
        else:
            text = df["status"].astype("string").fillna("").str.strip()
            ok &= ((text == "ok") | (text == "0")).to_numpy(dtype=bool)
    return ok


def _is_param(col: str) -> bool:
    return "." in col or col in LABELS


def categorical_columns(df: pd.DataFrame, categories: Sequence[str] = (), most: int = 12) -> list:
    """Columns that split the points into groups, each with 2 to ``most`` values: text or
    boolean parameters and labels (policies, presets, overrides), then integer parameters
    with few values (banks, lanes), then the model's own categories (``bottleneck``)."""
    text, discrete, cats = [], [], []
    for col in df.columns:
        if col in NOT_PARAMS:
            continue
        n = df[col].nunique(dropna=True)
        if not 2 <= n <= most:
            continue
        if col in categories:
            cats.append(col)
        elif _is_param(col) and not numeric(df[col]):
            text.append(col)
        elif _is_param(col) and pd.api.types.is_integer_dtype(df[col]) and col not in CONTEXT:
            discrete.append(col)
    if "overrides" in text and "job" in df.columns:
        text.remove("overrides")
        text.insert(0, "overrides")
    return text + discrete + cats


def policy_column(df: pd.DataFrame, categories: Sequence[str] = ()) -> str | None:
    """The text column that best names a configuration (``policy.system`` first, then any
    ``policy.*``, then labels): the grouping of breakdowns and context lines."""
    cols = [c for c in categorical_columns(df, categories) if not numeric(df[c])]
    cols = [c for c in cols if c not in categories]
    for pick in (
        lambda c: c == "policy.system",
        lambda c: c.startswith("policy."),
        lambda c: c in LABELS,
        lambda c: True,
    ):
        found = [c for c in cols if pick(c)]
        if found:
            return found[0]
    return None


def context_columns(df: pd.DataFrame) -> list[str]:
    """Numeric context/batch columns that take at least 3 values (a scaling curve)."""
    return [c for c in CONTEXT if c in df.columns and numeric(df[c]) and df[c].nunique() >= 3]


def cost_axes(df: pd.DataFrame, objective: Objective) -> list[tuple[str, str]]:
    """The natural cost axes of this table that vary over its feasible rows."""
    feas = df.loc[feasible_mask(df)]
    out = []
    pairs = list(COSTS)
    if objective.metric in SECONDARY:
        pairs.append(SECONDARY[objective.metric])
    for col, sense in pairs:
        if col == objective.metric or col not in feas.columns or not numeric(feas[col]):
            continue
        vals = feas[col].to_numpy(dtype=np.float64, na_value=np.nan)
        vals = vals[np.isfinite(vals)]
        if vals.size and np.ptp(vals) > 0:
            out.append((col, sense))
    if any(c == "J_per_token" for c, _ in out):  # the same energy, per period
        out = [(c, s) for c, s in out if c != "energy_J"]
    return out


def front(df: pd.DataFrame, objectives: Mapping[str, str], source: str = "report") -> Front:
    """The feasible Pareto front over ``objectives`` with its hypervolume to the reference
    point each objective's worst feasible value moved :data:`dse.pareto.REF_MARGIN` of its
    range further (the rule of ``python -m dse.search.pareto``)."""
    feas = df.loc[feasible_mask(df)]
    try:
        rows = pareto_front(feas, objectives)
    except ConfigError as err:  # name the results, not the function
        raise ConfigError(source, err.key, err.expected, err.got) from None
    cols = list(objectives)
    sense = [objectives[c] == "min" for c in cols]
    vals = feas[cols].to_numpy(dtype=np.float64, na_value=np.nan)
    vals = vals[np.isfinite(vals).all(axis=1)]
    ref = default_reference(vals, sense)
    hv = hypervolume(rows[cols].to_numpy(dtype=np.float64), ref, sense) if len(vals) else 0.0
    return Front(
        dict(objectives), rows, float(hv), dict(zip(cols, ref.tolist(), strict=True)), len(vals)
    )


def geometric_mean(s: pd.Series) -> float:
    """Geometric mean of the positive finite values (NaN when there are none)."""
    v = s.to_numpy(dtype=np.float64, na_value=np.nan)
    v = v[np.isfinite(v) & (v > 0)]
    return float(np.exp(np.log(v).mean())) if v.size else float("nan")


def ablation(df: pd.DataFrame, column: str, objective: Objective) -> pd.DataFrame:
    """The objective per value of ``column``: ``points`` (all rows), ``feasible``, ``best``
    (min or max over feasible rows) and ``geomean`` (geometric mean over feasible rows),
    indexed by the value: numeric values in ascending order, others best first."""
    ok = feasible_mask(df)
    keys = df[column].astype(str) if not numeric(df[column]) else df[column]
    points = keys.value_counts(dropna=True)
    feas = df.loc[ok].assign(_key=keys[ok])
    grouped = feas.groupby("_key", dropna=True)[objective.metric]
    out = pd.DataFrame(
        {
            "points": points,
            "feasible": feas.groupby("_key", dropna=True).size(),
            "best": grouped.min() if objective.minimize else grouped.max(),
            "geomean": grouped.agg(geometric_mean),
        }
    )
    out["feasible"] = out["feasible"].fillna(0).astype(int)
    out.index.name = column
    if numeric(df[column]):
        return out.sort_index()
    return out.sort_values("best", ascending=objective.minimize, na_position="last")


def best_rows(df: pd.DataFrame, objective: Objective, n: int) -> pd.DataFrame:
    """The ``n`` best feasible rows by the objective (stable: ties keep table order)."""
    feas = df.loc[feasible_mask(df)]
    feas = feas[np.isfinite(feas[objective.metric].to_numpy(np.float64, na_value=np.nan))]
    return feas.sort_values(objective.metric, ascending=objective.minimize, kind="stable").head(n)


def group_means(df: pd.DataFrame, column: str, cols: Sequence[str]) -> pd.DataFrame:
    """Mean of ``cols`` over the feasible rows of each value of ``column``."""
    feas = df.loc[feasible_mask(df)]
    return feas.groupby(feas[column].astype(str), sort=True)[list(cols)].mean()


def point_label(row: pd.Series, columns: Sequence[str]) -> str:
    """A short label of a design point: its values of ``columns`` (last path part)."""
    parts = []
    for c in columns:
        v = row[c]
        v = f"{v:.4g}" if isinstance(v, float | np.floating) else str(v)
        parts.append(f"{c.rsplit('.', 1)[-1]}={v}")
    return " ".join(parts)


def varying(df: pd.DataFrame, columns: Sequence[str] | None = None) -> list[str]:
    """Parameter and label columns that take more than one value."""
    cols = columns if columns is not None else [c for c in df.columns if _is_param(c)]
    return [c for c in cols if c in df.columns and df[c].nunique(dropna=False) > 1]
