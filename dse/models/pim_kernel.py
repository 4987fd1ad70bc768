"""PIM command pipeline: a kernel's cycles under static, ping-pong and dynamic scheduling.

A pure function of ONE design point (DESIGN.md §4.2–4.3); batching happens in
:mod:`dse.explore`. :mod:`dse.reference.pim_kernel` issues the same command stream one
command at a time; the tests hold the two together.

**Kernel → GEMV on one channel.** ``gemv``: ``M_w = ceil(M / channels)`` outputs of ``K``.
``score``: ``M_w = ceil(L / partitions)`` token outputs of ``d``; ``context``: ``d`` outputs
of ``ceil(L / partitions)`` tokens; a channel runs ``ceil(heads · partitions / channels)``
heads in turn and each head's ``g`` GQA queries share its weights. Outputs are dealt to the
``banks``: ``m_b = ceil(M_w / banks)`` per bank, ``kc = ceil(K_w / e)`` columns each
(``e = col_bytes / dtype bytes``). One all-bank MAC reads one column of every bank; MACs
are spaced ``t_mac = tCCD_mac · ceil(e / lanes)``.

**Layout.** Outputs shorter than a row (``kc <= c``, ``c = row_bytes / col_bytes``) are
packed ``floor(c / kc)`` to a row; longer ones start a row each. Without GQA row reuse the
``g`` queries run as ``g`` passes over the weights; with it, ``q`` queries (as many as both
buffers serve, passes balanced) share each open row, innermost.

**Tiles.** The GBuf (``gbuf_bytes / col_bytes`` entries) holds a chunk of ``kt`` columns per
query (whole rows when a chunk is longer than a row, never straddling one when shorter);
the OBuf holds ``obuf_entries`` results per bank. A tile is one chunk × a group of
``t_o`` outputs whose results fit the OBuf: WR-INP of the chunk's ``q · kt`` entries (first
group of a chunk), its MACs (output by output, column by column, query innermost), then
RD-OUT of its ``q · t_o`` entries (``ceil(banks · out_bytes / col_bytes)`` bursts each) —
unless all partial sums fit (``keep``) and stay until the last chunk. Ping-pong and dynamic
use each buffer as two halves (when it holds two tiles' worth), alternating tile by tile.

**Rows.** A tile closes its last row (PRE) when its MACs end. Within a tile, a row of ``k``
MACs opened at ``a``: first MAC ``>= a + tRCD_mac``, MAC to MAC ``t_mac``, PRE
``>= max(last MAC + t_mac - tCCD_mac + tRTP, a + tRAS)``, next ACT ``>= PRE + tRP``.

**Policies.** One burst takes ``t_io = ceil(8 col_bytes / (bus_width_bits data_rate))``
cycles; a readout's data follows its command by CL.

* static: one in-order queue per tile: WR-INP bursts, ACT (after them), MACs, PRE, RD-OUT
  after the MACs' results and the PRE; the next tile's commands wait for the readout's data.
* ping-pong: tile ``p`` runs in phase ``p``. The bus drains tile ``p-1``'s results and fills
  the other GBuf half for tile ``p+1`` while the MACs run tile ``p``; the MACs wait for the
  drain when readout blocks or the OBuf is not split, and for their own fill when the GBuf is
  not split. Phase ``p+1`` starts when both sides are done (hand-off).
* dynamic: an in-order I/O queue (the next chunk's WR-INP as soon as the chunk starts when the
  GBuf is split, else after the chunk; each tile's RD-OUT after its MACs) and an in-order
  compute queue, ordered only by buffer-group dependencies: a tile's MACs wait for their GBuf
  group's WR-INP and their OBuf group's last readout; a WR-INP waits for the MACs that last
  read its group. The tile's first ACT issues as soon as the previous row closed (early
  activation, overlapping any wait for data). Blocking readout holds the MACs until the
  previous readout's data is out; single-ported buffers keep transfers and MACs apart.

Both implementations issue the same tiles; this one evaluates each tile in closed form and
runs the tile recurrences as a ``lax.scan`` over the first ``WINDOW_HEAD`` tiles, shifts the
state over whole periods of the tile pattern (timestamps and counts advance by what the
last measured period added), then scans the last ``WINDOW_TAIL`` tiles exactly. Short kernels
are therefore exact; long ones are extrapolated from a periodic window.

**Refresh** is applied to the schedule: ``stall`` freezes the channel tRFC after each
``tREFI - tRFC`` cycles of work (the first after tREFI); ``skip`` lets no tile cross a
refresh (here with the kernel's mean tile length).

Metrics: integer ``cycles``, ``time_ns``, ``mac_util`` (useful multiply-accumulates over the
MAC lanes' capacity), fractions of time streaming MACs, switching rows, stalled on I/O and
refreshing (they sum to 1), the ``bottleneck``, commands issued by type and ``status``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dse.point import STATUS_CODE, DesignPoint
from dse.workload.gemv import DTYPE_BYTES

__all__ = ["kernel", "METRICS", "BOTTLENECKS", "WINDOW_HEAD", "WINDOW_TAIL"]

BOTTLENECKS = ("mac", "row", "io", "refresh")
WINDOW_HEAD = 64  # tiles scanned exactly from the start
WINDOW_TAIL = 32  # tiles scanned exactly at the end

METRICS = {
    "cycles": ("cycles", "channel time for the kernel, refresh included"),
    "time_ns": ("ns", "cycles * tCK_ns"),
    "mac_util": ("1", "useful MACs / (banks * lanes * cycles / tCCD_mac)"),
    "frac_mac": ("1", "fraction of time issuing MACs"),
    "frac_row": ("1", "fraction of time switching rows (ACT/PRE, tRCD/tRAS/tRTP/tRP)"),
    "frac_io": ("1", "fraction of time the MACs wait for transfers (WR-INP/RD-OUT)"),
    "frac_refresh": ("1", "fraction of time refreshing"),
    "bottleneck": ("code", "argmax of the fractions: " + ", ".join(BOTTLENECKS)),
    "n_mac": ("commands", "all-bank MAC commands per channel"),
    "n_act": ("commands", "row activations (= precharges) per channel"),
    "n_wr_inp": ("bursts", "WR-INP bursts per channel"),
    "n_rd_out": ("bursts", "RD-OUT bursts per channel"),
    "n_ref": ("commands", "refreshes during the kernel"),
    "tiles": ("count", "tiles per channel"),
    "status": ("bits", "0 = feasible; see dse.point.STATUS_BITS"),
}


def _cdiv(a, b):
    return -(-a // b)


def _i(x):
    return jnp.asarray(x, jnp.int64)


def _tiling(p: DesignPoint):
    pim, wl, pol = p.hw.pim, p.workload, p.policy
    db = DTYPE_BYTES[wl.dtype]
    one = _i(1)
    banks = jnp.maximum(pim.banks, one)
    col = jnp.maximum(pim.col_bytes, db)
    e = col // db
    tccd = jnp.maximum(pim.tCCD_mac, one)
    t_mac = tccd * _cdiv(e, jnp.maximum(pim.lanes, one))
    c = jnp.maximum(pim.row_bytes // col, one)
    channels = jnp.maximum(pim.channels, one)
    parts = jnp.maximum(wl.partitions, one)
    heads = _cdiv(jnp.maximum(wl.heads, one) * parts, channels)
    tokens = _cdiv(jnp.maximum(wl.L, one), parts)
    d = jnp.maximum(wl.d, one)
    gq0 = jnp.maximum(wl.g, one)
    is_gemv, is_score = wl.kind == 0, wl.kind == 1
    m_w = jnp.where(
        is_gemv, _cdiv(jnp.maximum(wl.M, one), channels), jnp.where(is_score, tokens, d)
    )
    k_w = jnp.where(is_gemv, jnp.maximum(wl.K, one), jnp.where(is_score, d, tokens))
    heads = jnp.where(is_gemv, one, heads)
    gq = jnp.where(is_gemv, one, gq0)
    m_b = _cdiv(m_w, banks)
    kc = _cdiv(k_w, e)
    n_gb = pim.gbuf_bytes // col
    n_ob = jnp.maximum(pim.obuf_entries, one)
    split = pol.sched != 0
    q_max = jnp.where(
        pol.row_reuse == 1, jnp.maximum(one, jnp.minimum(gq, jnp.minimum(n_ob, n_gb))), one
    )
    passes = _cdiv(gq, q_max)
    q = _cdiv(gq, passes)

    def chunking(gb_cap, ob_cap):
        g_cols = jnp.maximum(one, gb_cap // q)
        kt = jnp.where(kc <= g_cols, kc, jnp.where(g_cols >= c, (g_cols // c) * c, g_cols))
        keep = (_cdiv(kc, kt) > 1) & (q * m_b <= ob_cap)
        t_o = jnp.where(keep, m_b, jnp.maximum(one, jnp.minimum(m_b, ob_cap // q)))
        return kt, keep, t_o

    # a buffer is used as two halves only where halving does not shrink the tiles
    kt, keep, t_o = chunking(n_gb, n_ob)
    gb_split = split & (n_gb >= 2 * q) & (chunking(n_gb // 2, n_ob)[0] == kt)
    _, keep_h, t_o_h = chunking(n_gb, n_ob // 2)
    ob_split = split & (n_ob >= 2 * q) & (keep_h == keep) & (t_o_h == t_o)
    n_chunk = _cdiv(kc, kt)
    n_groups = _cdiv(m_b, t_o)
    packed = kc <= c
    per = jnp.maximum(c // kc, one)
    rows_head = jnp.where(
        packed,
        _cdiv(m_b, per),
        jnp.where(kt >= c, m_b * _cdiv(kc, c), m_b * _cdiv(n_chunk, jnp.maximum(c // kt, one))),
    )
    width = jnp.maximum(pim.bus_width_bits, one)
    rate = jnp.where(pim.data_rate > 0, pim.data_rate, 1.0)
    t_io = jnp.ceil(8.0 * col / (width * rate)).astype(jnp.int64)
    return dict(
        t_mac=t_mac,
        rtp=t_mac - tccd + pim.tRTP,
        c=c,
        m_b=m_b,
        kc=kc,
        q=q,
        reps=heads * passes,
        kt=kt,
        n_chunk=n_chunk,
        t_o=t_o,
        n_groups=n_groups,
        keep=keep,
        gb_split=gb_split,
        ob_split=ob_split,
        packed=packed,
        per=per,
        bpe=_cdiv(banks * pim.out_bytes, col),
        t_io=t_io,
        tpr=n_chunk * n_groups,
        rows_used=heads * rows_head,
        useful=(heads * gq * m_w * k_w).astype(jnp.float64),
        n_gb=n_gb,
    )


def _tile(T, i):
    """Closed-form description of tile ``i`` (its transfers, MACs and row visits)."""
    tpr = T["tpr"]
    rep, u = i // tpr, i % tpr
    j, gi = u // T["n_groups"], u % T["n_groups"]
    last_chunk = j == T["n_chunk"] - 1
    cols = jnp.where(last_chunk, T["kc"] - (T["n_chunk"] - 1) * T["kt"], T["kt"])
    n_out = jnp.where(gi == T["n_groups"] - 1, T["m_b"] - (T["n_groups"] - 1) * T["t_o"], T["t_o"])
    q, c = T["q"], T["c"]
    w = jnp.where(gi == 0, q * cols, 0)
    r = jnp.where(last_chunk | ~T["keep"], q * n_out * T["bpe"], 0)
    gbg = jnp.where(T["gb_split"], (rep * T["n_chunk"] + j) % 2, 0)
    obg = jnp.where(T["ob_split"], jnp.where(T["keep"], rep, i) % 2, 0)
    # row visits: (count, MACs of the first, of the last, of each middle one)
    per = T["per"]
    m0 = gi * T["t_o"]
    m1 = m0 + n_out - 1
    pk_rows = m1 // per - m0 // per + 1
    pk_first = q * cols * jnp.minimum(n_out, per - m0 % per)
    pk_last = q * cols * (m1 % per + 1)
    pk_mid = q * cols * per
    s = _cdiv(cols, c)
    lr_first = jnp.where(s > 1, q * c, q * cols)
    lr_last = q * (cols - (s - 1) * c)
    long_rows = jnp.where(T["kt"] >= c, n_out * s, n_out)
    lr_s = jnp.where(T["kt"] >= c, s, 1)
    n_rows = jnp.where(T["packed"], pk_rows, long_rows)
    k_first = jnp.where(T["packed"], pk_first, jnp.where(T["kt"] >= c, lr_first, q * cols))
    k_last = jnp.where(
        T["packed"],
        jnp.where(pk_rows > 1, pk_last, pk_first),
        jnp.where(T["kt"] >= c, lr_last, q * cols),
    )
    return dict(
        w=w,
        r=r,
        gbg=gbg,
        obg=obg,
        n_mac=q * cols * n_out,
        n_rows=n_rows,
        k_first=k_first,
        k_last=k_last,
        k_mid=pk_mid,
        lr_s=lr_s,
        n_out=n_out,
        cols=cols,
        last_chunk=last_chunk,
        gi=gi,
    )


def _row_f(k, T, pim):
    """ACT → next ACT of an unstalled row of ``k`` MACs."""
    return jnp.maximum(pim.tRCD_mac + (k - 1) * T["t_mac"] + T["rtp"], pim.tRAS) + pim.tRP


def _rows_sum(tl, T, pim):
    """Σ over the tile's rows of ``_row_f`` (unstalled)."""
    f = lambda k: _row_f(k, T, pim)  # noqa: E731
    q, c = T["q"], T["c"]
    packed_sum = jnp.where(
        tl["n_rows"] > 1,
        f(tl["k_first"]) + f(tl["k_last"]) + (tl["n_rows"] - 2) * f(tl["k_mid"]),
        f(tl["k_first"]),
    )
    s = tl["lr_s"]
    long_sum = tl["n_out"] * jnp.where(
        T["kt"] >= c,
        (s - 1) * f(q * c) + f(q * (tl["cols"] - (s - 1) * c)),
        f(q * tl["cols"]),
    )
    return jnp.where(T["packed"], packed_sum, long_sum)


def _body(tl, T, pim, a0, ready):
    """Issue a tile's rows from ACT ``a0`` with data ready at ``ready``.
    Returns (MAC results done, next ACT allowed)."""
    s0 = jnp.maximum(a0 + pim.tRCD_mac, ready)
    t_mac, rtp = T["t_mac"], T["rtp"]
    one_last = s0 + (tl["k_first"] - 1) * t_mac
    one_pre = jnp.maximum(one_last + rtp, a0 + pim.tRAS)
    total = _rows_sum(tl, T, pim)
    mid = total - _row_f(tl["k_first"], T, pim) - _row_f(tl["k_last"], T, pim)
    act1 = one_pre + pim.tRP
    act_last = act1 + mid
    many_last = act_last + pim.tRCD_mac + (tl["k_last"] - 1) * t_mac
    many_pre = jnp.maximum(many_last + rtp, act_last + pim.tRAS)
    single = tl["n_rows"] == 1
    last = jnp.where(single, one_last, many_last)
    pre = jnp.where(single, one_pre, many_pre)
    return last + t_mac, pre + pim.tRP


def _bus(n, start, T, cl, is_read):
    return jnp.where(n > 0, start + jnp.where(is_read, cl, 0) + n * T["t_io"], start)


def _state0():
    z = _i(0)
    return {
        # static
        "st_now": z,
        "st_cmp": z,
        # ping-pong
        "pp_s": z,
        "pp_cmp": z,
        "pp_bus": z,
        # dynamic
        "dy_io": z,
        "dy_cmp": z,
        "dy_last": z,
        "dy_rd": z,
        "dy_gr0": z,
        "dy_gr1": z,
        "dy_gf0": z,
        "dy_gf1": z,
        "dy_of0": z,
        "dy_of1": z,
        # counts
        "n_act": z,
        "n_mac": z,
        "n_wr": z,
        "n_rd": z,
        "ov": z,
    }


def _pick(flag, a, b):
    return jnp.where(flag == 1, b, a)


def _step(T, pim, n_tiles, state, i):
    """Advance every policy's state by tile ``i`` (no-op past the last tile)."""
    tl = _tile(T, i)
    cl = pim.CL
    active = i < n_tiles
    new = dict(state)
    # --- static ----------------------------------------------------------------------
    now = _bus(tl["w"], state["st_now"], T, cl, False)
    done, cmp_free = _body(tl, T, pim, jnp.maximum(now, state["st_cmp"]), now)
    now = jnp.maximum(done, cmp_free - pim.tRP)
    now = _bus(tl["r"], now, T, cl, True)
    new["st_now"], new["st_cmp"] = now, cmp_free
    # --- ping-pong -------------------------------------------------------------------
    prev = _tile(T, i - 1)
    nxt = _tile(T, i + 1)
    s = state["pp_s"]
    s = jnp.where((i == 0) & T["gb_split"], _bus(tl["w"], _i(0), T, cl, False), s)
    prev_r = jnp.where(i > 0, prev["r"], 0)
    bus = _bus(prev_r, s, T, cl, True)
    serial_rd = (prev_r > 0) & ((pim.blocking_readout == 1) | ~T["ob_split"])
    c0 = jnp.where(serial_rd, bus, s)
    own_w = (tl["w"] > 0) & ~T["gb_split"]
    bus = jnp.where(own_w, _bus(tl["w"], bus, T, cl, False), bus)
    c0 = jnp.where(own_w, bus, c0)
    pre_w = T["gb_split"] & (i + 1 < n_tiles) & (nxt["w"] > 0)
    bus = jnp.where(pre_w, _bus(nxt["w"], bus, T, cl, False), bus)
    done, cmp_free = _body(tl, T, pim, jnp.maximum(c0, state["pp_cmp"]), c0)
    new["pp_s"], new["pp_cmp"] = jnp.maximum(done, bus), cmp_free
    # --- dynamic ---------------------------------------------------------------------
    dual = pim.dual_port == 1
    io = state["dy_io"]
    gr = [state["dy_gr0"], state["dy_gr1"]]
    gf = [state["dy_gf0"], state["dy_gf1"]]
    of = [state["dy_of0"], state["dy_of1"]]
    last_done = state["dy_last"]

    def write(io, n, grp, gr):
        st = jnp.maximum(jnp.maximum(io, _pick(grp, gf[0], gf[1])), jnp.where(dual, 0, last_done))
        end = _bus(n, st, T, cl, False)
        return end, [jnp.where(grp == 0, end, gr[0]), jnp.where(grp == 1, end, gr[1])]

    first = i == 0
    io_w0, gr_w0 = write(io, tl["w"], tl["gbg"], gr)
    io = jnp.where(first, io_w0, io)
    gr = [jnp.where(first, gr_w0[k], gr[k]) for k in range(2)]
    ng = T["n_groups"]
    nxt_start = _tile(T, i + ng)
    pre_split = T["gb_split"] & (tl["gi"] == 0) & (i + ng < n_tiles)
    io_p, gr_p = write(io, nxt_start["w"], nxt_start["gbg"], gr)
    io = jnp.where(pre_split, io_p, io)
    gr = [jnp.where(pre_split, gr_p[k], gr[k]) for k in range(2)]
    ready = jnp.maximum(_pick(tl["gbg"], gr[0], gr[1]), _pick(tl["obg"], of[0], of[1]))
    ready = jnp.where(pim.blocking_readout == 1, jnp.maximum(ready, state["dy_rd"]), ready)
    ready = jnp.where(dual, ready, jnp.maximum(ready, io))
    done_d, cmp_d = _body(tl, T, pim, state["dy_cmp"], ready)
    gf = [jnp.where(tl["gbg"] == k, done_d, gf[k]) for k in range(2)]
    last_done = done_d
    has_r = tl["r"] > 0
    rd_end = _bus(tl["r"], jnp.maximum(io, done_d), T, cl, True)
    io = jnp.where(has_r, rd_end, io)
    of = [jnp.where(has_r & (tl["obg"] == k), rd_end, of[k]) for k in range(2)]
    rd_last = jnp.where(has_r, rd_end, state["dy_rd"])
    post = ~T["gb_split"] & (tl["gi"] == ng - 1) & (i + 1 < n_tiles)
    io_q, gr_q = write(io, nxt["w"], nxt["gbg"], gr)
    io = jnp.where(post, io_q, io)
    gr = [jnp.where(post, gr_q[k], gr[k]) for k in range(2)]
    new.update(
        dy_io=io,
        dy_cmp=cmp_d,
        dy_last=last_done,
        dy_rd=rd_last,
        dy_gr0=gr[0],
        dy_gr1=gr[1],
        dy_gf0=gf[0],
        dy_gf1=gf[1],
        dy_of0=of[0],
        dy_of1=of[1],
    )
    # --- counts ----------------------------------------------------------------------
    new["n_act"] = state["n_act"] + tl["n_rows"]
    new["n_mac"] = state["n_mac"] + tl["n_mac"]
    new["n_wr"] = state["n_wr"] + tl["w"]
    new["n_rd"] = state["n_rd"] + tl["r"]
    new["ov"] = state["ov"] + _rows_sum(tl, T, pim) - tl["n_mac"] * T["t_mac"]
    out = {k: jnp.where(active, new[k], state[k]) for k in state}
    return out, out


def _period(T):
    """Tiles per repeat of the tile pattern used to extrapolate (fits the head window)."""
    half = WINDOW_HEAD // 2
    reps2 = 2 * T["tpr"]
    chunk2 = 2 * T["n_groups"]
    rowp = jnp.where(T["packed"], 2 * T["per"], 2)
    in_chunks = (
        (T["n_chunk"] >= 4) & (chunk2 <= half) & ((T["n_chunk"] - 1) * T["n_groups"] >= WINDOW_HEAD)
    )
    base = jnp.where((T["reps"] > 1) & (reps2 <= half), reps2, jnp.where(in_chunks, chunk2, rowp))
    base = jnp.minimum(base, half)
    return jnp.maximum(base * (half // jnp.maximum(base, 1)), 1)


def _run(T, pim, n_tiles):
    st0 = _state0()
    head_idx = jnp.arange(WINDOW_HEAD, dtype=jnp.int64)
    st_a, hist = jax.lax.scan(lambda s, i: _step(T, pim, n_tiles, s, i), st0, head_idx)
    per = _period(T)
    past = {k: hist[k][WINDOW_HEAD - 1 - per] for k in hist}
    k_skip = jnp.maximum(0, _cdiv(n_tiles - WINDOW_HEAD - WINDOW_TAIL, per))
    shifted = {k: st_a[k] + k_skip * (st_a[k] - past[k]) for k in st_a}
    start = WINDOW_HEAD + k_skip * per
    tail_idx = start + jnp.arange(WINDOW_TAIL, dtype=jnp.int64)
    st_b, _ = jax.lax.scan(lambda s, i: _step(T, pim, n_tiles, s, i), shifted, tail_idx)
    return st_b


def _counts(T):
    """Commands per channel in closed form (independent of the schedule)."""
    q, m_b, kc, kt, c, reps = T["q"], T["m_b"], T["kc"], T["kt"], T["c"], T["reps"]
    cols_last = kc - (T["n_chunk"] - 1) * kt
    # rows per chunk: long outputs visit ceil(cols / c) rows each (one when chunks are
    # narrower than a row); packed outputs: one visit per (group, row) pair it touches
    s_reg = jnp.where(kt >= c, _cdiv(kt, c), 1)
    s_last = jnp.where(kt >= c, _cdiv(cols_last, c), 1)
    long_rows = m_b * ((T["n_chunk"] - 1) * s_reg + s_last)
    per, t_o = T["per"], T["t_o"]
    n_rows_out = _cdiv(m_b, per)
    step = t_o // jnp.gcd(t_o, per)  # row boundaries b*per that fall on a group start
    inner = (n_rows_out - 1) - (n_rows_out - 1) // step
    packed_rows = T["n_chunk"] * (T["n_groups"] + inner)
    rows = jnp.where(T["packed"], packed_rows, long_rows)
    reads = jnp.where(T["keep"], 1, T["n_chunk"]) * q * m_b * T["bpe"]
    return {
        "n_mac": reps * q * kc * m_b,
        "n_wr": reps * q * kc,
        "n_rd": reps * reads,
        "n_act": reps * rows,
    }


def kernel(p: DesignPoint) -> dict[str, jnp.ndarray]:
    """Cycles and metrics of one design point's kernel (see the module docstring)."""
    pim, pol = p.hw.pim, p.policy
    T = _tiling(p)
    n_tiles = T["reps"] * T["tpr"]
    # Long heads (more tiles than the head window holds) repeat: evaluate one and scale.
    per_rep = (T["reps"] > 1) & (2 * T["tpr"] > WINDOW_HEAD // 2)
    n_run = jnp.where(per_rep, T["tpr"], n_tiles)
    scale = jnp.where(per_rep, T["reps"], 1)
    st = _run(T, pim, n_run)
    st = {k: v * scale for k, v in st.items()}
    counts = _counts(T)
    st_total = jnp.maximum(st["st_now"], st["st_cmp"] - pim.tRP)
    pp_last = _tile(T, n_tiles - 1)
    pp_total = jnp.maximum(_bus(pp_last["r"], st["pp_s"], T, pim.CL, True), st["pp_cmp"] - pim.tRP)
    dy_total = jnp.maximum(st["dy_io"], st["dy_cmp"] - pim.tRP)
    busy = jnp.where(pol.sched == 0, st_total, jnp.where(pol.sched == 1, pp_total, dy_total))

    # --- refresh -----------------------------------------------------------------------
    trfc, trefi = pim.tRFC, pim.tREFI
    window = trefi - trfc
    on = (trfc > 0) & (window > 0)
    n_stall = jnp.where(on & (busy > trefi), _cdiv(busy - trefi, jnp.maximum(window, 1)), 0)
    mean = busy.astype(jnp.float64) / jnp.maximum(n_tiles, 1)
    k1 = jnp.floor(trefi / jnp.maximum(mean, 1e-9))
    k = jnp.floor(window / jnp.maximum(mean, 1e-9))
    fits = k >= 1
    n_skip_f = jnp.ceil(jnp.maximum(n_tiles - k1, 0) / jnp.maximum(k, 1))
    n_skip = n_skip_f.astype(jnp.int64)
    skip_total = jnp.where(
        n_skip > 0,
        n_skip * trefi
        + trfc
        + jnp.round((n_tiles - k1 - (n_skip_f - 1) * k) * mean).astype(jnp.int64),
        busy,
    )
    use_skip = on & (pol.refresh == 1) & fits
    n_ref = jnp.where(use_skip, n_skip, n_stall)
    cycles = jnp.where(use_skip, jnp.maximum(skip_total, busy), busy + n_stall * trfc)

    # --- status and metrics ---------------------------------------------------------------
    db = DTYPE_BYTES[p.workload.dtype]
    bad = (
        (pim.tCK_ns <= 0)
        | (pim.data_rate <= 0)
        | (pim.col_bytes < db)
        | (pim.row_bytes < pim.col_bytes)
        | (pim.tCCD_mac < 1)
    )
    status = (
        jnp.where(bad, STATUS_CODE["bad_parameter"], 0)
        | jnp.where(T["n_gb"] < 1, STATUS_CODE["gbuf_too_small"], 0)
        | jnp.where((trfc > 0) & (window <= 0), STATUS_CODE["refresh_starved"], 0)
        | jnp.where(T["rows_used"] > pim.rows, STATUS_CODE["capacity_exceeded"], 0)
    ).astype(jnp.int64)
    cyc = jnp.maximum(cycles, 1).astype(jnp.float64)
    mac_cycles = counts["n_mac"] * T["t_mac"]
    f_mac = mac_cycles / cyc
    f_row = jnp.minimum(st["ov"] / cyc, 1.0 - f_mac)
    f_ref = (n_ref * trfc) / cyc
    f_io = jnp.maximum(1.0 - f_mac - f_row - f_ref, 0.0)
    fracs = jnp.stack([f_mac, f_row, f_io, f_ref])
    lanes = jnp.maximum(pim.lanes, 1)
    capacity = (pim.banks * lanes).astype(jnp.float64) * cyc / jnp.maximum(pim.tCCD_mac, 1)
    return {
        "cycles": cycles,
        "time_ns": cyc * pim.tCK_ns,
        "mac_util": T["useful"] / capacity,
        "frac_mac": f_mac,
        "frac_row": f_row,
        "frac_io": f_io,
        "frac_refresh": f_ref,
        "bottleneck": jnp.argmax(fracs).astype(jnp.int64),
        "n_mac": counts["n_mac"],
        "n_act": counts["n_act"],
        "n_wr_inp": counts["n_wr"],
        "n_rd_out": counts["n_rd"],
        "n_ref": n_ref,
        "tiles": n_tiles,
        "status": status,
    }
