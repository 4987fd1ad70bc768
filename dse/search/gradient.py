"""Gradients of the models over continuous relaxations: sensitivities and Adam search.

The models (:data:`dse.models.MODELS`) are pure JAX functions of one design point, so a
metric's derivative with respect to any numeric leaf is one forward-mode pass away. Float
leaves (``hw.host.mem_GBps``, ``hw.pim.tCK_ns``) are differentiated as they are. Integer
leaves (cycle counts, sizes) are *relaxed*: the point carries the leaf as a float64 and the
model runs its integer arithmetic (``//``, ``%``, ``ceil``) in floating point, which equals
the integer model at integer values; between them the derivative is that of the relaxation
(zero across a floor/ceil step, the slope of a linear term). A leaf relaxes only if the model
then still traces: loops, gathers and ``lax.switch`` that need integers reject it.
Categorical leaves (an ``IntEnum`` in the field's ``choices``: policies, system kind, LLM
preset) and integer switches whose range is exactly ``[0, 1]`` are never relaxed.

Derivatives are taken in forward mode (``jax.jvp``/``jax.jacfwd``): the models hold
``lax.while_loop`` (:mod:`dse.models.pim_kernel`'s tile recurrence) and ``lax.fori_loop``
with traced bounds (:mod:`dse.models.system`'s layer recurrence), which reverse mode
(``jax.grad``) cannot differentiate through.

Public functions:

* :func:`differentiable_paths`: the leaves with a finite derivative at a point, found by
  tracing the model with each integer leaf relaxed and evaluating the Jacobian;
* :func:`sensitivities`: gradient and elasticity ``(∂m/∂x)·(x/m)`` of a metric for every such
  leaf, ranked, with a finite-difference check (central, relative step :data:`FD_REL_STEP`
  for floats; ±1 for relaxed integers, i.e. the integer model's discrete slope);
* :func:`plot_sensitivities`: the ranked, signed elasticities as a bar chart (PNG);
* :func:`adam_search`: many starts of Adam (optax) over the unit box, vectorized with
  ``jax.vmap`` inside one compiled ``jax.lax.scan``; the best point is rounded to integers
  where the leaf is an integer and evaluated again exactly.

``model`` is a name in :data:`~dse.models.MODELS`, a :class:`~dse.models.ModelSpec` or any
callable ``point -> dict of scalar metrics`` (then ``metric`` must be named).
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from enum import IntEnum
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib  # noqa: E402
import matplotlib.patches  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import qmc  # noqa: E402

from dse._pytree import get_path, replace_paths  # noqa: E402
from dse.models import MODELS, ModelSpec  # noqa: E402
from dse.point import DesignPoint, FieldInfo, field_info, is_feasible  # noqa: E402
from dse.precision import with_x64

__all__ = [
    "FD_REL_STEP",
    "LOG_RATIO",
    "adam_search",
    "differentiable_paths",
    "plot_sensitivities",
    "sensitivities",
]

#: relative step of the central finite differences of float leaves (absolute where x = 0)
FD_REL_STEP = 1e-4
#: a positive search range with ``high / low`` at least this wide is searched in log space
LOG_RATIO = 100.0

ModelLike = str | ModelSpec | Callable[[DesignPoint], Mapping[str, Any]]

# (fn, tree signature, paths) → why the model does not trace with paths relaxed (None: it does)
_RELAX_ERRORS: dict[tuple, str | None] = {}


# ------------------------------------------------------------------------------------------
# models, paths and relaxed points
# ------------------------------------------------------------------------------------------


def _resolve(model: ModelLike, metric: str | None) -> tuple[Callable, str, bool | None, str]:
    """``(fn, metric, default minimize or None, name)`` of a model-like argument."""
    if isinstance(model, str):
        if model not in MODELS:
            raise ValueError(f"model: unknown model {model!r}; one of {sorted(MODELS)}")
        spec, name = MODELS[model], model
    elif isinstance(model, ModelSpec):
        spec = model
        name = next((k for k, v in MODELS.items() if v is model), getattr(model.fn, "__name__", ""))
    elif callable(model):
        if metric is None:
            raise ValueError("metric: a callable model needs the metric to be named")
        return model, metric, None, getattr(model, "__name__", "model")
    else:
        raise TypeError(f"model: a name in MODELS, a ModelSpec or a callable, got {model!r}")
    if spec.batched is not None:
        raise ValueError(f"model {name!r} compiles whole batches itself; it has no point function")
    metric = spec.objective if metric is None else metric
    if metric not in spec.metrics:
        raise ValueError(f"metric: {name} has no metric {metric!r}; one of {list(spec.metrics)}")
    return spec.fn, metric, (spec.minimize if metric == spec.objective else None), name


def _is_categorical(info: FieldInfo) -> bool:
    """An enum-coded choice, or an integer switch whose whole range is {0, 1}."""
    ch = info.choices
    if isinstance(ch, type) and issubclass(ch, IntEnum):
        return True
    md = info.field.metadata
    return info.dtype.kind == "i" and md.get("low") == 0 and md.get("high") == 1


def _check_paths(paths: Sequence[str]) -> tuple[str, ...]:
    infos = field_info()
    for p in paths:
        if p not in infos:
            raise ValueError(f"paths: unknown parameter {p!r}")
        if infos[p].static:
            raise ValueError(f"paths: {p!r} is static (it sets shapes); it cannot be relaxed")
        if _is_categorical(infos[p]):
            raise ValueError(f"paths: {p!r} is a categorical choice; it cannot be relaxed")
    if len(set(paths)) != len(paths):
        raise ValueError(f"paths: repeated entries in {list(paths)}")
    return tuple(paths)


def _relaxed(base: DesignPoint, paths: tuple[str, ...], x: jax.Array) -> DesignPoint:
    """``base`` with ``x[i]`` (float64, integer leaves relaxed) at ``paths[i]``."""
    return replace_paths(base, {p: x[i] for i, p in enumerate(paths)})


def _signature(base: DesignPoint) -> tuple:
    leaves, treedef = jax.tree_util.tree_flatten(base)
    return treedef, tuple((np.shape(v), np.result_type(v).str) for v in leaves)


def _base_values(base: DesignPoint, paths: Sequence[str]) -> np.ndarray:
    return np.asarray([float(np.asarray(get_path(base, p))) for p in paths], dtype=np.float64)


def _trace_error(fn: Callable, base: DesignPoint, paths: tuple[str, ...]) -> str | None:
    """Why the model cannot be differentiated with ``paths`` relaxed to float64 (None: it
    can). Traces a JVP abstractly (nothing is compiled); the answer depends only on the
    point's structure, static fields and dtypes, so it is cached on them. A JAX
    FutureWarning about an implicit float → int cast counts as an error: the next JAX
    release makes it one."""
    key = (fn, _signature(base), paths)
    if key in _RELAX_ERRORS:
        return _RELAX_ERRORS[key]
    x = jnp.asarray(_base_values(base, paths))

    def jvp(b, y):
        return jax.jvp(lambda z: fn(_relaxed(b, paths, z)), (y,), (jnp.ones_like(y),))

    err = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)
            jax.eval_shape(jvp, base, x)
    except Exception as exc:  # any trace-time failure means "does not relax"
        first = (str(exc).strip().splitlines() or [""])[0]
        err = f"{type(exc).__name__}: {first[:200]}"
    _RELAX_ERRORS[key] = err
    return err


def _relaxable(fn: Callable, base: DesignPoint, paths: tuple[str, ...]) -> tuple[str, ...]:
    """``paths`` (each relaxes alone) narrowed to a set that relaxes jointly: all of them if
    they trace together, else greedily in order."""
    if _trace_error(fn, base, paths) is None:
        return paths
    kept: tuple[str, ...] = ()
    for p in paths:
        if _trace_error(fn, base, (*kept, p)) is None:
            kept = (*kept, p)
    return kept


def _candidates(fn: Callable, base: DesignPoint) -> tuple[str, ...]:
    """Float leaves and the integer leaves whose relaxation traces, in field order."""
    infos = field_info()
    out = []
    for path, info in infos.items():
        if info.static or _is_categorical(info):
            continue
        if info.dtype.kind == "f" or _trace_error(fn, base, (path,)) is None:
            out.append(path)
    joint = set(_relaxable(fn, base, tuple(p for p in out if infos[p].dtype.kind == "i")))
    return tuple(p for p in out if infos[p].dtype.kind == "f" or p in joint)


def _require_relaxable(fn: Callable, base: DesignPoint, paths: tuple[str, ...]) -> None:
    if _trace_error(fn, base, paths) is None:
        return
    infos = field_info()
    for p in paths:
        if infos[p].dtype.kind == "i" and (err := _trace_error(fn, base, (p,))) is not None:
            raise ValueError(f"paths: the model cannot run with integer {p!r} relaxed ({err})")
    raise ValueError(f"paths: the model cannot run with {list(paths)} relaxed together")


# ------------------------------------------------------------------------------------------
# Jacobian and finite differences in one compiled call
# ------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _jvp_program(fn: Callable, paths: tuple[str, ...]) -> Callable:
    """Compiled ``(base, X (r, n), T (r, n)) → (metrics, tangents)``, both dicts of (r,)
    float64: row ``i`` evaluates the point with ``X[i]`` at ``paths`` and pushes the tangent
    ``T[i]`` forward. Integer metrics come back as float64 (zero tangent unless a relaxed
    leaf reaches them). One compile per (model, paths, tree structure)."""

    def one(base, x, t):
        def f(y):
            out = fn(_relaxed(base, paths, y))
            return {k: jnp.asarray(v, jnp.float64) for k, v in out.items()}

        return jax.jvp(f, (x,), (t,))

    return jax.jit(jax.vmap(one, in_axes=(None, 0, 0)))


def _fd_steps(base: DesignPoint, paths: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, list]:
    """Finite-difference abscissae ``(lo, hi)`` (n,) and the scheme of each path: central
    ``x ± h`` with ``h = FD_REL_STEP·|x|`` (``FD_REL_STEP`` at 0) for floats and ``h = 1`` for
    integers, one-sided where a side leaves the field's allowed range."""
    infos = field_info()
    x = _base_values(base, paths)
    lo, hi, scheme = x.copy(), x.copy(), []
    for i, p in enumerate(paths):
        info = infos[p]
        md = info.field.metadata
        h = 1.0 if info.dtype.kind == "i" else FD_REL_STEP * (abs(x[i]) or 1.0)
        low, high = md.get("low"), md.get("high")
        down_ok = low is None or (x[i] - h > low if md.get("low_open") else x[i] - h >= low)
        up_ok = high is None or x[i] + h <= high
        lo[i] = x[i] - h if down_ok else x[i]
        hi[i] = x[i] + h if up_ok else x[i]
        scheme.append(
            {(1, 1): "central", (0, 1): "forward", (1, 0): "backward"}.get(
                (int(down_ok), int(up_ok)), "none"
            )
        )
    return lo, hi, scheme


def _metric_of(metrics: Mapping[str, Any], metric: str) -> Any:
    if metric not in metrics:
        raise ValueError(f"metric: the model returns no {metric!r}; one of {list(metrics)}")
    return metrics[metric]


def _probe(fn: Callable, base: DesignPoint, paths: tuple[str, ...]) -> dict[str, Any]:
    """Metrics, Jacobian (forward mode) and finite differences at ``base`` in one call of
    :func:`_jvp_program` with ``3n`` rows: ``n`` tangent rows (identity) at ``x``, then the
    points ``lo_i`` and ``hi_i`` of :func:`_fd_steps`."""
    n = len(paths)
    x = _base_values(base, paths)
    lo, hi, scheme = _fd_steps(base, paths)
    eye = np.eye(n)
    at = np.broadcast_to(x[None, :], (n, n))
    X = np.concatenate([at, at + eye * (lo - x)[None, :], at + eye * (hi - x)[None, :]])
    T = np.concatenate([eye, np.zeros((2 * n, n))])
    vals, tans = _jvp_program(fn, paths)(base, jnp.asarray(X), jnp.asarray(T))
    vals = {k: np.asarray(v) for k, v in vals.items()}
    with np.errstate(divide="ignore", invalid="ignore"):
        fd = {k: (v[2 * n :] - v[n : 2 * n]) / (hi - lo) for k, v in vals.items()}
    return {
        "x": x,
        "value": {k: v[0] for k, v in vals.items()},
        "jac": {k: np.asarray(v)[:n] for k, v in tans.items()},  # row j: ∂/∂x_j
        "fd": fd,
        "fd_step": (hi - lo) / np.where(np.asarray(scheme) == "central", 2.0, 1.0),
        "fd_scheme": scheme,
    }


# ------------------------------------------------------------------------------------------
# public: differentiable paths and sensitivities
# ------------------------------------------------------------------------------------------


def differentiable_paths(
    base: DesignPoint, model: ModelLike, metric: str | None = None, nonzero: bool = False
) -> list[str]:
    """The non-static leaves through which ``metric`` (default: the model's objective) has a
    finite derivative at ``base``, in field order.

    Decided empirically: every float leaf, and every integer leaf with which, relaxed to
    float64, the model still traces (the relaxed integers must also trace together), is
    differentiated at ``base`` in forward mode; those with a finite derivative qualify.
    Categorical choices (enum ``choices``) and ``[0, 1]`` switches never do. ``nonzero``
    keeps only leaves with a nonzero derivative (a zero one is exact for a leaf the metric
    does not use here, and means "flat" for an integer behind a floor/ceil or cast).

    Cost: one abstract trace per integer leaf (about 0.5 s each for ``system``; cached per
    model and point structure) and one compiled Jacobian, which :func:`sensitivities` with
    ``paths=None`` reuses.
    """
    fn, metric, _, _ = _resolve(model, metric)
    cands = _candidates(fn, base)
    if not cands:
        return []
    g = _metric_of(_probe(fn, base, cands)["jac"], metric)
    keep = np.isfinite(g) & ((g != 0) if nonzero else True)
    return [p for p, k in zip(cands, keep, strict=True) if k]


@with_x64
def sensitivities(
    base: DesignPoint,
    model: ModelLike,
    metric: str | None = None,
    paths: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Gradient and elasticity of ``metric`` (default: the objective) at ``base``.

    ``paths`` default to every candidate leaf of :func:`differentiable_paths` with a finite
    derivative of ``metric``; named paths are all reported (a non-finite gradient as NaN).
    One row per path, ranked by ``|elasticity|`` (largest first, NaN last):

    * ``path``, ``kind`` (``float`` or ``int (relaxed)``), ``value`` (x), ``doc`` (the field's
      docstring, with its unit);
    * ``gradient`` ∂m/∂x (metric units per unit of x) by forward-mode AD (``jax.jvp``);
    * ``elasticity`` (∂m/∂x)·x/m: % change of the metric per % change of x (NaN where m = 0);
    * ``fd_gradient``, ``fd_elasticity``: the same by finite differences of the model,
      ``fd_scheme`` (``central``; ``forward``/``backward`` at the edge of the field's range)
      with step ``fd_step``: ``FD_REL_STEP·|x|`` for floats, 1 (one cycle, one byte…) for
      relaxed integers — there it is the integer model's discrete slope, which a zero
      gradient (a floor/ceil plateau) will not match;
    * ``fd_rel_err`` = ``|gradient - fd_gradient| / max(|gradient|, |fd_gradient|)`` (0 when
      both vanish).

    ``frame.attrs`` hold ``model``, ``metric`` and ``metric_value`` (m at ``base``). The
    Jacobian and the differences come from one compiled call; a second call with the same
    model, paths and static fields does not recompile.
    """
    fn, metric, _, name = _resolve(model, metric)
    if paths is None:
        cands = _candidates(fn, base)
    else:
        cands = _check_paths(list(paths))
        _require_relaxable(fn, base, cands)
    infos = field_info()
    if not cands:
        probe = {"x": np.zeros(0), "value": {}, "jac": {metric: np.zeros(0)}}
        probe |= {"fd": {metric: np.zeros(0)}, "fd_step": np.zeros(0), "fd_scheme": []}
        m = float(np.asarray(fn(base)[metric]))
    else:
        probe = _probe(fn, base, cands)
        m = float(_metric_of(probe["value"], metric))
    g, fd, x = probe["jac"][metric] + 0.0, probe["fd"][metric] + 0.0, probe["x"]  # no -0.0
    keep = np.ones(len(cands), bool) if paths is not None else np.isfinite(g)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(m != 0, x / m, np.nan)
        denom = np.maximum(np.abs(g), np.abs(fd))
        rel = np.where(denom > 0, np.abs(g - fd) / np.where(denom > 0, denom, 1.0), 0.0)
    frame = pd.DataFrame(
        {
            "path": list(cands),
            "kind": ["int (relaxed)" if infos[p].dtype.kind == "i" else "float" for p in cands],
            "value": x,
            "doc": [infos[p].doc for p in cands],
            "gradient": g,
            "elasticity": g * scale,
            "fd_gradient": fd,
            "fd_elasticity": fd * scale,
            "fd_step": probe["fd_step"],
            "fd_scheme": probe["fd_scheme"],
            "fd_rel_err": np.where(np.isfinite(g) & np.isfinite(fd), rel, np.nan),
        }
    )[keep]
    order = np.argsort(
        -np.nan_to_num(np.abs(frame["elasticity"].to_numpy()), nan=-1.0), kind="stable"
    )
    frame = frame.iloc[order].reset_index(drop=True)
    frame.attrs.update(model=name, metric=metric, metric_value=m)
    return frame


def plot_sensitivities(
    df: pd.DataFrame, path: str | os.PathLike, top: int = 30, title: str = ""
) -> Path:
    """Horizontal bars of the signed elasticities of :func:`sensitivities`' frame, largest
    ``|elasticity|`` at the top (at most ``top`` bars; zero and NaN rows left out), saved as
    a PNG at ``path``. Relaxed integer leaves are hatched."""
    path = Path(path)
    data = df[np.isfinite(df["elasticity"]) & (df["elasticity"] != 0)]
    data = data.iloc[np.argsort(-np.abs(data["elasticity"].to_numpy()), kind="stable")][:top]
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.28 * max(len(data), 1)), dpi=120)
    y = np.arange(len(data))[::-1]
    e = data["elasticity"].to_numpy()
    bars = ax.barh(y, e, color=np.where(e > 0, "tab:blue", "tab:red"), height=0.7)
    for bar, kind in zip(bars, data.get("kind", ["float"] * len(data)), strict=True):
        if kind != "float":
            bar.set_hatch("//")
    if any(bar.get_hatch() for bar in bars):
        relaxed = matplotlib.patches.Patch(facecolor="white", edgecolor="black", hatch="//")
        ax.legend([relaxed], ["relaxed integer"], loc="lower right", fontsize=8)
    ax.set_yticks(y, data["path"].tolist(), fontsize=8)
    ax.axvline(0.0, color="black", linewidth=0.8)
    metric = df.attrs.get("metric", "metric")
    ax.set_xlabel(f"elasticity of {metric}  (% change per % change of the parameter)")
    ax.set_title(title or f"{df.attrs.get('model', '')}: sensitivities of {metric}".strip(": "))
    if not len(data):
        ax.text(0.5, 0.5, "no nonzero elasticity", ha="center", transform=ax.transAxes)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------
# public: Adam over the unit box
# ------------------------------------------------------------------------------------------


def _bounds_array(
    paths: tuple[str, ...], bounds: Mapping[str, Sequence[float]] | Sequence[Sequence[float]]
) -> tuple[np.ndarray, np.ndarray]:
    pairs = [bounds[p] for p in paths] if isinstance(bounds, Mapping) else list(bounds)
    if len(pairs) != len(paths):
        raise ValueError(f"bounds: {len(pairs)} pairs for {len(paths)} paths")
    lo = np.asarray([float(b[0]) for b in pairs])
    hi = np.asarray([float(b[1]) for b in pairs])
    infos = field_info()
    for p, a, b in zip(paths, lo, hi, strict=True):
        info = infos[p]
        md = info.field.metadata
        if not (np.isfinite(a) and np.isfinite(b) and a < b):
            raise ValueError(f"bounds[{p!r}]: need finite low < high, got ({a}, {b})")
        low, high = md.get("low"), md.get("high")
        if (low is not None and (a < low or (md.get("low_open") and a == low))) or (
            high is not None and b > high
        ):
            raise ValueError(f"bounds[{p!r}]: ({a}, {b}) leaves the allowed {info.expected()}")
        if info.dtype.kind == "i" and math.ceil(a) > math.floor(b):
            raise ValueError(f"bounds[{p!r}]: ({a}, {b}) holds no integer")
    return lo, hi


def _from_unit(u, lo, hi, log):
    """Unit box → parameters: linear, or geometric where ``log`` (positive ranges spanning
    at least :data:`LOG_RATIO`); clipped so rounding never leaves ``[lo, hi]``."""
    safe_lo = jnp.where(log, lo, 1.0)
    safe_hi = jnp.where(log, hi, 1.0)
    geo = jnp.exp(jnp.log(safe_lo) + u * (jnp.log(safe_hi) - jnp.log(safe_lo)))
    return jnp.clip(jnp.where(log, geo, lo + u * (hi - lo)), lo, hi)


@functools.lru_cache(maxsize=16)
def _adam_program(
    fn: Callable,
    paths: tuple[str, ...],
    metric: str,
    sign: float,
    penalty: Callable | None,
    steps: int,
) -> Callable:
    """Compiled ``(base, Z0 (S, n), lo, hi, log, lr) → (Z, objective (steps + 1, S), loss
    (steps + 1, S))``: ``steps`` Adam updates of every start together (vmap) in one scan.
    Row ``k`` of the trajectories is the relaxed point before update ``k``; the last row is
    the final point."""

    def loss_of(base, z, lo, hi, log):
        point = _relaxed(base, paths, _from_unit(jax.nn.sigmoid(z), lo, hi, log))
        out = fn(point)
        m = jnp.asarray(out[metric], jnp.float64)
        loss = sign * m
        if penalty is not None:
            loss = loss + jnp.asarray(penalty(point, out), jnp.float64)
        return loss, (loss, m)

    grad = jax.vmap(
        jax.jacfwd(loss_of, argnums=1, has_aux=True), in_axes=(None, 0, None, None, None)
    )

    def run(base, z0, lo, hi, log, lr):
        opt = optax.adam(lr)

        def step(carry, _):
            z, state = carry
            g, (loss, m) = grad(base, z, lo, hi, log)
            g = jnp.where(jnp.isfinite(g), g, 0.0)  # a NaN start stays put, not the others
            updates, state = opt.update(g, state, z)
            return (optax.apply_updates(z, updates), state), (m, loss)

        (z, _), (ms, losses) = jax.lax.scan(step, (z0, opt.init(z0)), None, length=steps)
        _, (loss_f, m_f) = grad(base, z, lo, hi, log)
        return z, jnp.concatenate([ms, m_f[None, :]]), jnp.concatenate([losses, loss_f[None, :]])

    return jax.jit(run)


def _exact(fn: Callable, name: str | None, base: DesignPoint, swept: dict[str, np.ndarray]):
    """Metrics (numpy, one row per point) of the exact model at the swept values."""
    if name is not None:
        from dse.explore import evaluate_points

        return evaluate_points(base, swept, name)[0]
    out = _exact_program(fn)(base, {k: jnp.asarray(v) for k, v in swept.items()})
    return {k: np.asarray(v) for k, v in out.items()}


@functools.lru_cache(maxsize=16)
def _exact_program(fn: Callable) -> Callable:
    return jax.jit(jax.vmap(lambda b, s: fn(replace_paths(b, s)), in_axes=(None, 0)))


@with_x64
def adam_search(
    base: DesignPoint,
    model: ModelLike,
    paths: Sequence[str],
    bounds: Mapping[str, Sequence[float]] | Sequence[Sequence[float]],
    metric: str | None = None,
    minimize: bool | None = None,
    starts: int = 64,
    steps: int = 200,
    lr: float = 0.05,
    seed: int = 0,
    penalty: Callable[[DesignPoint, Mapping[str, jax.Array]], jax.Array] | None = None,
) -> dict[str, Any]:
    """Optimise ``metric`` over ``paths`` within ``bounds`` by Adam on a relaxation.

    Each parameter is ``x = lo + (hi - lo)·σ(z)``, or ``x = lo·(hi/lo)^σ(z)`` for a positive
    range with ``hi/lo >= LOG_RATIO``, so every iterate lies inside its bounds; Adam
    (``optax.adam(lr)``) moves the unconstrained ``z``. ``starts`` points scattered by a
    scrambled Sobol sequence (``seed``) in the unit box run ``steps`` updates together:
    ``jax.vmap`` over starts inside one ``jax.jit``-compiled ``jax.lax.scan``, gradients in
    forward mode (``jax.jacfwd``: the models' loops rule out reverse mode). Integer leaves
    are relaxed while searching; the final values are rounded to the nearest integer in
    bounds and every start's final (and initial) point is evaluated again by the exact
    model.

    ``bounds``: ``{path: (low, high)}`` or pairs in the order of ``paths``; they must lie in
    the field's allowed range. ``metric`` defaults to the model's objective and ``minimize``
    to its direction (it must be given for another metric; a callable model minimizes by
    default). ``penalty(point, metrics) → scalar`` (JAX-traceable) is added to the loss
    ``±metric`` (minus when maximizing), in the loss's units: e.g. for ``system``,
    ``lambda point, m: 1e6 * jnp.maximum(m["J_per_token"] - 0.1, 0.0) ** 2`` for an energy
    budget, or ``lambda point, m: 0.5 * point.hw.host.mem_GBps`` to price bandwidth. The
    best point is chosen by the same loss, evaluated exactly.

    Returns a dict: ``values`` ({path: value} of the best final point; ints for integer
    leaves), ``point`` (that :class:`DesignPoint`), ``objective`` (its exact metric),
    ``metrics`` (all its exact metrics), ``loss``, ``feasible`` (status 0), ``start`` (which
    start found it), ``metric``, ``minimize``, ``scale`` ({path: "log" | "linear"}),
    ``trajectory`` (DataFrame ``start, step, objective, loss``: the relaxed metric of every
    start before each update, step ``steps`` = final) and ``starts`` (DataFrame, one row
    per start: exact ``initial_objective`` and ``objective`` after rounding, ``loss``,
    ``feasible`` and the final values). The best point is the feasible rounded final point
    of lowest loss (of any final point when none is feasible).
    """
    fn, metric, default_min, name = _resolve(model, metric)
    if minimize is None:
        if not isinstance(model, (str, ModelSpec)):
            minimize = True
        elif default_min is None:
            raise ValueError(f"minimize: say whether {metric!r} is to be minimized or maximized")
        else:
            minimize = default_min
    if starts < 1 or steps < 0:
        raise ValueError(f"starts >= 1 and steps >= 0 needed, got {starts}, {steps}")
    paths = _check_paths(list(paths))
    if not paths:
        raise ValueError("paths: name at least one parameter to search")
    lo, hi = _bounds_array(paths, bounds)
    infos = field_info()
    is_int = np.asarray([infos[p].dtype.kind == "i" for p in paths])
    if is_int.any():
        _require_relaxable(fn, base, paths)
    log = (lo > 0) & (hi / np.where(lo > 0, lo, 1.0) >= LOG_RATIO)
    registered = name if isinstance(model, str) else (name if name in MODELS else None)
    if registered is not None and MODELS[registered].fn is not fn:
        registered = None

    # starting points: scrambled Sobol in the open unit box, mapped through the logit
    eng = qmc.Sobol(len(paths), scramble=True, seed=np.random.default_rng(seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # balance needs 2^m points
        u0 = np.clip(eng.random(starts), 1e-6, 1.0 - 1e-6)
    z0 = np.log(u0) - np.log1p(-u0)

    sign = 1.0 if minimize else -1.0
    program = _adam_program(fn, paths, metric, sign, penalty, int(steps))
    args = (jnp.asarray(lo), jnp.asarray(hi), jnp.asarray(log))
    z, traj_m, traj_loss = program(base, jnp.asarray(z0), *args, jnp.asarray(float(lr)))

    # round, then evaluate initial and final points with the exact model in one call
    def values_of(zz):
        x = np.asarray(
            jax.vmap(_from_unit, in_axes=(0, None, None, None))(
                jax.nn.sigmoid(jnp.asarray(zz)), *args
            )
        )
        rounded = np.clip(np.rint(x), np.ceil(lo)[None, :], np.floor(hi)[None, :])
        return np.where(is_int[None, :], rounded, x)

    x0, x1 = values_of(z0), values_of(z)
    both = np.concatenate([x0, x1])
    swept = {p: both[:, i].astype(infos[p].dtype) for i, p in enumerate(paths)}
    out = _exact(fn, registered, base, swept)
    objective = np.asarray(out[metric], np.float64)
    loss = sign * objective
    if penalty is not None:
        pen = jax.vmap(lambda s, m: penalty(replace_paths(base, s), m))(
            {k: jnp.asarray(v) for k, v in swept.items()},
            {k: jnp.asarray(v) for k, v in out.items()},
        )
        loss = loss + np.asarray(pen, np.float64)
    status = np.asarray(out.get("status", np.zeros(2 * starts, np.int64)))
    feasible = is_feasible(status) & np.isfinite(loss)
    fin = slice(starts, 2 * starts)
    pool = np.where(feasible[fin], loss[fin], np.inf)
    if not np.isfinite(pool).any():
        pool = np.where(np.isfinite(loss[fin]), loss[fin], np.inf)
    best = int(np.argmin(pool))
    row = starts + best

    values = {
        p: (int(x1[best, i]) if is_int[i] else float(x1[best, i])) for i, p in enumerate(paths)
    }
    point = replace_paths(
        base, {p: np.asarray(v, dtype=infos[p].dtype)[()] for p, v in values.items()}
    )
    n_steps = traj_m.shape[0]
    trajectory = pd.DataFrame(
        {
            "start": np.tile(np.arange(starts), n_steps),
            "step": np.repeat(np.arange(n_steps), starts),
            "objective": np.asarray(traj_m).reshape(-1),
            "loss": np.asarray(traj_loss).reshape(-1),
        }
    )
    per_start = pd.DataFrame(
        {
            "start": np.arange(starts),
            "initial_objective": objective[:starts],
            "objective": objective[fin],
            "loss": loss[fin],
            "feasible": feasible[fin],
            **{p: x1[:, i].astype(infos[p].dtype) for i, p in enumerate(paths)},
        }
    )
    return {
        "values": values,
        "point": point,
        "objective": float(objective[row]),
        "metrics": {k: np.asarray(v)[row].item() for k, v in out.items()},
        "loss": float(loss[row]),
        "feasible": bool(feasible[row]),
        "start": best,
        "metric": metric,
        "minimize": bool(minimize),
        "scale": {p: "log" if lg else "linear" for p, lg in zip(paths, log, strict=True)},
        "trajectory": trajectory,
        "starts": per_start,
    }
