"""dse.models.pim_neupims: NeuPIMs' decode-attention PIM programs, timed by pim_newton.

Hand-derived programs follow NeuPIMs' operators on the NeuPIMs HBM2 preset (P = 1024 B / 2 B
= 512 elements per row, c = 16 elements per COMP, B = 32 banks; see the module docstring):

* score, H = 32 KV heads, d = 128, L = 256 (GPT-3 7B, one TP shard): E = 4096 -> 8 chunks
  (8 GWRITEs), 4 heads per row, 8 COMPs per head; ceil(256 / 32) = 8 tiles per chunk, each
  32 COMPs in 4 READRES groups: 8 x program(tiles 8, comps 32, readres 4).
* context, H = 32, d = 128, L = 1000: per head ceil(1000 / 512) = 2 chunks, ceil(128 / 32) = 4
  tiles each; the full chunk 512 / 16 = 32 COMPs, the last ceil(488 / 16) = 31 COMPs, one
  READRES: 32 x program(4, 32, 1) + 32 x program(4, 31, 1).
* score with GQA g = 4, H = 8, d = 128, L = 4096: E = 1024 -> 2 chunks, 128 tiles each, the
  program repeated per query: 8 x program(128, 32, 4).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dse._pytree import replace_paths
from dse.models.pim_neupims import kernel_cycles, neupims_program, program_parts_cycles
from dse.models.pim_newton import program_cycles


@functools.lru_cache(maxsize=1)
def neupims_point():
    from dse.cli import _compose, build

    cfg, prov = _compose(["space=single", "pim=hbm2_neupims"])
    _, base, _ = build(cfg, prov)
    return base


def point(kind, L, d, heads=1, g=1, dual=1):
    return replace_paths(
        neupims_point(),
        {
            "workload.kind": kind,
            "workload.L": L,
            "workload.d": d,
            "workload.heads": heads,
            "workload.g": g,
            "policy.dual_rb": dual,
        },
    )


def cyc(mode, tiles, comps, readres):
    pim = neupims_point().hw.pim
    prog = dict(mode=mode, tiles=tiles, comps=comps, readres=readres, gwrites=1, dram_reads=0)
    return int(program_cycles(prog, pim)["cycles"])


def test_preset_geometry():
    pim = neupims_point().hw.pim
    assert (pim.banks, pim.lanes, pim.row_bytes, pim.col_bytes) == (32, 16, 1024, 32)
    assert neupims_point().workload.dtype in ("fp16", "bf16")


def test_one_tile_closed_form():
    # One GWRITE (done at 1 + tRCD + 96 = 111), one tile: P_HEADER, 8 G_ACTs (+1 + 3*30 + 1),
    # tRCD to the first COMP (f = 217 dual, 218 single: the GWRITE row is precharged first),
    # the result read_delay 16 after the last COMPS_READRES/READRES, +1 to pop it.
    # score, one head of d = 128 and L <= 32 tokens: 1 chunk, 1 tile, 8 COMPs, 1 READRES
    assert int(kernel_cycles(point(1, 32, 128))) == 217 + 17 == 234
    assert int(kernel_cycles(point(1, 32, 128, dual=0))) == 218 + 8 * 2 + 17 == 251
    # context, d <= 32 outputs (1 tile), L <= 512 tokens (1 chunk): ceil(L / 16) COMPs
    assert int(kernel_cycles(point(2, 512, 32))) == 234  # one COMPS_READRES(32)
    assert int(kernel_cycles(point(2, 100, 32, dual=0))) == 218 + 7 * 2 + 17 == 249
    assert int(kernel_cycles(point(2, 1, 32, dual=0))) == 218 + 6 + 17  # adder-tree fill


def test_hand_derived_programs():
    pim = neupims_point().hw.pim
    pr = neupims_program(1, 0, 0, 256, 128, 1, pim, heads=32)
    assert pr["tiles"].tolist() == [8, 8] and pr["comps"].tolist() == [32, 32]
    assert pr["readres"].tolist() == [4, 4] and pr["count"].tolist() == [7, 1]
    assert int(kernel_cycles(point(1, 256, 128, heads=32))) == 8 * cyc(1, 8, 32, 4)
    assert int(kernel_cycles(point(1, 256, 128, heads=32, dual=0))) == 8 * cyc(0, 8, 32, 4)

    pr = neupims_program(2, 0, 0, 1000, 128, 1, pim, heads=32)
    assert pr["tiles"].tolist() == [4, 4] and pr["comps"].tolist() == [32, 31]
    assert pr["readres"].tolist() == [1, 1] and pr["count"].tolist() == [32, 32]
    want = 32 * cyc(1, 4, 32, 1) + 32 * cyc(1, 4, 31, 1)
    assert int(kernel_cycles(point(2, 1000, 128, heads=32))) == want

    pr = neupims_program(1, 0, 0, 4096, 128, 4, pim, heads=8)
    assert pr["tiles"].tolist() == [128, 128] and pr["count"].tolist() == [4, 4]
    assert int(kernel_cycles(point(1, 4096, 128, heads=8, g=4))) == 8 * cyc(1, 128, 32, 4)

    # the last score chunk holds fewer heads: H = 5, d = 128 -> E = 640: a chunk of 4 heads
    # (32 COMPs, 4 READRES) and one of 1 head (8 COMPs, 1 READRES)
    pr = neupims_program(1, 0, 0, 64, 128, 1, pim, heads=5)
    assert pr["comps"].tolist() == [32, 8] and pr["readres"].tolist() == [4, 1]
    want = cyc(1, 2, 32, 4) + cyc(1, 2, 8, 1)
    assert int(kernel_cycles(point(1, 64, 128, heads=5))) == want


def test_no_neupims_program():
    # FC GEMVs run on NeuPIMs' NPU: no program; nor a COMPS_READRES over 32 COMPs (d > 512)
    assert int(kernel_cycles(point(0, 64, 128))) == -1
    assert int(kernel_cycles(point(1, 64, 1024))) == -1
    assert int(neupims_program(0, 4096, 4096, 1, 1, 1, neupims_point().hw.pim)["valid"][0]) == 0


@pytest.mark.parametrize("kind", [1, 2])
@pytest.mark.parametrize("dual", [0, 1])
def test_monotone_in_L_and_d(kind, dual):
    pim = neupims_point().hw.pim

    def one(L, d):
        prog = neupims_program(kind, 1, 1, L, d, 1, pim, heads=4, mode=dual)
        return program_parts_cycles(prog, pim)

    Ls = jnp.asarray([1, 16, 31, 32, 33, 100, 511, 512, 513, 1024, 1500, 4096, 8192])
    # d dividing the 512-element row; other d hit NeuPIMs' heads_per_tile = ceil(P / d) quirk
    # (d = 160 packs 4 heads = 40 COMPs into a 32-COMP row) and need not be monotone
    ds = jnp.asarray([16, 32, 64, 128, 256, 512])
    grid = np.asarray(jax.vmap(lambda L: jax.vmap(lambda d: one(L, d))(ds))(Ls))
    assert (grid > 0).all()
    assert (np.diff(grid, axis=0) >= 0).all()  # in L
    assert (np.diff(grid, axis=1) >= 0).all()  # in d
    assert grid[-1, -1] > grid[0, 0]


def test_pim_kernel_neupims_mapping():
    """pim_kernel with ``policy.mapping=neupims`` gives NeuPIMs' program cycles for attention
    kernels and flags an FC GEMV ``unmapped`` (NeuPIMs runs FC layers on its NPU)."""
    from dse import explore

    df = explore(
        [
            "model=pim_kernel",
            "pim=hbm2_neupims",
            "policy.mapping=neupims",
            "workload=llama3_8b_attn_score",
            "space=single",
            "+space.axes.workload.kind=[gemv,score,context]",
        ]
    )
    by = df.set_index("workload.kind")
    assert by.loc["gemv", "status"] == "unmapped"
    assert (by.loc[["score", "context"], "status"] == "ok").all()
    assert (by.loc[["score", "context"], "cycles"] > 0).all()
