"""Cycles of a user's PIM command trace (``workload=trace``) on one design point.

A pure function of ONE design point and a trace that is fixed for the whole call
(:class:`dse.workload.pim_trace.AimTrace`): the trace's requests run in one ``lax.scan``
whose state is, per PIM channel, the earliest cycle at which each DRAM command may issue
at the channel, each bank group and each bank, the open row of every bank, the access
mode and the last issue cycle. Every timing comes from the point's
:class:`~dse.hw.pim.PimChannel` through :func:`dse.hw.pim_commands.latency_tables`, so the
same trace can be swept over presets and timings.

The semantics are those of :mod:`dse.reference.pim_commands` (the tests hold the two
together): in-order issue, one command per cycle per channel; PREA/ACT16 (PRE/ACT for a
single bank) before a command that needs another row; TMOD when the access mode changes; a
request of ``opsize`` columns issues its first column like any command and the others at
the command's own spacing ``max(1, rule(cmd → cmd))``; blocking requests (RD_MAC, RD_AF)
hold the DMA until their data is back; EOC ends the trace once every channel drained.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from dse.hw.pim_commands import (
    ALL_BANK_ROW,
    CMD,
    COMMANDS,
    NO_RULE,
    TIMINGS,
    command_latency,
    latency_tables,
)
from dse.reference.pim_commands import inherit
from dse.workload.pim_trace import KIND_CMD, KIND_FENCE, KIND_MEM, AimTrace

__all__ = ["TraceArrays", "trace_arrays", "run_trace", "METRICS"]

_BANK_CMDS = ("RD", "WR", "MAC", "RDCP", "WRCP")
_READERS = ("RD", "RDMAC16", "RDAF16")
KIND_PAD = -1
#: time between a channel's commands is charged to the later one: 0 MAC streaming, 1 row
#: switching (ACT/PRE), 2 transfers and mode switches
_CATEGORY = {
    **{c: 2 for c in COMMANDS},
    **{c: 0 for c in ("MAC", "MAC16", "AF16", "EWMUL16")},
    **{c: 1 for c in ("ACT", "ACT16", "PRE", "PREA", "REFab")},
}

METRICS = {
    "cycles": ("cycles", "controller cycles until the trace's EOC completed"),
    "n_tmod": ("commands", "register/array mode switches (TMOD) issued"),
    "n_act": ("commands", "row activations (ACT16 or ACT) issued"),
    "n_pre": ("commands", "precharges (PREA or PRE) issued"),
}


class TraceArrays:
    """A trace as per-request integer arrays (``n`` requests padded to ``length``) and the
    list of channels it touches (``chan_ids`` in the DMA's numbering)."""

    def __init__(self, tr: AimTrace, length: int | None = None, n_chan: int | None = None):
        n = len(tr)
        length = max(length or n, n)
        ids = tr.channels or [0]
        self.chan_ids = tuple(ids)
        C = max(len(ids), n_chan or 0)
        pos = {c: i for i, c in enumerate(ids)}
        on = np.zeros((length, C), bool)
        idv = np.asarray(ids, np.int64)
        bits = (tr.mask[:, None] >> (31 - idv)[None, :]) & 1
        on[:n, : len(ids)] = (tr.kind == KIND_CMD)[:, None] & (bits == 1)
        mem = np.flatnonzero(tr.kind == KIND_MEM)
        if len(mem):
            on[mem, [pos[int(c)] for c in tr.mask[mem]]] = True

        def col(x, fill):
            out = np.full(length, fill, np.int64)
            out[:n] = x
            return out

        cmd = np.array([CMD.get(c, 0) for c in tr.command], np.int64)
        allrow = np.array([c in ALL_BANK_ROW for c in tr.command], np.int64)
        bankc = np.array([c in _BANK_CMDS for c in tr.command], np.int64)
        reader = np.array([c in _READERS for c in tr.command], np.int64)
        self.kind = col(tr.kind, KIND_PAD)
        self.cmd = col(cmd, 0)
        self.opsize = col(tr.opsize, 1)
        self.bank = col(tr.bank, -1)
        self.row = col(tr.row, -1)
        self.reg = col(tr.reg, 0)
        self.blocking = col(tr.blocking, 0)
        self.allrow = col(allrow, 0)
        self.bankc = col(bankc, 0)
        self.reader = col(reader, 0)
        self.on = on
        self.n = n
        self.counts = tr.counts()

    KEYS = ("kind", "cmd", "opsize", "bank", "row", "reg", "blocking", "allrow", "bankc",
            "reader", "on")  # fmt: skip

    def as_numpy(self) -> dict:
        return {k: getattr(self, k) for k in self.KEYS}

    def as_jax(self) -> dict:
        return {k: jnp.asarray(getattr(self, k)) for k in self.KEYS}


@functools.lru_cache(maxsize=16)
def _cached(path: str, mtime: float, length: int | None) -> TraceArrays:
    from dse.workload.pim_trace import load_aim_trace

    return TraceArrays(load_aim_trace(path), length)


def trace_arrays(path: str, length: int | None = None) -> TraceArrays:
    """Load (once per file version) a trace file's arrays (a path or a shipped example)."""
    import os

    from dse.workload.pim_trace import resolve_trace_path

    p = str(resolve_trace_path(path))
    return _cached(p, os.path.getmtime(p), length)


def _timings(pim) -> dict:
    return inherit({k: jnp.asarray(getattr(pim, k), jnp.int64) for k in TIMINGS})


def run_trace(ta: dict, n_chan: int, pim) -> dict:
    """Cycles of trace arrays ``ta`` (:meth:`TraceArrays.as_jax`) over ``n_chan`` channels on
    one point's PIM channel ``pim`` (leaves are scalars). See the module docstring."""
    st0, step = engine(pim, n_chan)
    st, _ = jax.lax.scan(lambda s, x: (step(s, x), None), st0, ta)
    return result(st)


def result(st: dict) -> dict:
    """The metrics of an engine state after the trace's EOC."""
    return {
        "cycles": st["end"],
        "last": st["last"],
        "busy": st["busy"],
        "n_tmod": st["n_tmod"],
        "n_act": st["n_act"],
        "n_pre": st["n_pre"],
        "ncmd": st["ncmd"],
        "requests": st["nreq"],
    }


def request(name: str, *, opsize=1, row=-1, bank=-1, n_chan: int = 1) -> dict:
    """One request of command ``name`` (a :data:`~dse.hw.pim_commands.COMMANDS` name, or
    ``"EOC"``) on every channel, as the engine's step takes it; ``opsize`` and ``row`` may
    be traced."""
    from dse.workload.pim_trace import AIM_ISR

    flags = {cmd: (blk, reg) for cmd, _, _, blk, reg in AIM_ISR.values() if cmd}
    blocking, reg = flags.get(name, (False, False))
    fence = name in ("EOC", "SYNC")
    i64 = jnp.int64
    return {
        "kind": jnp.asarray(KIND_FENCE if fence else KIND_CMD, i64),
        "cmd": jnp.asarray(0 if fence else CMD[name], i64),
        "opsize": jnp.asarray(opsize, i64),
        "bank": jnp.asarray(bank, i64),
        "row": jnp.asarray(row, i64),
        "reg": jnp.asarray(int(reg), i64),
        "blocking": jnp.asarray(int(blocking), i64),
        "allrow": jnp.asarray(int(name in ALL_BANK_ROW), i64),
        "bankc": jnp.asarray(int(name in _BANK_CMDS), i64),
        "reader": jnp.asarray(int(name in _READERS), i64),
        "on": jnp.ones(n_chan, bool),
    }


def engine(pim, n_chan: int, banked: bool = True):
    """The engine for one point: ``(state0, step)`` with ``step(state, request) → state``.
    ``banked=False`` drops the bank-group and bank timing state: only for request streams
    of all-bank and channel commands (a smaller program)."""
    t = _timings(pim)
    Lch, Lbg, Lbk = latency_tables(t, jnp)
    lat_map = command_latency(t)
    lat = jnp.stack([jnp.asarray(lat_map.get(c, 1), jnp.int64) for c in COMMANDS])
    N = len(COMMANDS)
    C = n_chan
    i64 = jnp.int64
    TMOD, ACT16, PREA, ACT, PRE = (CMD[c] for c in ("TMOD", "ACT16", "PREA", "ACT", "PRE"))
    WRA16 = CMD["WRA16"]

    st0 = {
        "rch": jnp.full((C, N), NO_RULE, i64),
        **(
            {"rbg": jnp.full((C, 4, N), NO_RULE, i64), "rbk": jnp.full((C, 16, N), NO_RULE, i64)}
            if banked
            else {}
        ),
        "row": jnp.full((C, 16), -1, i64),
        "mode": jnp.zeros(C, i64),
        "last": jnp.zeros(C, i64),
        "wdone": jnp.zeros(C, i64),
        "d": jnp.asarray(-1, i64),
        "release": jnp.asarray(0, i64),
        "end": jnp.asarray(0, i64),
        "n_tmod": jnp.asarray(0, i64),
        "n_act": jnp.asarray(0, i64),
        "n_pre": jnp.asarray(0, i64),
        "busy": jnp.zeros((C, 3), i64),
        "ncmd": jnp.zeros(N, i64),
        "nreq": jnp.asarray(0, i64),
    }
    cat = jnp.asarray([_CATEGORY[c] for c in COMMANDS], i64)

    def step(st, x):
        kind = x["kind"]
        live = kind != KIND_PAD
        d = jnp.where(live, jnp.maximum(st["d"] + 1, st["release"]), st["d"])
        avail = d + 1
        b = x["bank"]
        has_b = (b >= 0) & (x["bankc"] == 1)
        bi = jnp.maximum(b, 0)
        gi = bi // 4
        is_cmd = (kind == KIND_CMD) | (kind == KIND_MEM)
        on = x["on"] & is_cmd  # [C]

        def ready(s, c):  # c: [C] command ids → [C]
            r = jnp.take_along_axis(s["rch"], c[:, None], axis=1)[:, 0]
            if not banked:
                return r
            rg = jnp.take_along_axis(s["rbg"][:, gi, :], c[:, None], axis=1)[:, 0]
            rb = jnp.take_along_axis(s["rbk"][:, bi, :], c[:, None], axis=1)[:, 0]
            return jnp.where(has_b, jnp.maximum(r, jnp.maximum(rg, rb)), r)

        def issue(s, c, tt, m, bank_level):  # c [C], tt [C], m [C] bool
            mm = m[:, None]
            s = dict(s)
            gap = jnp.where(m, tt - s["last"], 0)
            onehot = cat[c][:, None] == jnp.arange(3)[None, :]
            s["busy"] = s["busy"] + jnp.where(onehot, gap[:, None], 0)
            s["rch"] = jnp.where(mm, jnp.maximum(s["rch"], tt[:, None] + Lch[c]), s["rch"])
            if not banked:
                s["last"] = jnp.where(m, tt, s["last"])
                return s
            bl = mm & bank_level
            g_new = jnp.maximum(s["rbg"][:, gi, :], tt[:, None] + Lbg[c])
            k_new = jnp.maximum(s["rbk"][:, bi, :], tt[:, None] + Lbk[c])
            s["rbg"] = s["rbg"].at[:, gi, :].set(jnp.where(bl, g_new, s["rbg"][:, gi, :]))
            s["rbk"] = s["rbk"].at[:, bi, :].set(jnp.where(bl, k_new, s["rbk"][:, bi, :]))
            s["last"] = jnp.where(m, tt, s["last"])
            return s

        row, r = st["row"], x["row"]
        allrow = x["allrow"] == 1
        bankc = x["bankc"] == 1
        rb = row[:, bi]
        pre_all = jnp.any((row >= 0) & (row != r), axis=1)
        pre_one = (rb >= 0) & (rb != r)
        need_pre = jnp.where(allrow, pre_all, jnp.where(bankc, pre_one, False))
        act_all = jnp.any(row < 0, axis=1) | pre_all
        act_one = (rb < 0) | pre_one
        need_act = jnp.where(allrow, act_all, jnp.where(bankc, act_one, False))
        cmd = jnp.full(C, x["cmd"], i64)
        pre_c = jnp.full(C, jnp.where(bankc, PRE, PREA), i64)
        act_c = jnp.full(C, jnp.where(bankc, ACT, ACT16), i64)
        c1 = jnp.where(need_pre, pre_c, jnp.where(need_act, act_c, cmd))
        s = st
        need_tmod = on & (s["mode"] != x["reg"])
        t_m = jnp.maximum(jnp.maximum(s["last"] + 1, avail), ready(s, c1))
        s = issue(s, jnp.full(C, TMOD, i64), t_m, need_tmod, False)
        s["mode"] = jnp.where(on, x["reg"], s["mode"])
        m_pre = on & need_pre
        t_p = jnp.maximum(jnp.maximum(s["last"] + 1, avail), ready(s, pre_c))
        s = issue(s, pre_c, t_p, m_pre, bankc)
        m_act = on & need_act
        t_a = jnp.maximum(jnp.maximum(s["last"] + 1, avail), ready(s, act_c))
        s = issue(s, act_c, t_a, m_act, bankc)
        new_row = jnp.where(allrow, jnp.full_like(row, r), row.at[:, bi].set(r))
        row = jnp.where(m_act[:, None], new_row, row)
        t_c = jnp.maximum(jnp.maximum(s["last"] + 1, avail), ready(s, cmd))
        c0 = x["cmd"]
        sp = jnp.maximum(1, Lch[c0, c0])
        sp = jnp.where(has_b, jnp.maximum(sp, jnp.maximum(Lbg[c0, c0], Lbk[c0, c0])), sp)
        t_last = t_c + (x["opsize"] - 1) * sp
        s = issue(s, cmd, t_c, on, has_b)
        s = issue(s, cmd, t_last, on, has_b)
        row = jnp.where(on[:, None] & (c0 == WRA16), -1, row)
        s["row"] = row
        done = t_last + lat[c0]
        s["wdone"] = jnp.where(on & (x["reader"] == 0), jnp.maximum(s["wdone"], done), s["wdone"])
        blk = jnp.max(jnp.where(on, jnp.maximum(done, t_last + 1), 0))
        release = jnp.where(is_cmd & (x["blocking"] == 1), blk, st["release"])
        # SYNC / EOC: every channel drained
        te = jnp.maximum(d + 1, st["last"] + 1)
        u = jnp.maximum(d + 2, jnp.max(jnp.maximum(te + 1, st["wdone"] + 1)))
        fence = kind == KIND_FENCE
        s["release"] = jnp.where(fence, u, release)
        s["end"] = jnp.where(fence, u, st["end"])
        s["d"] = d
        s["n_tmod"] = st["n_tmod"] + jnp.sum(need_tmod)
        s["n_act"] = st["n_act"] + jnp.sum(m_act)
        s["n_pre"] = st["n_pre"] + jnp.sum(m_pre)
        s["nreq"] = st["nreq"] + live
        s["ncmd"] = st["ncmd"].at[c0].add(jnp.where(is_cmd, x["opsize"] * jnp.sum(on), 0))
        # requests without DRAM commands leave the channels as they were
        keep = ~is_cmd
        for k in ("rch", "rbg", "rbk", "row", "mode", "last", "wdone", "busy"):
            if k not in s:
                continue
            s[k] = jnp.where(keep, st[k], s[k])
        return s

    return st0, step
