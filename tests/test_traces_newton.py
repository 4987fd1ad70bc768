"""NewtonSim PIM programs and the committed NewtonSim corpus (no simulator needed)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from dse.validation.traces import newton as nw

CORPUS = Path(__file__).resolve().parents[1] / "dse" / "validation" / "data" / "corpus_newton.csv"


def test_design_deterministic_and_round_trip() -> None:
    a, b = nw.sobol_design(64, seed=3), nw.sobol_design(64, seed=3)
    assert a == b
    for run in a:
        assert nw.NewtonRun.from_json(run.to_json()) == run
        assert run.comps % run.readres == 0 and run.comps <= 32
    assert {r.mode for r in a} == {"single", "dual"}
    assert {r.family for r in a} == set(nw.FAMILIES)


def test_program_matches_counts() -> None:
    for mode in ("single", "dual"):
        run = nw.NewtonRun("gemv", mode, tiles=3, comps=8, readres=2, gwrites=1, dram_reads=5)
        prog = nw.program(run)
        kinds = [k for k, _, _ in prog]
        c = run.counts()
        assert kinds.count("P_HEADER") == c["n_p_header"] == 3
        assert kinds.count("GWRITE") == 1 and kinds.count("READ") == 5
        comps = sum(n for k, _, n in prog if k in ("COMP", "COMPS_READRES"))
        assert comps == c["n_comp"] == 24
        rr = kinds.count("READRES") + kinds.count("COMPS_READRES")
        assert rr == c["n_readres"] == 6
    with pytest.raises(ValueError):
        nw.NewtonRun("gemv", "single", tiles=1, comps=6, readres=1)


def _rows() -> list[dict]:
    with open(CORPUS) as fh:
        return list(csv.DictReader(fh))


def test_corpus_columns_rows_values() -> None:
    rows = _rows()
    assert set(nw.COLUMNS) <= set(rows[0])
    assert len(rows) >= 100
    assert len({r["generator_args"] for r in rows}) >= 100
    for r in rows:
        assert r["simulator"] == "newtonsim"
        run = nw.NewtonRun.from_json(r["generator_args"])
        assert r["config"] == run.config
        for k in ("cycles", "pim_cycles", "tCK_ns", "num_gact_cmds", "num_readres_cmds"):
            v = float(r[k])
            assert math.isfinite(v) and v > 0, (k, r)
        assert int(r["num_readres_cmds"]) == run.tiles * run.readres
        assert int(r["cycles"]) >= int(r["pim_cycles"])
        json.loads(r["generator_args"])
