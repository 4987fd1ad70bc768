"""The named studies of ``sweeps/``, each one command, with curated outputs.

``python -m dse.studies [NAME ...|all] [--list] [--out results]`` runs each named study's
``sweeps/<name>.py`` ``main`` in its own Python process (one at a time: a study compiles its
own models and may use every core) and writes, per study, into ``<out>/<name>/``:

* ``<name>.png``: the study's figure (re-encoded with a 256-colour palette when it would
  exceed :data:`PNG_LIMIT_BYTES`);
* ``<name>.csv``: the key numbers, the table the study's ``main`` returns;
* ``<name>.txt``: what the study printed;
* ``run.json``: wall time, date, versions, device and git revision of the run;
* ``<name>.md``: question, command, run, the findings and the agreement with published or
  peer numbers (the study's own report when it writes one, else ``sweeps/<name>.md``), the
  key numbers and the printed output.

``--list`` prints each study with its question and rough runtime. An unknown name prints one
line naming the studies and exits with status 2.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dse.config import SWEEPS_DIR as SWEEPS
from dse.errors import EXIT_BAD_INPUT, ConfigError
from dse.process import command

__all__ = ["STUDIES", "Study", "default_figure", "main", "markdown_table", "run_study"]

ROOT = Path(__file__).resolve().parents[1]
PNG_LIMIT_BYTES = 300_000
TABLE_ROWS = 60  # rows of the key-number table drawn in <name>.md (the CSV has them all)


#: where studies write unless told otherwise: not the committed outputs in results/<name>/
DEFAULT_OUT = "results/studies"


def default_figure(name: str) -> Path:
    """Where ``python sweeps/<name>.py`` draws its figure when given no path:
    ``results/studies/<name>/<name>.png`` under the working directory (never a tracked copy:
    sweeps/<name>.png, results/<name>/)."""
    path = Path(DEFAULT_OUT) / name / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Study:
    """A named study: ``sweeps/<name>.py`` with ``main(out_png) -> DataFrame``.

    Attributes
    ----------
    name : str
        The script's stem.
    runtime : str
        Rough wall time on a 2-core CPU shared with other jobs, warm compilation cache.
    peer : str
        The published or peer numbers the study is compared with ("" where none).
    """

    name: str
    runtime: str
    peer: str = ""

    @property
    def script(self) -> Path:
        """The study's script."""
        return SWEEPS / f"{self.name}.py"

    @property
    def notes(self) -> Path:
        """The study's findings, written from its output (``sweeps/<name>.md``)."""
        return SWEEPS / f"{self.name}.md"

    @property
    def command(self) -> str:
        """The one command that runs the study (into ``results/studies/<name>/``)."""
        return f"python -m dse.studies {self.name}"

    def docstring(self) -> str:
        """The script's module docstring, read without importing it ("" if it has none)."""
        return ast.get_docstring(ast.parse(self.script.read_text())) or ""

    def question(self) -> str:
        """The question the study answers: the docstring's first paragraph, on one line."""
        first = self.docstring().split("\n\n", 1)[0]
        return " ".join(first.split()).removeprefix("Question: ")


STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        Study("kv_capacity", "1 min"),
        Study("pim_kernel_policies", "1.5 min"),
        Study("pim_attention_partitioning", "2 min"),
        Study("sbi_crossover", "1 min", "LLMServingSim example outputs; NeuPIMs (ASPLOS 2024)"),
        Study("neupims_comparison", "3 min", "NeuPIMs (ASPLOS 2024): 2.4x over NPU-only"),
        Study("context_scaling", "1.5 min"),
        Study("cent_parallelism", "2 min", "CENT (ASPLOS 2025) artifact, every configuration"),
        Study("llmservingsim_pim", "4.5 min", "LLMServingSim example outputs (per request)"),
        Study("pimphony_ablation", "5.5 min", "PIMphony: several-fold gains at long context"),
    )
}


def resolve(names: Sequence[str]) -> list[Study]:
    """The studies ``names`` select (``all``: every one), in registry order, each once.

    Raises
    ------
    ConfigError
        A name that is not a study.
    """
    wanted = set(STUDIES) if "all" in names else set(names)
    unknown = sorted(wanted - set(STUDIES))
    if unknown:
        raise ConfigError(
            "command line", "NAME", f"one of {', '.join(STUDIES)} or all", ", ".join(unknown)
        )
    return [s for n, s in STUDIES.items() if n in wanted]


def markdown_table(df, rows: int = TABLE_ROWS) -> str:
    """A pipe table of ``df``'s first ``rows`` rows, numbers to 4 significant digits."""

    def cell(v) -> str:
        if isinstance(v, bool) or v is None:
            return str(v)
        if isinstance(v, float):
            if math.isnan(v):
                return ""
            return f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
        if isinstance(v, int):
            return f"{v:,}" if abs(v) >= 1e4 else str(v)
        return str(v).replace("|", "\\|").replace("\n", " ")

    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for rec in df.head(rows).itertuples(index=False):
        lines.append("| " + " | ".join(cell(_scalar(v)) for v in rec) + " |")
    if len(df) > rows:
        lines.append(f"\n({len(df) - rows} more rows in the CSV.)")
    return "\n".join(lines)


def _scalar(v):
    """A numpy or pandas scalar as the Python scalar it holds (NA as NaN)."""
    try:
        import pandas as pd

        if pd.isna(v):
            return math.nan
    except (TypeError, ValueError):
        pass
    return v.item() if hasattr(v, "item") else v


def _child(name: str, out: str) -> None:
    """Run one study in this process: its ``main`` into ``out``; CSV and run.json beside.

    Called by :func:`run_study` in a fresh interpreter.
    """
    import importlib.util

    import dse.results

    study = STUDIES[name]
    out_dir = Path(out)
    spec = importlib.util.spec_from_file_location(f"sweeps_{name}", study.script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    t0 = time.perf_counter()
    table = mod.main(str(out_dir / f"{name}.png"))
    seconds = time.perf_counter() - t0
    table.to_csv(out_dir / f"{name}.csv", index=False, float_format="%.6g")
    env = dse.results.environment()
    info = {
        "study": name,
        "command": study.command,
        "seconds": round(seconds, 1),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        **env,
    }
    (out_dir / "run.json").write_text(json.dumps(info, indent=1, default=str) + "\n")


def run_study(study: Study, out_root: Path) -> float:
    """Run ``study`` in a subprocess into ``out_root/<name>/`` and write its report.

    Returns
    -------
    float
        Wall seconds, process start included.

    Raises
    ------
    RuntimeError
        The study failed; the message holds the end of its error output.
    """
    out = out_root / study.name
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{study.name}.md").unlink(missing_ok=True)  # a study that writes its own report
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    code = f"from dse.studies import _child; _child({study.name!r}, {str(out)!r})"
    t0 = time.perf_counter()
    with open(out / f"{study.name}.txt", "w") as stdout:
        proc = subprocess.run(
            [sys.executable, "-c", code],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    wall = time.perf_counter() - t0
    if proc.returncode:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{study.name} failed (exit {proc.returncode}):\n{tail}")
    _shrink_png(out / f"{study.name}.png")
    own = out / f"{study.name}.md"  # a report the study wrote itself, if any
    write_report(study, out, own.read_text() if own.exists() else None)
    return wall


def _shrink_png(path: Path, limit: int = PNG_LIMIT_BYTES) -> None:
    """Re-encode a figure larger than ``limit`` bytes with a 256-colour palette."""
    if not path.exists() or path.stat().st_size <= limit:
        return
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def write_report(study: Study, out: Path, report: str | None = None) -> Path:
    """``out/<name>.md`` from the run's files (see the module docstring).

    Parameters
    ----------
    study : Study
        The study.
    out : Path
        Its output folder, holding ``run.json``, ``<name>.csv`` and ``<name>.txt``.
    report : str, optional
        The report the study wrote itself; by default its findings come from
        ``sweeps/<name>.md``.
    """
    import pandas as pd

    name = study.name
    info = json.loads((out / "run.json").read_text())
    if report is not None:
        findings, source = report, "written by the study"
    else:
        notes = study.notes
        findings = notes.read_text() if notes.exists() else ""
        source = f"from `{_rel(notes)}`"
    title, _, body = findings.partition("\n")
    if not title.startswith("# "):
        title, body = f"# {name}", findings
    table = pd.read_csv(out / f"{name}.csv")
    printed = (out / f"{name}.txt").read_text().rstrip()
    rev = info.get("git") or info.get("git_revision") or "unknown"
    device = info.get("device", {})
    lines = [
        title,
        "",
        f"**Question:** {study.question()}",
        "",
        f"**Command:** `{study.command}` (or `python sweeps/{name}.py [OUT.png]`)",
        "",
        f"**Run:** {info['date_utc']} UTC, {info['seconds']:.0f} s on {info.get('cores')} CPU "
        f"cores ({device.get('platform', '?')}), git {rev}; "
        f"figure `{name}.png`, key numbers `{name}.csv`, printed output `{name}.txt`.",
        "",
        f"## Findings and agreement ({source})",
        "",
        body.strip() or "(no findings written)",
        "",
        f"## Key numbers (`{name}.csv`)",
        "",
        markdown_table(table),
        "",
        "## Printed output",
        "",
        "```text",
        printed,
        "```",
        "",
    ]
    path = out / f"{name}.md"
    path.write_text("\n".join(lines))
    return path


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return path.name


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, ``dse: error: ...``, exit status 2."""

    def error(self, message: str):  # noqa: D102
        print(f"dse: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def list_studies(console) -> None:
    """Print each study: name, rough runtime, question, what it is compared with."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="studies (python -m dse.studies NAME ...|all)", show_lines=True)
    t.add_column("study", style="bold", no_wrap=True)
    t.add_column("runtime", no_wrap=True)
    t.add_column("question (and what the numbers are compared with)")
    for s in STUDIES.values():
        peer = s.peer or "closed forms; no published number"
        t.add_row(
            s.name, s.runtime, f"{escape(s.question())}\n[dim]compared with: {escape(peer)}[/]"
        )
    console.print(t)


@command
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dse.studies``: run named studies into ``--out``; ``--list`` lists them."""
    from rich.console import Console

    ap = _Parser(
        prog="python -m dse.studies",
        description="Run the named studies of sweeps/ into <out>/<name>/ (figure, CSV of key "
        "numbers, report .md).",
    )
    ap.add_argument("names", nargs="*", metavar="NAME", help=f"{', '.join(STUDIES)} or all")
    ap.add_argument("--list", action="store_true", help="list the studies and exit")
    ap.add_argument(
        "--out",
        default=DEFAULT_OUT,
        help=f"results root (default: {DEFAULT_OUT}; the committed outputs: --out results)",
    )
    args = ap.parse_args(argv)
    console = Console()
    try:
        studies = resolve(args.names)
    except ConfigError as err:
        print(f"dse: error: {err.oneline()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.list or not studies:
        list_studies(console)
        return 0
    out = Path(args.out)
    try:
        for s in studies:
            (out / s.name).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        msg = ConfigError("command line", "--out", "a writable directory", f"{out}: {err}")
        print(f"dse: error: {msg.oneline()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from dse.cli import catch_termination, interrupted

    try:
        with catch_termination() as caught:
            return _run_all(studies, out, console)
    except KeyboardInterrupt:
        interrupted(caught, "dse.studies")
        return 130


def _run_all(studies: list[Study], out_root: Path, console) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    failed = []
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("studies", total=len(studies))
        for s in studies:
            progress.update(task, description=f"{s.name} (about {s.runtime})")
            try:
                wall = run_study(s, out_root)
            except RuntimeError as err:
                failed.append(s.name)
                progress.console.print(f"[red]{err}")
            else:
                files = sorted(p.name for p in (out_root / s.name).iterdir())
                progress.console.print(
                    f"[green]{s.name}[/]: {wall:.0f} s -> {out_root / s.name}/ ({', '.join(files)})"
                )
            progress.advance(task)
    if failed:
        print(f"dse: error: studies failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
