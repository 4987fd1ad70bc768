"""Command-by-command reference: an AiM ISR trace issued on PIM channels, one command at a time.

Plain Python, one design point, used by the tests and the validation to check the
vectorized trace evaluation in :mod:`dse.models.pim_trace` (DESIGN.md §6, ring 1).

What it simulates (the AiM DMA and channel controllers of CENT's simulator):

* **DMA.** The host requests are decoded in order, one per cycle; a request of ``opsize``
  columns becomes ``opsize`` channel requests on every channel of its mask. After a
  blocking request (RD_MAC, RD_AF) the DMA decodes nothing until every channel has
  returned its data; SYNC and EOC wait until every channel has drained. A request decoded
  at cycle ``d`` can issue its first command at ``d + 1``.
* **Channel controller.** Requests issue strictly in order, one DRAM command per cycle.
  Before a request's own command the controller issues what the bank state needs: an
  all-bank command that needs a row (MAC16, AF16, EWMUL16, WRA16) is preceded by PREA when
  any bank holds another row and by ACT16 when a bank is closed; a single-bank command by PRE
  / ACT of its bank. Rows stay open (open page) until a command needs another row. A request
  whose access mode (register vs array) differs from the channel's issues TMOD first, at the
  cycle its next command would have been ready. A command issues at the first cycle that
  meets every timing rule of :mod:`dse.hw.pim_commands` against the commands before it.
* **End.** EOC completes on a channel the cycle after it reaches the head of the queue and
  after every write-like command's completion; the trace ends when every channel completed
  it. The cycle count is the controller cycle at which that happens.

Refresh is not issued (the AiM device model in CENT's simulator never refreshes).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from dse.hw.pim_commands import (
    ALL_BANK_ROW,
    CMD,
    NO_RULE,
    TIMINGS,
    command_latency,
    latency_tables,
)
from dse.workload.pim_trace import KIND_FENCE, KIND_MEM, KIND_NONE, AimTrace

__all__ = ["timings", "simulate_aim"]

_BANKS, _BG = 16, 4
_READERS = ("RD", "RDMAC16", "RDAF16")


def timings(pim) -> dict[str, int]:
    """The command-level timings of a :class:`~dse.hw.pim.PimChannel` (or a mapping with its
    field names), with the documented inheritance for fields left at 0."""
    get = (lambda k: pim[k]) if isinstance(pim, Mapping) else (lambda k: getattr(pim, k))
    t = {k: int(np.asarray(get(k))) for k in TIMINGS}
    return inherit(t)


def inherit(t: dict) -> dict:
    """Fields at 0 that stand for another: tRCD_wr → tRCD, tRC → tRAS + tRP, the MAC-path
    activations (AF, EWMUL, copies) → tRCD_mac. Works on numbers and traced arrays."""
    import jax.numpy as jnp

    def pick(v, alt):
        if isinstance(v, int | np.integer):
            return int(alt) if v == 0 else v
        return jnp.where(v == 0, alt, v)

    t = dict(t)
    t["tRCD_wr"] = pick(t["tRCD_wr"], t["tRCD"])
    t["tRC"] = pick(t["tRC"], t["tRAS"] + t["tRP"])
    for k in ("tRCD_af", "tRCD_ewmul", "tRCD_rdcp", "tRCD_wrcp"):
        t[k] = pick(t[k], t["tRCD_mac"])
    return t


class _Channel:
    def __init__(self, tabs, lat):
        n = tabs[0].shape[0]
        self.tabs, self.lat = tabs, lat
        self.ch = np.full(n, NO_RULE, np.int64)
        self.bg = np.full((_BG, n), NO_RULE, np.int64)
        self.bk = np.full((_BANKS, n), NO_RULE, np.int64)
        self.row = np.full(_BANKS, -1, np.int64)
        self.reg = 0
        self.last = 0  # last issue cycle (first command at >= 1)
        self.wdone = 0  # latest completion of a write-like command
        self.counts: dict[str, int] = {}

    def ready(self, c, bank):
        r = self.ch[c]
        if bank >= 0:
            r = max(r, self.bg[bank // 4][c], self.bk[bank][c])
        return int(r)

    def issue(self, name, bank, t):
        c = CMD[name]
        np.maximum(self.ch, t + self.tabs[0][c], out=self.ch)
        if bank >= 0:
            np.maximum(self.bg[bank // 4], t + self.tabs[1][c], out=self.bg[bank // 4])
            np.maximum(self.bk[bank], t + self.tabs[2][c], out=self.bk[bank])
        self.last = t
        self.counts[name] = self.counts.get(name, 0) + 1

    def preq(self, cmd, bank, row):
        if cmd in ALL_BANK_ROW:
            if np.any((self.row >= 0) & (self.row != row)):
                return "PREA"
            if np.any(self.row < 0):
                return "ACT16"
            return cmd
        if cmd in ("RD", "WR", "MAC", "RDCP", "WRCP"):
            if self.row[bank] < 0:
                return "ACT"
            if self.row[bank] != row:
                return "PRE"
        return cmd

    def request(self, cmd, bank, row, reg, avail):
        """Issue one channel request; → the cycle its own command issued."""
        while True:
            c1 = self.preq(cmd, bank, row)
            t = max(self.last + 1, avail, self.ready(CMD[c1], bank))
            if reg != self.reg:
                self.issue("TMOD", -1, t)
                self.reg = reg
                continue
            self.issue(c1, bank if c1 not in ("ACT16", "PREA") else -1, t)
            if c1 == "ACT16":
                self.row[:] = row
            elif c1 == "PREA":
                self.row[:] = -1
            elif c1 == "ACT":
                self.row[bank] = row
            elif c1 == "PRE":
                self.row[bank] = -1
            if c1 == cmd:
                if cmd == "WRA16":
                    self.row[:] = -1
                done = t + self.lat.get(cmd, 1)
                if cmd not in _READERS:
                    self.wdone = max(self.wdone, done)
                return t


def _channel_ids(mask: int) -> list[int]:
    return [31 - i for i in range(32) if mask >> i & 1]


def simulate_aim(trace: AimTrace, pim) -> dict:
    """Cycles of ``trace`` on channels of ``pim`` (see the module docstring).

    Returns ``cycles`` (controller cycles until EOC completed), ``per_channel`` busy end,
    ``counts`` (DRAM commands issued, TMOD and the row commands included)."""
    t = timings(pim)
    tabs = latency_tables(t)
    lat = {k: int(v) for k, v in command_latency(t).items()}
    chans: dict[int, _Channel] = {}

    def chan(i):
        if i not in chans:
            chans[i] = _Channel(tabs, lat)
        return chans[i]

    d = -1
    release = 0
    end = 0
    for k in range(len(trace)):
        d = max(d + 1, release)
        kind = int(trace.kind[k])
        if kind == KIND_NONE:
            continue
        cmd = trace.command[k]
        if kind == KIND_FENCE:
            u = d + 2  # channels with nothing queued
            for c in chans.values():
                te = max(d + 1, c.last + 1)
                u = max(u, te + 1, c.wdone + 1)
            release = u
            end = u
            continue
        bank, row, reg = int(trace.bank[k]), int(trace.row[k]), int(trace.reg[k])
        if kind == KIND_MEM:
            ids = [int(trace.mask[k])]
        else:
            ids = _channel_ids(int(trace.mask[k]))
        last = {}
        for _col in range(int(trace.opsize[k])):
            for i in ids:
                last[i] = chan(i).request(cmd, bank, row, reg, d + 1)
        if trace.blocking[k]:
            release = max(max(ti + lat[cmd], ti + 1) for ti in last.values())
    counts: dict[str, int] = {}
    for c in chans.values():
        for name, n in c.counts.items():
            counts[name] = counts.get(name, 0) + n
    return {
        "cycles": int(end),
        "per_channel": {i: c.last for i, c in sorted(chans.items())},
        "counts": counts,
    }
