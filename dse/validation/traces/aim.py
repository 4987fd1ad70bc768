"""GDDR6-AiM ground truth: ISR trace writers and a corpus runner for CENT's AiM simulator.

CENT (Yufeng98/CENT) evaluates its GDDR6-AiM devices with a Ramulator-2 fork
(arkhadem/aim_simulator) that reads *ISR traces*: one host instruction per line, e.g.
``AiM MAC_ABK 64 0xffffffff 12`` (opcode, opsize, channel mask, row). This module writes such
traces for the kernels of :mod:`dse.models.pim_kernel` with CENT's mappings
(``cent_simulation/TransformerBlock.py``), runs an external ``ramulator2`` binary on them and
collects one CSV row per run. The simulator is not part of this repository; how it was built
and how its timing works is in docs/oracle/aim.md.

Trace syntax (fields in the order the simulator decodes them: opsize, GPR_addr_0, GPR_addr_1,
channel_mask, bank_index, row_addr)::

    AiM WR_GB <opsize> <gpr> <mask>          AiM MAC_ABK <opsize> <mask> <row>
    AiM WR_BIAS <gpr> <mask>                 AiM MAC_SBK <opsize> <mask> <bank> <row>
    AiM RD_MAC <gpr> <mask>                  AiM EWMUL <opsize> <mask> <row>
    AiM AF <mask>                            AiM RD_AF <gpr> <mask>
    AiM COPY_BKGB <opsize> <mask> <bank> <row>   AiM COPY_GBBK <opsize> <mask> <bank> <row>
    AiM WR_ABK <gpr> <mask> <row>            AiM WR_SBK <gpr> <mask> <bank> <row>
    AiM RD_SBK <gpr> <mask> <bank> <row>     AiM EWADD <opsize> <gpr0> <gpr1>
    AiM SYNC                                 AiM EOC          (last line of every trace)
    R MEM <channel> <bank> <row>             W MEM <channel> <bank> <row>

The channel mask maps bit ``31 - c`` to channel ``c`` (CENT's ``hex_channel_mask``); an
``opsize`` of ``n`` expands to ``n`` column commands at columns ``0 .. n-1`` of the row. One
bank row holds ``ROW_ELEMS = 1024`` bf16 values, ``COLS = 64`` column accesses of
``BURST_ELEMS = 16`` values, so ``opsize <= 64``.

Every writer is a pure function of keyword arguments returning the trace text;
``generator`` (the writer's dotted name) + ``generator_args`` (JSON, sorted keys) re-create a
corpus row's trace byte for byte (:func:`trace_from`). :func:`design` draws each family's
parameters from a scrambled Sobol sequence with a fixed seed (sizes log-uniform).

    python -m dse.validation.traces.aim --sim /path/to/ramulator2 --n 400 \
        --out dse/validation/data/corpus_aim.csv
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
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = [
    "ROW_ELEMS",
    "BURST_ELEMS",
    "COLS",
    "BANKS",
    "DEVICE_CHANNELS",
    "SINGLE_COMMANDS",
    "channel_mask",
    "gemv_reuse",
    "gemv_literal",
    "k_score",
    "v_context",
    "mixed",
    "single",
    "trace_from",
    "generator_name",
    "design",
    "config_yaml",
    "parse_stats",
    "run_one",
    "main",
]

ROW_ELEMS = 1024  # bf16 values per bank row (CENT's DRAM_column)
BURST_ELEMS = 16  # values per 32-byte column access (CENT's burst_length)
COLS = ROW_ELEMS // BURST_ELEMS  # column accesses per row: the largest opsize
BANKS = 16  # banks per channel (4 bank groups x 4)
DEVICE_CHANNELS = 32  # channels of the GDDR6_AiM_org preset
ROWS = 1 << 14  # rows per bank

SIMULATOR = "aim_ramulator2"
# GDDR6_AiM_timing's tCK_ps = 500 (2 GHz), the clock CENT converts cycles with
# (cent_power_calculator.py FREQ = 2 GHz); timing values are cycles of this clock.
TCK_NS = 0.5
SIM_COMMIT = "2eb1ee04f4e8f3c255c9926e7721081726aa4fe4"  # arkhadem/aim_simulator, pinned by CENT
CONFIG = "org=GDDR6_AiM_org;timing=GDDR6_AiM_timing;controller=AiM;scheduler=FRFCFS;refresh=AllBank"

# DRAM commands of the GDDR6 AiM device (GDDR6.cpp m_commands), reported per run.
COMMANDS = (
    "ACT",
    "PREA",
    "PRE",
    "RD",
    "WR",
    "RDA",
    "WRA",
    "REFab",
    "REFpb",
    "ACT4",
    "ACT16",
    "PRE4",
    "MAC",
    "MAC16",
    "AF16",
    "EWMUL16",
    "RDCP",
    "WRCP",
    "WRGB",
    "RDMAC16",
    "RDAF16",
    "WRMAC16",
    "WRA16",
    "TMOD",
    "SYNC",
    "EOC",
)

# Host instructions (ISRs) counted by the AiM memory system.
ISRS = (
    "WR_SBK",
    "WR_GB",
    "WR_BIAS",
    "RD_MAC",
    "RD_AF",
    "RD_SBK",
    "COPY_BKGB",
    "COPY_GBBK",
    "MAC_SBK",
    "MAC_ABK",
    "AF",
    "EWMUL",
    "EWADD",
    "WR_ABK",
    "SYNC",
    "EOC",
)

# Single-command families: every instruction the simulator accepts (ISR_WR_AFLUT is rejected by
# the AiM memory system, so it has no family) plus plain MEM reads and writes.
SINGLE_COMMANDS = (
    "WR_GB",
    "WR_BIAS",
    "RD_MAC",
    "RD_AF",
    "AF",
    "MAC_ABK",
    "MAC_SBK",
    "EWMUL",
    "COPY_BKGB",
    "COPY_GBBK",
    "WR_ABK",
    "WR_SBK",
    "RD_SBK",
    "EWADD",
    "SYNC",
    "R_MEM",
    "W_MEM",
)


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def channel_mask(channels: Iterable[int]) -> str:
    """Hex channel mask with bit ``31 - c`` set for every channel ``c`` (CENT's convention)."""
    m = 0
    for c in channels:
        if not 0 <= c < DEVICE_CHANNELS:
            raise ValueError(f"channel {c} outside 0..{DEVICE_CHANNELS - 1}")
        m |= 1 << (DEVICE_CHANNELS - 1 - c)
    return hex(m)


def _mask_channels(used: int, replicate: bool) -> int:
    """Channels a CENT kernel's ISRs go to: ``used``, or with ``replicate`` CENT's
    ``floor(32 / used) * used`` (every transformer block of the device runs the same stream)."""
    if not 1 <= used <= DEVICE_CHANNELS:
        raise ValueError(f"channels must be in 1..{DEVICE_CHANNELS}, got {used}")
    return DEVICE_CHANNELS // used * used if replicate else used


def _opsize(n_elems: int) -> int:
    op = _cdiv(n_elems, BURST_ELEMS)
    if not 1 <= op <= COLS:
        raise ValueError(f"opsize {op} outside 1..{COLS}")
    return op


def _finish(lines: list[str]) -> str:
    lines.append("AiM EOC")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- instructions
def _wr_gb(op: int, mask: str) -> str:
    return f"AiM WR_GB {op} 0 {mask}"


def _wr_bias(mask: str) -> str:
    return f"AiM WR_BIAS 0 {mask}"


def _mac_abk(op: int, mask: str, row: int) -> str:
    if not 0 <= row < ROWS:
        raise ValueError(f"row {row} outside 0..{ROWS - 1}")
    return f"AiM MAC_ABK {op} {mask} {row}"


def _rd_mac(mask: str) -> str:
    return f"AiM RD_MAC 0 {mask}"


# --------------------------------------------------------------------------- GEMV
def _gemv_geometry(K: int, M: int, channels: int) -> tuple[int, int]:
    if K < 1 or M < 1:
        raise ValueError("K and M must be positive")
    total_banks = channels * BANKS
    per_bank = _cdiv(M, total_banks)  # CENT's matrix_col_per_bank
    rows_per_vector = _cdiv(K, ROW_ELEMS)
    if per_bank * rows_per_vector > ROWS:
        raise ValueError("matrix does not fit the banks' rows")
    return per_bank, rows_per_vector


def _gemv_mask(M: int, per_bank: int, replicate: bool) -> str:
    utilized_banks = _cdiv(M, per_bank)
    used = _cdiv(utilized_banks, BANKS)
    return channel_mask(range(_mask_channels(used, replicate)))


def _row_op(K: int, r: int, rows_per_vector: int) -> int:
    return COLS if r < rows_per_vector - 1 else _opsize(K - ROW_ELEMS * r)


def gemv_reuse(
    *,
    K: int,
    M: int,
    channels: int,
    reuse_size: int = 32,
    row_base: int = 0,
    replicate: bool = False,
) -> str:
    """``y[M] = x[K] W[K, M]`` in CENT's ``reuse-GB`` order
    (``Vector_Matrix_Mul_weight_pim_only_trace``).

    ``W``'s columns are dealt to ``channels x 16`` banks, ``m_b = ceil(M / (16 channels))``
    per bank; column ``v`` of a bank holds its ``K`` values in ``ceil(K / 1024)`` consecutive
    rows ``row_base + v ceil(K / 1024) + r``. For every row chunk ``r``: one WR_GB of the
    chunk (opsize 64, the last chunk ``ceil(rest / 16)``), then the bank's columns in groups
    of at most ``reuse_size`` (CENT balances the groups): the group's WR_BIASes, its MAC_ABKs
    (one row each), its RD_MACs.
    """
    per_bank, rpv = _gemv_geometry(K, M, channels)
    mask = _gemv_mask(M, per_bank, replicate)
    n_groups = _cdiv(per_bank, reuse_size)
    group = _cdiv(per_bank, n_groups)
    lines: list[str] = []
    for r in range(rpv):
        op = _row_op(K, r, rpv)
        lines.append(_wr_gb(op, mask))
        for gi in range(n_groups):
            n = group if gi < n_groups - 1 else per_bank - group * (n_groups - 1)
            lines.extend(_wr_bias(mask) for _ in range(n))
            for li in range(n):
                v = gi * group + li
                lines.append(_mac_abk(op, mask, row_base + v * rpv + r))
            lines.extend(_rd_mac(mask) for _ in range(n))
    return _finish(lines)


def gemv_literal(
    *, K: int, M: int, channels: int, row_base: int = 0, replicate: bool = False
) -> str:
    """``y = x W`` in the literal loop order (CENT's ``no-reuse``): for every row chunk, one
    WR_GB, then per bank column WR_BIAS, MAC_ABK, RD_MAC. Same mapping as :func:`gemv_reuse`."""
    per_bank, rpv = _gemv_geometry(K, M, channels)
    mask = _gemv_mask(M, per_bank, replicate)
    lines: list[str] = []
    for r in range(rpv):
        op = _row_op(K, r, rpv)
        lines.append(_wr_gb(op, mask))
        for v in range(per_bank):
            lines.append(_wr_bias(mask))
            lines.append(_mac_abk(op, mask, row_base + v * rpv + r))
            lines.append(_rd_mac(mask))
    return _finish(lines)


# --------------------------------------------------------------------------- attention
def _check_head_dim(head_dim: int) -> None:
    if head_dim % BURST_ELEMS or ROW_ELEMS % head_dim:
        raise ValueError("head_dim must be a multiple of 16 dividing 1024")


def k_score(
    *,
    head_dim: int,
    n_kv_heads: int,
    L: int,
    g: int,
    channels: int,
    row_base: int = 0,
    replicate: bool = False,
) -> str:
    """Decode scores ``s = q Kᵀ`` with CENT's mapping (``Vector_Matrix_Mul_score_pim_only_trace``).

    Token ``t`` of the context goes to bank ``t mod 16 channels``; its key (all ``n_kv_heads``
    heads, ``head_dim n_kv_heads`` values) fills ``ceil(head_dim n_kv_heads / 1024)`` rows,
    ``1024 / head_dim`` heads per row. For every key row ``r`` and token block ``s`` (``16
    channels`` tokens; the last block uses ``ceil(rest / 16)`` channels): ``g`` times (one per
    GQA query) a WR_GB of a full row of queries (opsize 64), then per head of the row WR_BIAS,
    MAC_ABK (opsize ``head_dim / 16``, row ``row_base + s rows + r``), RD_MAC.
    """
    _check_head_dim(head_dim)
    if min(n_kv_heads, L, g) < 1:
        raise ValueError("n_kv_heads, L and g must be positive")
    rpv = _cdiv(head_dim * n_kv_heads, ROW_ELEMS)
    mac_op = head_dim // BURST_ELEMS
    heads_per_row = ROW_ELEMS // head_dim
    total_banks = channels * BANKS
    seq_iters = _cdiv(L, total_banks)
    if row_base + seq_iters * rpv > ROWS:
        raise ValueError("keys do not fit the banks' rows")
    lines: list[str] = []
    for r in range(rpv):
        for s in range(seq_iters):
            left = channels if s < seq_iters - 1 else _cdiv(L - total_banks * s, BANKS)
            mask = channel_mask(range(_mask_channels(left, replicate)))
            for _ in range(g):
                lines.append(_wr_gb(COLS, mask))
                for _h in range(heads_per_row):
                    lines.append(_wr_bias(mask))
                    lines.append(_mac_abk(mac_op, mask, row_base + s * rpv + r))
                    lines.append(_rd_mac(mask))
    return _finish(lines)


def v_context(
    *,
    head_dim: int,
    n_kv_heads: int,
    L: int,
    g: int,
    channels: int,
    max_seq_len: int = 4096,
    row_base: int = 0,
    replicate: bool = False,
) -> str:
    """Decode context ``o = s V`` with CENT's mapping (``Vector_Matrix_Mul_output_pim_only_trace``,
    intra-device attention).

    Heads go ``ceil(n_kv_heads / channels)`` per channel; within a channel the ``head_dim``
    dimensions are dealt to the 16 banks, ``head_dim / 16`` per bank, each stored as the
    ``L`` token values in ``ceil(L / 1024)`` rows (``ceil(max_seq_len / 1024)`` rows reserved
    per dimension). Per head and GQA query (``g``), per row ``ro`` of tokens: one WR_GB of the
    scores (opsize 64, the last row ``ceil(rest / 16)``), then per bank dimension ``d``
    WR_BIAS, MAC_ABK (row ``head base + d rows_per_dim + ro``), RD_MAC.
    """
    _check_head_dim(head_dim)
    if min(n_kv_heads, L, g) < 1 or max_seq_len < L:
        raise ValueError("n_kv_heads, L, g must be positive and L <= max_seq_len")
    rows_per_seq = _cdiv(L, ROW_ELEMS)
    rows_per_dim = _cdiv(max_seq_len, ROW_ELEMS)
    heads_per_bank = _cdiv(n_kv_heads, channels)
    dim_iters = head_dim // BANKS
    if row_base + rows_per_dim * dim_iters * heads_per_bank > ROWS:
        raise ValueError("values do not fit the banks' rows")
    mask = channel_mask(range(_mask_channels(channels, replicate)))
    lines: list[str] = []
    for h in range(heads_per_bank):
        head_row = row_base + rows_per_dim * dim_iters * h
        for _ in range(g):
            for ro in range(rows_per_seq):
                op = _row_op(L, ro, rows_per_seq)
                lines.append(_wr_gb(op, mask))
                for d in range(dim_iters):
                    lines.append(_wr_bias(mask))
                    lines.append(_mac_abk(op, mask, head_row + d * rows_per_dim + ro))
                    lines.append(_rd_mac(mask))
    return _finish(lines)


# --------------------------------------------------------------------------- mixed streams
def mixed(
    *,
    seed: int,
    n_ops: int,
    channels: int,
    max_opsize: int = COLS,
    n_rows: int = 4,
    p_wr_gb: float = 0.2,
    p_wr_bias: float = 0.2,
    p_mac: float = 0.4,
) -> str:
    """A random stream of WR_GB / WR_BIAS / MAC_ABK / RD_MAC (the rest of the probability) on
    channels ``0 .. channels-1``: opsizes uniform in ``1 .. max_opsize``, MAC rows drawn from
    ``n_rows`` rows (so row hits and misses both occur). ``numpy.random.default_rng(seed)``
    makes it a pure function of the arguments."""
    if n_ops < 1 or not 1 <= max_opsize <= COLS or n_rows < 1:
        raise ValueError("bad mixed-stream arguments")
    p = np.array([p_wr_gb, p_wr_bias, p_mac, 1.0 - p_wr_gb - p_wr_bias - p_mac])
    if (p < -1e-12).any():
        raise ValueError("probabilities must sum to <= 1")
    p = np.clip(p, 0.0, None)
    p = p / p.sum()
    rng = np.random.default_rng(seed)
    kinds = rng.choice(4, size=n_ops, p=p)
    ops = rng.integers(1, max_opsize + 1, size=n_ops)
    rows = rng.integers(0, n_rows, size=n_ops)
    mask = channel_mask(range(channels))
    lines: list[str] = []
    for k, op, row in zip(kinds.tolist(), ops.tolist(), rows.tolist(), strict=True):
        if k == 0:
            lines.append(_wr_gb(op, mask))
        elif k == 1:
            lines.append(_wr_bias(mask))
        elif k == 2:
            lines.append(_mac_abk(op, mask, row))
        else:
            lines.append(_rd_mac(mask))
    return _finish(lines)


# --------------------------------------------------------------------------- single families
def single(
    *,
    command: str,
    n: int,
    opsize: int = 1,
    channels: int = 1,
    bank: int = 0,
    row_stride: int = 1,
) -> str:
    """``n`` copies of one instruction on channels ``0 .. channels-1``.

    Row-addressed instructions visit rows ``i * row_stride`` (``row_stride = 0``: all the same
    row, so every one after the first is a row hit). ``bank`` is the single-bank
    instructions' bank (MAC_SBK, COPY_*, WR_SBK, RD_SBK, MEM). ``opsize`` applies where the
    instruction has one (WR_GB, MAC_*, EWMUL, COPY_*, EWADD). WR_ABK takes one channel;
    ``R_MEM`` / ``W_MEM`` (one 32-byte access each) go to channels ``i mod channels``; EWADD
    and SYNC carry no mask (SYNC goes to every channel).
    """
    if command not in SINGLE_COMMANDS:
        raise ValueError(f"unknown command {command!r}")
    if n < 1 or not 1 <= opsize <= COLS or not 0 <= bank < BANKS or row_stride < 0:
        raise ValueError("bad single-command arguments")
    if (n - 1) * row_stride >= ROWS:
        raise ValueError("rows exceed the bank")
    mask = channel_mask(range(channels))
    lines: list[str] = []
    for i in range(n):
        row = i * row_stride
        line = {
            "WR_GB": f"AiM WR_GB {opsize} 0 {mask}",
            "WR_BIAS": f"AiM WR_BIAS 0 {mask}",
            "RD_MAC": f"AiM RD_MAC 0 {mask}",
            "RD_AF": f"AiM RD_AF 0 {mask}",
            "AF": f"AiM AF {mask}",
            "MAC_ABK": f"AiM MAC_ABK {opsize} {mask} {row}",
            "MAC_SBK": f"AiM MAC_SBK {opsize} {mask} {bank} {row}",
            "EWMUL": f"AiM EWMUL {opsize} {mask} {row}",
            "COPY_BKGB": f"AiM COPY_BKGB {opsize} {mask} {bank} {row}",
            "COPY_GBBK": f"AiM COPY_GBBK {opsize} {mask} {bank} {row}",
            "WR_ABK": f"AiM WR_ABK 0 {channel_mask([0])} {row}",
            "WR_SBK": f"AiM WR_SBK 0 {mask} {bank} {row}",
            "RD_SBK": f"AiM RD_SBK 0 {mask} {bank} {row}",
            "EWADD": f"AiM EWADD {opsize} 0 0",
            "SYNC": "AiM SYNC",
            "R_MEM": f"R MEM {i % channels} {bank} {row}",
            "W_MEM": f"W MEM {i % channels} {bank} {row}",
        }[command]
        lines.append(line)
    return _finish(lines)


# --------------------------------------------------------------------------- reproduction
WRITERS: dict[str, Callable[..., str]] = {
    "gemv_reuse": gemv_reuse,
    "gemv_literal": gemv_literal,
    "k_score": k_score,
    "v_context": v_context,
    "mixed": mixed,
    "single": single,
}


def generator_name(fn: Callable[..., str]) -> str:
    module = "dse.validation.traces.aim" if fn.__module__ == "__main__" else fn.__module__
    return f"{module}.{fn.__qualname__}"


def trace_from(generator: str, generator_args: str | dict) -> str:
    """Re-create a corpus row's trace from its ``generator`` and ``generator_args``."""
    module, _, name = generator.rpartition(".")
    fn = getattr(importlib.import_module(module), name)
    args = json.loads(generator_args) if isinstance(generator_args, str) else generator_args
    return fn(**args)


def dump_args(args: dict) -> str:
    return json.dumps(args, sort_keys=True)


# --------------------------------------------------------------------------- Sobol design
SEED = 20240607
_CH = (1, 2, 4, 8, 16, 32)


def _log_int(u: float, lo: int, hi: int) -> int:
    return int(round(math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))))


def _pick(u: float, options: tuple) -> object:
    return options[min(int(u * len(options)), len(options) - 1)]


def _sobol(d: int, n: int, seed: int) -> np.ndarray:
    from scipy.stats import qmc

    m = max(1, math.ceil(math.log2(max(n, 2))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return qmc.Sobol(d, scramble=True, seed=seed).random_base2(m)[:n]


# A run's simulated work is kept small: the simulator ticks all 32 controllers every cycle
# (about 1.5 M cycles/s with one busy channel, 4 M channel-cycles/s with many), so each point
# caps its MAC_ABK instructions (and MAC_ABK x mask channels) by shrinking M or L.
MAX_MACS = 30000
MAX_MAC_CHANNELS = 60000


def _gemv_point(u: np.ndarray, literal: bool) -> dict:
    K = _log_int(u[0], 128, 32768)
    M = _log_int(u[1], 128, 32768)
    channels = int(_pick(u[2], _CH))
    replicate = bool(u[3] < 0.25)
    mask_ch = DEVICE_CHANNELS if replicate else channels
    # cap the MAC_ABK count ceil(K/1024) * ceil(M/(16 ch)) and the rows it uses by shrinking M
    rpv = _cdiv(K, ROW_ELEMS)
    per_bank = _cdiv(M, channels * BANKS)
    cap = min(MAX_MACS, MAX_MAC_CHANNELS // mask_ch, ROWS)
    if rpv * per_bank > cap:
        per_bank = max(1, cap // rpv)
        M = min(M, per_bank * channels * BANKS)
    args = {"K": K, "M": M, "channels": channels, "replicate": replicate}
    if not literal:
        args["reuse_size"] = int(_pick(u[4], (8, 16, 32, 32, 64)))
    return args


def _attn_point(u: np.ndarray, score: bool) -> dict:
    head_dim = int(_pick(u[0], (64, 128, 128, 256)))
    n_kv_heads = int(_pick(u[1], (8, 16, 32, 64) if score else (1, 2, 4, 8, 16, 32, 64)))
    if score:
        n_kv_heads = max(n_kv_heads, ROW_ELEMS // head_dim)
    L = _log_int(u[2], 128, 32768)
    g = int(_pick(u[3], (1, 1, 2, 4, 8)))
    channels = int(_pick(u[4], _CH))
    replicate = bool(u[5] < 0.25)
    mask_ch = DEVICE_CHANNELS if replicate else channels
    cap = min(MAX_MACS, MAX_MAC_CHANNELS // mask_ch)
    args = {"head_dim": head_dim, "n_kv_heads": n_kv_heads, "g": g, "channels": channels}
    if score:
        rpv = _cdiv(head_dim * n_kv_heads, ROW_ELEMS)
        per_iter = rpv * g * (ROW_ELEMS // head_dim)  # MAC_ABKs per token block
        max_iters = max(1, min(cap // per_iter, ROWS // rpv))
        L = min(L, max_iters * channels * BANKS)
    else:
        heads = _cdiv(n_kv_heads, channels)
        dims = head_dim // BANKS
        per_row = heads * g * dims  # MAC_ABKs per 1024-token row
        max_rows = max(1, min(cap // per_row, ROWS // (heads * dims)))
        L = min(L, max_rows * ROW_ELEMS)
        args["max_seq_len"] = max(4096, _cdiv(L, ROW_ELEMS) * ROW_ELEMS)
    args["L"] = L
    args["replicate"] = replicate
    return args


def _mixed_point(u: np.ndarray, i: int) -> dict:
    return {
        "seed": 1000 + i,
        "n_ops": _log_int(u[0], 16, 4000),
        "channels": int(_pick(u[1], _CH)),
        "max_opsize": _log_int(u[2], 1, COLS),
        "n_rows": _log_int(u[3], 1, 64),
        "p_wr_gb": round(0.05 + 0.3 * u[4], 3),
        "p_wr_bias": round(0.05 + 0.3 * u[5], 3),
        "p_mac": round(0.1 + 0.3 * u[6], 3),
    }


def _single_point(u: np.ndarray, i: int) -> dict:
    command = SINGLE_COMMANDS[i % len(SINGLE_COMMANDS)]
    n = _log_int(u[0], 1, 2000)
    opsize = _log_int(u[1], 1, COLS)
    return {
        "command": command,
        "n": n,
        "opsize": opsize,
        "channels": int(_pick(u[2], _CH)),
        "bank": int(u[3] * BANKS) % BANKS,
        "row_stride": int(_pick(u[4], (0, 1, 1, 7))),
    }


FAMILY_WEIGHTS = {
    "gemv_reuse": 0.17,
    "gemv_literal": 0.17,
    "k_score": 0.14,
    "v_context": 0.14,
    "mixed": 0.12,
    "single": 0.26,
}


def design(n: int, seed: int = SEED) -> list[tuple[str, str, dict]]:
    """``n`` corpus points ``(family, generator, args)`` spread over the families by
    ``FAMILY_WEIGHTS``; each family's parameters come from its own scrambled Sobol sequence
    (seed ``seed + family index``). The single-command family cycles through
    ``SINGLE_COMMANDS``; its ``family`` is the command name."""
    counts = {f: int(round(w * n)) for f, w in FAMILY_WEIGHTS.items()}
    counts["gemv_reuse"] += n - sum(counts.values())
    points: list[tuple[str, str, dict]] = []
    for fi, (family, count) in enumerate(counts.items()):
        if count <= 0:
            continue
        fn = WRITERS[family]
        U = _sobol(8, count, seed + fi)
        for i, u in enumerate(U):
            if family in ("gemv_reuse", "gemv_literal"):
                args = _gemv_point(u, family == "gemv_literal")
            elif family in ("k_score", "v_context"):
                args = _attn_point(u, family == "k_score")
            elif family == "mixed":
                args = _mixed_point(u, i)
            else:
                args = _single_point(u, i)
            name = args["command"] if family == "single" else family
            points.append((name, generator_name(fn), args))
    return points


# --------------------------------------------------------------------------- simulator runs
def config_yaml(trace_path: str) -> str:
    """Ramulator-2 configuration of a CENT AiM device: AiM trace frontend, AiM DMA memory
    system, the 32-channel GDDR6 AiM organization and timing presets, the in-order AiM
    controller (its scheduler and refresh children are required by the factory)."""
    return (
        "Frontend:\n"
        "  impl: AiMTrace\n"
        "  clock_ratio: 1\n"
        f"  path: {trace_path}\n"
        "  Translation:\n"
        "    impl: NoTranslation\n"
        "    max_addr: 2147483648\n"
        "MemorySystem:\n"
        "  impl: AiMDRAM\n"
        "  clock_ratio: 1\n"
        "  DRAM:\n"
        "    impl: GDDR6\n"
        "    org:\n"
        "      preset: GDDR6_AiM_org\n"
        "    timing:\n"
        "      preset: GDDR6_AiM_timing\n"
        "  Controller:\n"
        "    impl: AiM\n"
        "    clock_ratio: 1\n"
        "    Scheduler:\n"
        "      impl: FRFCFS\n"
        "    RefreshManager:\n"
        "      impl: AllBank\n"
        "  AddrMapper:\n"
        "    impl: RoBaRaCoCh\n"
    )


_STAT = re.compile(r"^\s*([A-Za-z0-9_]+):\s*(-?[0-9.eE+]+)\s*(?:#.*)?$")


def parse_stats(text: str) -> dict[str, float]:
    """``name: value`` pairs of the simulator's YAML statistics dump."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _STAT.match(line)
        if m:
            v = float(m.group(2))
            out[m.group(1)] = int(v) if v.is_integer() else v
    return out


COLUMNS = (
    [
        "simulator",
        "sim_commit",
        "config",
        "generator",
        "generator_args",
        "family",
        "channels",
        "host_requests",
        "cycles",
        "tCK_ns",
        "ch0_cycles_busy",
        "wall_s",
    ]
    + [f"n_{c}" for c in COMMANDS]
    + [f"isr_{c}" for c in ISRS]
    + ["n_R_MEM", "n_W_MEM"]
)


def _channels_used(trace: str) -> int:
    used = 0
    for line in trace.splitlines():
        tok = line.split()
        if tok[:2] in (["R", "MEM"], ["W", "MEM"]):
            used |= 1 << (DEVICE_CHANNELS - 1 - int(tok[2]))
        for t in tok:
            if t.startswith("0x"):
                used |= int(t, 16)
    return bin(used).count("1")


def run_one(sim: str, family: str, generator: str, args: dict, timeout: float = 120.0) -> dict:
    """Write the trace and config to a temp dir, run the simulator and return one CSV row."""
    trace = trace_from(generator, args)
    with tempfile.TemporaryDirectory(prefix="aim_") as d:
        tpath = os.path.join(d, "trace.txt")
        cpath = os.path.join(d, "config.yaml")
        with open(tpath, "w") as f:
            f.write(trace)
        with open(cpath, "w") as f:
            f.write(config_yaml(tpath))
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sim, "-f", cpath, "-t", tpath],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"simulator failed ({proc.returncode}): {proc.stderr[-500:]}")
    st = parse_stats(proc.stdout)
    row: dict = {
        "simulator": SIMULATOR,
        "sim_commit": SIM_COMMIT,
        "config": CONFIG,
        "generator": generator,
        "generator_args": dump_args(args),
        "family": family,
        "channels": _channels_used(trace),
        "host_requests": sum(
            1 for ln in trace.splitlines() if ln and not ln.startswith("#") and ln != "AiM EOC"
        ),
        "cycles": int(st["memory_system_cycles"]),
        "tCK_ns": TCK_NS,
        "ch0_cycles_busy": None,
        "wall_s": round(wall, 3),
    }
    for c in COMMANDS:
        row[f"n_{c}"] = sum(
            int(st.get(f"CH{ch}_num_{c}_commands", 0)) for ch in range(DEVICE_CHANNELS)
        )
    for c in ISRS:
        row[f"isr_{c}"] = int(st.get(f"total_num_AiM_ISR_{c}_requests", 0))
    row["n_R_MEM"] = int(st.get("total_num_R_MEM_requests", 0))
    row["n_W_MEM"] = int(st.get("total_num_W_MEM_requests", 0))
    idle = st.get("CH0_idle_cycles")
    row["ch0_cycles_busy"] = None if idle is None else row["cycles"] - int(idle)
    return row


def _existing(path: str) -> set[tuple[str, str]]:
    if not os.path.exists(path):
        return set()
    with open(path, newline="") as f:
        return {(r["generator"], r["generator_args"]) for r in csv.DictReader(f)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sim", required=True, help="path to the aim_simulator ramulator2 binary")
    ap.add_argument("--n", type=int, default=400, help="number of design points")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument(
        "--out",
        required=True,
        help="corpus CSV (the shipped one: dse/validation/data/corpus_aim.csv)",
    )
    ap.add_argument("--jobs", type=int, default=2, help="parallel runs (at most 2)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per run")
    ap.add_argument("--families", default="", help="comma-separated subset of families")
    a = ap.parse_args(argv)
    points = design(a.n, a.seed)
    if a.families:
        keep = set(a.families.split(","))
        points = [p for p in points if p[0] in keep or p[1].rsplit(".", 1)[1] in keep]
    done = _existing(a.out)
    todo = [p for p in points if (p[1], dump_args(p[2])) not in done]
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    new_file = not os.path.exists(a.out)
    jobs = max(1, min(2, a.jobs))
    print(f"{len(points)} points, {len(todo)} to run", file=sys.stderr)
    failures = 0
    with open(a.out, "a", newline="") as f, ThreadPoolExecutor(jobs) as ex:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        if new_file:
            w.writeheader()
        futs = [(p, ex.submit(run_one, a.sim, *p, a.timeout)) for p in todo]
        for k, (p, fut) in enumerate(futs):
            try:
                row = fut.result()
            except Exception as e:  # report and continue with the rest
                failures += 1
                print(f"FAIL {p[0]} {dump_args(p[2])}: {e}", file=sys.stderr)
                continue
            w.writerow(row)
            f.flush()
            print(
                f"[{k + 1}/{len(todo)}] {row['family']} cycles={row['cycles']} "
                f"wall={row['wall_s']}s",
                file=sys.stderr,
            )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
