"""NewtonSim (NeuPIMs' HBM2-PIM DRAMsim3 fork) PIM command programs and their runner.

A run is one PIM command program on channel 0 of a NeuPIMs HBM2 PIM INI, issued through
NewtonSim's C++ API by a small external driver (``pimrun``; measurement tooling kept outside the
repository, see docs/oracle/newton.md). This module describes each program
(:class:`NewtonRun`: its driver arguments and the exact command sequence, :func:`program`),
draws a Sobol design over log-spaced sizes (:func:`sobol_design`) and collects the driver's
cycle counts and NewtonSim's per-channel command statistics into one CSV row per run.

Programs (NeuPIMs' own issue order, src/operations/Microbench.cc and NeuPIMSAttend.cc):

* ``single`` buffer (``pim_type = SINGLE``, Newton): per tile ``P_HEADER(row, comps, readres)``
  then ``readres`` x (``comps/readres`` x ``COMP`` + ``READRES``).
* ``dual`` buffer (``pim_type = DUAL``, NeuPIMs): per tile ``P_HEADER`` then ``readres`` x
  ``COMPS_READRES(comps/readres)``.
* optional ``gwrites`` GWRITEs first (input vector chunks into the global buffer, as the
  attention score kernel does per chunk), optional ``dram_reads`` ordinary reads issued
  alongside (to expose what a PIM program blocks): read ``i`` to rank 0, bank ``i mod 16``,
  column ``(i // 16) mod 16``, row ``20000 + i // 256`` (16 burst columns per row, so all
  addresses are distinct and NewtonSim merges none; the driver's first version used row
  ``20000 + i // 512``, see docs/oracle/newton.md "Changes").

Families: ``gemv`` (one GWRITE, k columns = comps, rows = tiles), ``attention`` (a GWRITE per
chunk, one READRES per tile like NeuPIMSAttend), ``gemv_dram`` (gemv with concurrent reads).

    python -m dse.validation.traces.newton --harness /path/to/pimrun \
        --config-dir ../shared/reference/pim/neupims --n 128 \
        --out dse/validation/data/corpus_newton.csv
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dse.process import command
from dse.validation.traces import write_corpus

SIMULATOR = "newtonsim"
MODES = {"single": "HBM2_8Gb_x128_singlepim.ini", "dual": "HBM2_8Gb_x128_dualpim.ini"}
FAMILIES = ("gemv", "attention", "gemv_dram")

COLUMNS = [
    "simulator",
    "sim_commit",
    "config",
    "generator",
    "generator_args",
    "family",
    "mode",
    "tiles",
    "comps",
    "readres",
    "gwrites",
    "dram_reads",
    "cycles",
    "pim_cycles",
    "tCK_ns",
    "time_ns",
    "n_p_header",
    "n_gwrite",
    "n_comp",
    "n_readres",
    "num_gact_cmds",
    "num_comp_cmds",
    "num_readres_cmds",
    "num_gwrite_cmds",
    "num_pim_precharge_cmds",
    "num_act_cmds",
    "num_pre_cmds",
    "num_read_cmds",
    "num_ref_cmds",
    "cycles_per_tile",
    "wall_s",
]


@dataclass(frozen=True)
class NewtonRun:
    """One PIM program on channel 0 (see the module docstring)."""

    family: str
    mode: str  # single | dual
    tiles: int  # DRAM rows processed (one P_HEADER each; all banks of the channel)
    comps: int  # COMPs per tile (columns of the row used), power of two <= 32
    readres: int  # READRES per tile, power of two dividing comps
    gwrites: int = 0
    dram_reads: int = 0
    row0: int = 100

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r}")
        for name in ("comps", "readres"):
            v = getattr(self, name)
            if v < 1 or v & (v - 1):
                raise ValueError(f"{name}={v} must be a power of two")
        if self.comps > 32 or self.comps % self.readres:
            raise ValueError("comps <= 32 and readres must divide comps")
        if self.tiles < 1 or self.gwrites < 0 or self.dram_reads < 0:
            raise ValueError("tiles >= 1, gwrites >= 0, dram_reads >= 0")

    @property
    def config(self) -> str:
        return MODES[self.mode]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> NewtonRun:
        return cls(**json.loads(text))

    def argv(self, harness: str, config_path: str, outdir: str) -> list[str]:
        return [
            harness,
            config_path,
            outdir,
            self.mode,
            str(self.tiles),
            str(self.comps),
            str(self.readres),
            str(self.gwrites),
            str(self.dram_reads),
            str(self.row0),
        ]

    def counts(self) -> dict[str, int]:
        """Transactions the program issues (what the driver must report back)."""
        return {
            "n_p_header": self.tiles,
            "n_gwrite": self.gwrites,
            "n_comp": self.tiles * self.comps,
            "n_readres": self.tiles * self.readres,
        }


def program(run: NewtonRun) -> list[tuple[str, int, int]]:
    """The command sequence as (transaction type, row, COMPs it covers), in issue order."""
    out: list[tuple[str, int, int]] = []
    for g in range(run.gwrites):
        out.append(("GWRITE", run.row0 + 1000 + g, 0))
    per = run.comps // run.readres
    for t in range(run.tiles):
        row = run.row0 + t
        out.append(("P_HEADER", row, run.comps))
        for _ in range(run.readres):
            if run.mode == "single":
                out.extend(("COMP", row, 1) for _ in range(per))
                out.append(("READRES", row, 0))
            else:
                out.append(("COMPS_READRES", row, per))
    # 16 banks x 16 burst columns = 256 distinct addresses per row, then the next row
    out.extend(("READ", 20000 + i // 256, 0) for i in range(run.dram_reads))
    return out


def sobol_design(n: int, seed: int = 0) -> list[NewtonRun]:
    """n runs: Sobol points over (mode, family, log2 tiles, log2 comps, readres, extras)."""
    from scipy.stats import qmc

    m = int(np.ceil(np.log2(max(n, 2))))
    pts = qmc.Sobol(d=6, scramble=True, seed=seed).random_base2(m)[:n]
    runs = []
    for u in pts:
        mode = "single" if u[0] < 0.5 else "dual"
        family = FAMILIES[min(int(u[1] * 3), 2)]
        tiles = int(2 ** round(u[2] * 7))  # 1 .. 128 rows
        comps = int(2 ** round(u[3] * 5))  # 1 .. 32 columns per row
        lr = int(round(u[4] * np.log2(comps)))
        readres = 1 if family == "attention" else int(2**lr)
        gwrites = 1 + int(u[5] * 4) if family == "attention" else 1
        dram_reads = int(2 ** round(4 + u[5] * 6)) if family == "gemv_dram" else 0
        runs.append(NewtonRun(family, mode, tiles, comps, readres, gwrites, dram_reads))
    return runs


def _stats(outdir: Path) -> dict:
    with open(outdir / "dramsim3.json") as fh:
        stats = json.load(fh)
    return stats["0"]


def run_one(harness: str, config_dir: Path, run: NewtonRun, workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    argv = run.argv(harness, str((config_dir / run.config).resolve()), str(workdir) + "/")
    t0 = time.time()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=workdir, timeout=1800)
    wall = time.time() - t0
    line = next((x for x in reversed(proc.stdout.splitlines()) if x.startswith('{"cycles"')), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"{run}: rc={proc.returncode} {proc.stdout[-300:]} {proc.stderr[-300:]}")
    res = json.loads(line)
    if res["timeout"] or res["done"] != res["expected"]:
        raise RuntimeError(f"{run}: incomplete {res}")
    for k, v in run.counts().items():
        if res[k.removeprefix("n_")] != v:
            raise RuntimeError(f"{run}: driver issued {res} but the program has {k}={v}")
    st = _stats(workdir)
    out = {k: st.get(k, 0) for k in COLUMNS if k.startswith("num_")}
    out.update(
        cycles=res["cycles"],
        pim_cycles=res["pim_cycles"],
        tCK_ns=res["tCK"],
        wall_s=round(wall, 3),
    )
    for name in ("dramsim3epoch.json",):
        (workdir / name).unlink(missing_ok=True)
    return out


def row_for(run: NewtonRun, res: dict, commit: str) -> dict:
    row = {
        "simulator": SIMULATOR,
        "sim_commit": commit,
        "config": run.config,
        "generator": "dse.validation.traces.newton:program",
        "generator_args": run.to_json(),
        "family": run.family,
        "mode": run.mode,
        "tiles": run.tiles,
        "comps": run.comps,
        "readres": run.readres,
        "gwrites": run.gwrites,
        "dram_reads": run.dram_reads,
        **run.counts(),
        **res,
    }
    row["time_ns"] = round(row["cycles"] * row["tCK_ns"], 3)
    row["cycles_per_tile"] = round(row["pim_cycles"] / run.tiles, 4)
    return row


@command
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--harness", required=True)
    ap.add_argument("--config-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args(argv)
    work = Path(a.workdir or tempfile.mkdtemp(prefix="newton_")).resolve()
    rows = []
    for i, run in enumerate(sobol_design(a.n, a.seed)):
        res = run_one(a.harness, Path(a.config_dir), run, work / f"{i:04d}")
        row = row_for(run, res, a.commit)
        rows.append(row)
        print(
            f"{i} {run.mode} {run.family} tiles={run.tiles} comps={run.comps} "
            f"readres={run.readres} gw={run.gwrites} rd={run.dram_reads}: "
            f"{row['cycles']} cyc (pim {row['pim_cycles']}), gact={row['num_gact_cmds']}",
            file=sys.stderr,
            flush=True,
        )
    print(f"wrote {write_corpus(a.out, rows, COLUMNS)} rows to {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
