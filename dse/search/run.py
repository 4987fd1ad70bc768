"""Population search over design points: every generation evaluated in one compiled,
vectorized call (:func:`dse.explore.evaluate_points`).

Strategies (``search.strategy``):

* ``cmaes``: CMA-ES with margin for mixed continuous / integer / categorical spaces
  (:class:`cmaes.CatCMAwM`); log-scaled continuous parameters move in log space.
* ``ga``: differential evolution (:func:`scipy.optimize.differential_evolution`,
  ``vectorized=True``: a generation's trial vectors in one call) on the unit cube, discrete
  parameters taking the level of their share of it.
* ``random``: a scrambled Sobol sequence (:mod:`scipy.stats.qmc`) on the unit cube.
* ``grid``: every combination of the parameters' levels (``grid_levels`` per continuous one),
  exhaustive unless ``max_evals`` cuts it short (``generations`` and ``patience`` do not).

Constraints are comparisons over parameter paths and metrics (``"area_mm2 <= 120"``,
``"hw.pim.lanes * hw.pim.banks <= 512"``). A point is feasible when its model status is 0 and
every constraint holds; the search ranks feasible points by the objective and infeasible ones
after all of them, by their summed relative violation (Deb's rule, as a penalty), so returned
optima never violate a constraint.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
import pandas as pd

from dse._pytree import get_path, replace_paths
from dse.errors import ConfigError
from dse.explore import evaluate_points
from dse.models import MODELS
from dse.point import DesignPoint, field_info, is_feasible
from dse.precision import with_x64
from dse.search.params import Param
from dse.space import _DOTTED

__all__ = ["STRATEGIES", "Constraint", "Problem", "SearchResult", "area_metrics", "search"]

STRATEGIES = ("cmaes", "ga", "random", "grid", "adam")
_BIG = 1e18  # infeasible points rank after every feasible one
_CMP = re.compile(r"(<=|>=|<|>)")


@dataclasses.dataclass(frozen=True)
class Constraint:
    """``lhs op rhs`` over parameter paths and metric names (``op``: <=, >=, <, >)."""

    text: str
    lhs: str
    op: str
    rhs: str
    key: str = "search.constraints"

    @classmethod
    def parse(cls, text: Any, key: str, source: str = "search") -> Constraint:
        parts = _CMP.split(str(text)) if isinstance(text, str) else []
        if len(parts) != 3 or not parts[0].strip() or not parts[2].strip():
            raise ConfigError(source, key, "one comparison 'expr <= expr' (or >=, <, >)", text)
        return cls(str(text), parts[0].strip(), parts[1], parts[2].strip(), key)

    def violation(self, cols: Mapping[str, np.ndarray], source: str = "search") -> np.ndarray:
        """Relative amount by which each row breaks the constraint (0 where it holds)."""
        lhs, rhs = (self._eval(e, cols, source) for e in (self.lhs, self.rhs))
        scale = np.maximum(np.abs(rhs), 1e-12)
        gap = lhs - rhs if self.op in ("<=", "<") else rhs - lhs
        strict = self.op in ("<", ">")
        broken = (gap >= 0) if strict else (gap > 0)
        return np.where(broken, np.maximum(gap, 0.0) / scale + strict * 1e-12, 0.0)

    def _eval(self, expr: str, cols: Mapping[str, np.ndarray], source: str) -> np.ndarray:
        mangled = _DOTTED.sub(lambda m: m.group(1).replace(".", "__"), expr)
        env = {k.replace(".", "__"): np.asarray(v, dtype=np.float64) for k, v in cols.items()}
        try:
            out = pd.eval(mangled, local_dict=env, engine="python")
        except Exception as exc:  # pandas raises many types for bad names and syntax
            names = ", ".join(sorted(k for k in cols if not k.startswith("_")))
            raise ConfigError(
                source, self.key, f"an expression over: {names}", f"{expr} ({exc})"
            ) from None
        n = len(next(iter(cols.values())))
        return np.broadcast_to(np.asarray(out, dtype=np.float64), (n,))


@dataclasses.dataclass
class Problem:
    """What to optimise: ``model``'s ``objective`` at ``base`` with ``params`` moved, under
    ``constraints``; ``extra(base, swept)`` adds metrics (e.g. area) to every evaluation."""

    base: DesignPoint
    model: str
    params: list[Param]
    objective: str
    minimize: bool
    constraints: list[Constraint] = dataclasses.field(default_factory=list)
    extra: Callable[[DesignPoint, dict], dict] | None = None
    extra_metrics: Sequence[str] = ()  # the names ``extra`` returns
    batch: int = 256  # points per compiled call (a call's points are padded to it)
    source: str = "search"

    def __post_init__(self) -> None:
        self._fields = field_info()
        metrics = set(MODELS[self.model].metrics) | set(self.extra_metrics)
        if self.objective not in metrics:
            names = ", ".join(sorted(metrics))
            raise ConfigError(
                self.source, "search.objective", f"a metric of: {names}", self.objective
            )

    def evaluate(self, values: Mapping[str, np.ndarray]) -> pd.DataFrame:
        """Metrics, feasibility and fitness of the points ``values`` (path → array), in calls
        of ``batch`` points."""
        n = len(next(iter(values.values())))
        frames = []
        for start in range(0, n, self.batch):
            stop = min(start + self.batch, n)
            chunk = {k: np.asarray(v)[start:stop] for k, v in values.items()}
            frames.append(self._call(chunk, stop - start))
        return pd.concat(frames, ignore_index=True)

    def _call(self, chunk: Mapping[str, np.ndarray], n: int) -> pd.DataFrame:
        pad = self.batch - n
        swept = {}
        for q in self.params:
            v = np.asarray(chunk[q.path])
            dtype = np.int64 if self._fields[q.path].field.type == "int" else np.float64
            swept[q.path] = np.concatenate([v, np.repeat(v[:1], pad)]).astype(dtype)
        out, _, _ = evaluate_points(self.base, swept, self.model)
        cols = {k: np.asarray(v)[:n] for k, v in out.items() if np.ndim(v) >= 1}
        if self.extra is not None:
            cols.update({k: np.asarray(v)[:n] for k, v in self.extra(self.base, swept).items()})
        data = {q.path: np.asarray(chunk[q.path]) for q in self.params}
        data.update({k: v for k, v in cols.items() if k not in data})
        env = {k: v for k, v in data.items() if np.asarray(v).dtype.kind in "biuf"}
        viol = np.zeros(n)
        for c in self.constraints:
            for name in _DOTTED.findall(c.lhs + " " + c.rhs):
                if name not in env and name in self._fields:
                    env[name] = np.full(n, float(np.asarray(get_path(self.base, name))))
            viol += c.violation(env, self.source)
        status = np.asarray(data.get("status", np.zeros(n, np.int64)))
        obj = np.asarray(data[self.objective], dtype=np.float64)
        bad = ~is_feasible(status) | ~np.isfinite(obj)
        feasible = ~bad & (viol == 0)
        signed = obj if self.minimize else -obj
        data["feasible"] = feasible
        data["violation"] = np.where(bad, np.inf, viol)
        data["fitness"] = np.where(feasible, signed, _BIG * (1.0 + np.where(bad, 1.0, viol)))
        return pd.DataFrame(data)


@jax.jit
def _area_batch(base: DesignPoint, swept: dict) -> dict:
    from dse.search.area import AreaParams, area

    return jax.vmap(lambda s: area(replace_paths(base, s), AreaParams()))(swept)


def area_metrics(base: DesignPoint, swept: dict) -> dict:
    """:func:`dse.search.area.area` of every point (default technology parameters), as a
    :class:`Problem`'s ``extra``."""
    return {k: np.asarray(v) for k, v in _area_batch(base, swept).items()}


@dataclasses.dataclass
class SearchResult:
    """The best feasible point (``None`` when none was found), the whole history (one row per
    evaluated candidate) and the run's figures."""

    best: dict[str, Any] | None
    objective: str
    history: pd.DataFrame
    evaluations: int
    generations: int
    seconds: float
    stopped: str
    restarts: int = 0  # cmaes: IPOP restarts after convergence


@with_x64
def search(
    problem: Problem,
    strategy: str = "cmaes",
    population: int = 64,
    generations: int = 100,
    max_evals: int | None = None,
    seed: int = 0,
    patience: int = 0,
    tol: float = 0.0,
    grid_levels: int = 8,
    progress: Callable[[int, int, float | None], None] | None = None,
    lr: float = 0.05,
) -> SearchResult:
    """Run ``strategy`` on ``problem``. Stops after ``generations`` generations,
    ``max_evals`` evaluations, the strategy's own convergence, or ``patience`` generations
    whose best feasible fitness improved by less than ``tol`` (relative). ``adam``: gradient
    descent (:func:`dse.search.gradient.adam_search`) from ``population`` starts for
    ``generations`` steps at learning rate ``lr``, constraints as a penalty; every start's
    final point is then evaluated exactly, and the best feasible one is returned."""
    if strategy not in STRATEGIES:
        raise ConfigError(problem.source, "search.strategy", "one of " + ", ".join(STRATEGIES))
    budget = max_evals if max_evals else population * generations
    state = _Tracker(problem, budget, patience, tol, progress)
    t0 = time.perf_counter()
    if strategy == "cmaes":
        _cmaes(problem, state, population, generations, seed)
    elif strategy == "ga":
        _de(problem, state, population, generations, seed)
    elif strategy == "random":
        _random(problem, state, population, budget, seed)
    elif strategy == "grid":
        _grid(problem, state, grid_levels, max_evals)
    else:
        _adam(problem, state, population, generations, seed, lr)
    return state.result(time.perf_counter() - t0)


class _Stop(Exception):
    pass


class _Tracker:
    """History, best-so-far and stopping rules shared by the strategies."""

    def __init__(self, problem, budget, patience, tol, progress) -> None:
        self.problem, self.budget, self.patience, self.tol = problem, budget, patience, tol
        self.progress = progress
        self.frames: list[pd.DataFrame] = []
        self.evals = self.gen = self.stale = self.restarts = 0
        self.restart_on_patience = self.stagnant = False
        self.best = np.inf
        self.stopped = "generations"

    def __call__(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """Evaluate one generation; returns its fitness (lower is better)."""
        n = len(next(iter(values.values())))
        if self.evals >= self.budget:
            self.stopped = "max_evals"
            raise _Stop
        df = self.problem.evaluate(values)
        df.insert(0, "generation", self.gen)
        df.insert(0, "eval", np.arange(self.evals, self.evals + n))
        self.frames.append(df)
        self.evals += n
        self.gen += 1
        fit = df["fitness"].to_numpy()
        gen_best = float(fit[df["feasible"].to_numpy()].min(initial=np.inf))
        improved = gen_best < self.best - self.tol * max(abs(self.best), 1e-300)
        if np.isfinite(gen_best) and (improved or not np.isfinite(self.best)):
            self.stale = 0
        else:
            self.stale += 1
        self.best = min(self.best, gen_best)
        if self.progress is not None:
            best = self.best if np.isfinite(self.best) else None
            if best is not None and not self.problem.minimize:
                best = -best
            self.progress(self.evals, self.budget, best)
        if self.patience and self.stale >= self.patience:
            if self.restart_on_patience:  # cmaes: a stagnant run restarts, the search goes on
                self.stale = 0
                self.stagnant = True
                return fit
            self.stopped = "patience"
            raise _Stop
        return fit

    def result(self, seconds: float) -> SearchResult:
        hist = pd.concat(self.frames, ignore_index=True) if self.frames else pd.DataFrame()
        best = None
        if len(hist) and hist["feasible"].any():
            row = hist.loc[hist.loc[hist["feasible"], "fitness"].idxmin()]
            best = {k: _py(v) for k, v in row.items()}
        return SearchResult(
            best,
            self.problem.objective,
            hist,
            self.evals,
            self.gen,
            seconds,
            self.stopped,
            self.restarts,
        )


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _cmaes(problem: Problem, track: _Tracker, population: int, generations: int, seed: int):
    from cmaes import CatCMAwM

    cont = [q for q in problem.params if q.kind == "float"]
    ints = [q for q in problem.params if q.kind == "int"]
    cats = [q for q in problem.params if q.kind == "cat"]
    x_space = [[np.log(q.low), np.log(q.high)] if q.log else [q.low, q.high] for q in cont]
    z_space = [list(q.values) for q in ints if len(q.values) > 1]
    fixed = {q.path: q.values[0] for q in ints if len(q.values) == 1}
    ints = [q for q in ints if len(q.values) > 1]

    box = [*x_space, *([min(v), max(v)] for v in z_space)]
    rng = np.random.default_rng(seed)

    def start(size: int, restart: int) -> CatCMAwM:
        mean = None  # the first run: the middle of the box
        if restart and box:  # a restart: a uniform random point of the box
            mean = np.asarray([rng.uniform(lo, hi) for lo, hi in box])
        return CatCMAwM(
            x_space=x_space or None,
            z_space=z_space or None,
            c_space=[len(q.values) for q in cats] or None,
            population_size=size,
            mean=mean,
            seed=seed + restart,
        )

    # IPOP-CMA-ES (Auger & Hansen 2005): when a run converges, or stagnates for `patience`
    # generations, start afresh from a random point with twice the population, so that a
    # local optimum (two ends of a constraint's boundary, say) does not end the search while
    # its budget (population x generations evaluations, or max_evals) remains
    opt = start(population, 0)
    track.restarts = 0
    track.restart_on_patience = True
    try:
        for gen in range(generations):
            sols = [opt.ask() for _ in range(opt.population_size)]
            values = {k: np.full(len(sols), v) for k, v in fixed.items()}
            for i, q in enumerate(cont):
                x = np.asarray([s.x[i] for s in sols])
                values[q.path] = np.exp(x) if q.log else x
            for i, q in enumerate(ints):
                values[q.path] = np.asarray([s.z[i] for s in sols])
            for i, q in enumerate(cats):
                values[q.path] = np.asarray(q.values)[[int(np.argmax(s.c[i])) for s in sols]]
            fit = track(values)
            with warnings.catch_warnings():  # its box penalty on a flat (all infeasible) batch
                warnings.simplefilter("ignore", RuntimeWarning)
                opt.tell(list(zip(sols, fit.tolist(), strict=True)))
            if opt.should_stop() or track.stagnant:
                if gen + 1 == generations:
                    track.stopped = "converged" if opt.should_stop() else "patience"
                    break
                track.restarts += 1
                track.stale, track.stagnant = 0, False  # the new run has its own patience
                opt = start(2 * opt.population_size, track.restarts)
    except _Stop:
        pass


def _decode_unit(params: Sequence[Param], u: np.ndarray) -> dict[str, np.ndarray]:
    """Points ``u`` (n, d) of the unit cube as parameter values."""
    return {q.path: q.from_unit(u[:, i]) for i, q in enumerate(params)}


def _de(problem: Problem, track: _Tracker, population: int, generations: int, seed: int):
    from scipy.optimize import differential_evolution

    d = len(problem.params)

    def f(x):  # (d, S) → (S,)
        return track(_decode_unit(problem.params, np.asarray(x).T.reshape(-1, d)))

    try:
        res = differential_evolution(
            f,
            [(0.0, 1.0)] * d,
            popsize=max(population // max(d, 1), 5),
            maxiter=max(generations - 1, 0),
            seed=seed,
            polish=False,
            vectorized=True,
            updating="deferred",
            init="sobol",
        )
        track.stopped = "converged" if res.success else "generations"
    except _Stop:
        pass


def _random(problem: Problem, track: _Tracker, population: int, budget: int, seed: int):
    from scipy.stats import qmc

    sampler = qmc.Sobol(len(problem.params), scramble=True, seed=seed)
    try:
        while track.evals < budget:
            n = min(population, budget - track.evals)
            track(_decode_unit(problem.params, sampler.random(n)))
        track.stopped = "max_evals"
    except _Stop:
        pass


def _grid(problem: Problem, track: _Tracker, levels: int, max_evals: int | None):
    """Every combination: neither ``generations`` nor ``patience`` stops it, only a
    ``max_evals`` budget."""
    axes = [q.levels(levels) for q in problem.params]
    combos = np.asarray(list(itertools.product(*axes)), dtype=np.float64)
    track.budget = max_evals if max_evals else len(combos)
    track.patience = 0
    try:
        for start in range(0, len(combos), problem.batch):
            part = combos[start : start + problem.batch]
            track({q.path: part[:, i] for i, q in enumerate(problem.params)})
        track.stopped = "grid done"
    except _Stop:
        pass


def _adam(problem: Problem, track: _Tracker, starts: int, steps: int, seed: int, lr: float):
    from dse.search.gradient import adam_search

    for q in problem.params:
        if q.kind == "cat" or (q.kind == "int" and len(q.values) != q.high - q.low + 1):
            raise ConfigError(
                problem.source,
                f"search.params.{q.path}",
                "a float or an integer range (low, high) for adam",
                q.kind if q.kind == "cat" else "explicit values",
            )
    paths = [q.path for q in problem.params]
    bounds = {q.path: (q.low, q.high) for q in problem.params}
    res = adam_search(
        problem.base,
        problem.model,
        paths,
        bounds,
        metric=problem.objective,
        minimize=problem.minimize,
        starts=starts,
        steps=steps,
        lr=lr,
        seed=seed,
        penalty=_penalty(problem),
    )
    finals = res["starts"]
    try:
        track({p: finals[p].to_numpy() for p in paths})
        track.stopped = "steps"
    except _Stop:
        pass


def _penalty(problem: Problem):
    """The constraints as a smooth penalty in the units of the objective (relative violation
    squared × 1e3 × |objective at the base point|), traceable by JAX; area metrics from
    :func:`dse.search.area.area`."""
    if not problem.constraints:
        return None
    import jax.numpy as jnp

    from dse.search.area import AreaParams, area

    base_metrics = problem.evaluate(
        {q.path: np.asarray([q.from_unit(0.5)]) for q in problem.params}
    )
    scale = 1e3 * max(abs(float(base_metrics[problem.objective].iloc[0])), 1e-12)
    exprs = [
        (
            _DOTTED.sub(lambda m: m.group(1).replace(".", "__"), c.lhs),
            _DOTTED.sub(lambda m: m.group(1).replace(".", "__"), c.rhs),
            c.op,
        )
        for c in problem.constraints
    ]
    names = set(_DOTTED.findall(" ".join(c.lhs + " " + c.rhs for c in problem.constraints)))

    def penalty(point, metrics):
        env = {k: v for k, v in metrics.items()}
        env.update(area(point, AreaParams()))
        for name in names:
            env[name.replace(".", "__")] = jnp.asarray(get_path(point, name), jnp.float64)
        total = 0.0
        for lhs, rhs, op in exprs:
            a = eval(lhs, {"__builtins__": {}}, env)  # noqa: S307 (parsed comparison sides)
            b = eval(rhs, {"__builtins__": {}}, env)  # noqa: S307
            gap = (a - b) if op in ("<=", "<") else (b - a)
            total = total + (jnp.maximum(gap, 0.0) / jnp.maximum(jnp.abs(b), 1e-12)) ** 2
        return scale * total

    return penalty
