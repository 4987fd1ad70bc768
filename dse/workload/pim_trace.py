"""PIM command traces a user brings: AiM ISR traces, parsed into arrays the models evaluate.

An **AiM ISR trace** is the instruction stream SK hynix's AiM DMA executes (the format CENT's
AiM simulator reads, ``aim_trace.cpp``): one request per line, ``#`` comments, blank lines
ignored, fields separated by single spaces::

    AiM <OPCODE> [opsize] [GPR_addr_0] [GPR_addr_1] [channel_mask] [bank_index] [row_addr]
    W|R GPR <id>          W CFR <addr> <data>          W|R MEM <channel> <bank> <row>

Each opcode takes only its own fields, in that order (:data:`AIM_ISR`). ``ISR_`` may be
omitted from the opcode. Numbers are decimal or ``0x`` hexadecimal. The trace must end with
``AiM EOC``.

:func:`parse_aim_trace` turns the text into an :class:`AimTrace`: one row per request, with
the DRAM command it issues (:data:`dse.models.pim_commands.COMMANDS`), its opsize (columns),
channel mask, bank (-1 for all banks), row, whether it needs the register read/write mode
and whether the DMA waits for it. Requests that issue no DRAM command (GPR transfers, CFR
writes other than the MAC broadcast and activation-function mode, EWADD) are kept: the DMA
spends a cycle decoding each.

Errors name the file, the line and what was expected (:class:`dse.errors.ConfigError`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from dse.errors import ConfigError, read_input

__all__ = [
    "AIM_ISR",
    "AimTrace",
    "parse_aim_trace",
    "load_aim_trace",
    "resolve_trace_path",
    "AF_ROW_BASE",
    "EXAMPLES",
]

#: traces shipped with the package (``dse/workload/data``), usable by name
EXAMPLES = Path(__file__).resolve().parent / "data"

# opcode → (DRAM command, fields in order, one channel only, DMA blocks, register mode)
AIM_ISR: dict[str, tuple[str, tuple[str, ...], bool, bool, bool]] = {
    "WR_SBK": ("WR", ("GPR_addr_0", "channel_mask", "bank_index", "row_addr"), False, False, False),
    "WR_ABK": ("WRA16", ("GPR_addr_0", "channel_mask", "row_addr"), True, False, False),
    "WR_GB": ("WRGB", ("opsize", "GPR_addr_0", "channel_mask"), False, False, True),
    "WR_BIAS": ("WRMAC16", ("GPR_addr_0", "channel_mask"), False, False, True),
    "RD_MAC": ("RDMAC16", ("GPR_addr_0", "channel_mask"), False, True, True),
    "RD_AF": ("RDAF16", ("GPR_addr_0", "channel_mask"), False, True, True),
    "RD_SBK": ("RD", ("GPR_addr_0", "channel_mask", "bank_index", "row_addr"), False, False, False),
    "COPY_BKGB": (
        "RDCP",
        ("opsize", "channel_mask", "bank_index", "row_addr"),
        False,
        False,
        False,
    ),
    "COPY_GBBK": (
        "WRCP",
        ("opsize", "channel_mask", "bank_index", "row_addr"),
        False,
        False,
        False,
    ),
    "MAC_SBK": ("MAC", ("opsize", "channel_mask", "bank_index", "row_addr"), False, False, False),
    "MAC_ABK": ("MAC16", ("opsize", "channel_mask", "row_addr"), False, False, False),
    "AF": ("AF16", ("channel_mask",), False, False, False),
    "EWMUL": ("EWMUL16", ("opsize", "channel_mask", "row_addr"), False, False, False),
    "EWADD": ("", ("opsize", "GPR_addr_0", "GPR_addr_1"), False, False, False),
    "SYNC": ("SYNC", (), False, True, False),
    "EOC": ("EOC", (), False, True, False),
}
#: AF16 reads the activation-function table held in a reserved row: row ``2^29 + mode``
AF_ROW_BASE = 1 << 29
MAX_CHANNELS = 32
BANKS = 16

# request kinds in AimTrace.kind
KIND_CMD, KIND_NONE, KIND_FENCE, KIND_MEM = 0, 1, 2, 3


@dataclasses.dataclass(frozen=True)
class AimTrace:
    """One AiM ISR trace as arrays (one entry per request, in trace order).

    ``command``: DRAM command name per request ('' for none); ``kind``: 0 an AiM command,
    1 no DRAM command, 2 SYNC/EOC fence, 3 a plain MEM read/write; ``opsize`` columns;
    ``mask``: channel bit mask (bit i = channel 31 - i, as the AiM DMA numbers them);
    ``bank``: -1 for all banks; ``row``; ``reg``: needs register R/W mode; ``blocking``:
    the DMA waits for its completion; ``lines``: source line numbers."""

    source: str
    command: tuple[str, ...]
    kind: np.ndarray
    opsize: np.ndarray
    mask: np.ndarray
    bank: np.ndarray
    row: np.ndarray
    reg: np.ndarray
    blocking: np.ndarray
    lines: np.ndarray

    def __len__(self) -> int:
        return len(self.command)

    @property
    def channels(self) -> list[int]:
        """Channels the trace touches (DMA numbering)."""
        m = int(np.bitwise_or.reduce(self.mask[self.kind == KIND_CMD], initial=0))
        m |= (
            int(
                np.bitwise_or.reduce(
                    1 << (MAX_CHANNELS - 1 - self.mask[self.kind == KIND_MEM]), initial=0
                )
            )
            if np.any(self.kind == KIND_MEM)
            else 0
        )
        return [MAX_CHANNELS - 1 - i for i in range(MAX_CHANNELS) if m >> i & 1]

    def counts(self) -> dict[str, int]:
        """DRAM commands requested per type, opsize and channels included."""
        out: dict[str, int] = {}
        for c, k, n, m in zip(self.command, self.kind, self.opsize, self.mask, strict=True):
            if k == KIND_CMD:
                out[c] = out.get(c, 0) + int(n) * bin(int(m)).count("1")
            elif k == KIND_MEM:
                out[c] = out.get(c, 0) + 1
        return out


def _number(tok: str, source: str, key: str) -> int:
    try:
        return int(tok, 16) if tok[:2] in ("0x", "0X") else int(tok)
    except ValueError:
        raise ConfigError(source, key, "an integer (decimal or 0x hexadecimal)", tok) from None


def parse_aim_trace(text: str, source: str = "<trace>") -> AimTrace:
    """Parse an AiM ISR trace (see the module docstring)."""
    rows: list[tuple] = []
    broadcast, afm = 0, 0
    eoc = False
    for ln, raw in enumerate(text.splitlines(), start=1):
        tokens = raw.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        where = f"{source}:{ln}"
        if eoc:
            raise ConfigError(where, "EOC", "no request after AiM EOC", raw.strip())
        head = tokens[0]
        if head == "AiM":
            if len(tokens) < 2:
                raise ConfigError(where, "opcode", f"one of {sorted(AIM_ISR)}", "")
            op = tokens[1][4:] if tokens[1].startswith("ISR_") else tokens[1]
            if op not in AIM_ISR:
                raise ConfigError(where, "opcode", f"one of {sorted(AIM_ISR)}", tokens[1])
            cmd, fields, one_ch, blocking, reg = AIM_ISR[op]
            if len(tokens) - 2 != len(fields):
                raise ConfigError(
                    where,
                    op,
                    f"{len(fields)} fields ({' '.join(fields) or 'none'})",
                    f"{len(tokens) - 2} fields",
                )
            v = {f: _number(t, where, f) for f, t in zip(fields, tokens[2:], strict=True)}
            opsize = v.get("opsize", 1)
            mask = v.get("channel_mask", 0)
            bank = v.get("bank_index", -1)
            row = v.get("row_addr", -1)
            if opsize < 1 or opsize > 1 << 16:
                raise ConfigError(where, "opsize", "an integer in 1..65536", opsize)
            if "channel_mask" in v and not (0 < mask < 1 << MAX_CHANNELS):
                raise ConfigError(where, "channel_mask", "a non-zero 32-bit channel mask", mask)
            if one_ch and bin(mask).count("1") != 1:
                raise ConfigError(where, "channel_mask", "exactly one channel", mask)
            if "bank_index" in v and not 0 <= bank < BANKS:
                raise ConfigError(where, "bank_index", f"0..{BANKS - 1}", bank)
            if "row_addr" in v and row < 0:
                raise ConfigError(where, "row_addr", "a row >= 0", row)
            if op == "AF":
                row = AF_ROW_BASE + afm
            if op in ("SYNC", "EOC"):
                kind = KIND_FENCE
                eoc = op == "EOC"
            elif cmd == "":
                kind = KIND_NONE
            else:
                kind = KIND_CMD
            if op == "MAC_ABK" and broadcast not in (0, 1):
                raise ConfigError(where, "CFR broadcast", "0 or 1", broadcast)
            rows.append((cmd, kind, opsize, mask, bank, row, int(reg), int(blocking), ln))
        elif head in ("R", "W"):
            if len(tokens) < 2 or tokens[1] not in ("GPR", "CFR", "MEM"):
                raise ConfigError(where, "region", "GPR, CFR or MEM", tokens[1:2])
            region = tokens[1]
            need = {"GPR": 1, "CFR": 2, "MEM": 3}[region]
            if len(tokens) - 2 != need:
                raise ConfigError(where, f"{head} {region}", f"{need} fields", len(tokens) - 2)
            vals = [_number(t, where, region) for t in tokens[2:]]
            if region == "MEM":
                ch, bank, row = vals
                if not 0 <= ch < MAX_CHANNELS:
                    raise ConfigError(where, "channel", f"0..{MAX_CHANNELS - 1}", ch)
                if not 0 <= bank < BANKS:
                    raise ConfigError(where, "bank_index", f"0..{BANKS - 1}", bank)
                cmd = "RD" if head == "R" else "WR"
                rows.append((cmd, KIND_MEM, 1, ch, bank, row, 0, 0, ln))
            else:
                if region == "CFR" and head == "W":
                    addr, data = vals
                    if addr not in (0, 1, 2):
                        raise ConfigError(
                            where,
                            "CFR address",
                            "0 (broadcast), 1 (EWMUL bank group) or 2 (activation function)",
                            addr,
                        )
                    if addr == 0:
                        broadcast = data
                    elif addr == 2:
                        afm = data
                rows.append(("", KIND_NONE, 1, 0, -1, -1, 0, 0, ln))
        else:
            raise ConfigError(where, "type", "AiM, R or W", head)
    if not eoc:
        raise ConfigError(source, "EOC", "the trace to end with 'AiM EOC'", "no EOC")
    cols = list(zip(*rows, strict=True))
    return AimTrace(
        source=source,
        command=tuple(cols[0]),
        kind=np.asarray(cols[1], np.int64),
        opsize=np.asarray(cols[2], np.int64),
        mask=np.asarray(cols[3], np.int64),
        bank=np.asarray(cols[4], np.int64),
        row=np.asarray(cols[5], np.int64),
        reg=np.asarray(cols[6], np.int64),
        blocking=np.asarray(cols[7], np.int64),
        lines=np.asarray(cols[8], np.int64),
    )


def resolve_trace_path(path: str | Path) -> Path:
    """``path`` as given, or a trace shipped in :data:`EXAMPLES` of that name (e.g.
    ``aim_gemv_example.trace``: CENT's reuse-GBuf GEMV of 1,024 x 2,048 on 4 channels)."""
    p = Path(path)
    if not p.exists() and (EXAMPLES / p.name).is_file() and p.name == str(path):
        return EXAMPLES / p.name
    return p


def load_aim_trace(path: str | Path) -> AimTrace:
    """Read and parse an AiM ISR trace file (a path, or the name of a shipped example)."""
    p = resolve_trace_path(path)
    text = read_input(p, "AiM ISR trace file", "trace")
    return parse_aim_trace(text, str(p))
