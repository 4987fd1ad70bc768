"""The report of one run: figures chosen by what the table holds, and ``report.md``.

:func:`make_report` reads a run (:func:`dse.report.load.load_run`), derives the silicon area
of PIM channel points when the run's config allows (:mod:`dse.search.area`), draws the
figures that apply and writes ``report.md`` beside them. Each figure is drawn only when its
columns are present and vary:

========================  ==========================================================
figure                    when
========================  ==========================================================
``pareto_<cost>.png``     a natural cost axis varies (area, J/token, tail latency, ...)
``time_breakdown.png``    ``frac_*`` time fractions
``busy.png``              busy or utilization fractions (host/PIM/link, channels)
``energy_breakdown.png``  energy terms ``e_*_J``
``ablation.png``          a categorical, policy or few-valued integer column varies
``context_scaling.png``   ``workload.L`` (or another context column) takes >= 3 values
``timeline.png``          ``model=system``/``steady``: the best point's Gantt chart
``status.png``            some point is infeasible
``tradeoff.png``          the run's own trade-off plot (copied)
========================  ==========================================================
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dse.errors import ConfigError, make_dir
from dse.report import analysis as an
from dse.report import plots
from dse.report.load import Run, load_run

__all__ = ["Report", "make_report", "model_spec"]

#: models whose points are one PIM channel organisation (the area model applies)
_AREA_MODELS = ("pim_gemv", "pim_kernel", "pim_attention")
#: feasible points drawn behind a front (a uniform sample beyond this)
SCATTER_MAX = 200_000
#: front rows written into report.md (all of them go to the CSV)
FRONT_ROWS = 30


@dataclasses.dataclass
class Figure:
    file: str
    caption: str


@dataclasses.dataclass
class Report:
    """What :func:`make_report` produced: ``out`` (the report directory), ``markdown`` (the
    path of ``report.md``), ``figures``, ``fronts``, ``ablations`` (column → table),
    ``best`` (the best rows), ``status`` (status → count), the ``objective``, the run and
    ``context`` (the best objective per context value and configuration)."""

    out: Path
    markdown: Path
    figures: list[Figure]
    fronts: list[an.Front]
    ablations: dict[str, pd.DataFrame]
    best: pd.DataFrame
    status: pd.Series
    objective: an.Objective
    run: Run
    notes: list[str]
    context: pd.DataFrame | None = None


def model_spec(name: str | None) -> Any:
    """The :class:`~dse.models.ModelSpec` of a model name (``None`` if unknown)."""
    from dse.models import MODELS

    if name in MODELS:
        return MODELS[name]
    if name == "serving":
        from dse.serving.model import SPEC

        return SPEC
    return None


def _objectives_arg(items: Sequence[str], source: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        col, sep, direction = str(item).rpartition(":")
        if not sep or not col or direction not in ("min", "max"):
            raise ConfigError(source, "--objectives", "COLUMN:min or COLUMN:max", item)
        out[col] = direction
    return out


def _check_columns(df: pd.DataFrame, objectives: Mapping[str, str], source: str) -> None:
    for col in objectives:
        if col not in df.columns or not an.numeric(df[col]):
            import difflib

            cols = [str(c) for c in df.columns if an.numeric(df[c])]
            close = difflib.get_close_matches(col, cols, n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise ConfigError(
                source,
                col,
                f"a numeric column of the results table ({hint}numeric columns: {', '.join(cols)})",
                col,
            )


def _objective(run: Run, spec: Any, given: Mapping[str, str]) -> an.Objective:
    if given:
        col = next(iter(given))
        return an.Objective(col, given[col] == "min")
    obj = run.summary.get("objective")
    if isinstance(obj, Mapping) and obj.get("metric") in run.table.columns:
        return an.Objective(str(obj["metric"]), bool(obj.get("minimize", True)))
    if isinstance(obj, str) and obj in run.table.columns:  # search.json
        return an.Objective(obj, bool(run.summary.get("minimize", True)))
    if spec is not None and spec.objective in run.table.columns:
        return an.Objective(spec.objective, spec.minimize)
    cols = [str(c) for c in run.table.columns if an.numeric(run.table[c])]
    raise ConfigError(
        str(run.source),
        "--objectives",
        f"COLUMN:min|max (the run names no objective; numeric columns: {', '.join(cols)})",
    )


_ENUM_TEXT = re.compile(r"^[A-Z][A-Za-z0-9_]*\.([A-Za-z_]\w*)$")


def _plain_config(node: Any) -> Any:
    """A summary's config with enum values as their names: ``summary.json`` stores an enum
    field as its ``str()`` (``"GemvConfig_dtype.bf16"``)."""
    if isinstance(node, Mapping):
        return {k: _plain_config(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain_config(v) for v in node]
    if isinstance(node, str) and (m := _ENUM_TEXT.match(node)):
        return m.group(1)
    return node


def _config(summary: Mapping[str, Any]) -> Any:
    """The resolved config of a run: its summary's, or for a merged shard directory
    (``python -m dse.merge``) the first shard run's."""
    if isinstance(summary.get("config"), Mapping):
        return summary["config"]
    for entry in summary.get("runs") or []:
        d = Path(str(entry.get("dir", ""))) if isinstance(entry, Mapping) else None
        if d is not None and (d / "summary.json").is_file():
            from dse.report.load import _summary

            config = _summary(d).get("config")
            if isinstance(config, Mapping):
                return config
    return None


def _area_field(path: str) -> bool:
    """A parameter :func:`dse.search.area.area` reads."""
    return path.startswith("hw.pim.") or path in ("policy.system", "policy.dual_rb")


def _add_area(run: Run, model: str | None, notes: list[str]) -> None:
    """Add the area model's ``total_mm2`` and ``pim_logic_mm2`` to PIM channel points, each
    job's points from its own config; nothing when a job's config is missing or unusable."""
    df = run.table
    if model not in _AREA_MODELS or "total_mm2" in df.columns or not len(df):
        return
    from dse.cli import build
    from dse.point import field_info
    from dse.search.run import area_metrics

    infos = field_info()
    total = np.full(len(df), np.nan)
    logic = np.full(len(df), np.nan)
    for job, (_, summary, _) in run.jobs.items():
        config = _config(summary)
        if not isinstance(config, Mapping):
            notes.append("area not derived: the run's summary.json holds no config")
            return
        rows = np.flatnonzero((df["job"].astype(str) == job).to_numpy()) if job else None
        sub = df if rows is None else df.iloc[rows]
        # the area depends on the channel organisation and the system kind only: evaluate
        # each distinct combination once
        cols = [c for c in sub.columns if c in infos and _area_field(c) and not infos[c].static]
        combos = sub[cols].drop_duplicates(ignore_index=True)
        try:
            _, base, _ = build(_plain_config(config))
            swept = {
                k: combos[k]
                .map({v: infos[k].check(v, "results") for v in pd.unique(combos[k])})
                .to_numpy(dtype=infos[k].dtype)
                for k in cols
            }
            if not swept:
                swept = {"hw.pim.banks": np.full(1, np.asarray(base.hw.pim.banks))}
            area = area_metrics(base, swept)
        except (ConfigError, KeyError, ValueError, TypeError) as err:
            notes.append(f"area not derived for job {job or '0'}: {err}")
            return
        combos = combos.assign(_total=area["total_mm2"], _logic=area["pim_logic_mm2"])
        merged = sub[cols].merge(combos, how="left", on=cols) if cols else None
        idx = slice(None) if rows is None else rows
        total[idx] = merged["_total"] if cols else area["total_mm2"][0]
        logic[idx] = merged["_logic"] if cols else area["pim_logic_mm2"][0]
    run.table = df.assign(total_mm2=total, pim_logic_mm2=logic)
    notes.append(
        "total_mm2 and pim_logic_mm2 are derived from each point's parameters with the area "
        "model (dse.search.area, default technology parameters)"
    )


def _fmt(v: Any) -> str:
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    if isinstance(v, float | np.floating):
        if not np.isfinite(v):
            return "–" if np.isnan(v) else str(v)
        return f"{v:.6g}"
    if isinstance(v, int | np.integer):
        return str(int(v))
    return str(v).replace("|", "\\|")


def md_table(frame: pd.DataFrame, index: bool = False) -> str:
    """A GitHub-flavoured markdown table of ``frame`` (floats to 6 significant digits)."""
    f = frame.reset_index() if index else frame
    head = "| " + " | ".join(f"`{c}`" if "." in str(c) else str(c) for c in f.columns) + " |"
    rule = "|" + "|".join("---" for _ in f.columns) + "|"
    body = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in f.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _facts(run: Run, df: pd.DataFrame, ok: np.ndarray, obj: an.Objective) -> list[tuple]:
    s = run.summary
    jobs = [j for j in run.jobs if j]
    sums = [js for _, js, _ in run.jobs.values() if js]

    sums += [e for js in sums for e in js.get("runs") or [] if isinstance(e, Mapping)]

    def total(key: str) -> float | None:
        vals = [js.get(key) for js in sums if isinstance(js.get(key), int | float)]
        return float(sum(vals)) if vals else None

    compile_s, eval_s = total("compile_s"), total("evaluation_s")
    rate = len(df) / eval_s if eval_s else None
    dev = s.get("device") or {}
    device = (
        f"{dev.get('platform', '?')} ({dev.get('kind', '?')}) × {dev.get('count', '?')}"
        if dev
        else None
    )
    facts = [
        ("results", str(run.source)),
        ("study", s.get("study")),
        ("model", s.get("model")),
        ("jobs", f"{len(jobs)} ({', '.join(jobs)})" if len(jobs) > 1 else None),
        ("merged shard runs", len(s["runs"]) if s.get("merged") and s.get("runs") else None),
        ("design points", f"{len(df):,}"),
        ("feasible points", f"{int(ok.sum()):,} ({ok.mean():.1%})" if len(df) else "0"),
        ("objective", f"{obj.metric} ({obj.sense})"),
        ("swept", ", ".join(f"`{c}`" for c in s.get("swept") or []) or None),
        ("static", ", ".join(f"`{c}`" for c in s.get("static") or []) or None),
        ("compile s", f"{compile_s:.3f}" if compile_s is not None else None),
        ("evaluation s", f"{eval_s:.4f}" if eval_s is not None else None),
        ("points/s", f"{rate:,.0f}" if rate else None),
        ("wall s", f"{total('wall_s'):.2f}" if total("wall_s") is not None else None),
        ("device", device),
        ("git revision", s.get("git_revision")),
        ("dse version", (s.get("versions") or {}).get("dse")),
    ]
    return [(k, v) for k, v in facts if v not in (None, "")]


def _timeline(run: Run, best: pd.Series, out: Path, notes: list[str]) -> Path | None:
    """The best point's Gantt chart: the run's own ``timeline.png`` when the best point is
    the run's best, else drawn with the list scheduler of :mod:`dse.reference.system`."""
    job = str(best["job"]) if "job" in best.index else ""
    d, summary, _ = run.jobs.get(job, next(iter(run.jobs.values())))
    target = out / "timeline.png"
    own_best = (summary.get("best") or [{}])[0].get("point_id")
    have = d / "timeline.png"
    if have.is_file() and ("point_id" not in best.index or own_best == best["point_id"]):
        shutil.copyfile(have, target)
        return target
    config = _config(summary)
    if not isinstance(config, Mapping):
        notes.append("timeline not drawn: the run's summary.json holds no config")
        return None
    from dse.cli import _timeline as draw
    from dse.cli import build

    try:
        _, base, _ = build(_plain_config(config))
        return draw(base, best, target)
    except (ConfigError, KeyError, ValueError, TypeError) as err:
        notes.append(f"timeline not drawn: {err}")
        return None


def make_report(
    results: str | Path,
    out: str | Path | None = None,
    objectives: Sequence[str] = (),
    top: int = 8,
) -> Report:
    """Read a run, draw the figures that apply and write ``report.md`` beside them.

    Parameters
    ----------
    results : path-like
        A run directory, a multirun directory, a merged shard directory or a Parquet/CSV
        table (:func:`dse.report.load.load_run`).
    out : path-like, optional
        The report directory (default ``<results>/report/``); created if missing.
    objectives : sequence of str
        ``COLUMN:min|max`` items. The first replaces the run's objective; two or more also
        form a front of their own.
    top : int
        Best points shown in the tables and the breakdown bars.

    Returns
    -------
    Report
        The figures, fronts, ablation tables and best points that were written.

    Raises
    ------
    dse.errors.ConfigError
        For a missing path, no table, an unreadable table or summary, a malformed objective
        or a column the table does not hold.
    """
    run = load_run(results)
    source = str(run.source)
    given = _objectives_arg(objectives, "command line")
    model = run.summary.get("model")
    spec = model_spec(model)
    notes: list[str] = []
    _add_area(run, model, notes)
    df = run.table
    _check_columns(df, given, source)
    obj = _objective(run, spec, given)
    _check_columns(df, {obj.metric: obj.sense}, source)
    base = Path(results)
    out = Path(out) if out else (base if base.is_dir() else base.parent) / "report"
    make_dir(out, "command line", "--out")
    categories = tuple(spec.categories) if spec is not None else ()
    ok = an.feasible_mask(df)
    figures: list[Figure] = []
    sections: dict[str, list[str]] = {}

    def add(section: str, path: Path | None, caption: str) -> None:
        if path is not None:
            figures.append(Figure(path.name, caption))
            sections.setdefault(section, []).append(f"![{caption}]({path.name})\n\n*{caption}*")

    # --- best points ---------------------------------------------------------------------
    best = an.best_rows(df, obj, top)
    params = an.varying(df)
    headline = [c for c in (spec.headline if spec is not None else ()) if c in df.columns]
    headline = list(dict.fromkeys([obj.metric, *headline]))
    best_cols = [c for c in ["job", *params] if c in df.columns and c != "overrides"]
    best_cols = list(dict.fromkeys(best_cols + headline))

    # --- Pareto fronts -------------------------------------------------------------------
    fronts: list[an.Front] = []
    pairs = [{obj.metric: obj.sense, c: s} for c, s in an.cost_axes(df, obj)]
    if len(given) >= 2:
        pairs.insert(0, dict(given))
    feas = df.loc[ok]
    for objs in pairs:
        fr = an.front(df, objs, source)
        if not len(fr.rows):
            continue
        fronts.append(fr)
        cols = list(objs)
        x, y = cols[1], cols[0]
        path = plots.plot_front(
            feas if len(feas) <= SCATTER_MAX else feas.sample(SCATTER_MAX, random_state=0),
            x,
            y,
            fr.rows,
            out / f"{fr.name}.png",
            minimize_x=objs[x] == "min",
            title=f"{y} ({objs[y]}) vs {x} ({objs[x]})"
            + (f"; front over {len(cols)} objectives" if len(cols) > 2 else ""),
        )
        from dse.results import atomic_write_text

        atomic_write_text(out / f"{fr.name}.csv", fr.rows.to_csv(index=False))
        add(
            "Pareto fronts",
            path,
            f"Pareto front of {y} ({objs[y]}) against {x} ({objs[x]}): {len(fr.rows)} of "
            f"{fr.candidates:,} feasible points",
        )

    # --- breakdowns ----------------------------------------------------------------------
    group = an.policy_column(df, categories)
    labels = [c for c in an.varying(best, params) if c != "overrides"][:3]
    best_idx = [
        f"#{k + 1} {an.point_label(r, labels)}".strip() for k, (_, r) in enumerate(best.iterrows())
    ]
    fracs = [c for c in df.columns if c.startswith("frac_") and an.numeric(df[c])]
    busy = [c for c in an.BUSY if c in df.columns and an.numeric(df[c])]
    energy = [
        c
        for c in df.columns
        if c.startswith("e_") and c.endswith("_J") and an.numeric(df[c]) and c != "energy_J"
    ]
    per_token = "tokens" in df.columns and an.numeric(df["tokens"])
    for cols, stacked, name, ylabel, what in (
        (fracs, True, "time_breakdown", "fraction of time", "time fractions"),
        (busy, False, "busy", "busy / utilization fraction", "busy fractions"),
        (energy, True, "energy_breakdown", "J/token" if per_token else "J", "energy terms"),
    ):
        if not cols or not len(best):
            continue

        def scale(frame: pd.DataFrame, cols=cols, name=name) -> pd.DataFrame:
            if name == "energy_breakdown" and per_token:
                return frame[cols].div(frame["tokens"].replace(0, np.nan), axis=0)
            return frame[cols]

        panels = [(f"best {len(best)} by {obj.metric}", scale(best).set_axis(best_idx))]
        if group is not None:
            means = an.group_means(df, group, [*cols, *(["tokens"] if per_token else [])])
            if per_token and name == "energy_breakdown":
                means = (
                    feas.groupby(feas[group].astype(str))[cols]
                    .sum()
                    .div(feas.groupby(feas[group].astype(str))["tokens"].sum(), axis=0)
                )
            how = "per token" if per_token and name == "energy_breakdown" else "mean"
            panels.append((f"{how} over feasible points by {plots._short(group)}", means[cols]))
        path = plots.bars_plot(
            panels,
            out / f"{name}.png",
            stacked=stacked,
            ylabel=ylabel,
            title=f"{what} of the best points" + (f" and per {group}" if group else ""),
        )
        add(
            "Breakdowns",
            path,
            f"{what.capitalize()} ({', '.join(cols)}) of the best {len(best)} points"
            + (f" and averaged per {group}" if group else ""),
        )

    # --- ablations -----------------------------------------------------------------------
    ablations = {
        c: an.ablation(df, c, obj) for c in an.categorical_columns(df, categories) if c != "job"
    }
    ablations = dict(list(ablations.items())[:9])
    if ablations:
        path = plots.ablation_plot(ablations, obj.metric, obj.minimize, out / "ablation.png")
        add(
            "Ablations",
            path,
            f"Best and geometric-mean {obj.metric} per value of "
            f"{', '.join(ablations)} (n: feasible points)",
        )

    # --- context scaling -----------------------------------------------------------------
    context = None
    for ctx in an.context_columns(df)[:1]:
        key = group if group is not None and group != ctx else None
        sub = feas if key is None else feas.assign(_g=feas[key].astype(str))
        extra = [c for c in ("host_busy", "pim_busy", "link_busy") if c in df.columns]
        if not extra:
            extra = [c for c in ("mac_util", "chan_util_mean") if c in df.columns][:1]
        curves = {}
        for name, g in sub.groupby("_g") if key is not None else [("all points", sub)]:
            g = g[np.isfinite(g[obj.metric].to_numpy(np.float64, na_value=np.nan))]
            if not len(g):
                continue
            pick = g.groupby(ctx)[obj.metric].idxmin if obj.minimize else None
            idx = pick() if pick is not None else g.groupby(ctx)[obj.metric].idxmax()
            curves[name] = g.loc[idx.to_numpy(), [ctx, obj.metric, *extra]].sort_values(ctx)
        if curves:
            context = pd.DataFrame(
                {str(k): c.set_index(ctx)[obj.metric] for k, c in curves.items()}
            ).sort_index()
            context.columns.name = key
            path = plots.context_plot(
                curves,
                ctx,
                [obj.metric, *extra],
                out / "context_scaling.png",
                f"best {obj.metric} at each {ctx}" + (f", one line per {key}" if key else ""),
            )
            add(
                "Context scaling",
                path,
                f"Best {obj.metric} at each {ctx}"
                + (f" per {key}" if key else "")
                + (f", with {', '.join(extra)} of that point" if extra else ""),
            )

    # --- timeline ------------------------------------------------------------------------
    if model in ("system", "steady") and len(best):
        add(
            "Timeline",
            _timeline(run, best.iloc[0], out, notes),
            "Per-device timeline (first two layers) of the best point, list-scheduled",
        )

    # --- status --------------------------------------------------------------------------
    status_col = "status" if "status" in df.columns else None
    status = (
        df[status_col].astype(str).value_counts()
        if status_col
        else pd.Series({"ok": int(ok.sum()), "infeasible": int((~ok).sum())})
    )
    status = status[status > 0]
    if (~ok).any() and status_col:
        by = None
        if group is not None:
            by = pd.crosstab(df[group].astype(str), df[status_col].astype(str))
            by.index.name = group
        add(
            "Status",
            plots.status_plot(status, by, out / "status.png"),
            f"Status of the {len(df):,} design points"
            + (f" and its share per {group}" if by is not None else ""),
        )

    # --- the run's own trade-off plot ------------------------------------------------------
    own = next(iter(run.jobs.values()))[0] / "tradeoff.png"
    if own.is_file():
        shutil.copyfile(own, out / "tradeoff.png")
        add("Run figures", out / "tradeoff.png", "The run's own trade-off plot (tradeoff.png)")

    report = Report(
        out=out,
        markdown=out / "report.md",
        figures=figures,
        fronts=fronts,
        ablations=ablations,
        best=best[best_cols],
        status=status,
        objective=obj,
        run=run,
        notes=notes,
        context=context,
    )
    _write_markdown(report, sections)
    return report


def _write_markdown(r: Report, sections: Mapping[str, list[str]]) -> None:
    from dse.results import atomic_write_text

    df = r.run.table
    ok = an.feasible_mask(df)
    s = r.run.summary
    title = s.get("study") or r.run.source.name
    lines = [f"# dse report: {title}", ""]
    lines.append(
        f"Generated {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC by "
        f"`python -m dse.report {r.run.source}`."
    )
    lines += [
        "",
        "## Run",
        "",
        md_table(pd.DataFrame(_facts(r.run, df, ok, r.objective), columns=["fact", "value"])),
    ]
    lines += ["", f"## Best points by {r.objective.metric} ({r.objective.sense})", ""]
    lines.append(md_table(r.best) if len(r.best) else "No feasible point.")
    lines += ["", "## Status", "", md_table(r.status.rename("points").to_frame(), index=True)]
    if r.fronts:
        lines += ["", "## Pareto fronts", ""]
        for fr in r.fronts:
            cols = list(fr.objectives)
            desc = ", ".join(f"{c} ({d})" for c, d in fr.objectives.items())
            lines += [f"### {desc}", ""]
            lines.append(
                f"{len(fr.rows)} front points of {fr.candidates:,} feasible; hypervolume "
                f"{fr.hypervolume:.6g} ({' × '.join(cols)}) to the reference point "
                + ", ".join(f"{c} = {v:.6g}" for c, v in fr.reference.items())
                + " (each objective's worst feasible value moved 10% of its range further)."
            )
            show = [c for c in ("job", "point_id") if c in fr.rows.columns]
            show += [c for c in an.varying(df) if c not in cols and c != "overrides"]
            show = list(dict.fromkeys(show + cols))
            lines += ["", md_table(fr.rows[show].head(FRONT_ROWS))]
            if len(fr.rows) > FRONT_ROWS:
                lines.append(f"\n… {len(fr.rows) - FRONT_ROWS} more rows in `{fr.name}.csv`.")
            lines += ["", f"All front rows: `{fr.name}.csv`.", ""]
    if r.ablations:
        lines += ["", f"## Ablations: {r.objective.metric} by configuration", ""]
        lines.append(
            f"Per value: points, feasible points, best {r.objective.metric} "
            f"({r.objective.sense}) and its geometric mean over the feasible points."
        )
        for col, table in r.ablations.items():
            lines += ["", f"### `{col}`" if "." in col else f"### {col}", ""]
            lines.append(md_table(table, index=True))
    if r.context is not None:
        ctx = r.context.index.name
        key = r.context.columns.name
        lines += ["", f"## Context scaling: best {r.objective.metric} by {ctx}", ""]
        if key:
            lines.append(f"One column per `{key}`.\n")
        lines.append(md_table(r.context, index=True))
    if sections:
        lines += ["", "## Figures", ""]
        for name, items in sections.items():
            lines += [f"### {name}", ""]
            for item in items:
                lines += [item, ""]
    if r.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in r.notes]
    atomic_write_text(r.markdown, "\n".join(lines).rstrip() + "\n")
