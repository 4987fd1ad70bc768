"""Plain-Python walk of the first-order PIM GEMV timing (checks dse.models.pim_gemv).

Where the vectorized model uses closed forms (row counts, burst counts, the refresh count),
this walks the work explicitly: every bank row is opened, streamed and closed in turn; every
GBuf fill and every readout is counted per chunk; refresh events are stepped through one at
a time. Same semantics, independent arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from dse.workload.gemv import DTYPE_BYTES

__all__ = ["gemv_reference"]


def gemv_reference(p: Mapping[str, Any]) -> dict[str, Any]:
    """``p`` maps dotted parameter paths (``hw.pim.banks``, ``workload.K``…) to numbers."""
    g = {k.rsplit(".", 1)[-1]: v for k, v in p.items()}
    db = DTYPE_BYTES[g["dtype"]]
    e = g["col_bytes"] // db
    t_mac = g["tCCD_mac"] * math.ceil(e / g["lanes"])
    cols_per_row = g["row_bytes"] // g["col_bytes"]
    K, M = g["K"], g["M"]

    # outputs of the busiest bank: the M rows are dealt to channels, then to banks
    m_channel = math.ceil(M / g["channels"])
    m_bank = math.ceil(m_channel / g["banks"])

    # the GBuf holds whole columns of x; the reduction runs chunk by chunk
    k_chunk = max(g["gbuf_bytes"] // g["col_bytes"], 1) * e
    chunks = []
    start = 0
    while start < K:
        chunks.append(min(k_chunk, K - start))
        start += k_chunk

    # MAC columns in issue order, packed contiguously into bank rows
    n_mac = sum(m_bank * math.ceil(c / e) for c in chunks)
    rows = [cols_per_row] * (n_mac // cols_per_row)
    if n_mac % cols_per_row:
        rows.append(n_mac % cols_per_row)
    t = 0
    for k in rows:
        act = t
        slices = math.ceil(e / g["lanes"])
        last_read = act + g["tRCD_mac"] + (k - 1) * t_mac + (slices - 1) * g["tCCD_mac"]
        pre = max(last_read + g["tRTP"], act + g["tRAS"])
        t = pre + g["tRP"]
    t_compute = t

    # transfers: each chunk's input bursts, and each chunk's partial sums of the channel's outputs
    burst = math.ceil(8 * g["col_bytes"] / (g["bus_width_bits"] * g["data_rate"]))
    wr = [math.ceil(c * db / g["col_bytes"]) for c in chunks]
    rd = [math.ceil(m_channel * g["out_bytes"] / g["col_bytes"]) for _ in chunks]
    n_rd = sum(rd)
    t_io = (sum(wr) + n_rd) * burst
    if g["io"] in (0, "serial"):
        busy = t_compute + t_io
    else:
        first_fill, last_read = wr[0] * burst, burst
        busy = max(t_compute, t_io - first_fill - last_read) + first_fill + last_read

    # refresh: every tREFI the channel stalls for tRFC
    t, left, n_ref, next_ref = 0, busy, 0, g["tREFI"]
    if g["tRFC"] == 0:
        t = busy
    while left > 0 and g["tRFC"] > 0:
        if left <= next_ref - t:
            t += left
            left = 0
        else:
            left -= next_ref - t
            t = next_ref + g["tRFC"]
            n_ref += 1
            next_ref += g["tREFI"]
    cycles = t
    return {
        "cycles": cycles,
        "time_ns": cycles * g["tCK_ns"],
        "n_mac": n_mac,
        "n_act": len(rows),
        "n_wr_inp": sum(wr),
        "n_rd_out": n_rd,
        "n_ref": n_ref,
        "frac_mac": n_mac * t_mac / cycles,
        "frac_row": (t_compute - n_mac * t_mac) / cycles,
        "frac_io": (busy - t_compute) / cycles,
        "frac_refresh": n_ref * g["tRFC"] / cycles,
        "mac_util": M * K / (g["channels"] * g["banks"] * g["lanes"] * cycles / g["tCCD_mac"]),
        "internal_GBps": M * K * db / (cycles * g["tCK_ns"]),
    }
