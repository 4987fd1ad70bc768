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
runs the policy's tile recurrence (max-plus: max and +constant) in a ``lax.while_loop`` over a
plan of the tile hierarchy (reps × chunks × groups). Each level issues its first units
exactly, measures the state change over one period of its pattern (parity of the buffer
halves, packed-row phase), applies it to skip whole periods, then issues the rest. Reps jump
from inside the last head rep to the same place in a later one. ``tiles_issued`` reports how
many tiles were issued one by one; kernels with no skipped period are exact by construction.
A readout of the last output slot reads only the banks that hold outputs.

**Refresh** is applied to the schedule: ``stall`` freezes the channel tRFC after each
``tREFI - tRFC`` cycles of work (the first after tREFI); ``skip`` lets no tile cross a
refresh: it waits for the refresh to end (exact where every tile is issued; across skipped
periods each refresh loses the length-biased mean residual of a tile, ``Σd²/2Σd``).

Metrics: integer ``cycles``, ``time_ns``, ``mac_util`` (useful multiply-accumulates over the
MAC lanes' capacity), fractions of time streaming MACs, switching rows, stalled on I/O and
refreshing (they sum to 1), the ``bottleneck``, commands issued by type and ``status``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dse.point import STATUS_CODE, DesignPoint
from dse.workload.gemv import DTYPE_BYTES

__all__ = ["kernel", "loop_steps", "METRICS", "BOTTLENECKS", "PERIODS"]

BOTTLENECKS = ("mac", "row", "io", "refresh")
# periods of each level (reps, chunks, groups) issued exactly before its pattern is extrapolated
PERIODS = (1, 1, 1)
MIN_TILES = (6, 4, 2)  # ... and at least this many tiles' worth of periods

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
    "tiles_issued": ("count", "tiles issued one by one (the rest follow a measured period)"),
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
    gb_double = split & ((pol.sched == 1) | (pim.dual_port == 1))
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
    gb_split = gb_double & (n_gb >= 2 * q) & (chunking(n_gb // 2, n_ob)[0] == kt)
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
    cols_last = kc - (n_chunk - 1) * kt
    n_last = m_b - (n_groups - 1) * t_o
    return dict(
        cols_last=cols_last,
        n_last=n_last,
        a_reg=(t_o - 1) // per,
        b_reg=(t_o - 1) % per,
        a_last=(n_last - 1) // per,
        b_last=(n_last - 1) % per,
        t_o_mod=t_o % per,
        s_reg=_cdiv(kt, c),
        s_last=_cdiv(cols_last, c),
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
        bpe_last=_cdiv((m_w - (m_b - 1) * banks) * pim.out_bytes, col),
        t_io=t_io,
        tpr=n_chunk * n_groups,
        rows_used=heads * rows_head,
        useful=(heads * gq * m_w * k_w).astype(jnp.float64),
        n_gb=n_gb,
    )


def _io(T, i):
    """Tile ``i``'s transfers (outside the loop): WR-INP and RD-OUT bursts."""
    tpr = T["tpr"]
    u = i % tpr
    j, gi = u // T["n_groups"], u % T["n_groups"]
    last_chunk = j == T["n_chunk"] - 1
    cols = jnp.where(last_chunk, T["cols_last"], T["kt"])
    n_out = jnp.where(gi == T["n_groups"] - 1, T["n_last"], T["t_o"])
    w = jnp.where(gi == 0, T["q"] * cols, 0)
    r = jnp.where(last_chunk | ~T["keep"], T["q"] * _bursts(T, n_out, gi == T["n_groups"] - 1), 0)
    return dict(w=w, r=r)


def _bursts(T, n_out, last_group):
    """RD-OUT bursts of a group's ``n_out`` output slots (the last slot is partly filled)."""
    return jnp.where(last_group, (n_out - 1) * T["bpe"] + T["bpe_last"], n_out * T["bpe"])


def _at(T, x):
    """Tile at loop coordinates ``x`` (rep, chunk ``j``, group ``gi``, flat index ``i``, and
    ``r`` = the group's first output modulo the outputs per packed row), division-free.

    Also describes the next chunk's first tile (``w_next``, ``gbg_next``, ``has_next``), which
    the overlapping policies prefetch, and the previous tile's readout (``r_prev``)."""
    q, j, gi = T["q"], x["j"], x["gi"]
    last_chunk = j == T["n_chunk"] - 1
    last_group = gi == T["n_groups"] - 1
    cols = jnp.where(last_chunk, T["cols_last"], T["kt"])
    n_out = jnp.where(last_group, T["n_last"], T["t_o"])
    flat = x["rep"] * T["n_chunk"] + j
    j1 = jnp.where(j + 1 == T["n_chunk"], 0, j + 1)
    cols1 = jnp.where(j1 == T["n_chunk"] - 1, T["cols_last"], T["kt"])
    readout = last_chunk | ~T["keep"]
    prev_readout = jnp.where(gi == 0, (j == 0) | ~T["keep"], readout)
    prev_out = jnp.where(gi == 0, T["n_last"], T["t_o"])
    # rows: packed outputs [m0, m0 + n_out) with m0 ≡ r (mod per); long outputs ceil(cols/c)
    r, per = x["r"], T["per"]
    a = jnp.where(last_group, T["a_last"], T["a_reg"])  # (n_out - 1) // per
    b = jnp.where(last_group, T["b_last"], T["b_reg"])  # (n_out - 1) % per
    cross = r + b >= per
    pk_rows = a + cross + 1
    pk_first = q * cols * jnp.minimum(n_out, per - r)
    pk_last = q * cols * (r + b - jnp.where(cross, per, 0) + 1)
    s = jnp.where(last_chunk, T["s_last"], T["s_reg"])
    long_, c = T["kt"] >= T["c"], T["c"]
    return dict(
        w=jnp.where(gi == 0, q * cols, 0),
        r=jnp.where(readout, q * _bursts(T, n_out, last_group), 0),
        gbg=jnp.where(T["gb_split"], flat & 1, 0),
        obg=jnp.where(T["ob_split"], jnp.where(T["keep"], x["rep"], x["i"]) & 1, 0),
        gi=gi,
        w_next=q * cols1,
        gbg_next=jnp.where(T["gb_split"], (flat + 1) & 1, 0),
        has_next=flat + 1 < T["reps"] * T["n_chunk"],
        r_prev=jnp.where((x["i"] > 0) & prev_readout, q * _bursts(T, prev_out, gi == 0), 0),
        cols=cols,
        n_out=n_out,
        n_mac=q * cols * n_out,
        n_rows=jnp.where(T["packed"], pk_rows, jnp.where(long_, n_out * s, n_out)),
        k_first=jnp.where(T["packed"], pk_first, jnp.where(long_ & (s > 1), q * c, q * cols)),
        k_last=jnp.where(
            T["packed"],
            jnp.where(pk_rows > 1, pk_last, pk_first),
            jnp.where(long_, q * (cols - (s - 1) * c), q * cols),
        ),
        k_mid=q * cols * per,
        lr_s=jnp.where(long_, s, 1),
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
    Returns (MAC results done, next ACT allowed, unstalled row overhead)."""
    s0 = jnp.maximum(a0 + pim.tRCD_mac, ready)
    t_mac, rtp = T["t_mac"], T["rtp"]
    one_last = s0 + (tl["k_first"] - 1) * t_mac
    one_pre = jnp.maximum(one_last + rtp, a0 + pim.tRAS)
    total = _rows_sum(tl, T, pim)
    mid = total - _row_f(tl["k_first"], T, pim) - _row_f(tl["k_last"], T, pim)
    act_last = one_pre + pim.tRP + mid
    many_last = act_last + pim.tRCD_mac + (tl["k_last"] - 1) * t_mac
    many_pre = jnp.maximum(many_last + rtp, act_last + pim.tRAS)
    single = tl["n_rows"] == 1
    last = jnp.where(single, one_last, many_last)
    pre = jnp.where(single, one_pre, many_pre)
    return last + t_mac, pre + pim.tRP, total - tl["n_mac"] * t_mac


def _bus(n, start, T, cl, is_read):
    return jnp.where(n > 0, start + jnp.where(is_read, cl, 0) + n * T["t_io"], start)


# --- the three policies: state, one tile, total ---------------------------------------------
# Every step is max-plus in the state (max and +constant), so a state measured one period
# apart advances by the same per-variable amounts once the schedule is periodic.

_STATE = {
    0: ("now", "cmp", "end", "ov"),
    1: ("s", "cmp", "end", "ov"),
    2: ("io", "cmp", "last", "rd", "gr0", "gr1", "gf0", "gf1", "of0", "of1", "ov"),
}


def _static_step(T, pim, st, x):
    tl = _at(T, x)
    now = _bus(tl["w"], st["now"], T, pim.CL, False)
    done, cmp_free, ov = _body(tl, T, pim, jnp.maximum(now, st["cmp"]), now)
    now = jnp.maximum(done, cmp_free - pim.tRP)
    return {
        "now": _bus(tl["r"], now, T, pim.CL, True),
        "cmp": cmp_free,
        "end": done,
        "ov": st["ov"] + ov,
    }


def _static_total(T, pim, n_tiles, st):
    return jnp.maximum(st["now"], st["cmp"] - pim.tRP)


def _pingpong_step(T, pim, st, x):
    tl = _at(T, x)
    cl = pim.CL
    prev_r = tl["r_prev"]
    s = jnp.where((x["i"] == 0) & T["gb_split"], _bus(tl["w"], _i(0), T, cl, False), st["s"])
    bus = _bus(prev_r, s, T, cl, True)
    serial_rd = (prev_r > 0) & ((pim.blocking_readout == 1) | ~T["ob_split"])
    c0 = jnp.where(serial_rd, bus, s)
    own_w = (tl["w"] > 0) & ~T["gb_split"]
    bus = jnp.where(own_w, _bus(tl["w"], bus, T, cl, False), bus)
    c0 = jnp.where(own_w, bus, c0)
    pre_w = T["gb_split"] & (tl["gi"] == T["n_groups"] - 1) & tl["has_next"]
    bus = jnp.where(pre_w, _bus(tl["w_next"], bus, T, cl, False), bus)
    done, cmp_free, ov = _body(tl, T, pim, jnp.maximum(c0, st["cmp"]), c0)
    return {"s": jnp.maximum(done, bus), "cmp": cmp_free, "end": done, "ov": st["ov"] + ov}


def _pingpong_total(T, pim, n_tiles, st):
    last_r = _io(T, n_tiles - 1)["r"]
    return jnp.maximum(_bus(last_r, st["s"], T, pim.CL, True), st["cmp"] - pim.tRP)


def _dynamic_step(T, pim, st, x):
    tl = _at(T, x)
    cl = pim.CL
    dual = pim.dual_port == 1
    io, last_done = st["io"], st["last"]
    gr = [st["gr0"], st["gr1"]]
    gf = [st["gf0"], st["gf1"]]
    of = [st["of0"], st["of1"]]

    def write(on, io, w, grp, gr):
        """WR-INP of ``w`` bursts into GBuf group ``grp``, if ``on``."""
        start = jnp.maximum(io, jnp.where(grp == 1, gf[1], gf[0]))
        end = _bus(w, jnp.maximum(start, jnp.where(dual, 0, last_done)), T, cl, False)
        gr = [jnp.where(on & (grp == k), end, gr[k]) for k in range(2)]
        return jnp.where(on, end, io), gr

    io, gr = write(x["i"] == 0, io, tl["w"], tl["gbg"], gr)
    ng = T["n_groups"]
    nxt = (tl["w_next"], tl["gbg_next"])
    io, gr = write(T["gb_split"] & (tl["gi"] == 0) & tl["has_next"], io, *nxt, gr)
    ready = jnp.maximum(
        jnp.where(tl["gbg"] == 1, gr[1], gr[0]), jnp.where(tl["obg"] == 1, of[1], of[0])
    )
    ready = jnp.where(pim.blocking_readout == 1, jnp.maximum(ready, st["rd"]), ready)
    ready = jnp.where(dual, ready, jnp.maximum(ready, io))
    done, cmp_free, ov = _body(tl, T, pim, st["cmp"], ready)
    gf = [jnp.where(tl["gbg"] == k, done, gf[k]) for k in range(2)]
    last_done = done
    has_r = tl["r"] > 0
    rd_end = _bus(tl["r"], jnp.maximum(io, done), T, cl, True)
    io = jnp.where(has_r, rd_end, io)
    of = [jnp.where(has_r & (tl["obg"] == k), rd_end, of[k]) for k in range(2)]
    post = ~T["gb_split"] & (tl["gi"] == ng - 1) & tl["has_next"]
    io, gr = write(post, io, *nxt, gr)
    return {
        "io": io,
        "cmp": cmp_free,
        "last": last_done,
        "rd": jnp.where(has_r, rd_end, st["rd"]),
        "gr0": gr[0],
        "gr1": gr[1],
        "gf0": gf[0],
        "gf1": gf[1],
        "of0": of[0],
        "of1": of[1],
        "ov": st["ov"] + ov,
    }


def _dynamic_total(T, pim, n_tiles, st):
    return jnp.maximum(st["io"], st["cmp"] - pim.tRP)


_POLICIES = (
    (_static_step, _static_total),
    (_pingpong_step, _pingpong_total),
    (_dynamic_step, _dynamic_total),
)
_END = ("end", "end", "last")  # the state variable holding the last tile's MAC-results time


# --- which tiles are issued exactly --------------------------------------------------------


def _level(n, p, first, last, periods, unit_tiles):
    """Visit plan of one level of the tile hierarchy: ``n`` units whose pattern repeats every
    ``p`` units after ``first`` special ones and before ``last`` special ones. The first
    ``H = first + PERIODS · p`` units are issued; the state change over the last ``p`` of them
    is applied ``m`` times (skipping ``m · p`` units); the remaining ``n - H - m p`` units are
    issued. Returns (H, p, m, visits)."""
    periods = jnp.maximum(periods[0], _cdiv(periods[1], p * unit_tiles))
    head = first + periods * p
    m = jnp.maximum(0, (n - head - last) // p)
    return head, p, m, n - m * p


def _plan(T):
    """Plans for reps, chunks and groups (outermost first)."""
    ng, nc = T["n_groups"], T["n_chunk"]
    odd = lambda x: x % 2 == 1  # noqa: E731
    obi = T["ob_split"] & ~T["keep"]  # OBuf group alternates tile by tile
    p_r = jnp.where((T["gb_split"] & odd(nc)) | (T["ob_split"] & (T["keep"] | odd(T["tpr"]))), 2, 1)
    p_c = jnp.where(T["gb_split"] | (obi & odd(ng)), 2, 1)
    # packed rows: group starts cycle through per / gcd(t_o, per) row offsets, which only
    # matter when a group can straddle two rows (t_o does not divide per)
    straddle = T["packed"] & (T["per"] % T["t_o"] != 0)
    rows = jnp.where(straddle, T["per"] // jnp.gcd(T["t_o"], T["per"]), 1)
    p_g = jnp.where(obi & odd(rows), 2 * rows, rows)
    chunks = _level(nc, p_c, 1, 2, (PERIODS[1], MIN_TILES[1]), ng)
    # Reps jump from inside rep H-1, at its last chunk visit X, to the same place in rep
    # H-1+m·p (the last rep or an earlier one; see _run). The measured period starts at X
    # of rep H-1-p, so rep 0 counts as settled there only when enough tiles precede X.
    hc, pc, mc, vc = chunks
    j_x = vc - 1 + jnp.where(vc - 1 >= hc, mc * pc, 0)
    first_r = jnp.where(j_x * ng >= MIN_TILES[0], 1, 2)
    reps = _level(T["reps"], p_r, first_r, 0, (PERIODS[0], MIN_TILES[0]), T["tpr"])
    return reps, chunks, _level(ng, p_g, 1, 1, (PERIODS[2], MIN_TILES[2]), 1)


def _issued(T):
    """How many tiles the plan issues one by one."""
    (_, _, _, vr), (_, _, _, vc), (_, _, _, vg) = _plan(T)
    return vr * vc * vg


def loop_steps(p: DesignPoint) -> jnp.ndarray:
    """Trip count of the tile loop for point ``p`` (= ``tiles_issued``), without running it."""
    if p.workload.trace or p.policy.mapping != "tiles":
        return jnp.asarray(1, jnp.int64)
    return _issued(_tiling(p))


def _skip_segment(w, d, pim):
    """Refresh ``skip`` over one tile's ``d`` busy cycles; ``w`` = (wall, next refresh, count).
    A tile that would cross the next refresh waits for it to end; one longer than a refresh
    window runs through (each refresh it spans adds tRFC)."""
    wall, nxt, n = w
    trfc, trefi = pim.tRFC, pim.tREFI
    window = jnp.maximum(trefi - trfc, 1)
    cross = (wall + d > nxt) & (d <= window)
    wall = jnp.where(cross, nxt + trfc, wall) + d
    nxt, n = nxt + cross * trefi, n + cross
    k = jnp.where(wall > nxt, _cdiv(wall - nxt, window), 0)
    return wall + k * trfc, nxt + k * trefi, n + k


def _skip_span(w, dt, q2, nt, pim):
    """Refresh ``skip`` over an extrapolated span of ``nt`` tiles, ``dt`` busy cycles, whose
    lengths' squares sum to ``q2``. Tiles of one length ``d`` are exact: ``floor(s/d)`` fit
    before the next refresh, ``floor((tREFI - tRFC)/d)`` in each window after it. Unequal
    tiles are taken as ``dt·dt/q2`` tiles of their length-biased mean ``q2/dt``, so that a
    refresh loses on average the residual of the tile that would cross it."""
    wall, nxt, n = w
    trfc, trefi = pim.tRFC, pim.tREFI
    window = jnp.maximum(trefi - trfc, 1)
    dtf, ntf = dt.astype(jnp.float64), jnp.maximum(nt, 1).astype(jnp.float64)
    uniform = q2 * ntf <= dtf * dtf * (1.0 + 1e-9)
    d = jnp.maximum(jnp.where(uniform, jnp.round(dtf / ntf), q2 / jnp.maximum(dtf, 1.0)), 1.0)
    tiles = jnp.where(uniform, ntf, dtf / d)
    s0 = nxt - wall
    before = jnp.minimum(jnp.floor(s0 / d), tiles)
    per_window = jnp.maximum(jnp.floor(window / d), 1.0)
    k = jnp.maximum(jnp.ceil((tiles - before) / per_window), 1.0)
    last = jnp.round((tiles - before - (k - 1.0) * per_window) * d).astype(jnp.int64)
    ki = k.astype(jnp.int64)
    short = (wall + dt > nxt) & (d <= window)
    # tiles longer than a window run through the refreshes they span (as a stall does)
    wall_s, nxt_s, n_s = nxt + (ki - 1) * trefi + trfc + last, nxt + ki * trefi, n + ki
    gap = wall + dt - nxt
    kl = jnp.where(gap > 0, _cdiv(gap, window), 0)
    return (
        jnp.where(short, wall_s, wall + dt + kl * trfc),
        jnp.where(short, nxt_s, nxt + kl * trefi),
        jnp.where(short, n_s, n + kl),
    )


def _run(T, pim, sched, skip):
    """Issue the tiles of the plan under policy ``sched``; → (busy cycles, row overhead, and
    under refresh ``skip`` the cycles and refreshes with refresh; else busy and 0)."""
    n_tiles = T["reps"] * T["tpr"]
    (hr, pr, mr, vr), (hc, pc, mc, vc), (hg, pg, mg, vg) = _plan(T)
    nc, ng = T["n_chunk"], T["n_groups"]

    def branch(k, walk):
        step, total = _POLICIES[k]
        end = _END[k]
        st0 = {name: _i(0) for name in _STATE[k]}
        if walk:
            st0["q2"], st0["nt"] = jnp.asarray(0.0), _i(0)

        def body(carry):
            (ur, uc, ug, r), st, sv_r, sv_c, sv_g, w, e_prev = carry
            c0 = ug == 0
            pick = lambda on, a, b: jax.tree.map(lambda x, y: jnp.where(on, x, y), a, b)  # noqa: E731
            at_x = c0 & (uc == vc - 1)
            sv_r = pick(at_x & (ur == hr - 1 - pr), st, sv_r)
            sv_c = pick(c0 & (uc == hc - pc), st, sv_c)
            sv_g = pick(ug == hg - pg, st, sv_g)
            # at most one level jumps at a step (each level's head is at least one unit)
            jr = at_x & (ur == hr - 1)
            jc = c0 & (uc == hc)
            m = jnp.where(jr, mr, jnp.where(jc, mc, jnp.where(ug == hg, mg, 0)))
            sv = pick(jr, sv_r, pick(jc, sv_c, sv_g))
            prev = st
            jumped = jax.tree.map(lambda x, y: x + m * (x - y), st, sv)
            rep = ur + jnp.where((ur >= hr) | ((ur == hr - 1) & (uc == vc - 1)), mr * pr, 0)
            j = uc + jnp.where(uc >= hc, mc * pc, 0)
            gi = ug + jnp.where(ug >= hg, mg * pg, 0)
            x = {"rep": rep, "j": j, "gi": gi, "i": (rep * nc + j) * ng + gi, "r": r}
            st = step(T, pim, jumped, x)
            if walk:  # refresh skip, tile by tile (spans of skipped periods as a whole)
                span = [jumped[v] - prev[v] for v in (end, "q2", "nt")]
                w = _skip_span(w, *span, pim)
                d = st[end] - jumped[end]
                st = {**st, "q2": jumped["q2"] + d.astype(jnp.float64) ** 2, "nt": jumped["nt"] + 1}
                # the last tile's segment runs to the end of the kernel (after the loop)
                w = pick(x["i"] < n_tiles - 1, _skip_segment(w, d, pim), w)
                e_prev = jumped[end]
            # next visit; a group-level jump keeps r (m_g p_g t_o ≡ 0 mod per where it matters)
            r = r + T["t_o_mod"]
            r = jnp.where(r >= T["per"], r - T["per"], r)
            ug = ug + 1
            wrap_g = ug == vg
            uc = jnp.where(wrap_g, uc + 1, uc)
            wrap_c = wrap_g & (uc == vc)
            ur = jnp.where(wrap_c, ur + 1, ur)
            ug = jnp.where(wrap_g, 0, ug)
            uc = jnp.where(wrap_c, 0, uc)
            r = jnp.where(wrap_g, 0, r)
            return (ur, uc, ug, r), st, sv_r, sv_c, sv_g, w, e_prev

        z = _i(0)
        w0 = (z, jnp.asarray(pim.tREFI, jnp.int64), z)
        carry = ((z, z, z, z), st0, st0, st0, st0, w0, z)
        out = jax.lax.while_loop(lambda c: c[0][0] < vr, body, carry)
        st, w, e_prev = out[1], out[5], out[6]
        busy = total(T, pim, n_tiles, st)
        if not walk:
            return busy, st["ov"], busy, z
        wall, _, n = _skip_segment(w, busy - e_prev, pim)  # the last tile runs to the end
        return busy, st["ov"], wall, n

    branches = [lambda k=k, w=w: branch(k, w) for w in (False, True) for k in range(3)]
    return jax.lax.switch(jnp.clip(sched, 0, 2) + jnp.where(skip, 3, 0), branches)


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
    reads = jnp.where(T["keep"], 1, T["n_chunk"]) * q * _bursts(T, m_b, True)
    return {
        "n_mac": reps * q * kc * m_b,
        "n_wr": reps * q * kc,
        "n_rd": reps * reads,
        "n_act": reps * rows,
    }


def _command_metrics(p: DesignPoint, out: dict, n_chan: int, n_units) -> dict[str, jnp.ndarray]:
    """Metrics of a command-level evaluation (dse.models.pim_trace): ``out`` the engine's
    result over ``n_chan`` channels, ``n_units`` the tiles (requests) it stands for."""
    from dse.hw.pim_commands import CMD

    pim = p.hw.pim
    cycles = out["cycles"]
    cyc = jnp.maximum(cycles, 1).astype(jnp.float64)
    busy = out["busy"].sum(axis=0).astype(jnp.float64) / (cyc * n_chan)
    f_mac, f_row = busy[0], busy[1]
    f_io = jnp.maximum(1.0 - f_mac - f_row, 0.0)
    n = out["ncmd"]
    n_mac = n[CMD["MAC16"]] + n[CMD["MAC"]]
    macs = n[CMD["MAC16"]] + n[CMD["MAC"]] / jnp.maximum(pim.banks, 1)
    slots = cyc * n_chan / jnp.maximum(pim.tCCD_mac, 1)
    status = jnp.where(
        (pim.tCK_ns <= 0) | (pim.tCCD_mac < 1), STATUS_CODE["bad_parameter"], 0
    ).astype(jnp.int64)
    units = jnp.asarray(n_units, jnp.int64)
    return {
        "cycles": cycles,
        "time_ns": cyc * pim.tCK_ns,
        "mac_util": jnp.minimum(macs / slots, 1.0),
        "frac_mac": f_mac,
        "frac_row": f_row,
        "frac_io": f_io,
        "frac_refresh": jnp.asarray(0.0),
        "bottleneck": jnp.argmax(jnp.stack([f_mac, f_row, f_io, 0.0 * f_io])).astype(jnp.int64),
        "n_mac": n_mac,
        "n_act": out["n_act"],
        "n_wr_inp": n[CMD["WRGB"]],
        "n_rd_out": n[CMD["RDMAC16"]] + n[CMD["RDAF16"]],
        "n_ref": jnp.asarray(0, jnp.int64),
        "tiles": units,
        "tiles_issued": units,
        "status": status,
    }


def _trace_kernel(p: DesignPoint) -> dict[str, jnp.ndarray]:
    """``workload.trace``: the user's command trace, command by command (dse.models.pim_trace)."""
    from dse.models.pim_trace import run_trace, trace_arrays

    ta = trace_arrays(p.workload.trace)
    n_chan = len(ta.chan_ids)
    return _command_metrics(p, run_trace(ta.as_jax(), n_chan, p.hw.pim), n_chan, ta.n)


def _cent_kernel(p: DesignPoint) -> dict[str, jnp.ndarray]:
    """``policy.mapping=cent``: CENT's request streams on the in-order AiM controller
    (dse.models.pim_program); one channel, the busiest, is timed."""
    from dse.models.pim_program import cent_kernel

    out = cent_kernel(p, p.policy.gemv_order == 1)
    return _command_metrics(p, out, 1, out["requests"])


def _attacc_kernel(p: DesignPoint) -> dict[str, jnp.ndarray]:
    """``policy.mapping=attacc``: one decode-attention layer (score, softmax, context of
    ``workload.heads`` heads per HBM3 stack of 16 channels at context ``L``, head dim ``d``) as
    AttAcc's current trace generator maps it, on the point's channel timing and MAC placement
    (dse.models.pim_attacc). ``workload.kind`` and ``hw.pim.channels`` do not apply (the stack
    is AttAcc's); the generator's ``--maxlen`` is ``workload.max_context`` (at least ``L``,
    at most 32K). ``frac_mac`` is the MAC issue time of the busiest channel; the rest (rows,
    data moves, softmax, refresh) is ``frac_io``."""
    from dse.models.pim_attacc import MAX_L, N_CHANNEL, Timing, attention_layer

    pim, wl = p.hw.pim, p.workload
    i64 = jnp.int64
    t = Timing(
        *(jnp.asarray(getattr(pim, "tRCD_mac" if f == "tRCD" else f), i64) for f in Timing._fields)
    )
    L = jnp.maximum(wl.L, 1)
    max_len = jnp.clip(wl.max_context, L, MAX_L)
    db = DTYPE_BYTES[wl.dtype]
    out = attention_layer(
        L, jnp.maximum(wl.heads, 1), jnp.maximum(wl.d, 1), db, pim.mac_placement, 0, t,
        pre_lookahead=1, generator=0, max_len=max_len, seg_max=1024,
    )  # fmt: skip
    cycles = out["cycle"]
    cyc = jnp.maximum(cycles, 1).astype(jnp.float64)
    mac_per_ch = out["mac"].astype(jnp.float64) / N_CHANNEL
    f_mac = jnp.minimum(mac_per_ch * jnp.maximum(pim.tCCD_mac, 1) / cyc, 1.0)
    status = jnp.where(out["status"] != 0, STATUS_CODE["capacity_exceeded"], 0)
    status = status | jnp.where(
        (pim.tCK_ns <= 0) | (pim.tCCD_mac < 1), STATUS_CODE["bad_parameter"], 0
    )
    z = jnp.asarray(0, i64)
    return {
        "cycles": cycles,
        "time_ns": cyc * pim.tCK_ns,
        "mac_util": f_mac,
        "frac_mac": f_mac,
        "frac_row": jnp.asarray(0.0),
        "frac_io": 1.0 - f_mac,
        "frac_refresh": jnp.asarray(0.0),
        "bottleneck": jnp.where(f_mac >= 0.5, 0, 2).astype(i64),
        "n_mac": out["mac"],
        "n_act": z,
        "n_wr_inp": out["wrgb"] + out["mvgb"],
        "n_rd_out": out["mvsb"],
        "n_ref": z,
        "tiles": jnp.asarray(1, i64),
        "tiles_issued": jnp.asarray(1, i64),
        "status": status.astype(i64),
    }


def _neupims_kernel(p: DesignPoint) -> dict[str, jnp.ndarray]:
    """``policy.mapping=neupims``: one request's score or context with all its KV heads on one
    HBM2-PIM channel, as NeuPIMs builds the PIM programs (dse.models.pim_neupims), timed by
    NewtonSim's rules (dse.models.pim_newton) in dual (``policy.dual_rb`` 1) or single row-buffer
    mode. NeuPIMs runs FC layers on its NPU: a GEMV is ``unmapped``. Only cycles and time are
    known; the time fractions are 0 and ``frac_io`` carries the whole."""
    from dse.models.pim_neupims import kernel_cycles

    pim = p.hw.pim
    cyc_i = kernel_cycles(p)
    ok = cyc_i >= 0
    cycles = jnp.where(ok, cyc_i, 0).astype(jnp.int64)
    cyc = jnp.maximum(cycles, 1).astype(jnp.float64)
    status = jnp.where(ok, 0, STATUS_CODE["unmapped"]) | jnp.where(
        (pim.tCK_ns <= 0) | (pim.tCCD_mac < 1), STATUS_CODE["bad_parameter"], 0
    )
    z = jnp.asarray(0, jnp.int64)
    zf = jnp.asarray(0.0)
    return {
        "cycles": cycles,
        "time_ns": cyc * pim.tCK_ns,
        "mac_util": zf,
        "frac_mac": zf,
        "frac_row": zf,
        "frac_io": jnp.asarray(1.0),
        "frac_refresh": zf,
        "bottleneck": jnp.asarray(2, jnp.int64),
        "n_mac": z,
        "n_act": z,
        "n_wr_inp": z,
        "n_rd_out": z,
        "n_ref": z,
        "tiles": jnp.asarray(1, jnp.int64),
        "tiles_issued": jnp.asarray(1, jnp.int64),
        "status": status.astype(jnp.int64),
    }


def kernel(p: DesignPoint) -> dict[str, jnp.ndarray]:
    """Cycles and metrics of one design point's kernel (see the module docstring)."""
    if p.workload.trace:
        return _trace_kernel(p)
    if p.policy.mapping == "cent":
        return _cent_kernel(p)
    if p.policy.mapping == "attacc":
        return _attacc_kernel(p)
    if p.policy.mapping == "neupims":
        return _neupims_kernel(p)
    pim, pol = p.hw.pim, p.policy
    T = _tiling(p)
    n_tiles = T["reps"] * T["tpr"]
    trfc, trefi = pim.tRFC, pim.tREFI
    window = trefi - trfc
    on = (trfc > 0) & (window > 0)
    use_skip = on & (pol.refresh == 1)
    busy, ov, skip_cycles, n_skip = _run(T, pim, pol.sched, use_skip)
    counts = _counts(T)

    # --- refresh: stall in closed form; skip from the tile walk in _run --------------------
    n_stall = jnp.where(on & (busy > trefi), _cdiv(busy - trefi, jnp.maximum(window, 1)), 0)
    n_ref = jnp.where(use_skip, n_skip, n_stall)
    cycles = jnp.where(use_skip, skip_cycles, busy + n_stall * trfc)

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
    f_row = jnp.minimum(ov / cyc, 1.0 - f_mac)
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
        "tiles_issued": _issued(T),
        "status": status,
    }
