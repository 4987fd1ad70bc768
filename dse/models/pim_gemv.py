"""First-order GEMV timing on one PIM channel (DESIGN.md §4.2).

A pure function of ONE design point; batching happens in :mod:`dse.explore`.

Mapping (AiM/Newton-style all-bank GEMV, ``y = W x``, ``W`` is ``M x K``):

* the ``M`` output rows are split over ``channels`` and then over the ``banks`` of a
  channel: each bank holds ``m_bank = ceil(ceil(M / channels) / banks)`` rows of ``W``,
  packed contiguously over its DRAM rows;
* one all-bank MAC command reads one column (``col_bytes``, ``e = col_bytes / dtype_bytes``
  elements) from every bank and multiplies it by ``e`` elements of ``x`` held in the GBuf.
  A MAC unit of ``lanes < e`` multipliers reads the column in ``s = ceil(e / lanes)``
  lane-wide slices, one per ``tCCD_mac``, so MACs are spaced ``t_mac = s tCCD_mac``;
* ``n_mac = m_bank * ceil(K / e)`` MAC commands in ``n_act = ceil(n_mac / c)`` rows of
  ``c = row_bytes / col_bytes`` columns. A row holding ``k`` MACs occupies the bank for
  ``max(tRCD_mac + k t_mac - tCCD_mac + tRTP, tRAS) + tRP`` (ACT → first MAC, MAC stream
  up to its last slice, last read → PRE, PRE → next ACT); with ``s = 1`` this is DESIGN.md's
  ``tRCD_mac + (k - 1) tCCD_mac + tRTP + tRP``;
* the GBuf holds ``floor(gbuf_bytes / col_bytes)`` columns (``k_chunk`` elements) of ``x``,
  so the reduction is done in ``n_chunk = ceil(K / k_chunk)`` chunks; ``x`` is written
  once (WR-INP, ``ceil(K db / col)`` bursts) and each chunk's partial sums of the
  channel's ``M_c = ceil(M / channels)`` outputs are read out densely packed (RD-OUT,
  ``ceil(M_c out_bytes / col)`` bursts per chunk). One burst takes
  ``t_io = ceil(8 col_bytes / (bus_width_bits data_rate))`` cycles on the external bus;
* ``policy.io = serial``: transfers and MACs add; ``overlap``: the longer of the two, with
  the first GBuf fill (no MAC can start before it) and the final readout burst exposed;
* refresh is discrete: a refresh every ``tREFI`` stalls the channel ``tRFC``, so a run of
  ``T0`` busy cycles ends after ``T0 + n tRFC`` with
  ``n = ceil((T0 - tREFI) / (tREFI - tRFC))`` for ``T0 > tREFI`` (else 0).

Outputs: integer ``cycles`` (int64, exact), ``time_ns``, achieved weight-streaming
``internal_GBps``, ``peak_internal_GBps`` and ``external_GBps`` (all channels),
``mac_util`` (useful multiply-accumulates over the MAC units' capacity in that time), the
fractions of time in MAC streaming, row switching, exposed I/O and refresh (they sum to 1),
the dominant ``bottleneck`` code, command counts and a ``status`` bit set.
"""

from __future__ import annotations

import jax.numpy as jnp

from dse.point import STATUS_CODE, DesignPoint
from dse.workload.gemv import DTYPE_BYTES

__all__ = ["gemv", "BOTTLENECKS", "METRICS"]

#: bottleneck code → name (the argmax of the time fractions)
BOTTLENECKS = ("mac", "row", "io", "refresh")

#: metric name → (unit, description); the keys of the dict :func:`gemv` returns
METRICS = {
    "cycles": ("cycles", "channel busy time for the whole GEMV, refresh included"),
    "time_ns": ("ns", "cycles * tCK_ns"),
    "internal_GBps": ("GB/s", "weight bytes streamed through the MAC units per second"),
    "peak_internal_GBps": ("GB/s", "channels * banks * col_bytes / (t_mac * tCK)"),
    "external_GBps": ("GB/s", "channels * bus bytes per transfer * data_rate / tCK"),
    "mac_util": ("1", "useful MACs / (channels * banks * lanes * cycles / tCCD_mac)"),
    "frac_mac": ("1", "fraction of time issuing MAC commands"),
    "frac_row": ("1", "fraction of time in row switching (ACT/PRE, tRAS/tRTP/tRP)"),
    "frac_io": ("1", "fraction of time in exposed WR-INP/RD-OUT transfers"),
    "frac_refresh": ("1", "fraction of time stalled by refresh"),
    "bottleneck": ("code", "argmax of the fractions: " + ", ".join(BOTTLENECKS)),
    "n_mac": ("commands", "all-bank MAC commands per channel"),
    "n_act": ("commands", "row activations per channel"),
    "n_wr_inp": ("bursts", "input bursts written to the GBuf per channel"),
    "n_rd_out": ("bursts", "output bursts read from the banks per channel"),
    "n_ref": ("commands", "refreshes during the run"),
    "status": ("bits", "0 = feasible; see dse.point.STATUS_BITS"),
}


#: integers below this are exact in float64, and so is ``floor(a / b)`` of two of them
EXACT = float(1 << 52)


def _cdiv(a, b):
    """``ceil(a / b)`` of non-negative whole numbers held in float64: exact below
    :data:`EXACT` (two integer quotients differ by at least ``1/b``, a relative ``1/a``,
    more than the division's rounding), and one vector division where int64 has none."""
    return jnp.ceil(a / b)


def _fdiv(a, b):
    """``floor(a / b)`` of non-negative whole numbers held in float64 (exact as
    :func:`_cdiv`)."""
    return jnp.floor(a / b)


def _row_cycles(k, t_mac, tccd, pim):
    """Cycles a bank row holding ``k >= 1`` MAC columns occupies the channel: ACT → first
    MAC (tRCD_mac), k columns of ``t_mac`` whose last slice is read ``tCCD_mac`` before the
    end, last read → PRE (tRTP), ACT → PRE at least tRAS, PRE → next ACT (tRP)."""
    return jnp.maximum(pim.tRCD_mac + k * t_mac - tccd + pim.tRTP, pim.tRAS) + pim.tRP


def gemv(p: DesignPoint) -> dict[str, jnp.ndarray]:
    """GEMV timing of one design point (see the module docstring for the equations).

    The counts are whole numbers computed in float64, where a vector division exists (int64
    division is one scalar instruction per element): exact while every count stays below
    2**52 (:data:`EXACT`); a point whose cycle count reaches it is flagged ``overflow``."""
    pim, wl = p.hw.pim, p.workload
    db = DTYPE_BYTES[wl.dtype]  # static

    bad = (
        (pim.tCK_ns <= 0)
        | (pim.data_rate <= 0)
        | (pim.bus_width_bits < 1)
        | (pim.channels < 1)
        | (pim.banks < 1)
        | (pim.lanes < 1)
        | (pim.tCCD_mac < 1)
        | (pim.col_bytes < db)
        | (pim.row_bytes < pim.col_bytes)
        | (pim.rows < 1)
        | (pim.out_bytes < 1)
        | (pim.tREFI < 1)
        | (wl.K < 1)
        | (wl.M < 1)
        | (jnp.minimum(jnp.minimum(pim.tRCD_mac, pim.tRP), jnp.minimum(pim.tRAS, pim.tRTP)) < 0)
        | (pim.tRFC < 0)
    )
    # Sanitised copies keep the arithmetic finite on bad points; their metrics are masked.
    f = jnp.float64

    def at_least(x, lo):
        return jnp.maximum(jnp.asarray(x, f), lo)

    channels = at_least(pim.channels, 1.0)
    banks = at_least(pim.banks, 1.0)
    lanes = at_least(pim.lanes, 1.0)
    tccd = at_least(pim.tCCD_mac, 1.0)
    col = at_least(pim.col_bytes, float(db))
    row = jnp.maximum(jnp.asarray(pim.row_bytes, f), col)
    K, M = at_least(wl.K, 1.0), at_least(wl.M, 1.0)
    tck = jnp.where(pim.tCK_ns > 0, pim.tCK_ns, 1.0)
    rate = jnp.where(pim.data_rate > 0, pim.data_rate, 1.0)
    width = at_least(pim.bus_width_bits, 1.0)
    gbuf, out_bytes = jnp.asarray(pim.gbuf_bytes, f), jnp.asarray(pim.out_bytes, f)
    tREFI, tRFC = jnp.asarray(pim.tREFI, f), jnp.asarray(pim.tRFC, f)

    # --- MAC streaming and row switching ------------------------------------------------
    e = _fdiv(col, db)  # elements per column access
    t_mac = tccd * _cdiv(e, lanes)
    cols_per_row = _fdiv(row, col)
    m_bank = _cdiv(_cdiv(M, channels), banks)  # output rows of the busiest bank
    n_mac = m_bank * _cdiv(K, e)
    n_full = _fdiv(n_mac, cols_per_row)
    rem = n_mac - n_full * cols_per_row
    n_act = n_full + (rem > 0)
    t_compute = n_full * _row_cycles(cols_per_row, t_mac, tccd, pim) + jnp.where(
        rem > 0, _row_cycles(jnp.maximum(rem, 1.0), t_mac, tccd, pim), 0.0
    )
    t_mac_total = n_mac * t_mac

    # --- external transfers -------------------------------------------------------------
    t_io = jnp.ceil(8.0 * col / (width * rate))
    k_chunk = jnp.maximum(_fdiv(gbuf, col), 1.0) * e  # whole columns per GBuf fill
    n_chunk = _cdiv(K, k_chunk)
    n_wr = _cdiv(K * db, col)
    m_chan = _cdiv(M, channels)
    n_rd = n_chunk * _cdiv(m_chan * out_bytes, col)  # partial sums, densely packed
    t_in, t_out = n_wr * t_io, n_rd * t_io
    exposed = (_cdiv(jnp.minimum(K, k_chunk) * db, col) + 1.0) * t_io  # first fill, last burst
    serial = t_compute + t_in + t_out
    overlap = jnp.maximum(t_compute, t_in + t_out - exposed) + exposed
    busy = jnp.where(p.policy.io == 0, serial, overlap)

    # --- discrete refresh ---------------------------------------------------------------
    window = tREFI - tRFC
    starved = (tRFC > 0) & (window <= 0)
    n_ref = jnp.where(
        (tRFC > 0) & (busy > tREFI) & ~starved,
        _cdiv(busy - tREFI, jnp.maximum(window, 1.0)),
        0.0,
    )
    cycles = busy + n_ref * tRFC
    inexact = ~(cycles < EXACT)  # beyond float64's whole numbers (or not finite)

    # --- metrics ------------------------------------------------------------------------
    status = (
        jnp.where(bad, STATUS_CODE["bad_parameter"], 0)
        | jnp.where(pim.gbuf_bytes < col, STATUS_CODE["gbuf_too_small"], 0)
        | jnp.where(starved, STATUS_CODE["refresh_starved"], 0)
        | jnp.where(n_act > pim.rows, STATUS_CODE["capacity_exceeded"], 0)
        | jnp.where(inexact, STATUS_CODE["overflow"], 0)
    ).astype(jnp.int64)

    cyc = jnp.maximum(cycles, 1.0)
    time_ns = cyc * tck
    parts = (t_mac_total, t_compute - t_mac_total, busy - t_compute, n_ref * tRFC)
    # the first of the largest (argmax) by comparisons: no stacked array to write and read
    bottleneck, top = jnp.zeros((), jnp.int64), parts[0]
    for code, part in enumerate(parts[1:], 1):
        bottleneck, top = jnp.where(part > top, code, bottleneck), jnp.maximum(part, top)
    mac_capacity = channels * banks * lanes * cyc / tccd

    def count(x):  # whole numbers out as int64 (0 where not exact: the row is flagged)
        return jnp.where(inexact, 0, x).astype(jnp.int64)

    return {
        "cycles": count(cycles),
        "time_ns": time_ns,
        "internal_GBps": M * K * db / time_ns,
        "peak_internal_GBps": (channels * banks * col) / (t_mac * tck),
        "external_GBps": channels * (width / 8.0) * rate / tck,
        "mac_util": M * K / mac_capacity,
        "frac_mac": parts[0] / cyc,
        "frac_row": parts[1] / cyc,
        "frac_io": parts[2] / cyc,
        "frac_refresh": parts[3] / cyc,
        "bottleneck": bottleneck,
        "n_mac": count(n_mac),
        "n_act": count(n_act),
        "n_wr_inp": count(n_wr),
        "n_rd_out": count(n_rd),
        "n_ref": count(n_ref),
        "status": status,
    }
