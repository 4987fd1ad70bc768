"""AttAcc HBM3-PIM attention layer: an analytical model of AttAcc's Ramulator-2 runs.

AttAcc (scale-snu/attacc_simulator) simulates one attention layer (score ``q Kᵀ``, softmax,
context ``s V``) for ``nhead`` heads on one HBM3 stack of 16 channels at context length
``L`` with a patched Ramulator 2, on command streams written by its trace generators
(``pim_ramulator_src/trace_gen``; rebuilt byte for byte by
:mod:`dse.validation.traces.attacc`) for three PIM placements (``BA`` per bank, ``BG`` per
bank group, ``BUFFER`` on the buffer die) and two timing presets (``HBM3_5.2Gbps``
power-constrained, ``HBM3_5.2Gbps_NPC`` without the constraint). :func:`attention_layer`
reproduces one run — the total ``cycle`` (of ``tCK`` = 0.769 ns, from the presets) and the
request counts ``mac, softmax, mvgb, mvsb, wrgb`` — as a pure JAX function of the row's
integers and the timing preset; :func:`evaluate` runs it over a table with one
``jax.jit(jax.vmap(...))`` call.

Two references: our corpus ``dse/validation/data/corpus_attacc.csv`` (the simulator built
from AttAcc's current sources, docs/oracle/attacc.md; :func:`evaluate_corpus_rows`) and
the shipped ``shared/reference/validation/attacc_hbm3pim_ramulator_cache.csv`` (an older
generator and two earlier builds; :func:`compare`, ``python -m dse.validation.attacc``).
``generator`` picks the trace generator (:data:`GENERATORS`): ``"current"`` (AttAcc HEAD)
or ``"cache"`` (the one that wrote the shipped cache); they differ only in an odd last head
iteration. ``max_len`` is the generator's ``--maxlen`` (default 4096): it sets where
consecutive heads' K/V regions start; ``L`` may exceed it (up to :data:`MAX_L` = 32K).

**Mapping** (per channel; ``lanes = col_bytes / dbyte``). Heads go one per channel per
iteration: ``itr = ceil(nhead / 16)`` iterations, the last with ``nhead - 16 (itr - 1)``
valid channels. A head's tokens are split over ``P`` partitions (BA/BG: pseudo-channel x
rank x bank group = 16; BUFFER: pseudo-channel = 2), ``N = ceil(L / P)`` each, and
``dhead`` over ``Dk`` MAC columns (BA: the 4 banks of a bank group share a token,
``Dk = ceil(dhead / (4 lanes))``; BG/BUFFER ``Dk = ceil(dhead / lanes)``). Score and context
each take ``M = N Dk`` MAC commands walking consecutive columns, ``R = row_bytes /
col_bytes`` per row (BG rotates 4 banks and BUFFER 32 banks every ``R`` columns). Score is
cut into ``G = ceil(N / S)`` groups, ``S = col_bytes / out_bytes`` tokens per
softmax-buffer move; context into ``Dk`` blocks of ``N``. Per head and channel: WRGB
(query) ``4 Dk`` (BA) or ``Dk``; MVSB per score group 8 (rank x bank group; BUFFER 1) and
per context block 8 (BA, rank x bank), 2 (BG) or 1 (BUFFER); MVGB ``8 C`` (BA/BG,
``C = ceil(L / (16 lanes))``) or ``ceil(L / (2 lanes))`` (BUFFER).

**Stream.** Iterations are pipelined two at a time: [query of head 0, BAR], head 0's score
groups each followed by the previous group's MVSBs and a share of head 1's WRGBs, head 1's
score groups with the softmax of head 0 and, in the second half, head 0's MVGBs, head 0's
context blocks with head 1's softmax and MVGBs in the second half, and head 0's context
blocks once more (the trace issues head 0's list for head 1's context). Chunked lists are
cut into equal shares, the remainder dropped. An odd last iteration runs alone: its score
groups, then [last MVSBs, softmax, all MVGBs], then its context blocks (cache generator:
softmax and all MVGBs follow every score group and the last one again). One priming MAC
per channel precedes the first pair. The request counts are closed forms of this stream.

**Controller** (per channel, channel 0 carries the most work and sets the time). One
in-order PIM queue; the scheduler sees ``REQ_WINDOW = 33`` queued requests and issues one
command per cycle, the first ready one in queue order; beyond a barrier it may only issue
row commands that open or close a row (``pre_lookahead = 1``, the released scheduler; the
shipped cache's first build held BA's all-bank precharge behind a barrier,
``pre_lookahead = 0``). A *segment* (between barriers)
with ``m`` MACs at columns ``base .. base + m - 1`` lasts::

    wait + (m - 1) t_mac + r_in (tRTP + tRP + tRCD - t_mac) + tau

``t_mac`` = ``tCCD_mac`` (nCCDAB / nCCDSB) or ``max(BL, tCCD_S)`` (BUFFER, per-bank MACs
alternating ranks and bank groups); ``r_in`` the rows opened inside it (BA only: bank-group
and per-bank MACs open their next bank's row ahead); ``wait`` = ``max(g, tau' + 1) + tRP +
tRCD`` after the previous segment's last MAC when BA opens a new row (``g = max(tRTP, tRAS -
tRCD - (m_row - 1) t_mac)``) and ``max(t_mac, tau' + 1)`` otherwise (``tau'`` the previous
tail); ``tau`` = the tail of data commands after the last MAC. Data commands (WRGB, MVSB,
MVGB, softmax) share the command slot, are spaced ``max(BL, tCCD_S)`` when they alternate
ranks or bank groups and ``tCCD_L`` within one bank group, become visible when fewer than
``REQ_WINDOW`` entries precede them, and fill the cycles between MACs. Those addressed to a
bank that a queued MAC hits (the scheduler keeps a not-ready candidate rather than issue a
non-hit request to a bank with queued row hits) wait: on BA the first MVSB and the first
WRGB/MVGB run of a list (pCH 0, rank 0, bank group 0, bank 0) until the last MAC or a row
switch, ``(tRTP + tRP) / tCCD_L`` of them per switch; on BUFFER every data command (all go
to that bank, and one of any 32 consecutive per-bank MACs hits it) but the first.

BG and BUFFER open a bank's next row while MACs run on the other banks; only where a pass
starts on a new row of bank 0 does the previous pass's last MAC there (``d`` MACs before its
end) delay the first MAC: ``max(tRTP, tRAS - tRCD - span) + tRP + tRCD - d t_mac`` after the
previous last MAC. A channel's MVGB list (BA/BG) is 8 runs of ``C`` commands to one rank /
bank group: two runs in the window alternate at ``max(BL, tCCD_S)``, one run alone goes at
``tCCD_L``; run ``k + 1`` has ``x = min(REQ_WINDOW - 1, C - x_k)`` commands issued before run
``k`` ends and run ``k`` lasts ``tCCD_L (C - x_k)`` — long lists (``C > 32``, ``L > 4096``)
run slower than one per ``max(BL, tCCD_S)``.

**Refresh.** Every ``tREFI`` an all-bank refresh blocks the queue: the precharge waits
``tRTP`` after an all-bank MAC (1 cycle otherwise, and on average half a MAC spacing for
the request to land), two REFs follow, the row reopens ``tRFC`` after the first and MACs
resume ``tRCD`` later: ``c = t_pre + 1 + tRFC + tRCD - t_mac`` per refresh (less when it
lands in a data-only segment), ``n = floor((T0 - c - 1) / (tREFI - c))`` refreshes for a
refresh-free time ``T0``.
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from dse.paths import CONF_DIR, ROOT
from dse.process import command

__all__ = [
    "CACHE_PATH",
    "COUNTS",
    "PLACEMENTS",
    "SECOND_BUILD_ROW",
    "Timing",
    "attention_layer",
    "compare",
    "evaluate",
    "evaluate_corpus_rows",
    "load_cache",
    "load_timing",
    "main",
    "mechanism_cycles",
]

#: placement names, indexed by the ``placement`` code of :func:`attention_layer`
PLACEMENTS = ("BA", "BG", "BUFFER")
#: command-count columns of the cache
COUNTS = ("mac", "softmax", "mvgb", "mvsb", "wrgb")

# Organisation of one stack: Ramulator org preset HBM3_8Gb_2R, 16 channels (AttAcc's yaml).
N_CHANNEL = 16  # legacy channels: heads mapped per iteration
N_PCH = 2  # pseudo-channels per channel
N_RANK = 2  # ranks per pseudo-channel
N_BG = 4  # bank groups per rank
N_BANK = 4  # banks per bank group
# Ramulator's ReqBuffer accepts a request while size <= max_size (32): the scheduler sees 33.
REQ_WINDOW = 33
# Trace generator default --maxlen (ramulator_wrapper.py does not pass it). It sizes each
# head's K/V partition, hence where consecutive heads' rows start (heads overlap in rows when
# L exceeds it; the generator allows that).
DEFAULT_MAX_LEN = 4096
#: longest supported context: score groups <= ceil(ceil(MAX_L / N_PCH) / 16) = 1024 (BUFFER)
MAX_L = 32768
# Static sizes of the segment axes: score groups <= SEG_MAX (the default; :func:`evaluate`
# sizes the axis to its batch, a power of two from 128 to 1024); context blocks
# Dk = ceil(dhead / lanes) <= DK_MAX.
SEG_MAX = 128
DK_MAX = 32
#: trace generators, indexed by the ``generator`` code of :func:`attention_layer`: AttAcc's
#: current generator (an odd last head iteration runs one softmax + MVGB block after its
#: score pass) and the older one that produced the shipped cache (that block after every
#: score group)
GENERATORS = ("current", "cache")
#: First cache row produced by a second Ramulator build, in which the all-bank precharge is
#: issued ahead of a barrier (``pre_lookahead = 1``). The rows from here on (BA with 159,
#: 396, 584 and 116 heads, a repeat of the 2049 BA rows with 130 heads with other cycles, and
#: the 3-head rows) agree with that scheduler rule; the rows before agree with the other.
SECOND_BUILD_ROW = 58152

_CONF = CONF_DIR / "pim"
#: default cache location: ``$DSE_REFERENCE`` (default ``../shared/reference`` beside the
#: checkout) ``/validation/...``
CACHE_PATH = (
    Path(os.environ.get("DSE_REFERENCE") or ROOT.parent / "shared" / "reference")
    / "validation/attacc_hbm3pim_ramulator_cache.csv"
)


class Timing(NamedTuple):
    """HBM3-PIM timing in cycles of ``tCK`` and the column/row geometry in bytes.

    Leaves may carry a leading axis of 2, ``[no power constraint, power-constrained]``
    (:func:`load_timing`); :func:`attention_layer` then picks its ``power_constraint``.
    ``tRC`` (Ramulator's nRC = 63) is not a leaf: ACT → ACT on one bank is already
    ``tRAS + tRP`` = 64 through ACT → PRE → ACT, so nRC never binds.
    """

    tRCD: jnp.ndarray  # ACT → MAC (preset tRCD_mac; nRCDRD)
    tRP: jnp.ndarray  # PRE → ACT
    tRAS: jnp.ndarray  # ACT → PRE
    tRTP: jnp.ndarray  # MAC → PRE (nRTPL)
    tCCD_mac: jnp.ndarray  # MAC → MAC, all-bank and same-bank (nCCDAB = nCCDSB)
    tCCD_S: jnp.ndarray  # data-path command → next on another bank group (nCCDS)
    tCCD_L: jnp.ndarray  # data-path command → next on the same bank group (nCCDL)
    BL: jnp.ndarray  # data-bus occupancy of one transfer (nBL); per-bank MAC spacing
    tRFC: jnp.ndarray  # all-bank REF → ACT
    tREFI: jnp.ndarray  # refresh interval
    row_bytes: jnp.ndarray
    col_bytes: jnp.ndarray
    out_bytes: jnp.ndarray  # one softmax-buffer element


def load_timing(power_constraint: bool | None = None) -> Timing:
    """The AttAcc presets ``conf/pim/hbm3_attacc.yaml`` (power-constrained) and
    ``conf/pim/hbm3_attacc_npc.yaml`` as int64 leaves (``OmegaConf.load``).

    ``power_constraint=None``: every leaf has shape ``(2,)``, index 0 the NPC preset and
    index 1 the power-constrained one.
    """
    presets = {}
    for pc, name in ((False, "hbm3_attacc_npc.yaml"), (True, "hbm3_attacc.yaml")):
        path = _CONF / name
        if not path.is_file():
            raise FileNotFoundError(f"AttAcc timing preset not found: {path}")
        cfg = OmegaConf.load(path)
        presets[pc] = {f: int(cfg["tRCD_mac" if f == "tRCD" else f]) for f in Timing._fields}
    if power_constraint is None:
        leaves = {f: [presets[False][f], presets[True][f]] for f in Timing._fields}
    else:
        leaves = presets[bool(power_constraint)]
    return Timing(**{f: jnp.asarray(v, jnp.int64) for f, v in leaves.items()})


def _cdiv(a, b):
    return -(-a // b)


def _multiples(lo, hi, r):
    """Number of multiples of ``r`` in the integer range ``[lo, hi]`` (0 when empty)."""
    return jnp.maximum(hi // r - _cdiv(lo, r) + 1, 0)


class _Geo(NamedTuple):
    """Mapping quantities of one row (int64 scalars; see the module docstring)."""

    is_ba: jnp.ndarray
    is_buf: jnp.ndarray
    dk: jnp.ndarray  # MAC columns per token (context blocks)
    n_tok: jnp.ndarray  # tokens per partition: MACs per column of the score pass
    n_grp: jnp.ndarray  # score groups
    seg_mac: jnp.ndarray  # MACs per score group
    m_ph: jnp.ndarray  # MACs per pass (score or context)
    r_row: jnp.ndarray  # MAC columns per row
    rows_part: jnp.ndarray  # rows between consecutive heads' K (or V) regions
    c_gb: jnp.ndarray  # MVGBs per GEMV buffer (one rank/bank-group run)
    n_mvgb: jnp.ndarray  # MVGB per head
    n_w: jnp.ndarray  # WRGB per head
    n_s: jnp.ndarray  # MVSB per score group
    n_c: jnp.ndarray  # MVSB per context block
    itr: jnp.ndarray
    pairs: jnp.ndarray
    odd: jnp.ndarray
    v_last: jnp.ndarray  # valid channels of the last iteration
    half_g: jnp.ndarray  # score groups carrying head 0's MVGBs
    half_d: jnp.ndarray  # context blocks carrying head 1's MVGBs


def _geometry(L, nhead, dhead, dbyte, placement, t: Timing, max_len) -> _Geo:
    is_ba, is_bg, is_buf = placement == 0, placement == 1, placement == 2
    lanes = t.col_bytes // dbyte  # trace gen n_mac = 32 / dbyte
    dk = jnp.where(is_ba, _cdiv(dhead, N_BANK * lanes), _cdiv(dhead, lanes))
    n_tok = _cdiv(L, jnp.where(is_buf, N_PCH, N_PCH * N_RANK * N_BG))
    n_grp = _cdiv(n_tok, t.col_bytes // t.out_bytes)
    c_gb = jnp.where(is_buf, _cdiv(L, N_PCH * lanes), _cdiv(L, N_PCH * N_RANK * N_BG * lanes))
    itr = _cdiv(nhead, N_CHANNEL)
    return _Geo(
        is_ba=is_ba,
        is_buf=is_buf,
        dk=dk,
        n_tok=n_tok,
        n_grp=n_grp,
        seg_mac=(t.col_bytes // t.out_bytes) * dk,
        m_ph=n_tok * dk,
        r_row=t.row_bytes // t.col_bytes,
        rows_part=_cdiv(max_len * dhead, N_PCH * N_RANK * N_BG * N_BANK) // t.row_bytes,
        c_gb=c_gb,
        n_mvgb=jnp.where(is_buf, c_gb, N_RANK * N_BG * c_gb),
        n_w=jnp.where(is_ba, N_BANK * dk, dk),
        n_s=jnp.where(is_buf, 1, N_RANK * N_BG),
        n_c=jnp.where(is_ba, N_RANK * N_BANK, jnp.where(is_bg, N_RANK, 1)),
        itr=itr,
        pairs=itr // 2,
        odd=itr % 2,
        v_last=nhead - N_CHANNEL * (itr - 1),
        half_g=_cdiv(n_grp, 2),
        half_d=_cdiv(dk, 2),
    )


def _w_lines(g: _Geo, v):
    """Head 1's WRGB lines (``v`` channels) cut into ``n_grp`` equal chunks."""
    return (g.n_w * v // g.n_grp) * g.n_grp


def _g0_lines(g: _Geo, v):
    """Head 0's MVGB lines cut into ``half_g`` equal chunks."""
    return (g.n_mvgb * v // g.half_g) * g.half_g


def _g1_lines(g: _Geo, v):
    """Head 1's MVGB lines cut into ``half_d`` equal chunks."""
    return (g.n_mvgb * v // g.half_d) * g.half_d


def _counts(g: _Geo, cache) -> dict:
    """Requests sent to all channels (the cache's ``mac, softmax, mvgb, mvsb, wrgb``)."""
    F = N_CHANNEL
    v1_last = jnp.where(g.odd == 1, F, g.v_last)  # head 1 of the last pair

    def pair(v1):
        return (
            3 * g.m_ph * F + g.m_ph * v1,  # score h0, h1; context twice with h0's list
            F + v1,
            _g0_lines(g, F) + _g1_lines(g, v1),
            (F + v1) * g.n_grp * g.n_s + 2 * F * g.dk * g.n_c,
            g.n_w * F + _w_lines(g, v1),
        )

    v = g.v_last
    # softmax and MVGBs once after the score pass (cache generator: after every score group
    # and once more)
    n_sfm = jnp.where(cache, g.n_grp + 1, 1)
    alone = (
        2 * g.m_ph * v,
        n_sfm * v,
        n_sfm * g.n_mvgb * v,
        (g.n_grp * g.n_s + g.dk * g.n_c) * v,
        g.n_w * v,
    )
    has_pair = g.pairs > 0
    n_full = jnp.maximum(g.pairs - 1, 0)
    out = {
        k: n_full * a + has_pair * b + g.odd * c
        for k, a, b, c in zip(COUNTS, pair(F), pair(v1_last), alone, strict=True)
    }
    out["mac"] = out["mac"] + has_pair * F  # priming MAC before the first pair
    return out


def _cycles(t: Timing, g: _Geo, pre_lookahead, cache, seg_max: int) -> jnp.ndarray:
    """Channel 0's busy cycles: the segments of the stream summed in closed form, then
    refresh (module docstring). Each phase (one score or context pass) is evaluated on a
    static segment axis; nothing is iterated."""
    i64 = jnp.int64
    F = N_CHANNEL
    is_ba, is_buf, r_row = g.is_ba, g.is_buf, g.r_row
    t_mac = jnp.where(is_buf, jnp.maximum(t.BL, t.tCCD_S), t.tCCD_mac)
    p_alt = jnp.maximum(t.BL, t.tCCD_S)  # data commands alternating ranks / bank groups
    p_same = t.tCCD_L  # data commands to one bank group
    p_gb = jnp.where(is_buf, p_same, p_alt)  # MVGB: one bank group on BUFFER
    # A channel's MVGB list (BA/BG) is n_run = 8 runs of C = c_gb commands, each run to one
    # rank / bank group: two runs in the window alternate at p_alt, one run alone goes at
    # tCCD_L. Run k + 1 has x_{k+1} = min(REQ_WINDOW - 1, C - x_k) commands issued before
    # run k ends (x_1 = 0) and run k lasts p_same (C - x_k); the x alternate between
    # a = min(32, C) and min(a, C - a). span_mv: command before the list → its last MVGB.
    n_run = N_RANK * N_BG
    x_a = jnp.minimum(REQ_WINDOW - 1, g.c_gb)
    sum_x = _cdiv(n_run - 1, 2) * x_a + (n_run - 1) // 2 * jnp.minimum(x_a, g.c_gb - x_a)
    d_runs = jnp.maximum(p_alt * (g.n_mvgb - 1), p_same * (g.n_mvgb - sum_x) - p_same)
    span_mv = p_gb + jnp.where(is_buf, (g.n_mvgb - 1) * p_same, d_runs)
    t_open = t.tRP + t.tRCD  # PRE → ACT → first MAC
    sw = jnp.where(is_ba, t.tRTP + t_open - t_mac, 0)  # a row switch between two MACs
    pre_waits = is_ba & (pre_lookahead == 0)  # the all-bank PRE waits for the barrier
    n_rel_win = (t.tRTP + t.tRP) // p_same  # waiting commands issued per row switch

    def g_pre(m_row):
        """Last MAC → PRE of a row that received ``m_row`` MACs (tRTP, tRAS)."""
        return jnp.maximum(t.tRTP, t.tRAS - t.tRCD - (m_row - 1) * t_mac)

    def block(*parts):
        """Data-only segment of (count, spacing) runs: previous last issue → its last."""
        total = sum(n * p for n, p in parts)
        p_first = parts[-1][1]
        for n, p in parts[::-1]:
            p_first = jnp.where(n > 0, p, p_first)
        return 1 + total - p_first

    def phase(
        m,
        base,
        open_first,
        a_n,
        sfm=0,
        b_n=0,
        b_p=0,
        b_blk=0,
        pre_block=None,
        open_after=None,
        b_pd=1,
    ):
        """One pass as consecutive segments on a static axis (absent where ``m == 0``).

        Segment ``j`` holds ``m[j]`` MACs at columns ``base[j] ..`` and trailing data:
        ``a_n`` MVSBs, ``sfm`` softmax, ``b_n`` chunk commands (WRGB/MVGB, spaced ``b_p / b_pd``)
        of which ``b_blk`` address the MAC bank. ``open_first``: previous last issue →
        first MAC; ``pre_block``: a data-only segment before every later segment (odd
        iteration). Returns (previous last issue → last issue, tail after the last MAC,
        MACs in the last row)."""
        jj = jnp.arange(m.shape[0], dtype=i64)
        on = m > 0
        last = base + m - 1
        chain = (m - 1) * t_mac + _multiples(base + 1, last, r_row) * sw
        new_row = is_ba & (base % r_row == 0)
        gp = g_pre(jnp.roll(last, 1) % r_row + 1)
        if pre_block is None:
            wait = jnp.where(new_row, gp + t_open, t_mac)
        else:
            wait = pre_block + jnp.where(new_row, open_after, 1)
        wait = jnp.where(jj == 0, open_first, wait)

        def avail(k):  # cycles between the k-th MAC (data first visible) and the last
            late = (m - k) * t_mac + _multiples(base + jnp.maximum(k, 0), last, r_row) * sw
            return jnp.where(k > 0, late, wait - 1 + chain)

        k_a = m + 1 - REQ_WINDOW  # MACs issued before the first trailing command shows
        # Commands to the bank the queued MACs hit wait behind them: on BA the first MVSB
        # and the first WRGB/MVGB run (pCH 0, rank 0, bank group 0, bank 0); on BUFFER all
        # data commands (one of any 32 queued per-bank MACs hits that bank).
        blk_a = jnp.where(is_buf, a_n + sfm, (is_ba & (a_n > 0)).astype(i64))
        blk_b = jnp.where(is_ba, b_blk, jnp.where(is_buf, b_n, 0))
        # BA: between a row's last MAC and the next ACT nothing queued hits, so visible
        # waiting commands go at the segment's own row opening and at later switches.
        # BUFFER: after the segment's last bank-0 MAC the next one (beyond the barrier) is
        # outside the window until one waiting command has gone.
        n_win = jnp.where(
            k_a > 0,
            _multiples(base + k_a, last, r_row),
            _multiples(base + 1, last, r_row) + new_row,
        )
        n_rel = jnp.where(is_buf, 1, jnp.where(is_ba, n_win, 0) * n_rel_win)
        n_blk = jnp.maximum(0, blk_a + blk_b - n_rel)
        tau_blk = jnp.where(n_blk > 0, 1 + (n_blk - 1) * p_same, 0)
        tau_a = jnp.maximum(a_n + sfm - blk_a, 0) * p_alt - avail(k_a)
        tau_b = (b_n - blk_b) * b_p // b_pd - avail(k_a + blk_b)  # behind the waiting run
        tau = jnp.maximum(jnp.maximum(tau_a, tau_b), jnp.maximum(tau_blk, 0))
        tau = jnp.where(on, tau, 0)
        tau_prev = jnp.roll(tau, 1)
        if pre_block is None:
            gap = jnp.where(
                new_row, jnp.maximum(gp, tau_prev + 1) + t_open, jnp.maximum(t_mac, tau_prev + 1)
            )
        else:
            gap = tau_prev + pre_block + jnp.where(new_row, open_after, 1)
        gap = jnp.where((jj >= 1) & on, gap, 0)
        is_last = jj == jnp.sum(on) - 1
        tau_last = jnp.sum(jnp.where(is_last, tau, 0))
        m_row = jnp.sum(jnp.where(is_last, last % r_row + 1, 0))
        dur = open_first + jnp.sum(jnp.where(on, chain, 0)) + jnp.sum(gap) + tau_last
        return dur, tau_last, m_row

    # BG and BUFFER open the next row of a bank while MACs run on the others; only where a
    # pass starts (on bank 0: BG's bank 0 of every bank group, BUFFER's bank 0 of rank 0 /
    # bank group 0) does the previous pass's last use of that bank delay the first MAC:
    # d_b MACs after it, its last row took run_b MACs spanning span_b cycles.
    m_last = g.m_ph - 1
    d_b = jnp.where(
        is_buf,
        m_last % (N_RANK * N_BG * N_BANK),
        jnp.maximum(m_last % (N_BANK * r_row) - (r_row - 1), 0),
    )
    span_b = jnp.where(
        is_buf,
        (m_last % (N_RANK * N_BG * N_BANK * r_row))
        // (N_RANK * N_BG * N_BANK)
        * (N_RANK * N_BG * N_BANK)
        * t_mac,
        jnp.minimum(m_last % (N_BANK * r_row), r_row - 1) * t_mac,
    )
    # last MAC of a pass -> first MAC of a pass starting on another row of bank 0 (BG/BUFFER)
    reopen_b = jnp.maximum(t.tRTP, t.tRAS - t.tRCD - span_b) + t_open - d_b * t_mac
    rows_b = r_row * jnp.where(is_ba, 1, jnp.where(is_buf, N_RANK * N_BG * N_BANK, N_BANK))

    def open_row(tau, m_row, lead, same_row):
        """Previous last issue → first MAC of a pass whose MACs follow without a barrier
        (``lead`` data commands of the previous pass precede them)."""
        switch = jnp.maximum(1 + (lead > 0), g_pre(m_row) - tau) + t_open
        cont = jnp.maximum(1, t_mac - tau)  # the lead fills the gaps between MACs
        other = jnp.where(same_row, cont, jnp.maximum(cont, reopen_b - tau))
        return jnp.where(is_ba, jnp.where(same_row, cont, switch), other)

    def open_after_block(tau, m_row, blk):
        """Last issue of a data-only segment (``blk`` cycles, after a tail ``tau``) →
        first MAC on a new row."""
        ahead = jnp.maximum(1, g_pre(m_row) + t_open - tau - blk)  # PRE, ACT during it
        behind = 1 + t_open + jnp.maximum(0, g_pre(m_row) - tau - blk - 1)
        other = jnp.maximum(1, reopen_b - tau - blk)
        return jnp.where(is_ba, jnp.where(pre_waits, behind, ahead), other)

    j = jnp.arange(seg_max, dtype=i64)
    b = jnp.arange(DK_MAX, dtype=i64)
    m_s = jnp.clip(g.m_ph - g.seg_mac * j, 0, g.seg_mac)
    base_s = g.seg_mac * j
    m_c = jnp.where(b < g.dk, g.n_tok, 0)
    base_c = g.n_tok * b
    # head 1's K starts rows_part rows after head 0's: same row when head 0 spills into it
    hit12 = (g.m_ph - 1) // rows_b == g.rows_part
    hit34 = g.m_ph <= rows_b  # the repeated context pass starts on the open row
    blk_pair = block((g.n_c, p_alt), (g.n_w, p_same))  # last context MVSBs + next query
    a_s = jnp.where(j >= 1, g.n_s, 0)
    a_c = jnp.where(b >= 1, g.n_c, 0)

    # One pair = four passes. Only head 1's shares (its WRGBs in the score pass of head 0,
    # its MVGBs in the first context pass) depend on its channel count v1 (< 16 only in the
    # last pair), so those two passes are evaluated for v1 in (16, v1_last); later pairs
    # differ from the first only in how their first MAC opens (after the query block).
    t_prime = 2 + t.tRCD + 1  # the priming MAC: ACT in cycle 2
    start0 = jnp.maximum(1 + (g.n_w - 1) * p_same, t_prime)  # query + priming MAC
    o_prime = jnp.maximum(1, t_mac - (start0 - t_prime))
    v1s = jnp.stack([jnp.asarray(F, i64), jnp.where(g.odd == 1, F, g.v_last)])

    def pass1(v1):  # head 0's score groups carrying head 1's WRGBs
        w_seg = _cdiv(_cdiv(_w_lines(g, v1), v1), g.n_grp)  # channel 0: every v1-th line
        w_blk = jnp.clip(g.dk - j * w_seg, 0, w_seg)  # bank-0 WRGBs come first
        return phase(m_s, base_s, o_prime, a_s, b_n=w_seg, b_p=p_same, b_blk=w_blk)

    t1, tau1, mr1 = jax.vmap(pass1)(v1s)
    g0_seg = _cdiv(_cdiv(_g0_lines(g, F), F), g.half_g)
    jg = j - g.n_grp // 2  # chunk index of head 0's MVGBs
    t2, tau2, mr2 = phase(
        m_s,
        base_s,
        open_row(tau1[0], mr1[0], g.n_s, hit12),
        a_s,
        sfm=(j == 0).astype(i64),
        b_n=jnp.where(jg >= 0, g0_seg, 0),
        b_p=span_mv,
        b_pd=g.n_mvgb,
        b_blk=jnp.where(jg >= 0, jnp.clip(g.c_gb - jg * g0_seg, 0, g0_seg), 0),
    )
    o3 = open_row(tau2, mr2, g.n_s, False)
    jd = b - g.dk // 2  # chunk index of head 1's MVGBs

    def pass3(v1):  # head 0's context blocks carrying head 1's MVGBs
        g1_seg = _cdiv(_cdiv(_g1_lines(g, v1), v1), g.half_d)
        return phase(
            m_c,
            base_c,
            o3,
            a_c,
            sfm=(b == 0).astype(i64),
            b_n=jnp.where(jd >= 0, g1_seg, 0),
            b_p=span_mv,
            b_pd=g.n_mvgb,
            b_blk=jnp.where(jd >= 0, jnp.clip(g.c_gb - jd * g1_seg, 0, g1_seg), 0),
        )

    t3, tau3, mr3 = jax.vmap(pass3)(v1s)
    t4, tau_p, mr_p = phase(m_c, base_c, open_row(tau3[0], mr3[0], g.n_c, hit34), a_c)
    first = t1 + t2 + t3 + t4  # (full head 1, last head 1), opened by the priming MAC
    later = first + open_after_block(tau_p, mr_p, blk_pair) - o_prime
    t_pairs = jnp.where(
        g.pairs == 1,
        start0 + first[1],
        jnp.where(
            g.pairs >= 2,
            start0 + first[0] + (g.pairs - 2) * (blk_pair + later[0]) + blk_pair + later[1],
            0,
        ),
    )

    # odd last iteration: query | per score group [MACs, MVSBs] | [softmax, all MVGBs],
    # then [MVSBs, softmax, MVGBs] | context blocks
    has_pairs = g.pairs > 0
    blk_q = jnp.where(has_pairs, blk_pair, 1 + (g.n_w - 1) * p_same)
    o_q = jnp.where(
        has_pairs,
        open_after_block(tau_p, mr_p, blk_q),
        jnp.maximum(1, 2 + t.tRCD - blk_q),  # banks closed: ACT ahead of the barrier
    )
    blk_mv = 1 + span_mv
    look = jnp.minimum(blk_mv, (REQ_WINDOW - 2) * p_gb)  # next MAC visible before the end
    o_mv = jnp.where(pre_waits, 1 + t_open, jnp.maximum(1, 1 + t_open - look))
    blk_last = block((g.n_s, p_alt), (1, 1)) + span_mv
    # cache generator: [softmax, all MVGBs] after every score group
    to1, tauo1, mro1 = phase(m_s, base_s, o_q, a_s, pre_block=blk_mv, open_after=o_mv)
    to2, _, _ = phase(m_c, base_c, open_after_block(tauo1 + blk_mv, mro1, blk_last), a_c)
    t_odd_cache = blk_q + to1 + blk_mv + blk_last + to2
    # current generator: the score pass alone, then [last MVSBs, softmax, all MVGBs]
    tc1, tauc1, mrc1 = phase(m_s, base_s, o_q, a_s)
    tc2, _, _ = phase(m_c, base_c, open_after_block(tauc1, mrc1, blk_last), a_c)
    t_odd = jnp.where(cache, t_odd_cache, blk_q + tc1 + blk_last + tc2)
    t_busy = t_pairs + g.odd * t_odd + 1 + (g.n_c - 1) * p_alt  # trailing context MVSBs

    # refresh (module docstring); in a data-only segment of B cycles it costs the PRE and
    # REF slots plus what is left of X = tRFC + tRCD at its end: 3 + X^2 / 2B on average
    t_pre = jnp.maximum(jnp.where(is_ba, t.tRTP, 1), t_mac // 2 + 1)
    c_ref = t_pre + 1 + t.tRFC + t.tRCD - t_mac
    x_rfc = t.tRFC + t.tRCD
    c_blk = 3 + jnp.where(blk_mv >= x_rfc, x_rfc * x_rfc // (2 * blk_mv), x_rfc - blk_mv // 2)
    t_blk = g.odd * (jnp.where(cache, g.n_grp * blk_mv, 0) + blk_last)
    c_eff = (c_ref * (t_busy - t_blk) + jnp.minimum(c_blk, c_ref) * t_blk) // t_busy
    # the k-th refresh (at k tREFI) falls inside the run iff k tREFI < T0 + (k - 1) c
    n_ref = jnp.maximum(0, (t_busy - c_eff - 1) // (t.tREFI - c_eff))
    return t_busy + n_ref * c_eff


def attention_layer(
    L,
    nhead,
    dhead,
    dbyte,
    placement,
    power_constraint,
    timing: Timing,
    pre_lookahead=0,
    generator=0,
    max_len=DEFAULT_MAX_LEN,
    *,
    seg_max: int = SEG_MAX,
) -> dict:
    """Cycles and request counts of one AttAcc attention layer on one HBM3 stack.

    Integer scalars (``jax.vmap`` batches them): ``L`` context length, ``nhead`` heads per
    stack, ``dhead`` head dimension, ``dbyte`` bytes per element, ``placement`` 0 = BA,
    1 = BG, 2 = BUFFER, ``power_constraint`` 0/1 (picks the preset when ``timing`` leaves
    carry both), ``pre_lookahead`` 1 = the scheduler may issue an all-bank precharge ahead
    of a barrier, ``generator`` 0 = AttAcc's current trace generator, 1 = the older one of
    the shipped cache (:data:`GENERATORS`; a name is accepted too), ``max_len`` the
    generator's ``--maxlen``. ``seg_max`` (static) sizes the score-group axis. Returns int64
    ``cycle`` (cycles of ``tCK``), the counts ``mac, softmax, mvgb, mvsb, wrgb`` summed over
    the 16 channels, and ``status`` (1 where ``L > MAX_L`` or the mapping needs more segments
    than ``seg_max``/``DK_MAX``; 0 otherwise).
    """
    i64 = jnp.int64
    if isinstance(generator, str):
        generator = GENERATORS.index(generator)
    t = Timing(*(x[power_constraint] if jnp.ndim(x) == 1 else x for x in timing))
    t = Timing(*(jnp.asarray(x, i64) for x in t))
    L, nhead, dhead, dbyte, placement, pre_lookahead, generator, max_len = (
        jnp.asarray(v, i64)
        for v in (L, nhead, dhead, dbyte, placement, pre_lookahead, generator, max_len)
    )
    cache = generator == 1
    g = _geometry(L, nhead, dhead, dbyte, placement, t, max_len)
    out = _counts(g, cache)
    out["cycle"] = _cycles(t, g, pre_lookahead, cache, seg_max)
    out["status"] = ((L > MAX_L) | (g.n_grp > seg_max) | (g.dk > DK_MAX)).astype(i64)
    return out


def load_cache(path: str | Path | None = None) -> pd.DataFrame:
    """The Ramulator cache as a DataFrame (default :data:`CACHE_PATH`), rows in file order.

    Columns ``L, nhead, dhead, dbyte, pim_type, power_constraint, cycle`` and
    :data:`COUNTS`; ``power_constraint`` is boolean.
    """
    path = Path(CACHE_PATH if path is None else path)
    if not path.is_file():
        raise FileNotFoundError(
            f"AttAcc Ramulator cache not found: {path} (expected the shared reference file "
            "shared/reference/validation/attacc_hbm3pim_ramulator_cache.csv)"
        )
    df = pd.read_csv(path)
    missing = {"L", "nhead", "dhead", "dbyte", "pim_type", "power_constraint", "cycle"}
    missing = (missing | set(COUNTS)) - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    df["power_constraint"] = df["power_constraint"].astype(str).str.lower().eq("true")
    df["variant"] = "cache"  # written by AttAcc's older trace generator, --maxlen 4096
    return df


@functools.cache
def _eval_fn(seg_max: int):
    """``jax.jit(jax.vmap(attention_layer))`` with a score-group axis of ``seg_max``."""
    layer = functools.partial(attention_layer, seg_max=seg_max)
    return jax.jit(jax.vmap(layer, in_axes=(0, 0, 0, 0, 0, 0, None, 0, 0, 0)))


def _column(df, name, default, dtype=np.int64):
    if name in df.columns:
        return np.asarray(df[name], dtype)
    return np.full(len(df), default, dtype)


def evaluate(
    df: pd.DataFrame,
    pre_lookahead=1,
    timing: Timing | None = None,
    generator=None,
    max_len=None,
) -> pd.DataFrame:
    """:func:`attention_layer` for every row of ``df`` (one jitted, vmapped call).

    ``df`` has ``L, nhead, dhead, dbyte, pim_type, power_constraint``.

    * ``pre_lookahead``: 0/1 for all rows or one value per row; 1 (default) the released
      scheduler, which issues a closing row command across a barrier; 0 the first build
      of the shipped cache.
    * ``generator``: ``"current"`` or ``"cache"`` (:data:`GENERATORS`) for all rows or one
      per row; ``None`` takes ``df["variant"]`` when present (:func:`load_cache` sets it
      to ``"cache"``), else ``"current"``.
    * ``max_len``: the generator's ``--maxlen``, scalar or per row; ``None`` takes
      ``df["max_L"]`` when present, else :data:`DEFAULT_MAX_LEN`.

    Returns a DataFrame indexed like ``df`` with ``cycle``, :data:`COUNTS` and ``status``
    (int64).
    """
    unknown = sorted(set(df["pim_type"]) - set(PLACEMENTS))
    if unknown:
        raise ValueError(f"pim_type: unknown placement(s) {unknown}; expected {PLACEMENTS}")
    n = len(df)
    cols = {c: np.asarray(df[c], np.int64) for c in ("L", "nhead", "dhead", "dbyte")}
    if (cols["L"] > MAX_L).any():
        raise ValueError(f"L: the mapping is sized for L <= MAX_L = {MAX_L}")
    if generator is None:
        generator = df["variant"] if "variant" in df.columns else "current"
    gen = np.broadcast_to(np.asarray(generator, object), (n,))
    bad = sorted(set(gen) - set(GENERATORS))
    if bad:
        raise ValueError(f"generator: unknown {bad}; expected {GENERATORS}")
    gen = np.asarray([GENERATORS.index(x) for x in gen], np.int64)
    if max_len is None:
        max_len = _column(df, "max_L", DEFAULT_MAX_LEN)
    max_len = np.broadcast_to(np.asarray(max_len, np.int64), (n,))
    timing = load_timing() if timing is None else timing
    lanes = int(np.max(np.asarray(timing.col_bytes))) // cols["dbyte"]
    if (cols["dhead"] > DK_MAX * lanes).any():  # Dk <= ceil(dhead / lanes)
        raise ValueError(f"dhead, dbyte: more than DK_MAX = {DK_MAX} MAC columns per head")
    placement = np.asarray(df["pim_type"].map({p: i for i, p in enumerate(PLACEMENTS)}))
    # score groups: ceil(L / (16 P)), P = 2 (BUFFER) or 16
    parts = np.where(placement == 2, N_PCH, N_PCH * N_RANK * N_BG) * 16
    need = int(np.max(-(-cols["L"] // parts), initial=1))
    seg_max = SEG_MAX
    while seg_max < need:
        seg_max *= 2
    pc = np.asarray(df["power_constraint"], bool).astype(np.int64)
    look = np.broadcast_to(np.asarray(pre_lookahead, np.int64), (n,))
    out = _eval_fn(seg_max)(
        *(jnp.asarray(cols[c]) for c in ("L", "nhead", "dhead", "dbyte")),
        jnp.asarray(placement.astype(np.int64)),
        jnp.asarray(pc),
        timing,
        jnp.asarray(look),
        jnp.asarray(gen),
        jnp.asarray(max_len),
    )
    return pd.DataFrame({k: np.asarray(v) for k, v in out.items()}, index=df.index)


#: corpus families of single-mechanism streams (:func:`mechanism_cycles`)
MECHANISM_FAMILIES = ("mac_rows", "moves", "mac_moves")
#: move patterns of the corpus writer: (period, residues addressed to the MAC bank pCH 0 /
#: rank 0 / bank group 0 / bank 0, spacing kind: "L" one bank group at tCCD_L, "S"
#: alternating ranks or bank groups at max(BL, tCCD_S) (two runs of a list in the window
#: alternate too), "P" alternating pseudo-channels: 1 cycle across, tCCD_L within one)
_MOVE_PATTERNS = {
    "same_bank": (1, (0,), "L"),
    "same_bg": (4, (0,), "L"),
    "alt_bg": (4, (0,), "S"),
    "alt_rank": (2, (0,), "S"),
    "alt_pch": (2, (0,), "P"),
    "bg_rank": (8, (0,), "S"),
    "rank_bg_run": (16, (0, 1), "S"),
}


def _arg(a: pd.DataFrame, name: str, default) -> np.ndarray:
    """Column ``name`` of the parsed generator arguments, ``default`` where absent."""
    if name not in a.columns:
        return np.full(len(a), default, dtype=object if isinstance(default, str) else None)
    return a[name].where(a[name].notna(), default).to_numpy()


def _np_timing(pc: np.ndarray) -> dict:
    """Per-row int64 timing leaves (``pc`` 0 = NPC, 1 = power-constrained)."""
    t = load_timing()
    return {f: np.asarray(getattr(t, f))[pc] for f in Timing._fields}


def _mac_spacing(t: dict, pim: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """MAC → MAC on one bank's stream: tCCD_mac (BA/BG), tCCD_L for per-bank MACs in one
    bank group (BUFFER), max(BL, tCCD_S) for per-bank MACs rotating ranks x bank groups."""
    alt = np.maximum(t["BL"], t["tCCD_S"])
    return np.where(pim == "BUFFER", np.where(spread, alt, t["tCCD_L"]), t["tCCD_mac"])


def _move_span(t: dict, kind, pattern, n) -> np.ndarray:
    """Cycles from the first to the last of ``n`` moves of one list (``1 + span`` alone)."""
    spacing = np.asarray([_MOVE_PATTERNS[p][2] for p in pattern])
    alt = np.maximum(t["BL"], t["tCCD_S"])
    span = np.where(spacing == "L", (n - 1) * t["tCCD_L"], (n - 1) * alt)
    pch = t["tCCD_L"] * ((n - 1) // N_PCH) + (n - 1) % N_PCH  # 1 across, tCCD_L within
    span = np.where(spacing == "P", pch, span)
    return np.where(np.asarray(kind) == "SFM", n - 1, span)  # SFM: channel scope, 1/cycle


def _bank0_moves(pattern, n) -> np.ndarray:
    """Moves of the list addressed to the MAC bank (they wait for its last row hit)."""
    per = np.asarray([_MOVE_PATTERNS[p][0] for p in pattern])
    res = [_MOVE_PATTERNS[p][1] for p in pattern]
    rem = n % per
    return (n // per) * np.asarray([len(r) for r in res]) + np.asarray(
        [sum(x < m for x in r) for r, m in zip(res, rem, strict=True)]
    )


def _refresh(t: dict, t0, c) -> np.ndarray:
    """``t0`` plus ``n`` refreshes of cost ``c``: the k-th (at k tREFI) falls inside the run
    iff ``k tREFI < t0 + (k - 1) c``."""
    n_ref = np.maximum(0, (t0 - c - 1) // (t["tREFI"] - c))
    return t0 + n_ref * c


def _ref_cost(t: dict, pim, t_mac) -> np.ndarray:
    """Cycles one refresh adds to a MAC-row stream. All-bank MACs spaced below tRTP keep
    the refresh's PREA back until the row switch, whose own PRE + tRP it replaces:
    ``tRFC + 1 - tRP``. Otherwise (the layer model's rule) the PREA goes out ``t_pre`` after
    the last MAC and the row reopens: ``t_pre + 1 + tRFC + tRCD - t_mac``."""
    held = (pim == "BA") & (t_mac < t["tRTP"])
    t_pre = np.maximum(1, t_mac // 2 + 1)
    return np.where(held, t["tRFC"] + 1 - t["tRP"], t_pre + 1 + t["tRFC"] + t["tRCD"] - t_mac)


def _mac_rows(t: dict, a: pd.DataFrame) -> np.ndarray:
    r, k = a["rows"].to_numpy(np.int64), a["k"].to_numpy(np.int64)
    pim = _arg(a, "pim_type", "BA")
    spread = _arg(a, "spread", False).astype(bool)
    t_mac = _mac_spacing(t, pim, spread)
    run = t["tRCD"] + (k - 1) * t_mac  # ACT → last MAC of a row
    period = np.maximum(run + t["tRTP"], t["tRAS"]) + t["tRP"]
    # per-bank MACs spread over the 8 rank x bank-group banks: each bank holds its
    # precharge while the row's MACs hit it, the banks whose last MAC lies tRTP back close
    # at once and the ACT train overlaps the next row's first MACs
    n_banks = np.minimum(k, N_RANK * N_BG)
    spread_gap = np.maximum(
        t["tRP"] + t["tRCD"], t["tRTP"] + t["tRP"] + t["tRCD"] - (n_banks - 1) * t_mac
    )
    spread_period = np.maximum((k - 1) * t_mac + spread_gap, t["tRAS"] + t["tRP"])
    period = np.where((pim == "BUFFER") & spread, spread_period, period)
    t0 = 1 + run + (r - 1) * period
    return _refresh(t, t0, _ref_cost(t, pim, t_mac))


def _moves(t: dict, a: pd.DataFrame) -> np.ndarray:
    # no row is open: the REFs dual-issue with the moves and cost nothing
    n = a["n"].to_numpy(np.int64)
    return 1 + _move_span(t, a["kind"].to_numpy(), _arg(a, "pattern", "same_bg"), n)


def _mac_moves(t: dict, a: pd.DataFrame) -> np.ndarray:
    m, n = a["macs"].to_numpy(np.int64), a["n"].to_numpy(np.int64)
    reps = _arg(a, "repeat", 1).astype(np.int64)
    barrier = _arg(a, "barrier", False).astype(bool)
    pim, kind = _arg(a, "pim_type", "BA"), _arg(a, "kind", "MVSB")
    pattern = _arg(a, "pattern", "bg_rank")
    t_mac = _mac_spacing(t, pim, np.zeros(len(a), bool))
    R = t["row_bytes"] // t["col_bytes"]
    span = _move_span(t, kind, pattern, n)
    b = _bank0_moves(pattern, n)
    span_o = _move_span(t, kind, pattern, np.maximum(n - b, 1))
    # a row switch from a full row: last MAC → first MAC of the next row
    g_full = np.maximum(t["tRTP"], t["tRAS"] - t["tRCD"] - (R - 1) * t_mac) + t["tRP"] + t["tRCD"]
    tm = tv = ta = np.zeros(len(a), np.int64)  # last MAC, last move, current row's ACT
    for j in range(int(reps.max(initial=0))):
        live = j < reps
        c0 = j * m
        new_row = (c0 % R == 0) & (j > 0)
        first = np.where(
            j == 0,
            1 + t["tRCD"],
            np.where(
                new_row,
                np.maximum(tm + t["tRTP"], ta + t["tRAS"]) + t["tRP"] + t["tRCD"],
                tm + t_mac,
            ),
        )
        ta_new = np.where((j == 0) | new_row, first - t["tRCD"], ta)
        first = np.maximum(first, np.where(j == 0, 0, tv + 1))  # the barrier after the moves
        s_in = (c0 + m - 1) // R - c0 // R  # row switches inside the MAC list
        tm_new = first + (m - 1) * t_mac + s_in * (g_full - t_mac)
        ta_new = np.where(s_in > 0, tm_new - ((c0 + m - 1) % R) * t_mac - t["tRCD"], ta_new)
        # moves: after a barrier all follow the last MAC; without one, moves to other banks
        # fill the slots between MACs and those to the MAC bank follow its last row hit,
        # unless the list's MACs wait for a row switch: the moves (visible within the
        # window) overtake them
        after = tm_new + 1 + span
        tail = np.where(
            b > 0, tm_new + 1 + (b - 1) * t["tCCD_L"], np.maximum(tm_new, first + 1 + span)
        )
        tail = np.maximum(tail, np.where(b < n, first + 1 + span_o, 0))
        early_end = tv + 1 + span
        early = new_row & (m < REQ_WINDOW) & (early_end < first)
        tv_new = np.where(barrier, after, np.where(early, early_end, tail))
        tm, tv, ta = (np.where(live, x, y) for x, y in ((tm_new, tm), (tv_new, tv), (ta_new, ta)))
    t0 = np.maximum(tm, tv)
    return _refresh(t, t0, _ref_cost(t, pim, t_mac))


def mechanism_cycles(family, generator_args, power_constraint) -> np.ndarray:
    """Cycles of single-mechanism corpus streams (:data:`MECHANISM_FAMILIES`, written by
    :mod:`dse.validation.traces.attacc` ``mac_rows``, ``moves``, ``mac_moves``) from the
    controller rules of the module docstring, vectorized over rows (NumPy int64).

    * ``mac_rows`` (``r`` rows x ``k`` MACs to one bank): ``T0 = 1 + tRCD + (k-1) t +
      (r-1) (max(tRCD + (k-1) t + tRTP, tRAS) + tRP)`` with ``t`` = tCCD_mac (BA/BG), tCCD_L
      (BUFFER, one bank group); BUFFER spread over the 8 rank x bank-group banks at
      ``t = max(BL, tCCD_S)``: rows every ``(k-1) t + max(tRP + tRCD, tRTP + tRP + tRCD -
      7 t)``. Refresh: ``n`` stalls of ``tRFC + 1 - tRP`` (BA: held to the row switch) or
      ``t_pre + 1 + tRFC + tRCD - t`` (BG/BUFFER), ``n = floor((T0 - c - 1) / (tREFI - c))``.
    * ``moves`` (``n`` data commands): ``1 + (n-1) p``, ``p`` = tCCD_L in one bank group,
      max(BL, tCCD_S) alternating ranks / bank groups, 1 for SFM; alternating pCH ``1 +
      tCCD_L floor((n-1)/2) + (n-1) mod 2``. Refreshes cost nothing (no row is open).
    * ``mac_moves`` (``repeat`` x [``macs`` MACs, ``n`` moves, barrier]): per repetition the
      MAC list starts ``t`` after the last MAC, a row switch later on a new row, and not
      before the previous moves (barrier); the moves then take ``1 + span`` after the last
      MAC (barrier before them), else the ``b`` moves to the MAC bank follow the last MAC
      (``1 + (b-1) tCCD_L``) while the others fill the MAC gaps, or all overtake MACs that
      wait for a row switch. ``T = max(last MAC, last move)`` plus refresh as for MAC rows.
    """
    fam = np.asarray(family)
    args = pd.DataFrame([json.loads(a) if isinstance(a, str) else a for a in generator_args])
    args = args.set_axis(range(len(fam)))
    pc = np.asarray(power_constraint, bool).astype(np.int64)
    out = np.full(len(fam), -1, np.int64)
    for name, fn in (("mac_rows", _mac_rows), ("moves", _moves), ("mac_moves", _mac_moves)):
        sel = np.flatnonzero(fam == name)
        if len(sel):
            t = _np_timing(pc[sel])
            out[sel] = fn(t, args.iloc[sel].reset_index(drop=True))
    return out


#: corpus families :func:`evaluate_corpus_rows` evaluates with the layer model
LAYER_FAMILIES = {"attacc_layer_current": "current", "attacc_layer_cache": "cache"}


def evaluate_corpus_rows(rows: pd.DataFrame, progress=None) -> pd.DataFrame:
    """Model values for rows of ``dse/validation/data/corpus_attacc.csv``.

    Rows of the families ``attacc_layer_current`` / ``attacc_layer_cache`` go through
    :func:`attention_layer` in one :func:`evaluate` call (generator and ``--maxlen`` from the
    row's ``generator_args``); the single-mechanism families (``mac_rows``, ``moves``,
    ``mac_moves``) through :func:`mechanism_cycles`; other families get NaN. Returns
    ``rows`` with the columns ``model`` (``"attacc layer model"``), ``quantity``
    (``"cycles"``), ``measured`` (= ``cycles``) and ``model_value``. ``progress``:
    optional callable given a one-line status.
    """
    out = rows.copy()
    out["model"] = "attacc layer model"
    out["quantity"] = "cycles"
    out["measured"] = out["cycles"].astype(float)
    out["model_value"] = np.nan
    layer = out["family"].isin(list(LAYER_FAMILIES))
    if layer.any():
        sub = out[layer]
        args = sub["generator_args"].map(json.loads)
        frame = pd.DataFrame(
            {
                "L": args.map(lambda a: a["L"]),
                "nhead": args.map(lambda a: a["heads"]),
                "dhead": args.map(lambda a: a["dhead"]),
                "dbyte": args.map(lambda a: a["dbyte"]),
                "pim_type": args.map(lambda a: a["pim_type"]),
                "power_constraint": sub["power_constraint"].astype(str).str.lower().eq("true"),
                "variant": args.map(lambda a: a.get("variant", "current")),
                "max_L": args.map(lambda a: a.get("max_L", DEFAULT_MAX_LEN)),
            },
            index=sub.index,
        )
        if progress is not None:
            progress(f"attacc layer model: {len(frame)} rows")
        model = evaluate(frame)
        out.loc[layer, "model_value"] = model["cycle"].astype(float)
    mech = out["family"].isin(list(MECHANISM_FAMILIES))
    if mech.any():
        sub = out[mech]
        if progress is not None:
            progress(f"attacc mechanism streams: {len(sub)} rows")
        pc = sub["power_constraint"].astype(str).str.lower().eq("true")
        cyc = mechanism_cycles(sub["family"], sub["generator_args"], pc)
        out.loc[mech, "model_value"] = cyc.astype(float)
    return out


def compare(
    df: pd.DataFrame,
    second_build_row: int | None = SECOND_BUILD_ROW,
    model: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Model vs cache per (``pim_type``, ``power_constraint``).

    Columns: ``rows``, ``mape_pct`` (mean |model - cache| / cache of ``cycle``, %),
    ``worst_pct`` (largest such error), and per count the fraction of rows where the model
    equals the cache exactly. Rows whose index is at least ``second_build_row`` (the cache's
    second Ramulator build) are evaluated with ``pre_lookahead = 1``; ``None`` evaluates
    every row with the first build's scheduler. ``model``: :func:`evaluate` results for
    ``df`` to tabulate instead of evaluating.
    """
    if model is None:
        look = 0 if second_build_row is None else (np.asarray(df.index) >= second_build_row)
        model = evaluate(df, pre_lookahead=np.asarray(look, np.int64))
    err = (model["cycle"] - df["cycle"]).abs() / df["cycle"] * 100.0
    frame = pd.DataFrame(
        {
            "pim_type": df["pim_type"],
            "power_constraint": df["power_constraint"],
            "err": err,
            **{f"{k}_exact": model[k] == df[k] for k in COUNTS},
        }
    )
    grouped = frame.groupby(["pim_type", "power_constraint"], sort=True)
    table = grouped.agg(
        rows=("err", "size"),
        mape_pct=("err", "mean"),
        worst_pct=("err", "max"),
        **{f"{k}_exact": (f"{k}_exact", "mean") for k in COUNTS},
    )
    return table.reset_index()


def _print_table(table: pd.DataFrame, title: str) -> None:
    heads = ["placement", "power", "rows", "MAPE %", "worst %", *(f"{k} =" for k in COUNTS)]
    rows = [
        [
            r["pim_type"],
            "PC" if r["power_constraint"] else "NPC",
            str(r["rows"]),
            f"{r['mape_pct']:.3f}",
            f"{r['worst_pct']:.2f}",
            *(f"{r[f'{k}_exact']:.3f}" for k in COUNTS),
        ]
        for r in table.to_dict("records")
    ]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title)
        for r in [heads, *rows]:
            print("  ".join(f"{c:>9}" for c in r))
        return
    out = Table(title=title, caption="count columns: fraction of rows matching exactly")
    for h in heads:
        out.add_column(h, justify="left" if h == "placement" else "right")
    for r in rows:
        out.add_row(*r)
    Console(width=max(120, Console().width)).print(out)


@command
def main() -> pd.DataFrame:
    """Print the per-group comparison with the cache and the run time; return the table."""
    t0 = time.perf_counter()
    df = load_cache()
    table = compare(df)
    elapsed = time.perf_counter() - t0
    _print_table(table, f"AttAcc HBM3-PIM attention: model vs Ramulator cache ({len(df)} rows)")
    single = compare(df, second_build_row=None)
    print(
        "with the first build's scheduler for every row: MAPE "
        + ", ".join(
            f"{r.pim_type}/{'PC' if r.power_constraint else 'NPC'} {r.mape_pct:.3f}%"
            for r in single.itertuples()
        )
    )
    print(f"compare(): {elapsed:.2f} s (load, jit compile, evaluate {len(df)} rows)")
    return table


if __name__ == "__main__":
    main()
