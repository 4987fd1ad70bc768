"""How NeuPIMs turns a decode-attention kernel into HBM2-PIM programs, timed by :mod:`pim_newton`.

Source: ``casys-kaist/NeuPIMs`` branch ``main`` (the NPU side; paths below are in that tree).
Each NeuPIMs PIM instruction becomes one NewtonSim transaction (``TransToMemoryAccess``,
src/Common.cc:429-470: ``PIM_HEADER``/``PIM_GWRITE``/``PIM_COMP``/``PIM_READRES``/
``PIM_COMPS_READRES`` -> P_HEADER/GWRITE/COMP/READRES/COMPS_READRES). Both operators below emit
``n`` x ``COMP`` + ``READRES`` when ``dram_type`` is NEWTON and one ``COMPS_READRES(n)``
otherwise, i.e. ``mode`` 0/1 of :func:`~dse.models.pim_newton.program_cycles` with the same
counts; ``kernel_cycles`` takes the mode from ``policy.dual_rb``.

Geometry (configs/memory_configs/neupims.json; ``SimulationConfig.h``): ``dram_page_size``
1024 B = ``PimChannel.row_bytes``; ``dram_banks_per_ch`` 32 = ``PimChannel.banks`` (a tile is
one row in all 32 banks, both ranks); ``pim_comp_coverage`` 16 elements per COMP =
``PimChannel.lanes``; ``precision`` 2 B (configs/systolic_ws_128x128_dev.json:32). So a row
holds ``P = row_bytes / elem_bytes`` = 512 elements, a COMP covers ``c = lanes`` = 16 of them,
``B = banks``.

**score** ``q Kᵀ`` (src/operations/NeuPIMSLogitSoftmax.cc, decode path 173-271; loops
303-322). K is stored ``[h, d_k, seq_len]`` (PIMTensor.cc:21-24): each bank row holds one token's
keys of several heads side by side, so the ``E = H d`` key elements of a token span
``chunks = ceil(E / P)`` rows (312) and a row packs ``heads_per_tile = ceil(P / d)`` heads
(313; the last chunk ``ceil((E mod P) / d)``, 314-315). Per chunk one ``GWRITE`` of the query
slice (186-194), then ``tiles_per_chunk = allocated_seq_len / B = ceil(L / B)`` tiles
(177-178; PIMTensor.cc:43-45), each ``P_HEADER(comps_per_head * n_heads, n_heads)`` (200-219)
and, per head, ``comps_per_head = ceil(d / c)`` COMPs and one READRES (223-262). One program
covers all heads of the request (heads are packed, not looped).

**context** ``s V`` (src/operations/NeuPIMSAttend.cc, decode path 152-241; loops 272-287). V is
stored ``[h, seq_len, d_k]`` (PIMTensor.cc:25-28): bank ``b`` holds output element ``b`` of a
head, a row holds ``P`` tokens. Per head (152) and per ``chunk`` of ``P`` tokens
(``chunks = ceil(L / P)``, 82) one ``GWRITE`` of the score slice (156-168), then
``tiles_per_chunk = ceil(d / B)`` tiles (281), each ``P_HEADER`` and one READRES group of
``P / c`` COMPs (the last chunk ``ceil((L mod P) / c)``, 170-173; 189-234). The header carries
that count rounded up to a power of two (174-181); NewtonSim uses the header's count only in
its refresh-deadline estimate, the COMPS issued are the unrounded count used here.

**Placement** (src/scheduler/Scheduler.cc:17-18, 186-213; allocation 94-150): a request's K and
V, all ``nh = n_head / n_tp`` heads, live in one channel (``PIMTensor(..., ch, ...)``), and
requests are spread over the channels (round robin, or least-loaded with channel load
balancing). NeuPIMs does not split a head's tokens over channels. So the channel that holds a
request runs all of its heads: :func:`kernel_cycles` charges ``workload.heads`` heads to one
channel (not ``ceil(heads / channels)``; ``workload.partitions`` is ignored) and gives that
request's kernel time on its channel.

**Composition.** One chunk (one GWRITE, then its tiles) is exactly a program of
:func:`~dse.models.pim_newton.program_cycles` (``gwrites`` 1). NeuPIMs issues chunks one after
another in program order; they are charged serially, each as its own program from cycle 0
(``count`` x the program's ``cycles``). This is the additive form of NeuPIMs' own latency
estimate (Scheduler.cc:267-287: ``chunks * gwrite + chunks * tiles * gemv``). Not modelled:
the overlap of one chunk's result drain with the next chunk's GWRITE, and the refresh phase
carried from chunk to chunk (each chunk restarts the refresh schedule).

**Programs** are returned as two parts (leading axis of length 2): part 0 a full chunk,
part 1 the last chunk, with ``count`` how often each runs. score: ``count = [(chunks-1) g, g]``;
context: ``count = [(chunks-1) H g, H g]``.

**Outside NeuPIMs (stated, not taken from its source).**

* GQA: NeuPIMs is MHA only (no KV-head grouping anywhere in src/). With ``g`` queries per KV
  head, each query needs its own GWRITE of its slice (the global buffer holds one vector), so
  the program repeats ``g`` times (no open-row reuse across the group).
* ``kind`` 0 (FC GEMV): NeuPIMs runs every FC on the NPU (ModelProgram.cc QKV generation 638-641,
  projection 302/401, FFN 612-620 are ``MatMul``); its only other PIM GEMV operator,
  src/operations/PIMGEMV.cc, is the unfused score ``q Kᵀ`` (ModelProgram.cc:366-371). There is
  no NeuPIMs mapping of an FC GEMV, so ``kind`` 0 gets ``valid`` 0 and :func:`kernel_cycles`
  returns -1.
* ``valid`` is also 0 where NeuPIMs' encoding cannot carry the program: a COMPS_READRES
  encodes at most 32 COMPs (``assert(num_comps - 1 < 32)``, Common.cc:545-556), so
  ``ceil(d / c) <= 32`` (score) and ``P / c <= 32`` (context).
* ``heads_per_tile = ceil(P / d)`` is NeuPIMs' literal formula; where ``d`` does not divide
  ``P`` it packs more heads than a row holds (NeuPIMs' quirk, kept).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dse.models.pim_newton import _get, program_cycles
from dse.workload.dtype import DTYPE_BYTES

__all__ = ["MAX_COMPS_PER_READRES", "kernel_cycles", "neupims_program", "program_parts_cycles"]

#: COMPs one COMPS_READRES address can encode (rank/bank-group/bank bits, Common.cc:545-556).
MAX_COMPS_PER_READRES = 32

_PROGRAM_KEYS = ("tiles", "comps", "readres", "gwrites", "dram_reads", "mode")


def _i(x: Any) -> jax.Array:
    return jnp.asarray(x).astype(jnp.int64)


def _cdiv(a, b):
    return -((-a) // b)


def neupims_program(
    kind, K, M, L, d, g, pim, heads=1, elem_bytes=None, mode=1
) -> dict[str, jax.Array]:
    """The PIM program NeuPIMs builds for one request's kernel on its channel (module docstring).

    ``kind``: 0 gemv (no NeuPIMs mapping: ``valid`` 0), 1 score, 2 context; ``K``, ``M``: FC
    shape (unused: see ``kind`` 0); ``L`` context tokens; ``d`` head dim; ``g`` queries per KV
    head; ``pim``: a :class:`~dse.hw.pim.PimChannel` or mapping with ``banks``, ``lanes``,
    ``row_bytes``, ``col_bytes``; ``heads``: KV heads of the request (all on its channel);
    ``elem_bytes``: element size (default ``col_bytes // lanes``); ``mode`` 0 single / 1 dual.

    Returns int64 arrays with a leading axis of 2 (part 0: a full chunk, part 1: the last
    chunk): ``tiles``, ``comps``, ``readres``, ``gwrites``, ``dram_reads``, ``mode`` (the
    fields :func:`~dse.models.pim_newton.program_cycles` takes), ``count`` (how often each
    part runs, serially) and ``valid`` (0 where NeuPIMs has no such program). Pure JAX:
    vmap-able over every argument but ``pim``'s structure.
    """
    kind, L, d, g, H = _i(kind), _i(L), _i(d), _i(g), _i(heads)
    del K, M  # FC GEMVs have no NeuPIMs PIM mapping (module docstring)
    B = _i(_get(pim, "banks"))
    c = _i(_get(pim, "lanes"))  # pim_comp_coverage: elements per COMP
    if elem_bytes is None:
        elem_bytes = _i(_get(pim, "col_bytes")) // c
    P = _i(_get(pim, "row_bytes")) // _i(elem_bytes)  # elements per DRAM row (page)
    one = jnp.ones_like(L + d + g + H + kind + P)

    # score: NeuPIMSLogitSoftmax.cc:303-322, 177-178, 197-262
    E = H * d
    s_chunks = _cdiv(E, P)
    hpt = _cdiv(P, d)
    h_last = jnp.where(E % P == 0, hpt, _cdiv(E % P, d))
    cph = _cdiv(d, c)
    s_tiles = _cdiv(L, B)
    s_ok = cph <= MAX_COMPS_PER_READRES

    # context: NeuPIMSAttend.cc:272-287, 82, 170-173, 184-234
    c_chunks = _cdiv(L, P)
    c_tiles = _cdiv(d, B)
    full = P // c
    last = jnp.where(L % P > 0, _cdiv(L % P, c), full)
    c_ok = (full <= MAX_COMPS_PER_READRES) & (full >= 1)

    score, context = kind == 1, kind == 2
    valid = (score & s_ok) | (context & c_ok)

    def pick(s, cx, default):
        return jnp.where(valid, jnp.where(score, s, cx), default) * one

    tiles = jnp.stack([pick(s_tiles, c_tiles, 1), pick(s_tiles, c_tiles, 1)])
    comps = jnp.stack([pick(cph * hpt, full, 1), pick(cph * h_last, last, 1)])
    readres = jnp.stack([pick(hpt, 1, 1), pick(h_last, 1, 1)])
    count = jnp.stack([pick((s_chunks - 1) * g, (c_chunks - 1) * H * g, 0), pick(g, H * g, 0)])
    return {
        "tiles": tiles,
        "comps": comps,
        "readres": readres,
        "gwrites": jnp.ones_like(tiles),
        "dram_reads": jnp.zeros_like(tiles),
        "mode": _i(mode) * jnp.ones_like(tiles),
        "count": count,
        "valid": jnp.stack([valid * one, valid * one]).astype(jnp.int64),
    }


def program_parts_cycles(prog, pim, **params) -> jax.Array:
    """``count``-weighted sum of :func:`program_cycles` ``cycles`` over the program's parts;
    -1 where the program is not ``valid``. ``prog`` as :func:`neupims_program` returns it for
    one kernel (fields of shape ``(2,)``); batch with ``jax.vmap`` around this function."""
    parts = {k: prog[k] for k in _PROGRAM_KEYS}
    cyc = jax.vmap(lambda q: program_cycles(q, pim, **params)["cycles"])(parts)
    total = jnp.sum(cyc * prog["count"])
    return jnp.where(prog["valid"][0] == 1, total, -1)


def kernel_cycles(p: Any, **params: Any) -> jax.Array:
    """Cycles of design point ``p``'s kernel as NeuPIMs maps it: one request's ``score`` or
    ``context`` with all ``p.workload.heads`` KV heads on its channel (NeuPIMs' placement,
    module docstring), ``g`` queries per KV head, on ``p.hw.pim`` in dual (``p.policy.dual_rb``
    1, NeuPIMs) or single (0, Newton) row-buffer mode. Sum over the parts of
    :func:`neupims_program` of ``count`` x ``program_cycles(part)["cycles"]``; -1 for a kernel
    NeuPIMs has no program for (``kind`` 0, FC GEMV). ``params`` go to ``program_cycles``."""
    w, pim = p.workload, p.hw.pim
    prog = neupims_program(
        w.kind,
        w.K,
        w.M,
        w.L,
        w.d,
        w.g,
        pim,
        heads=w.heads,
        elem_bytes=DTYPE_BYTES[w.dtype],
        mode=jnp.where(_i(p.policy.dual_rb) == 1, 1, 0),
    )
    return program_parts_cycles(prog, pim, **params)
