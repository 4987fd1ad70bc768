"""AttAcc HBM3-PIM ground truth: Ramulator-2 PIM traces, configs and a corpus runner.

AttAcc (scale-snu/attacc_simulator) simulates one attention layer on one HBM3 stack with a
patched Ramulator 2 (``HBM3-PIM`` device, ``HBM3-PIM`` controller, ``PIM`` scheduler,
``PIMLoadStoreTrace`` front end; docs/oracle/attacc.md). Its trace generators
(``pim_ramulator_src/trace_gen/gen_trace_attacc_{bank,bg,buffer}.py``) write one PIM request
per line, ``PIM_<OP> 0x<addr>`` with the byte address zero-padded to at least 8 hex digits.
This module writes the same traces from keyword arguments:

* :func:`attacc_layer` -- an attention layer as AttAcc's generator writes it,
  ``variant="current"`` (upstream HEAD c600051) or ``variant="cache"`` (the generator before
  that commit, which produced the shipped ``attacc_hbm3pim_ramulator_cache.csv``: an odd last
  head iteration repeats its softmax, all its MVGBs and a barrier after every score group).
  Byte-identical to the upstream scripts with ``--maxlen`` = ``max_L``.
* :func:`mac_rows`, :func:`moves`, :func:`mac_moves` -- single-mechanism streams (MAC rows of
  ``k`` columns; WRGB/MVSB/MVGB/SFM runs over chosen banks; MACs followed by data moves).

Every generator is a pure function of keyword arguments returning the trace lines; a corpus
row's ``generator`` (dotted name) and ``generator_args`` (JSON, sorted keys, every argument)
rebuild its trace byte for byte with :func:`make_trace`. :func:`ramulator_config` writes the
YAML the simulator reads (AttAcc's wrapper configuration: 16 channels of HBM3_8Gb_2R, timing
preset ``HBM3_5.2Gbps`` or ``HBM3_5.2Gbps_NPC``, all-bank refresh).

    python -m dse.validation.traces.attacc --sim /path/to/ramulator2 --n 200 \\
        --out dse/validation/data/corpus_attacc.csv

The simulator is not part of this repository.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SIMULATOR = "attacc_ramulator2"
#: attacc_simulator HEAD + the Ramulator 2 commit its set_pim_ramulator.sh resets to
SIM_COMMIT = (
    "attacc_simulator@c60005143a6b492d7ef83231723386478b59a506"
    "+ramulator2@b7c70275f04126c647edb989270cc429776955d1"
)
TCK_NS = 0.769  # 1e6 / (5200 / 4) ps, truncated to int ps by the device model

# Organisation (HBM3_8Gb_2R, 16 channels) and the generator's byte address granularities.
N_CHANNEL, N_PCH, N_RANK, N_BG, N_BANK = 16, 2, 2, 4, 4
N_ROW, N_COL, PREFETCH = 1 << 14, 1 << 5, 32
GS_COL = PREFETCH
GS_ROW = N_COL * GS_COL
GS_BA = N_ROW * GS_ROW
GS_BG = N_BANK * GS_BA
GS_RANK = N_BG * GS_BG
GS_PCH = N_RANK * GS_RANK
GS_CH = N_PCH * GS_PCH

PIM_TYPES = ("BA", "BG", "BUFFER")
MAC_OP = {"BA": "PIM_MAC_AB", "BG": "PIM_MAC_SB", "BUFFER": "PIM_MAC_PB"}
MOVE_OP = {"WRGB": "PIM_WR_GB", "MVSB": "PIM_MV_SB", "MVGB": "PIM_MV_GB", "SFM": "PIM_SFM"}

COUNT_STATS = {
    "mac": (
        "total_num_pim_mac_all_bank_requests",
        "total_num_pim_mac_same_bank_requests",
        "total_num_pim_mac_per_bank_requests",
    ),
    "softmax": ("total_num_pim_softmax_requests",),
    "mvgb": ("total_num_pim_move_to_gemv_buffer_requests",),
    "mvsb": ("total_num_pim_move_to_softmax_buffer_requests",),
    "wrgb": ("total_num_pim_write_to_gemv_buffer_requests",),
}
#: DRAM commands counted from the simulator's per-channel command log (HBM3TraceRecorder)
CMD_COLUMNS = {
    "act": ("ACTAB", "ACTSB", "ACTPB", "ACT"),
    "pre": ("PREA", "PRESB", "PREPB", "PRE"),
    "ref": ("REFab", "REFsb"),
}

COLUMNS = [
    "simulator",
    "sim_commit",
    "config",
    "generator",
    "generator_args",
    "family",
    "L",
    "heads",
    "dhead",
    "dbyte",
    "pim_type",
    "power_constraint",
    "refresh",
    "cycles",
    "tCK_ns",
    "trace_lines",
    "mac",
    "softmax",
    "mvgb",
    "mvsb",
    "wrgb",
    "act",
    "pre",
    "ref",
    "ch0_act",
    "ch0_pre",
    "ch0_ref",
    "ch0_mac_cmds",
    "ch0_last_cmd_cycle",
    "wall_s",
]


def _line(op: str, addr: int) -> str:
    # the generator's "PIM_X 0x{0:0>8}".format(hex(addr)[2:])
    return f"{op} 0x{addr:08x}"


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


# --------------------------------------------------------------------------------------------
# AttAcc attention layer
# --------------------------------------------------------------------------------------------


def _head_lists(pim, L, dhead, n_mac, key_addr, val_addr, vc):
    """One head iteration's command lists (``vc`` valid channels), as the generator builds
    them: WRGB (query), score MAC groups (one per token row), score MVSB groups (every 16
    token rows and at the end), SFM, context MVGB, context MAC blocks, context MVSB blocks."""
    wrgb, smac, smvsb, ctx_mvgb, cmac, cmvsb = [], [], [], [], [], []
    lchs = range(vc)
    mac_op = MAC_OP[pim]
    if pim == "BA":
        dk = _cdiv(dhead, N_BANK * n_mac)
        n_tok = _cdiv(L, N_PCH * N_RANK * N_BG)
        for ba in range(N_BANK):
            for col in range(dk):
                for lch in lchs:
                    wrgb.append(_line("PIM_WR_GB", key_addr + lch * GS_CH + ba * GS_BA + col))
    else:
        dk = _cdiv(dhead, n_mac)
        n_tok = _cdiv(L, N_PCH * N_RANK * N_BG) if pim == "BG" else _cdiv(L, N_PCH)
        for col in range(dk):
            for lch in lchs:
                wrgb.append(_line("PIM_WR_GB", key_addr + lch * GS_CH + col))

    def mac_addr(base, idx):
        if pim == "BA":
            return base + idx * GS_COL
        if pim == "BG":
            col, ncols = idx % N_COL, idx // N_COL
            return base + (ncols % N_BANK) * GS_BA + (ncols // N_BANK) * GS_ROW + col * GS_COL
        bg, nbg = idx % (N_BG * N_RANK), idx // (N_BG * N_RANK)
        bank, nb = nbg % N_BANK, nbg // N_BANK
        return base + bg * GS_BG + bank * GS_BA + (nb // N_COL) * GS_ROW + (nb % N_COL) * GS_COL

    # score: q K^T
    for n in range(n_tok):
        grp = []
        for k in range(dk):
            idx = k + n * dk
            for lch in lchs:
                grp.append(_line(mac_op, mac_addr(key_addr + lch * GS_CH, idx)))
        smac.append(grp)
        if n % 16 == 15 or n == n_tok - 1:
            mv = []
            if pim == "BUFFER":
                for lch in lchs:
                    mv.append(_line("PIM_MV_SB", key_addr + lch * GS_CH))
            else:
                for bg in range(N_BG):
                    for rank in range(N_RANK):
                        for lch in lchs:
                            a = key_addr + lch * GS_CH + rank * GS_RANK + bg * GS_BG
                            mv.append(_line("PIM_MV_SB", a))
            smvsb.append(mv)
    # softmax
    sfm = [_line("PIM_SFM", lch * GS_CH) for lch in lchs]
    # context: move scores to the GEMV buffers
    if pim == "BUFFER":
        for col in range(_cdiv(L, N_PCH * n_mac)):
            for lch in lchs:
                ctx_mvgb.append(_line("PIM_MV_GB", val_addr + lch * GS_CH + col))
    else:
        for rank in range(N_RANK):
            for bg in range(N_BG):
                for col in range(_cdiv(L, N_PCH * N_RANK * N_BG * n_mac)):
                    for lch in lchs:
                        a = val_addr + lch * GS_CH + rank * GS_RANK + bg * GS_BG + col
                        ctx_mvgb.append(_line("PIM_MV_GB", a))
    # context: s V
    for n in range(dk):
        blk = []
        for k in range(n_tok):
            idx = k + n * n_tok
            for lch in lchs:
                blk.append(_line(mac_op, mac_addr(val_addr + lch * GS_CH, idx)))
        cmac.append(blk)
        mv = []
        if pim == "BA":
            for ba in range(N_BANK):
                for rank in range(N_RANK):
                    for lch in lchs:
                        a = val_addr + lch * GS_CH + rank * GS_RANK + ba * GS_BA
                        mv.append(_line("PIM_MV_SB", a))
        elif pim == "BG":
            for rank in range(N_RANK):
                for lch in lchs:
                    mv.append(_line("PIM_MV_SB", val_addr + lch * GS_CH + rank * GS_RANK))
        else:
            for lch in lchs:
                mv.append(_line("PIM_MV_SB", val_addr + lch * GS_CH))
        cmvsb.append(mv)
    return {
        "wrgb": wrgb,
        "smac": smac,
        "smvsb": smvsb,
        "sfm": sfm,
        "mvgb": ctx_mvgb,
        "cmac": cmac,
        "cmvsb": cmvsb,
        "vc": vc,
    }


def attacc_layer(
    *,
    L: int,
    heads: int,
    dhead: int = 128,
    dbyte: int = 2,
    pim_type: str = "BA",
    variant: str = "current",
    max_L: int = 4096,
) -> list[str]:
    """AttAcc's trace of one attention layer: ``heads`` heads on one stack (heads per HBM),
    context ``L``, head size ``dhead``, ``dbyte`` bytes per element, PIM placement ``BA``
    (all-bank MACs), ``BG`` (same-bank MACs) or ``BUFFER`` (per-bank MACs).

    Heads go one per channel per iteration (``ceil(heads / 16)`` iterations, the last with
    ``heads % 16`` channels when that is not 0); iterations are pipelined in pairs; an odd
    last iteration runs alone (``variant="cache"``: with softmax + MVGBs after every score
    group). ``max_L`` is the generator's ``--maxlen`` (4096 by default; AttAcc's wrapper
    does not pass it): it sets where consecutive heads' K/V regions start.
    """
    if pim_type not in PIM_TYPES:
        raise ValueError(f"pim_type must be one of {PIM_TYPES}")
    if variant not in ("current", "cache"):
        raise ValueError("variant must be 'current' or 'cache'")
    if L < 1 or heads < 1 or dhead < 1 or dbyte < 1:
        raise ValueError("L, heads, dhead and dbyte must be positive")
    n_mac = int(GS_COL / dbyte)
    is_ba = pim_type == "BA"
    partition = _cdiv(max_L * dhead, N_PCH * N_RANK * N_BG * N_BANK)
    v_offset = 1 << 23
    num_itr = _cdiv(heads, N_CHANNEL)
    H = []
    for itr in range(num_itr):
        rem = heads % N_CHANNEL if heads / ((itr + 1) * N_CHANNEL) < 1 else 0
        key = itr * partition
        H.append(
            _head_lists(pim_type, L, dhead, n_mac, key, key + v_offset, rem if rem else N_CHANNEL)
        )
    barrier = [_line("PIM_BARRIER", lch * GS_CH) for lch in range(N_CHANNEL)]

    # loop lengths and chunk strides (the generator's float divisions, truncated)
    if pim_type == "BUFFER":
        s_len = _cdiv(L, N_PCH * 16)
        c_len = _cdiv(dhead, n_mac)
        w_per_ch = _cdiv(dhead, n_mac)
        g_per_ch = _cdiv(L, N_PCH * n_mac)
    else:
        s_len = _cdiv(L, N_PCH * N_RANK * N_BG * 16)
        c_len = _cdiv(dhead, N_BANK * n_mac) if is_ba else _cdiv(dhead, n_mac)
        w_per_ch = N_BANK * _cdiv(dhead, N_BANK * n_mac) if is_ba else _cdiv(dhead, n_mac)
        g_per_ch = N_RANK * N_BG * _cdiv(L, N_PCH * N_RANK * N_BG * n_mac)

    out: list[str] = []

    def score_groups(h, j):
        for k in range(16):
            if j * 16 + k >= len(h["smac"]):
                break
            out.extend(h["smac"][j * 16 + k])

    def chunk(lst, start, stride):
        for k in range(stride):
            if start + k >= len(lst):
                break
            out.append(lst[start + k])

    def context(h_mac, h_mv):
        for j in range(c_len + 1):
            if j != c_len:
                out.extend(h_mac["cmac"][j])
            if j != 0:
                out.extend(h_mv["cmvsb"][j - 1])
            if j != c_len:
                out.extend(barrier)

    for i in range(0, num_itr - 1, 2):
        h0, h1 = H[i], H[i + 1]
        # head 0 score, head 1 query
        out.extend(h0["wrgb"])
        if i == 0:
            out.extend(h0["smac"][0][: h0["vc"]])  # one priming MAC per channel
        out.extend(barrier)
        stride = int(w_per_ch * h1["vc"] / s_len)
        for j in range(s_len + 1):
            if j != s_len:
                score_groups(h0, j)
            if j != 0:
                out.extend(h0["smvsb"][j - 1])
            if j != s_len:
                chunk(h1["wrgb"], j * stride, stride)
                out.extend(barrier)
        # head 1 score, head 0 softmax and (second half) MVGB
        half = s_len // 2
        stride = int(g_per_ch * h0["vc"] / _cdiv(s_len, 2))
        for j in range(s_len + 1):
            if j != s_len:
                score_groups(h1, j)
            if j != 0:
                out.extend(h1["smvsb"][j - 1])
            if j == 0:
                out.extend(h0["sfm"])
            if j != s_len:
                if j >= half:
                    chunk(h0["mvgb"], (j - half) * stride, stride)
                out.extend(barrier)
        # head 0 context, head 1 softmax and (second half) MVGB
        half = c_len // 2
        stride = int(g_per_ch * h1["vc"] / _cdiv(c_len, 2))
        for j in range(c_len + 1):
            if j != c_len:
                out.extend(h0["cmac"][j])
            if j != 0:
                out.extend(h0["cmvsb"][j - 1])
            if j == 0:
                out.extend(h1["sfm"])
            if j != c_len:
                if j >= half:
                    chunk(h1["mvgb"], (j - half) * stride, stride)
                out.extend(barrier)
        # "head 1" context: the generator emits head 0's lists again
        context(h0, h0)

    if num_itr % 2:
        h = H[num_itr - 1]
        out.extend(h["wrgb"])
        out.extend(barrier)
        for j in range(s_len + 1):
            if j != s_len:
                score_groups(h, j)
            if j != 0:
                out.extend(h["smvsb"][j - 1])
            if j != s_len:
                out.extend(barrier)
            if variant == "cache":  # mis-indented block: inside the score loop
                out.extend(h["sfm"])
                out.extend(h["mvgb"])
                out.extend(barrier)
        if variant == "current":
            out.extend(h["sfm"])
            out.extend(h["mvgb"])
            out.extend(barrier)
        context(h, h)
    return out


# --------------------------------------------------------------------------------------------
# Single-mechanism streams
# --------------------------------------------------------------------------------------------


def _addr(lch=0, pch=0, rank=0, bg=0, ba=0, row=0, col=0) -> int:
    return (
        lch * GS_CH
        + pch * GS_PCH
        + rank * GS_RANK
        + bg * GS_BG
        + ba * GS_BA
        + row * GS_ROW
        + col * GS_COL
    )


def _barrier(channels):
    return [_line("PIM_BARRIER", _addr(lch=c)) for c in range(channels)]


def mac_rows(
    *,
    rows: int,
    k: int,
    pim_type: str = "BA",
    channels: int = 1,
    row0: int = 0,
    barrier_every: int = 0,
    spread: bool = False,
) -> list[str]:
    """``rows`` rows x ``k`` MACs (columns 0..k-1 of rows ``row0 ..``), channel-interleaved
    like the generator (``channels`` channels per MAC). BA: all-bank MACs at bank 0; BG:
    same-bank MACs at bank 0; BUFFER: per-bank MACs at rank 0 / bank group 0 / bank 0, or
    with ``spread`` rotating the 8 rank x bank-group pairs per MAC. ``barrier_every`` > 0
    puts a barrier after every that many rows."""
    if not 1 <= k <= N_COL:
        raise ValueError(f"k must be in 1..{N_COL}")
    op = MAC_OP[pim_type]
    out = []
    for r in range(rows):
        for c in range(k):
            for lch in range(channels):
                if pim_type == "BUFFER" and spread:
                    j = r * k + c
                    rb = j % (N_RANK * N_BG)
                    a = _addr(lch=lch, rank=rb // N_BG, bg=rb % N_BG, row=row0 + r, col=c)
                else:
                    a = _addr(lch=lch, row=row0 + r, col=c)
                out.append(_line(op, a))
        if barrier_every and (r + 1) % barrier_every == 0:
            out.extend(_barrier(channels))
    return out


#: bank sequences of the move patterns: (pch, rank, bg, bank) of the i-th command
_PATTERNS = {
    "same_bank": lambda i: (0, 0, 0, 0),
    "same_bg": lambda i: (0, 0, 0, i % N_BANK),
    "alt_bg": lambda i: (0, 0, i % N_BG, 0),
    "alt_rank": lambda i: (0, i % N_RANK, 0, 0),
    "alt_pch": lambda i: (i % N_PCH, 0, 0, 0),
    "bg_rank": lambda i: (0, i % N_RANK, (i // N_RANK) % N_BG, 0),  # score MVSB order
    "rank_bg_run": lambda i: (0, (i // 8) % N_RANK, (i // 2) % N_BG, 0),  # MVGB-like runs of 2
}


def _move_lines(kind, n, pattern, channels, col0=0):
    if kind not in MOVE_OP:
        raise ValueError(f"kind must be one of {tuple(MOVE_OP)}")
    seq = _PATTERNS[pattern]
    out = []
    for i in range(n):
        pch, rank, bg, ba = seq(i)
        for lch in range(channels):
            a = _addr(lch=lch, pch=pch, rank=rank, bg=bg, ba=ba) + (col0 + i) % N_COL
            out.append(_line(MOVE_OP[kind], a))
    return out


def moves(*, kind: str, n: int, pattern: str = "same_bg", channels: int = 1) -> list[str]:
    """``n`` data-path commands ``kind`` (WRGB, MVSB, MVGB, SFM) over the bank sequence
    ``pattern`` (``same_bank``, ``same_bg``, ``alt_bg``, ``alt_rank``, ``alt_pch``,
    ``bg_rank``, ``rank_bg_run``), ``channels`` channels per command."""
    return _move_lines(kind, n, pattern, channels)


def mac_moves(
    *,
    macs: int,
    n: int,
    kind: str = "MVSB",
    pattern: str = "bg_rank",
    barrier: bool = False,
    channels: int = 1,
    pim_type: str = "BA",
    repeat: int = 1,
) -> list[str]:
    """``repeat`` x [``macs`` MACs walking columns (rows of 32) then ``n`` moves ``kind`` over
    ``pattern``, a barrier between MACs and moves if ``barrier``, and one after the moves].
    Measures how data moves fill the slots between MACs."""
    out = []
    col = 0
    for _ in range(repeat):
        for _m in range(macs):
            for lch in range(channels):
                out.append(_line(MAC_OP[pim_type], _addr(lch=lch) + col * GS_COL))
            col += 1
        if barrier:
            out.extend(_barrier(channels))
        out.extend(_move_lines(kind, n, pattern, channels))
        out.extend(_barrier(channels))
    return out


#: dotted names recorded in the corpus (fixed: ``__name__`` is ``__main__`` under ``-m``)
MODULE = "dse.validation.traces.attacc"
GENERATORS = {
    f.__name__: f"{MODULE}.{f.__name__}" for f in (attacc_layer, mac_rows, moves, mac_moves)
}


def make_trace(generator: str, generator_args: str | dict) -> str:
    """The trace text (one request per line, ``\\n``-terminated) of ``generator`` (dotted
    name) called with ``generator_args`` (JSON or dict)."""
    args = json.loads(generator_args) if isinstance(generator_args, str) else generator_args
    mod, _, name = generator.rpartition(".")
    fn = getattr(importlib.import_module(mod), name)
    return "".join(line + "\n" for line in fn(**args))


def args_json(args: dict) -> str:
    return json.dumps(args, sort_keys=True, separators=(",", ":"))


def write_trace(path: str | Path, generator: str, generator_args: str | dict) -> int:
    """Write the trace to ``path``; returns its number of lines."""
    text = make_trace(generator, generator_args)
    Path(path).write_text(text)
    return text.count("\n")


# --------------------------------------------------------------------------------------------
# Simulator configuration
# --------------------------------------------------------------------------------------------


def timing_preset(power_constraint: bool) -> str:
    return "HBM3_5.2Gbps" if power_constraint else "HBM3_5.2Gbps_NPC"


def config_name(power_constraint: bool, refresh: bool = True) -> str:
    return f"HBM3_8Gb_2Rx16ch/{timing_preset(power_constraint)}/" + (
        "AllBankHBM3" if refresh else "NoRefresh"
    )


def ramulator_config(
    trace_path: str,
    power_constraint: bool,
    refresh: bool = True,
    command_log: str | None = None,
) -> str:
    """The simulator's YAML: PIM trace front end, HBM3-PIM device (HBM3_8Gb_2R, 16 channels,
    5.2 Gbps, with or without power constraint), HBM3-PIM controller with the PIM scheduler
    and all-bank refresh (``refresh=False``: none), the HBM3-PIM address mapper; with
    ``command_log`` the per-channel command recorder writes ``<command_log>.ch<N>``."""
    lines = [
        "Frontend:",
        "  impl: PIMLoadStoreTrace",
        f"  path: {trace_path}",
        "  clock_ratio: 1",
        "  Translation:",
        "    impl: NoTranslation",
        "    max_addr: 2147483648",
        "MemorySystem:",
        "  impl: PIMDRAM",
        "  clock_ratio: 1",
        "  DRAM:",
        "    impl: HBM3-PIM",
        "    org:",
        "      preset: HBM3_8Gb_2R",
        "      channel: 16",
        "    timing:",
        f"      preset: {timing_preset(power_constraint)}",
        "  Controller:",
        "    impl: HBM3-PIM",
        "    Scheduler:",
        "      impl: PIM",
        "    RefreshManager:",
        f"      impl: {'AllBankHBM3' if refresh else 'No'}",
    ]
    if command_log:
        lines += [
            "    plugins:",
            "    - ControllerPlugin:",
            "        impl: HBM3TraceRecorder",
            f"        path: {command_log}",
        ]
    lines += ["  AddrMapper:", "    impl: HBM3-PIM"]
    return "\n".join(lines) + "\n"


_STAT = re.compile(r"^\s*([A-Za-z_][\w]*):\s*(-?\d+)\s*$")


def parse_stats(stdout: str) -> dict[str, int]:
    """Integer statistics (``name: value``) of the simulator's final report (summed over
    repeated names)."""
    stats: dict[str, int] = {}
    for line in stdout.splitlines():
        m = _STAT.match(line)
        if m:
            stats[m.group(1)] = stats.get(m.group(1), 0) + int(m.group(2))
    return stats


def parse_command_log(prefix: str, channels: int = N_CHANNEL) -> dict[str, int]:
    """Command counts of the recorder's per-channel logs: totals (act, pre, ref) and channel
    0's (``ch0_*``, ``ch0_mac_cmds``, ``ch0_last_cmd_cycle``)."""
    tot: Counter = Counter()
    ch0: Counter = Counter()
    last0 = 0
    for ch in range(channels):
        p = Path(f"{prefix}.ch{ch}")
        if not p.exists():
            continue
        c: Counter = Counter()
        with p.open() as f:
            for line in f:
                parts = line.split(", ", 2)
                if len(parts) < 2:
                    continue
                c[parts[1]] += 1
                if ch == 0:
                    last0 = int(parts[0])
        tot.update(c)
        if ch == 0:
            ch0 = c
    out = {}
    for col, names in CMD_COLUMNS.items():
        out[col] = sum(tot[n] for n in names)
        out[f"ch0_{col}"] = sum(ch0[n] for n in names)
    out["ch0_mac_cmds"] = sum(ch0[n] for n in ("MACAB", "MACSB", "MACPB"))
    out["ch0_last_cmd_cycle"] = last0
    return out


def run_one(
    sim: str,
    generator: str,
    generator_args: dict,
    power_constraint: bool,
    refresh: bool = True,
    timeout: float = 900.0,
    workdir: str | None = None,
) -> dict:
    """Write the trace and config into a temporary directory, run the simulator, return
    cycles, request counts and DRAM command counts."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        trace = os.path.join(tmp, "pim.trace")
        n_lines = write_trace(trace, generator, generator_args)
        log = os.path.join(tmp, "cmd", "cmd.log")
        cfg = os.path.join(tmp, "config.yaml")
        Path(cfg).write_text(ramulator_config(trace, power_constraint, refresh, log))
        t0 = time.perf_counter()
        res = subprocess.run(
            [sim, "-f", cfg], capture_output=True, text=True, timeout=timeout, cwd=tmp
        )
        wall = time.perf_counter() - t0
        if res.returncode != 0:
            raise RuntimeError(f"simulator failed ({res.returncode}): {res.stderr[-2000:]}")
        stats = parse_stats(res.stdout)
        if "memory_system_cycles" not in stats:
            raise RuntimeError(f"no memory_system_cycles in output: {res.stdout[-2000:]}")
        row = {"cycles": stats["memory_system_cycles"], "trace_lines": n_lines}
        for col, names in COUNT_STATS.items():
            row[col] = sum(stats.get(n, 0) for n in names)
        row.update(parse_command_log(log))
        row["wall_s"] = round(wall, 3)
        return row


# --------------------------------------------------------------------------------------------
# Corpus design
# --------------------------------------------------------------------------------------------

DHEADS = (64, 128, 256)
DBYTES = (1, 2)


def layer_work(L: int, heads: int, dhead: int, dbyte: int, pim_type: str) -> int:
    """A cost proxy close to the simulated cycles: channel 0's MAC requests times the MAC
    spacing (6 for all-bank / same-bank MACs, 2 for per-bank MACs on alternating bank
    groups). The simulator runs at roughly 5k cycles per second."""
    n_mac = GS_COL // dbyte
    if pim_type == "BA":
        per, t = _cdiv(L, 16) * _cdiv(dhead, N_BANK * n_mac), 6
    elif pim_type == "BG":
        per, t = _cdiv(L, 16) * _cdiv(dhead, n_mac), 6
    else:
        per, t = _cdiv(L, 2) * _cdiv(dhead, n_mac), 2
    return 2 * per * _cdiv(heads, N_CHANNEL) * t


def sobol_layers(
    n: int,
    seed: int = 20240624,
    heads_range=(1, 130),
    L_range=(128, 32768),
    max_work: int = 100_000,
    big_work: int = 600_000,
    big_every: int = 5,
) -> list[dict]:
    """``n`` layer points from a scrambled Sobol sequence (fixed ``seed``): heads and L
    log-uniform (half of the points with an odd number of head iterations moved up by 16 heads
    to balance odd and even), dhead in {64, 128, 256}, dbyte in {1, 2}, pim type, power
    constraint.
    Points above ``max_work`` (:func:`layer_work`, ~ cycles) are kept only as every
    ``big_every``-th accepted point and only up to ``big_work``; others are skipped."""
    from scipy.stats import qmc

    eng = qmc.Sobol(d=7, scramble=True, seed=seed)
    out: list[dict] = []
    lh0, lh1 = math.log(heads_range[0]), math.log(heads_range[1] + 1)
    lL0, lL1 = math.log(L_range[0]), math.log(L_range[1] + 1)
    while len(out) < n:
        for u in eng.random(64):
            heads = min(int(math.exp(lh0 + u[0] * (lh1 - lh0))), heads_range[1])
            # balance odd / even head iterations: move half the points by 16 heads
            if u[6] < 0.5 and _cdiv(heads, N_CHANNEL) % 2 == 1:
                heads = heads + N_CHANNEL if heads + N_CHANNEL <= heads_range[1] else heads
            L = min(int(math.exp(lL0 + u[1] * (lL1 - lL0))), L_range[1])
            dhead = DHEADS[min(int(u[2] * 3), 2)]
            dbyte = DBYTES[min(int(u[3] * 2), 1)]
            pim_type = PIM_TYPES[min(int(u[4] * 3), 2)]
            pc = bool(u[5] >= 0.5)
            w = layer_work(L, heads, dhead, dbyte, pim_type)
            if w > big_work:
                continue
            if w > max_work and (len(out) + 1) % big_every:
                continue
            out.append(
                dict(
                    L=L,
                    heads=heads,
                    dhead=dhead,
                    dbyte=dbyte,
                    pim_type=pim_type,
                    power_constraint=pc,
                )
            )
            if len(out) == n:
                break
    return out


def _layer_point(p: dict, variant: str) -> dict:
    args = {k: p[k] for k in ("L", "heads", "dhead", "dbyte", "pim_type")}
    args.update(variant=variant, max_L=4096)
    return {
        "generator": GENERATORS["attacc_layer"],
        "generator_args": args,
        "family": f"attacc_layer_{variant}",
        "power_constraint": p["power_constraint"],
        "meta": dict(
            L=p["L"], heads=p["heads"], dhead=p["dhead"], dbyte=p["dbyte"], pim_type=p["pim_type"]
        ),
    }


def mechanism_points() -> list[dict]:
    """Single-mechanism streams, each under both timing presets."""
    specs: list[tuple[str, str, dict]] = []
    for pim in PIM_TYPES:
        for rows, k in ((1, 1), (1, 8), (1, 32), (4, 32), (4, 7), (64, 32)):
            specs.append(("mac_rows", "mac_rows", dict(rows=rows, k=k, pim_type=pim)))
    specs.append(("mac_rows", "mac_rows", dict(rows=4, k=32, pim_type="BA", channels=16)))
    specs.append(("mac_rows", "mac_rows", dict(rows=4, k=32, pim_type="BA", barrier_every=1)))
    specs.append(("mac_rows", "mac_rows", dict(rows=4, k=32, pim_type="BUFFER", spread=True)))
    specs.append(("mac_rows", "mac_rows", dict(rows=300, k=32, pim_type="BA")))
    for kind in ("WRGB", "MVSB", "MVGB", "SFM"):
        for pattern in ("same_bank", "same_bg", "alt_bg", "alt_rank", "alt_pch"):
            specs.append(("moves", "moves", dict(kind=kind, n=64, pattern=pattern)))
    specs.append(("moves", "moves", dict(kind="MVSB", n=64, pattern="bg_rank", channels=16)))
    specs.append(("moves", "moves", dict(kind="MVGB", n=4000, pattern="same_bg")))
    for barrier in (False, True):
        for macs, n, kind, pattern in (
            (16, 8, "MVSB", "bg_rank"),
            (32, 8, "MVSB", "bg_rank"),
            (32, 16, "MVGB", "rank_bg_run"),
            (32, 8, "WRGB", "same_bg"),
        ):
            a = dict(macs=macs, n=n, kind=kind, pattern=pattern, barrier=barrier, repeat=4)
            specs.append(("mac_moves", "mac_moves", a))
    pts = []
    for fam, gen, a in specs:
        fn = globals()[gen]
        full = {
            k: v.default
            for k, v in __import__("inspect").signature(fn).parameters.items()
            if v.default is not v.empty
        }
        full.update(a)
        # data moves do not depend on the MAC power constraint: one preset
        for pc in (True,) if fam == "moves" else (True, False):
            pts.append(
                {
                    "generator": GENERATORS[gen],
                    "generator_args": full,
                    "family": fam,
                    "power_constraint": pc,
                    "meta": dict(pim_type=full.get("pim_type", "")),
                }
            )
    return pts


def corpus_points(n: int, seed: int = 20240624) -> list[dict]:
    """The corpus design: ~60 % current-generator layers (Sobol; odd and even head
    iterations), ~20 % cache-variant layers (their own Sobol points with an odd number of head
    iterations, where the variants differ), the rest single-mechanism streams."""
    n_mech = len(mechanism_points())
    n_layers = max(n - n_mech, 0)
    n_cache = n_layers // 4
    n_cur = n_layers - n_cache
    pts = [_layer_point(p, "current") for p in sobol_layers(n_cur, seed=seed)]
    cache = [
        p
        for p in sobol_layers(4 * n_cache + 64, seed=seed + 1)
        if _cdiv(p["heads"], N_CHANNEL) % 2 == 1
    ][:n_cache]
    pts += [_layer_point(p, "cache") for p in cache]
    pts += mechanism_points()
    return pts


# --------------------------------------------------------------------------------------------
# Runner
# --------------------------------------------------------------------------------------------


def _key(generator: str, args_js: str, pc) -> tuple:
    return (generator, args_js, str(bool(pc) if not isinstance(pc, str) else pc == "True"))


def _row(pt: dict, res: dict, refresh: bool) -> dict:
    meta = pt["meta"]
    row = {c: "" for c in COLUMNS}
    row.update(
        simulator=SIMULATOR,
        sim_commit=SIM_COMMIT,
        config=config_name(pt["power_constraint"], refresh),
        generator=pt["generator"],
        generator_args=args_json(pt["generator_args"]),
        family=pt["family"],
        power_constraint=bool(pt["power_constraint"]),
        refresh=refresh,
        tCK_ns=TCK_NS,
    )
    row.update({k: v for k, v in meta.items() if k in COLUMNS})
    row.update({k: v for k, v in res.items() if k in COLUMNS})
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sim", required=True, help="path to the patched ramulator2 binary")
    ap.add_argument("--n", type=int, default=200, help="corpus size (all families)")
    ap.add_argument(
        "--out",
        required=True,
        help="corpus CSV (the shipped one: dse/validation/data/corpus_attacc.csv)",
    )
    ap.add_argument("--seed", type=int, default=20240624)
    ap.add_argument("--jobs", type=int, default=2, help="parallel runs (at most 2)")
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--family", action="append", help="only these families")
    ap.add_argument("--limit", type=int, default=0, help="run at most this many new points")
    ap.add_argument("--no-refresh", action="store_true")
    ap.add_argument("--dry-run", action="store_true", help="list the design and exit")
    a = ap.parse_args(argv)
    refresh = not a.no_refresh
    pts = corpus_points(a.n, a.seed)
    if a.family:
        pts = [p for p in pts if p["family"] in a.family]
    if a.dry_run:
        for p in pts:
            w = ""
            if p["family"].startswith("attacc_layer"):
                m = p["meta"]
                w = layer_work(m["L"], m["heads"], m["dhead"], m["dbyte"], m["pim_type"])
            print(p["family"], args_json(p["generator_args"]), p["power_constraint"], w)
        print(len(pts), "points")
        return 0
    out = Path(a.out)
    done = set()
    if out.exists():
        with out.open() as f:
            for r in csv.DictReader(f):
                done.add(_key(r["generator"], r["generator_args"], r["power_constraint"]))
    todo = [
        p
        for p in pts
        if _key(p["generator"], args_json(p["generator_args"]), p["power_constraint"]) not in done
    ]
    if a.limit:
        todo = todo[: a.limit]
    print(f"{len(pts)} points, {len(pts) - len(todo)} measured, {len(todo)} to run", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    new = not out.exists()
    jobs = max(1, min(a.jobs, 2))

    def work(p):
        try:
            return p, run_one(
                a.sim,
                p["generator"],
                p["generator_args"],
                p["power_constraint"],
                refresh,
                a.timeout,
            )
        except Exception as e:  # noqa: BLE001 - reported and skipped
            return p, e

    t0 = time.perf_counter()
    with out.open("a", newline="") as f, ThreadPoolExecutor(jobs) as ex:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            w.writeheader()
        for i, (p, res) in enumerate(ex.map(work, todo)):
            if isinstance(res, Exception):
                print(f"[{i + 1}/{len(todo)}] FAILED {p['family']} {p['generator_args']}: {res}")
                continue
            w.writerow(_row(p, res, refresh))
            f.flush()
            print(
                f"[{i + 1}/{len(todo)}] {p['family']} {args_json(p['generator_args'])} "
                f"pc={p['power_constraint']} cycles={res['cycles']} wall={res['wall_s']}s "
                f"(total {time.perf_counter() - t0:.0f}s)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
