"""Kernels as loop nests of PIM requests, timed command by command with periodic extrapolation.

A mapping (how a kernel becomes PIM requests, e.g. CENT's GEMV loop orders) is written as a
nest of loops over request templates whose counts, opsizes and rows are functions of the
design point. :func:`repeat` issues a loop body through the command engine of
:mod:`dse.models.pim_trace` (in-order issue under the channel's timing rules) the first
``WARMUP`` times exactly; for longer loops it extrapolates: once the body has been issued
``WARMUP`` times, every later instance moves every time in the engine's state by the change
the last instance made (the schedule is max-plus periodic), rows move by their (affine) step,
counters by theirs. Loops shorter than ``WARMUP`` are exact, and so is every kernel whose
transient settles within ``WARMUP - 1`` instances; the tests hold the extrapolation to the
full trace evaluation on the same requests.

Cost: per point, a few times ``WARMUP^depth`` request steps, independent of the kernel size.

Mappings (CENT, ``cent_simulation/TransformerBlock.py``; the same loops as the trace writers
of :mod:`dse.validation.traces.aim`; channel 0 carries the most work and every DMA fence
waits for it, so one channel is timed):

* GEMV ``y = x W`` (``M`` outputs of ``K``): outputs dealt to ``channels x banks`` banks,
  ``m_b = ceil(M / (channels banks))`` per bank, each output's ``K`` weights in
  ``ceil(K / E)`` rows of ``E`` elements. *reuse-GBuf order*: per row chunk ``r``, one
  WR_GB (opsize = columns of the chunk), then the bank's outputs in balanced groups of at
  most ``R`` (the MAC result registers, ``obuf_entries``): the group's WR_BIASes, its
  MAC_ABKs (one row each), its RD_MACs. *literal order*: per row chunk, one WR_GB, then per
  output WR_BIAS, MAC_ABK, RD_MAC.
* score ``q Kᵀ``: token ``t`` to bank ``t mod (channels banks)``; the keys of every KV head
  of a token fill ``ceil(d heads / E)`` rows, ``E / d`` heads to a row. Per key row, per
  block of ``channels banks`` tokens, per GQA query: a full-row WR_GB of queries, then per
  head of the row WR_BIAS, MAC_ABK (opsize ``d / lanes``), RD_MAC.
* context ``s V``: ``ceil(heads / channels)`` heads per channel, a head's ``d`` dimensions
  over the banks, each dimension's ``L`` values in ``ceil(L / E)`` rows. Per head, query and
  token row: one WR_GB of scores, then per dimension of the bank WR_BIAS, MAC_ABK, RD_MAC.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dse.hw.pim_commands import NO_RULE
from dse.models.pim_trace import engine, request, result

__all__ = ["WARMUP", "repeat", "cent_kernel"]

WARMUP = 3
_STALE = NO_RULE // 2


def repeat(st: dict, count, body) -> dict:
    """``body(state, i)`` for ``i = 0 .. count - 1`` (see the module docstring)."""
    count = jnp.asarray(count, jnp.int64)
    n = jnp.minimum(jnp.maximum(count, 0), WARMUP)

    def f(i, carry):
        _, cur = carry
        return cur, body(cur, i)

    prev, cur = jax.lax.fori_loop(0, n, f, (st, st))
    extra = jnp.maximum(count - WARMUP, 0)

    def extrapolate(c, p):
        if c.dtype == jnp.bool_:
            return c
        return jnp.where(p > _STALE, c + extra * (c - p), c)

    return jax.tree.map(extrapolate, cur, prev)


def _cdiv(a, b):
    return -(-a // b)


def cent_kernel(p, literal) -> dict:
    """Cycles of point ``p``'s kernel (``workload.kind``: gemv, score, context) under CENT's
    mapping on the point's channel timing; ``literal`` (traced bool): GEMV in literal order."""
    pim, wl = p.hw.pim, p.workload
    from dse.workload.gemv import DTYPE_BYTES

    db = DTYPE_BYTES[wl.dtype]
    one = jnp.asarray(1, jnp.int64)
    banks = jnp.maximum(pim.banks, one)
    channels = jnp.maximum(pim.channels, one)
    E = jnp.maximum(pim.row_bytes // db, one)  # elements per row
    B = jnp.maximum(pim.col_bytes // db, one)  # elements per column access
    cols = _cdiv(E, B)
    R = jnp.maximum(pim.obuf_entries, one)
    st0, step = engine(pim, 1, banked=False)

    def req(st, name, opsize=1, row=-1):
        return step(st, request(name, opsize=opsize, row=row))

    def output(st, op, row):
        """One output: initialise its accumulator, MAC one row, read it out."""
        return req(req(req(st, "WRMAC16"), "MAC16", op, row), "RDMAC16")

    # ---- GEMV -------------------------------------------------------------------------
    K, M = jnp.maximum(wl.K, one), jnp.maximum(wl.M, one)
    rpv = _cdiv(K, E)
    per_bank = _cdiv(M, channels * banks)
    op_last = _cdiv(K - E * (rpv - 1), B)
    # the literal order is the reuse order with groups of one output
    n_groups = _cdiv(per_bank, jnp.where(literal, one, R))
    group = _cdiv(per_bank, n_groups)
    last_group = per_bank - group * (n_groups - 1)

    def gemv(st):
        def chunk(st, r, op):
            st = req(st, "WRGB", op)

            def grp(st, gi, n):
                st = repeat(st, n, lambda s, i: req(s, "WRMAC16"))
                st = repeat(st, n, lambda s, i: req(s, "MAC16", op, (gi * group + i) * rpv + r))
                return repeat(st, n, lambda s, i: req(s, "RDMAC16"))

            st = repeat(st, n_groups - 1, lambda s, gi: grp(s, gi, group))
            return grp(st, n_groups - 1, last_group)

        st = repeat(st, rpv - 1, lambda s, r: chunk(s, r, cols))
        return chunk(st, rpv - 1, op_last)

    # ---- score q·Kᵀ ---------------------------------------------------------------------
    d = jnp.maximum(wl.d, one)
    heads = jnp.maximum(wl.heads, one)
    g = jnp.maximum(wl.g, one)
    L = jnp.maximum(wl.L, one)
    rpk = _cdiv(d * heads, E)
    heads_per_row = jnp.maximum(E // d, one)
    seq_iters = _cdiv(L, channels * banks)
    mac_op = _cdiv(d, B)

    def score(st):
        def query(st, r, s):
            st = req(st, "WRGB", cols)

            return repeat(st, heads_per_row, lambda q, _: output(q, mac_op, s * rpk + r))

        def block(st, r, s):
            return repeat(st, g, lambda q, _: query(q, r, s))

        return repeat(st, rpk, lambda s_, r: repeat(s_, seq_iters, lambda q, s: block(q, r, s)))

    # ---- context s·V ------------------------------------------------------------------
    rows_seq = _cdiv(L, E)
    heads_per_chan = _cdiv(heads, channels)
    dim_iters = _cdiv(d, banks)
    op_seq_last = _cdiv(L - E * (rows_seq - 1), B)

    def context(st):
        def token_row(st, h, ro, op):
            st = req(st, "WRGB", op)

            return repeat(
                st, dim_iters, lambda q, dd: output(q, op, (h * dim_iters + dd) * rows_seq + ro)
            )

        def query(st, h):
            st = repeat(st, rows_seq - 1, lambda s, ro: token_row(s, h, ro, cols))
            return token_row(st, h, rows_seq - 1, op_seq_last)

        return repeat(st, heads_per_chan, lambda s, h: repeat(s, g, lambda q, _: query(q, h)))

    branches = [lambda s: gemv(s), lambda s: score(s), lambda s: context(s)]
    st = jax.lax.switch(jnp.clip(wl.kind, 0, 2), branches, st0)
    st = step(st, request("EOC"))
    return result(st)
