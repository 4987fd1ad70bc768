"""Command-level PIM channel simulator: static, ping-pong and dynamic scheduling.

Plain Python, one design point at a time, written to read like the mechanism described in
:mod:`dse.models.pim_kernel` (which states the rules; this module follows them command by
command). :func:`command_stream` lays the kernel out in the banks and emits the explicit
commands of every tile (WR-INP, ACT, MAC, PRE, RD-OUT with the buffer entries each
touches); :func:`simulate` issues them cycle by cycle under a scheduling policy and returns
the cycle count, a per-command timeline, per-unit busy times and command counts.
:func:`timeline_plot` draws the timeline ("where do the cycles go").

Row activations are derived from the explicit (row, column) address of every MAC: a MAC
whose row differs from the open one closes it (PRE) and opens its own (ACT). The vectorized
model counts the same rows with closed forms; the tests check that both agree.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from dse.policy import RefreshMode, Sched
from dse.workload.gemv import DTYPE_BYTES, KernelKind

__all__ = ["Command", "Tile", "Tiling", "command_stream", "simulate", "tiling", "timeline_plot"]


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclasses.dataclass(frozen=True)
class Tiling:
    """How one channel's share of the kernel is cut into tiles (see pim_kernel's docstring)."""

    e: int  # elements per column access
    t_mac: int  # MAC-to-MAC spacing (tCCD_mac per lane-wide slice)
    rtp: int  # last MAC issue → PRE
    c: int  # columns per DRAM row
    m_b: int  # outputs per bank
    kc: int  # columns per output (reduction length in columns)
    q: int  # queries per pass (GQA row reuse) sharing each weight column
    gq: int  # queries of the group
    reps: int  # (head, pass) repetitions of the tile sequence on this channel
    heads: int  # heads per channel
    kt: int  # columns per chunk (per query)
    n_chunk: int
    t_o: int  # outputs per tile
    n_groups: int  # tiles per chunk
    keep: bool  # partial sums stay in the OBuf across chunks
    gb_split: bool  # GBuf used as two halves (ping-pong / dynamic double buffering)
    ob_split: bool
    bpe: int  # bursts per OBuf entry read out (all banks' values)
    bpe_last: int  # ... for the last output slot, which only some banks fill
    t_io: int  # cycles per burst on the data bus
    rows_used: int  # DRAM rows per bank this channel's data occupies
    useful_macs: int  # multiply-accumulates of the kernel on this channel (padding excluded)

    @property
    def tiles_per_rep(self) -> int:
        return self.n_chunk * self.n_groups


def tiling(p: Mapping[str, Any]) -> Tiling:
    """Tile the kernel of point ``p`` (dotted paths → values) for its scheduling policy."""
    g = {k.rsplit(".", 1)[-1]: v for k, v in p.items()}
    db = DTYPE_BYTES[g["dtype"]]
    col, banks = g["col_bytes"], g["banks"]
    e = col // db
    t_mac = g["tCCD_mac"] * _cdiv(e, g["lanes"])
    rtp = t_mac - g["tCCD_mac"] + g["tRTP"]
    c = g["row_bytes"] // col
    kind = KernelKind(g["kind"])
    heads = _cdiv(g["heads"] * g["partitions"], g["channels"])
    tokens = _cdiv(g["L"], g["partitions"])
    if kind == KernelKind.gemv:
        m_w, k_w, heads, gq = _cdiv(g["M"], g["channels"]), g["K"], 1, 1
    elif kind == KernelKind.score:
        m_w, k_w, gq = tokens, g["d"], g["g"]
    else:
        m_w, k_w, gq = g["d"], tokens, g["g"]
    m_b = _cdiv(m_w, banks)
    kc = _cdiv(k_w, e)
    n_gb = g["gbuf_bytes"] // col
    n_ob = g["obuf_entries"]
    split = Sched(g["sched"]) != Sched.static
    # dynamic scheduling double-buffers the GBuf only where it is dual-ported: on a
    # single-ported buffer a prefetch would stall the MACs it is meant to overlap
    gb_double = split and (Sched(g["sched"]) == Sched.pingpong or bool(g["dual_port"]))
    # GQA row reuse: as many queries per pass as both buffers can serve, passes balanced
    q_max = max(1, min(gq, n_ob, n_gb)) if g["row_reuse"] else 1
    passes = _cdiv(gq, q_max)
    q = _cdiv(gq, passes)

    def chunking(gb_cap: int, ob_cap: int) -> tuple[int, bool, int]:
        g_cols = max(1, gb_cap // q)
        if kc <= g_cols:
            kt = kc
        elif g_cols >= c:
            kt = (g_cols // c) * c  # whole rows per chunk
        else:
            kt = g_cols
        keep = _cdiv(kc, kt) > 1 and q * m_b <= ob_cap
        t_o = m_b if keep else max(1, min(m_b, ob_cap // q))
        return kt, keep, t_o

    # a buffer is used as two halves only where halving does not shrink the tiles
    full = chunking(n_gb, n_ob)
    gb_split = gb_double and n_gb >= 2 * q and chunking(n_gb // 2, n_ob)[0] == full[0]
    ob_split = split and n_ob >= 2 * q and chunking(n_gb, n_ob // 2)[1:] == full[1:]
    kt, keep, t_o = full
    n_chunk = _cdiv(kc, kt)
    n_groups = _cdiv(m_b, t_o)
    if kc <= c:
        rows_head = _cdiv(m_b, c // kc)
    elif kt >= c:
        rows_head = m_b * _cdiv(kc, c)
    else:
        rows_head = m_b * _cdiv(n_chunk, c // kt)
    t_io = math.ceil(8 * col / (g["bus_width_bits"] * g["data_rate"]))
    return Tiling(
        e=e,
        t_mac=t_mac,
        rtp=rtp,
        c=c,
        m_b=m_b,
        kc=kc,
        q=q,
        gq=gq,
        reps=heads * passes,
        heads=heads,
        kt=kt,
        n_chunk=n_chunk,
        t_o=t_o,
        n_groups=n_groups,
        keep=keep,
        gb_split=gb_split,
        ob_split=ob_split,
        bpe=_cdiv(banks * g["out_bytes"], col),
        bpe_last=_cdiv((m_w - (m_b - 1) * banks) * g["out_bytes"], col),
        t_io=t_io,
        rows_used=heads * rows_head,
        useful_macs=heads * gq * m_w * k_w,
    )


@dataclasses.dataclass(frozen=True)
class Command:
    """One command of the stream. ``row``/``col`` address the banks (MAC, ACT, PRE);
    ``gbuf``/``obuf`` are the buffer entries it reads or writes (``(query, column)`` and
    ``(output, query)``)."""

    kind: str  # WR-INP, ACT, MAC, PRE, RD-OUT
    tile: int
    row: int = -1
    col: int = -1
    gbuf: tuple[int, int] | None = None
    obuf: tuple[int, int] | None = None


@dataclasses.dataclass
class Tile:
    index: int
    rep: int
    chunk: int
    group: int
    writes: list[Command]  # WR-INP of this chunk's input (first tile of a chunk), else []
    macs: list[Command]
    reads: list[Command]  # RD-OUT of the tile's outputs (if they are read out now)
    gb_group: int
    ob_group: int


def _mac_address(t: Tiling, head: int, m: int, k: int) -> tuple[int, int]:
    """(row, column) in every bank of column ``k`` of output ``m`` of ``head``."""
    if t.kc <= t.c:  # short outputs packed side by side in a row
        per = t.c // t.kc
        rows_head = _cdiv(t.m_b, per)
        return head * rows_head + m // per, (m % per) * t.kc + k
    if t.kt >= t.c:  # long outputs: each starts a row; chunks are whole rows
        rpo = _cdiv(t.kc, t.c)
        return head * t.m_b * rpo + m * rpo + k // t.c, k % t.c
    spr = t.c // t.kt  # chunks narrower than a row: a chunk never straddles two rows
    rpo = _cdiv(t.n_chunk, spr)
    j, x = divmod(k, t.kt)
    return head * t.m_b * rpo + m * rpo + j // spr, (j % spr) * t.kt + x


def command_stream(p: Mapping[str, Any]) -> tuple[Tiling, list[Tile]]:
    """The kernel's explicit command stream on one channel, tile by tile."""
    t = tiling(p)
    tiles: list[Tile] = []
    passes = t.reps // t.heads
    idx = 0
    for rep in range(t.reps):
        head = rep // passes
        for j in range(t.n_chunk):
            k0 = j * t.kt
            cols = min(t.kt, t.kc - k0)
            for gi in range(t.n_groups):
                outs = range(gi * t.t_o, min(t.m_b, (gi + 1) * t.t_o))
                writes = (
                    [Command("WR-INP", idx, gbuf=(qi, x)) for qi in range(t.q) for x in range(cols)]
                    if gi == 0
                    else []
                )
                macs = []
                for m in outs:
                    for x in range(cols):
                        row, colad = _mac_address(t, head, m, k0 + x)
                        for qi in range(t.q):
                            macs.append(
                                Command("MAC", idx, row=row, col=colad, gbuf=(qi, x), obuf=(m, qi))
                            )
                readout = j == t.n_chunk - 1 or not t.keep
                reads = (
                    [Command("RD-OUT", idx, obuf=(m, qi)) for m in outs for qi in range(t.q)]
                    if readout
                    else []
                )
                gbg = (rep * t.n_chunk + j) % 2 if t.gb_split else 0
                obg = ((rep if t.keep else idx) % 2) if t.ob_split else 0
                tiles.append(Tile(idx, rep, j, gi, writes, macs, reads, gbg, obg))
                idx += 1
    return t, tiles


@dataclasses.dataclass
class SimResult:
    cycles: int
    busy_cycles: int  # before refresh
    timeline: list[tuple[str, str, int, int, int]]  # (unit, command, start, end, tile)
    busy: dict[str, int]  # unit → cycles it is occupied
    counts: dict[str, int]
    row_cycles: int  # ACT/PRE overhead of the rows (unstalled), summed over tiles
    mac_cycles: int
    refresh_cycles: int
    tiling: Tiling


def _compute(t: Tiling, p: Mapping[str, int], tile: Tile, act0: int, ready: int, log: list):
    """Issue a tile's ACT/MAC/PRE commands: the first ACT at ``act0``, the first MAC not
    before ``ready``. Returns (MAC results done, next ACT allowed, unstalled row overhead)."""
    open_row, act, last = None, 0, None
    overhead = 0
    rows_k: list[int] = []
    for cmd in tile.macs:
        if cmd.row != open_row:
            if open_row is None:
                act = act0
            else:
                pre = max(last + t.rtp, act + p["tRAS"])
                log.append(("bank", "PRE", pre, pre + p["tRP"], tile.index))
                act = pre + p["tRP"]
            log.append(("bank", "ACT", act, act + p["tRCD_mac"], tile.index))
            issue = act + p["tRCD_mac"]
            if open_row is None:
                issue = max(issue, ready)
            open_row = cmd.row
            rows_k.append(0)
        else:
            issue = last + t.t_mac
        log.append(("bank", "MAC", issue, issue + t.t_mac, tile.index))
        last = issue
        rows_k[-1] += 1
    pre = max(last + t.rtp, act + p["tRAS"])
    log.append(("bank", "PRE", pre, pre + p["tRP"], tile.index))
    for k in rows_k:  # what each row would cost unstalled: ACT → ACT
        overhead += max(p["tRCD_mac"] + (k - 1) * t.t_mac + t.rtp, p["tRAS"]) + p["tRP"]
        overhead -= k * t.t_mac
    return last + t.t_mac, pre + p["tRP"], overhead


def _bus(kind: str, n: int, start: int, t: Tiling, cl: int, tile: int, log: list) -> int:
    """``n`` bursts back to back from ``start`` (a readout's data follows its CL); → end."""
    if n == 0:
        return start
    first = start + (cl if kind == "RD-OUT" else 0)
    for i in range(n):
        log.append(("bus", kind, first + i * t.t_io, first + (i + 1) * t.t_io, tile))
    return first + n * t.t_io


def simulate(p: Mapping[str, Any]) -> SimResult:
    """Issue the command stream of point ``p`` under ``policy.sched`` (see pim_kernel)."""
    g = {k.rsplit(".", 1)[-1]: v for k, v in p.items()}
    t, tiles = command_stream(p)
    sched = Sched(g["sched"])
    cl = g["CL"]
    log: list[tuple[str, str, int, int, int]] = []
    nrd = [sum(t.bpe_last if c.obuf[0] == t.m_b - 1 else t.bpe for c in x.reads) for x in tiles]
    nwr = [len(x.writes) for x in tiles]
    row_cycles = 0
    ends: list[int] = []  # when each tile's MAC results are done

    if sched == Sched.static:
        now, cmp_free = 0, 0
        for i, tile in enumerate(tiles):
            now = _bus("WR-INP", nwr[i], now, t, cl, i, log)
            done, cmp_free, ov = _compute(t, g, tile, max(now, cmp_free), now, log)
            row_cycles += ov
            pre_issue = cmp_free - g["tRP"]
            now = max(done, pre_issue)
            now = _bus("RD-OUT", nrd[i], now, t, cl, i, log) if nrd[i] else now
            ends.append(done)
        total = max(now, cmp_free - g["tRP"])
    elif sched == Sched.pingpong:
        s, cmp_free = 0, 0
        if t.gb_split:
            s = _bus("WR-INP", nwr[0], 0, t, cl, 0, log)
        for i, tile in enumerate(tiles):
            bus = s
            prev_rd = nrd[i - 1] if i else 0
            bus = _bus("RD-OUT", prev_rd, bus, t, cl, i - 1, log)
            serial_rd = prev_rd and (g["blocking_readout"] or not t.ob_split)
            c0 = bus if serial_rd else s
            if nwr[i] and not t.gb_split:
                bus = _bus("WR-INP", nwr[i], bus, t, cl, i, log)
                c0 = bus
            if t.gb_split and i + 1 < len(tiles) and nwr[i + 1]:
                bus = _bus("WR-INP", nwr[i + 1], bus, t, cl, i + 1, log)
            done, cmp_free, ov = _compute(t, g, tile, max(c0, cmp_free), c0, log)
            row_cycles += ov
            ends.append(done)
            s = max(done, bus)  # hand-off: both halves done
        total = max(_bus("RD-OUT", nrd[-1], s, t, cl, len(tiles) - 1, log), cmp_free - g["tRP"])
    else:  # dynamic
        io_free, cmp_free, last_done, last_rd_end = 0, 0, 0, 0
        gb_ready, gb_free, ob_free = [0, 0], [0, 0], [0, 0]
        dual = bool(g["dual_port"])
        next_w = {}  # tile index → the chunk-start tile whose input it prefetches
        starts = [i for i, x in enumerate(tiles) if nwr[i]]
        for a, b in zip(starts, starts[1:], strict=False):
            if t.gb_split:
                next_w[a] = b
            else:
                next_w[b - 1] = b

        def write(i: int, io_free: int) -> int:
            grp = tiles[i].gb_group
            st = max(io_free, gb_free[grp], 0 if dual else last_done)
            end = _bus("WR-INP", nwr[i], st, t, cl, i, log)
            gb_ready[grp] = end
            return end

        io_free = write(0, 0)
        for i, tile in enumerate(tiles):
            if t.gb_split and i in next_w:
                io_free = write(next_w[i], io_free)
            ready = max(gb_ready[tile.gb_group], ob_free[tile.ob_group])
            if g["blocking_readout"]:
                ready = max(ready, last_rd_end)
            if not dual:
                ready = max(ready, io_free)
            done, cmp_free, ov = _compute(t, g, tile, cmp_free, ready, log)
            row_cycles += ov
            ends.append(done)
            last_done = done
            gb_free[tile.gb_group] = done
            if nrd[i]:
                st = max(io_free, done)
                io_free = _bus("RD-OUT", nrd[i], st, t, cl, i, log)
                ob_free[tile.ob_group] = io_free
                last_rd_end = io_free
            if not t.gb_split and i in next_w:
                io_free = write(next_w[i], io_free)
        total = max(io_free, cmp_free - g["tRP"])

    busy = total
    cycles, n_ref, log_ref = _refresh(g, busy, ends)
    log.extend(log_ref)
    counts = {k: 0 for k in ("ACT", "MAC", "PRE", "WR-INP", "RD-OUT", "REF")}
    for _unit, kind, *_ in log:
        counts[kind] += 1
    occupied: dict[str, int] = {"bank": 0, "bus": 0, "refresh": n_ref * g["tRFC"]}
    for unit, kind, a, b, _ in log:
        if kind in ("MAC", "WR-INP", "RD-OUT"):
            occupied[unit] += b - a
    n_mac = counts["MAC"]
    return SimResult(
        cycles=cycles,
        busy_cycles=busy,
        timeline=sorted(log, key=lambda r: (r[2], r[0])),
        busy=occupied,
        counts=counts,
        row_cycles=row_cycles,
        mac_cycles=n_mac * t.t_mac,
        refresh_cycles=n_ref * g["tRFC"],
        tiling=t,
    )


def _refresh(g: Mapping[str, Any], busy: int, ends: list[int]):
    """Apply refresh to a schedule of ``busy`` cycles whose tiles' MACs finish at ``ends``.

    ``stall``: refresh k starts after ``tREFI + (k-1)(tREFI - tRFC)`` cycles of work and
    freezes the channel for tRFC. ``skip``: tiles run whole; one that would cross the next
    refresh waits for it to end (a tile longer than a refresh window runs through it)."""
    trfc, trefi = g["tRFC"], g["tREFI"]
    if trfc <= 0 or trfc >= trefi:
        return busy, 0, []
    log = []
    if RefreshMode(g["refresh"]) == RefreshMode.stall:
        n, work_at = 0, trefi
        while work_at < busy:
            wall = work_at + n * trfc
            log.append(("refresh", "REF", wall, wall + trfc, -1))
            n += 1
            work_at += trefi - trfc
        return busy + n * trfc, n, log
    # skip: walk the tiles as segments of the busy timeline
    bounds = [0, *ends[:-1], busy]
    wall, n, next_ref = 0, 0, trefi
    for a, b in zip(bounds, bounds[1:], strict=False):
        d = b - a
        if wall + d > next_ref and d <= trefi - trfc:
            log.append(("refresh", "REF", next_ref, next_ref + trfc, -1))
            wall = next_ref + trfc
            n += 1
            next_ref += trefi
        wall += d
        while wall > next_ref:  # a tile too long for a window runs through refreshes
            log.append(("refresh", "REF", next_ref, next_ref + trfc, -1))
            wall += trfc
            n += 1
            next_ref += trefi
    return wall, n, log


def timeline_plot(result: SimResult, path: str, max_commands: int = 400, title: str = ""):
    """Gantt chart of the first ``max_commands`` commands: bank array (ACT/MAC/PRE), data bus
    (WR-INP/RD-OUT) and refresh lanes, one colour per command type."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {
        "ACT": "#d62728",
        "PRE": "#ff9896",
        "MAC": "#1f77b4",
        "WR-INP": "#2ca02c",
        "RD-OUT": "#9467bd",
        "REF": "#7f7f7f",
    }
    lanes = {"bank": 2, "bus": 1, "refresh": 0}
    rows = result.timeline[:max_commands]
    fig, ax = plt.subplots(figsize=(11, 3.2))
    for unit, kind, a, b, _ in rows:
        ax.broken_barh([(a, max(b - a, 1))], (lanes[unit] - 0.35, 0.7), color=colors[kind])
    ax.set_yticks(list(lanes.values()), [f"{u}" for u in lanes])
    ax.set_xlabel("cycle")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    ax.legend(handles, list(colors), ncol=6, loc="upper center", bbox_to_anchor=(0.5, -0.28))
    b = result.busy
    ax.set_title(
        title
        or f"{result.cycles} cycles; MAC {result.mac_cycles / result.cycles:.0%}, bus "
        f"{b['bus'] / result.cycles:.0%}, refresh {b['refresh'] / result.cycles:.0%}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
