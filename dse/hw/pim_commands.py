"""DRAM/PIM command set and the timing rules between commands of one PIM channel.

A channel issues one command per cycle. A command may issue at cycle ``t`` only when, for
every earlier command ``a`` and every rule ``a → b`` at a level that both share, ``t >=
issue(a) + latency``. Levels are the channel, a bank group and a bank: an all-bank command
(ACT16, MAC16, PREA, ...) is scoped to the channel and only channel rules apply to and from
it; a single-bank command also meets the rules of its bank group and bank. Only the latest
issue of each command type matters (every rule has a window of one).

The rules are those of the GDDR6-AiM device as SK hynix's AiM is modelled in CENT's
simulator (``aim_simulator`` ``src/dram/impl/GDDR6.cpp``, timing preset
``GDDR6_AiM_timing``), written against :class:`dse.hw.pim.PimChannel`'s JEDEC-named leaves,
so that every timing stays a swept parameter. ``AiM`` adds register reads/writes
(``WRMAC16`` = WR_BIAS, ``RDMAC16`` = RD_MAC, ``RDAF16``), global-buffer writes (``WRGB``),
bank↔GBuf copies (``RDCP``/``WRCP``), all-bank MAC, activation function and element-wise
multiply (``MAC16``/``AF16``/``EWMUL16``), all-bank write with precharge (``WRA16``) and the
mode switch between register and array access (``TMOD``, ``tMOD`` cycles).

:func:`latency_tables` turns a channel's timings (numbers or traced JAX arrays) into three
``[command, command]`` latency matrices (channel, bank group, bank); ``NO_RULE`` marks pairs
with no rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

__all__ = [
    "TIMINGS",
    "COMMANDS",
    "CMD",
    "SCOPE",
    "RULES",
    "NO_RULE",
    "latency_tables",
    "command_latency",
    "OPENING",
    "ALL_BANK_ROW",
]

COMMANDS: tuple[str, ...] = (
    "ACT", "PREA", "PRE", "RD", "WR", "ACT16", "MAC", "MAC16", "AF16", "EWMUL16", "RDCP",
    "WRCP", "WRGB", "RDMAC16", "RDAF16", "WRMAC16", "WRA16", "TMOD", "REFab",
)  # fmt: skip
CMD = {c: i for i, c in enumerate(COMMANDS)}
#: the level a command is issued to: 0 channel, 2 bank (RD/WR/MAC/RDCP/WRCP/ACT/PRE)
SCOPE = {c: (2 if c in ("ACT", "PRE", "RD", "WR", "MAC", "RDCP", "WRCP") else 0) for c in COMMANDS}
#: all-bank commands that need the same row open in every bank (else PREA, then ACT16)
ALL_BANK_ROW = ("MAC16", "AF16", "EWMUL16", "WRA16")
OPENING = ("ACT", "ACT16")
NO_RULE = -(1 << 40)
#: the PimChannel timing leaves the rules read
TIMINGS = (
    "BL", "CL", "tRCD", "tRCD_mac", "tRP", "tRAS", "tRTP", "tWR", "tCCD_S", "tCCD_L",
    "tCCD_mac", "tRRD_S", "tRRD_L", "tRFC", "tCWL", "tWPRE", "tWTR_S", "tWTR_L", "tRCD_wr",
    "tRC", "tRCD_af", "tRCD_ewmul", "tRCD_rdcp", "tRCD_wrcp", "tMOD", "CL_reg", "CWL_reg",
    "CWL_gb",
)  # fmt: skip

T = Mapping[str, object]
_RD = ("RD", "RDMAC16", "RDAF16")
_WR = ("WR", "WRA16", "WRGB", "WRMAC16")
_ACT = ("ACT", "ACT16")

#: (level, preceding commands, following commands, latency from the timing leaves)
RULES: tuple[tuple[int, tuple[str, ...], tuple[str, ...], Callable[[T], object]], ...] = (
    # external data bus occupancy
    (0, _RD, _RD, lambda t: t["BL"]),
    (0, _WR, _WR, lambda t: t["BL"]),
    # column to column, different / same bank group (the bus shared by the bank groups)
    (0, ("RD", "MAC", "MAC16", "RDCP", "RDMAC16", "RDAF16"),
     ("RD", "MAC", "MAC16", "RDCP", "RDMAC16", "RDAF16"), lambda t: t["tCCD_S"]),
    (0, ("WR", "WRA16", "WRGB", "WRCP", "WRMAC16"), ("WR", "WRA16", "WRGB", "WRCP", "WRMAC16"),
     lambda t: t["tCCD_S"]),
    (0, ("RD", "MAC", "RDCP", "RDMAC16", "RDAF16", "MAC16", "EWMUL16"),
     ("RDMAC16", "RDAF16", "MAC16", "EWMUL16"), lambda t: t["tCCD_L"]),
    (0, ("RDMAC16", "RDAF16", "MAC16", "EWMUL16"),
     ("RD", "MAC", "RDCP", "RDMAC16", "RDAF16", "MAC16", "EWMUL16"), lambda t: t["tCCD_L"]),
    (0, ("WR", "WRCP", "WRA16", "WRMAC16", "EWMUL16"), ("WRA16", "WRMAC16", "EWMUL16"),
     lambda t: t["tCCD_L"]),
    (0, ("WRA16", "WRMAC16", "EWMUL16"), ("WR", "WRCP", "WRA16", "WRMAC16", "EWMUL16"),
     lambda t: t["tCCD_L"]),
    # all-bank MAC to all-bank MAC (the MAC units' issue rate)
    (0, ("MAC16",), ("MAC16",), lambda t: t["tCCD_mac"]),
    # read to write turnaround: data out (CL + BL), 3 cycles, write preamble, minus CWL
    (0, ("RD",), ("WR", "WRA16"), lambda t: t["CL"] + t["BL"] + 3 - t["tCWL"] + t["tWPRE"]),
    (0, ("RDMAC16", "RDAF16"), ("WR", "WRA16"),
     lambda t: t["CL_reg"] + t["BL"] + 3 - t["tCWL"] + t["tWPRE"]),
    (0, ("RD",), ("WRGB",), lambda t: t["CL"] + t["BL"] + 3 - t["CWL_gb"] + t["tWPRE"]),
    (0, ("RD",), ("WRMAC16",), lambda t: t["CL"] + t["BL"] + 3 - t["CWL_reg"] + t["tWPRE"]),
    (0, ("RDMAC16", "RDAF16"), ("WRGB",),
     lambda t: t["CL_reg"] + t["BL"] + 3 - t["CWL_gb"] + t["tWPRE"]),
    (0, ("RDMAC16", "RDAF16"), ("WRMAC16",),
     lambda t: t["CL_reg"] + t["BL"] + 3 - t["CWL_reg"] + t["tWPRE"]),
    # write to read turnaround
    (0, ("WR", "WRA16"), ("RD", "RDMAC16", "RDAF16"), lambda t: t["tCWL"] + t["BL"] + t["tWTR_S"]),
    (0, ("WRGB",), ("RD", "RDMAC16", "RDAF16"), lambda t: t["CWL_gb"] + t["BL"] + t["tWTR_S"]),
    (0, ("WRMAC16",), ("RD", "RDMAC16", "RDAF16"),
     lambda t: t["CWL_reg"] + t["BL"] + t["tWTR_S"]),
    (0, ("WR",), ("RDMAC16", "RDAF16"), lambda t: t["tCWL"] + t["BL"] + t["tWTR_L"]),
    (0, ("WRA16",), ("RD", "RDMAC16", "RDAF16"), lambda t: t["tCWL"] + t["BL"] + t["tWTR_L"]),
    (0, ("WRMAC16",), ("RD", "RDMAC16", "RDAF16"),
     lambda t: t["CWL_reg"] + t["BL"] + t["tWTR_L"]),
    # column to precharge
    (0, ("RD", "RDCP", "MAC", "MAC16", "AF16", "EWMUL16"), ("PREA",), lambda t: t["tRTP"]),
    (0, ("MAC16", "AF16", "EWMUL16"), ("PRE",), lambda t: t["tRTP"]),
    (0, ("WR", "WRCP"), ("PREA",), lambda t: t["tCWL"] + t["BL"] + t["tWR"]),
    (0, ("EWMUL16",), ("PRE", "PREA"), lambda t: t["tCWL"] + t["tWR"]),
    # activate to activate
    (0, ("ACT16",), _ACT, lambda t: t["tRRD_S"]),
    (0, _ACT, ("ACT",), lambda t: t["tRRD_S"]),
    (0, _ACT, ("ACT16",), lambda t: t["tRRD_L"]),
    (0, ("ACT16",), _ACT, lambda t: t["tRRD_L"]),
    # activate to precharge, precharge to activate
    (0, _ACT, ("PREA",), lambda t: t["tRAS"]),
    (0, ("ACT16",), ("PRE",), lambda t: t["tRAS"]),
    (0, ("PRE", "PREA"), ("ACT16",), lambda t: t["tRP"]),
    (0, ("PREA",), _ACT, lambda t: t["tRP"]),
    (0, ("PREA",), ("PRE", "PREA"), lambda t: t["tRP"]),
    (0, ("PRE",), ("PREA", "PRE"), lambda t: t["tRP"]),
    # activate to column
    (0, _ACT, ("MAC16",), lambda t: t["tRCD_mac"]),
    (0, _ACT, ("AF16",), lambda t: t["tRCD_af"]),
    (0, _ACT, ("EWMUL16",), lambda t: t["tRCD_ewmul"]),
    (0, ("ACT16",), ("MAC",), lambda t: t["tRCD_mac"]),
    (0, ("ACT16",), ("RDCP",), lambda t: t["tRCD_rdcp"]),
    (0, ("ACT16",), ("RD",), lambda t: t["tRCD"]),
    (0, _ACT, ("WRA16",), lambda t: t["tRCD_wr"]),
    (0, ("ACT16",), ("WRCP",), lambda t: t["tRCD_wrcp"]),
    (0, ("ACT16",), ("WR",), lambda t: t["tRCD_wr"]),
    (0, ("WRA16",), _ACT, lambda t: t["tCWL"] + t["BL"] + t["tWR"] + t["tRP"]),
    # refresh
    (0, _ACT, ("REFab",), lambda t: t["tRC"]),
    (0, ("PRE", "PREA"), ("REFab",), lambda t: t["tRP"]),
    (0, ("WRA16",), ("REFab",), lambda t: t["tCWL"] + t["BL"] + t["tWR"] + t["tRP"]),
    (0, ("REFab",), _ACT, lambda t: t["tRFC"]),
    # register/array mode switch
    (0, ("TMOD",), tuple(c for c in COMMANDS), lambda t: t["tMOD"]),
    # bank group
    (1, ("RD", "MAC", "RDCP"), ("RD", "MAC", "RDCP"), lambda t: t["tCCD_L"]),
    (1, ("WR", "WRCP"), ("WR", "WRCP"), lambda t: t["tCCD_L"]),
    (1, ("WR",), ("RD",), lambda t: t["tCWL"] + t["BL"] + t["tWTR_L"]),
    (1, ("RD", "RDCP", "MAC"), ("PRE",), lambda t: t["tRTP"]),
    (1, ("WR", "WRCP"), ("PRE",), lambda t: t["tCWL"] + t["BL"] + t["tWR"]),
    (1, ("ACT",), ("ACT",), lambda t: t["tRRD_L"]),
    # bank
    (2, ("ACT",), ("MAC",), lambda t: t["tRCD_mac"]),
    (2, ("ACT",), ("RDCP",), lambda t: t["tRCD_rdcp"]),
    (2, ("ACT",), ("RD",), lambda t: t["tRCD"]),
    (2, ("ACT",), ("WRCP",), lambda t: t["tRCD_wrcp"]),
    (2, ("ACT",), ("WR",), lambda t: t["tRCD_wr"]),
    (2, ("ACT",), ("PRE",), lambda t: t["tRAS"]),
    (2, ("PRE",), ("ACT",), lambda t: t["tRP"]),
)  # fmt: skip


def command_latency(t: T) -> dict[str, object]:
    """Cycles from a command's issue to its completion (a read's data back, a write's data
    in; 1 for commands that stay inside the device)."""
    one = t["BL"] * 0 + 1
    return {
        "RD": t["CL"] + t["BL"],
        "WR": t["tCWL"] + t["BL"],
        "WRGB": t["CWL_gb"] + t["BL"],
        "WRMAC16": t["CWL_reg"] + t["BL"],
        "RDMAC16": t["CL_reg"] + t["BL"],
        "RDAF16": t["CL_reg"] + t["BL"],
        "WRA16": t["tCWL"] + t["BL"] + t["tRP"],
        **{c: one for c in ("RDCP", "WRCP", "MAC", "MAC16", "AF16", "EWMUL16")},
    }


def latency_tables(t: T, xp=np) -> tuple:
    """Latency matrices ``[prev, next]`` per level (channel, bank group, bank) for timings
    ``t`` (numbers, or arrays of one point under ``xp = jax.numpy``)."""
    n = len(COMMANDS)
    tabs = [xp.full((n, n), NO_RULE, dtype=np.int64) for _ in range(3)]
    for level, prev, nxt, fn in RULES:
        v = xp.asarray(fn(t), dtype=np.int64)
        rows = np.array([CMD[c] for c in prev])
        cols = np.array([CMD[c] for c in nxt])
        idx = np.ix_(rows, cols)
        if xp is np:
            tabs[level][idx] = np.maximum(tabs[level][idx], v)
        else:
            tabs[level] = tabs[level].at[idx].max(v)
    return tuple(tabs)
