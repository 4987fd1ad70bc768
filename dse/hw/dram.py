"""DRAM device INI files: DRAMSim3 (sectioned) and DRAMSim2 (flat device) formats.

:func:`read_ini` reads one file into a :class:`DramConfig`; :func:`pim_fields_from_ini`
turns it into the :class:`~dse.hw.pim.PimChannel` fields a DRAM INI determines
(DESIGN.md §4.1). Every problem with the file is a :class:`~dse.errors.ConfigError` that
names the file, the key (``"<section>.<key>"`` for DRAMSim3, the flat key for DRAMSim2) and
what was expected; no ``configparser``/``ValueError`` escapes.

**DRAMSim3 format** (umd-memsys/DRAMsim3 ``configs/*.ini``, NeuPIMs' NewtonSim fork,
LLMServingSim ``configs/pim/*.ini``): sections ``[dram_structure] [timing] [power] [system]
[other]`` (others such as ``[thermal]`` are kept in :attr:`DramConfig.raw`). Keys are
case-insensitive, as in DRAMSim3's inih reader. A number may carry a trailing parenthesised
note (GDDR5X's ``tCK = 0.666 (1/1.5)``; DRAMSim3's ``strtod`` stops before it); any other
trailing text is an error. Everything after ``#`` or ``;`` on a line is a comment, also
without a space before it (``tRPRE = 1; read preamble``). An empty value
(``tRFC = ``) means the key is absent, which is what DRAMSim3 does with it (its
``GetInteger`` falls back to the default on an unparsable value). LLMServingSim's ``[other]``
section adds ``data_rate`` (MT/s), ``idle_power`` and ``peak_power`` (mW).

Semantics follow DRAMSim3's ``src/configuration.cc`` and ``src/timing.cc``:

* Required (no default accepted here, although DRAMSim3 has one): ``dram_structure``
  ``bankgroups, banks_per_group, columns, device_width, BL``; ``timing`` ``tCK, CL, tRP,
  tRAS`` and one of ``tRCD``/``tRCDRD``; ``system`` ``bus_width``.
* Optional keys fall back to DRAMSim3's defaults (:data:`DRAMSIM3_DEFAULTS`): rows 65536,
  CWL 12, tCCD_L 6, tCCD_S 4, tRTP 5, tWTR_L/S 5, tWR 10, tRRD_L/S 4, tRFC 74, tREFI 7800,
  tFAW 50, channels 1, channel_size 1024 MB, AL 0.
* ``tRCD`` is the ACT→READ delay: ``tRCD`` when given, else ``tRCDRD`` (DRAMSim3 applies
  ``tRCDRD`` for GDDR/HBM and ``tRCD`` otherwise; no shipped file gives both).
  ``tRCDWR`` falls back to ``tRCD``.
* ``tRTP`` falls back to ``tRTP_L`` (the HBM/GDDR files give ``tRTP_L``/``tRTP_S`` only).
  Stock DRAMSim3 and NewtonSim never read ``tRTP_L`` and would use their default 5 there; we
  take the file's same-bank-group value instead, as the presets table does.
* ``bankgroup_enable = false`` folds all banks into one bank group (``banks_per_group *=
  bankgroups; bankgroups = 1``) exactly as DRAMSim3 does.
* Transfers per clock follow DRAMSim3's ``burst_cycle``: ``BL/4`` cycles per burst for GDDR5
  (4 transfers per tCK), ``BL/8`` for GDDR5X (8), ``BL/16`` for GDDR6 (16, NewtonSim and
  later DRAMSim3) and ``BL/2`` for everything else (DDR-style, 2).
* ``columns`` counts ``device_width``-bit columns (DRAMSim3's regulated meaning), except
  that GDDR files count bursts of BL columns, which DRAMSim3 multiplies out
  (``columns *= BL``). Stock DRAMSim3 also doubles HBM columns ("prefetch"); NeuPIMs'
  NewtonSim comments that out, and the HBM2 files' own density (16 banks x 32768 rows x
  1 KB = 4 Gb per channel) and the presets table (``row_bytes_per_bank`` 1024) agree with
  NewtonSim, so HBM rows are ``columns * device_width / 8`` = 1 KB here.
* An unknown ``protocol`` string is kept as it is (DRAMSim3 would abort).

**DRAMSim2 device format** (e.g. SAITPublic/PIMSimulator ``ini/HBM2_samsung_2M_16B_x64.ini``):
``KEY=VALUE`` lines, ``;`` comments, no sections. Mapped as ``NUM_BANK_GROUPS`` →
bankgroups (default 1), ``NUM_BANKS`` (banks per rank, all groups) / bankgroups →
banks_per_group, ``NUM_ROWS``, ``NUM_COLS``, ``DEVICE_WIDTH``, ``BL``, ``tCK``, ``CL`` (or
``RL - AL``), ``CWL`` (or ``WL - AL``, else ``CL - 1`` as DRAMSim2's ``WL = RL - 1``),
``tRCD`` (or ``tRCDRD``), ``tRCDWR``, ``tRP``, ``tRAS``, ``tRTP`` (or ``tRTPL``), ``tRTPS``,
``tWR``, ``tCCD``/``tCCDS``/``tCCDL``, ``tRRD``/``tRRDS``/``tRRDL``, ``tFAW`` (or ``tXAW``),
``tWTR``/``tWTRS``/``tWTRL``, ``tRFC``, ``tREFI``. A device file has no bus: ``bus_width`` is
``DEVICE_WIDTH`` (one device per rank, as PIMSimulator's ``system_hbm.ini`` pairs
``JEDEC_DATA_BUS_BITS=64`` with the x64 device) and ``channels`` is 1 (``NUM_CHANS`` lives in
the system file). DRAMSim2 *system* files (``NUM_CHANS``, ``JEDEC_DATA_BUS_BITS``, no device
keys) are rejected with a ConfigError that says so.
"""

from __future__ import annotations

import configparser
import dataclasses
import math
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from dse.errors import ConfigError, read_input

__all__ = [
    "DramConfig",
    "read_ini",
    "pim_fields_from_ini",
    "DRAMSIM3_DEFAULTS",
    "PIM_COL_BYTES",
]

#: Bytes one all-bank MAC command takes from each bank (16 lanes x 2 B; DESIGN.md §4.2).
PIM_COL_BYTES = 32

#: DRAMSim3 ``configuration.cc`` defaults for the optional keys this reader keeps.
DRAMSIM3_DEFAULTS: Mapping[str, int] = MappingProxyType(
    {
        "dram_structure.rows": 1 << 16,
        "timing.AL": 0,
        "timing.CWL": 12,
        "timing.tCCD_L": 6,
        "timing.tCCD_S": 4,
        "timing.tRTP": 5,
        "timing.tWTR_L": 5,
        "timing.tWTR_S": 5,
        "timing.tWR": 10,
        "timing.tRRD_L": 4,
        "timing.tRRD_S": 4,
        "timing.tRFC": 74,
        "timing.tREFI": 7800,
        "timing.tFAW": 50,
        "system.channels": 1,
        "system.channel_size": 1024,
    }
)

_PIM_TYPES = ("SINGLE", "DUAL", "DRAM")
_SECTIONS_REQUIRED = {
    "dram_structure": "bankgroups, banks_per_group, columns, device_width, BL",
    "timing": "tCK, CL, tRP, tRAS, tRCD or tRCDRD",
    "system": "bus_width",
}
_COMMENT = re.compile(r"[;#]")
_INT = re.compile(r"[+-]?\d+")
_NOTE = re.compile(r"\s+\([^()]*\)$")  # trailing "(note)": GDDR5X's "tCK = 0.666 (1/1.5)"


@dataclasses.dataclass(frozen=True)
class DramConfig:
    """One DRAM device/channel as a DRAMSim3 or DRAMSim2 INI describes it.

    Timings are integer clock cycles of ``tCK_ns`` with their JEDEC names. ``bankgroups``
    and ``banks_per_group`` are after DRAMSim3's ``bankgroup_enable`` folding; ``columns``
    is the file's value (see :attr:`row_bytes` for the page size).
    """

    protocol: str
    bankgroups: int
    banks_per_group: int
    rows: int
    columns: int
    device_width: int
    BL: int
    tCK_ns: float
    AL: int
    CL: int
    CWL: int
    tRCD: int
    tRCDWR: int
    tRP: int
    tRAS: int
    tRTP: int
    tRTP_S: int
    tWR: int
    tCCD_S: int
    tCCD_L: int
    tRRD_S: int
    tRRD_L: int
    tFAW: int
    tWTR_S: int
    tWTR_L: int
    tRFC: int
    tREFI: int
    channels: int
    bus_width: int
    channel_size_MB: int
    data_rate_MTps: float
    idle_power_mW: float | None
    peak_power_mW: float | None
    pim_type: str | None
    path: str
    format: str = "dramsim3"
    #: ``[power]`` values (DRAMSim3) or IDD*/VDD*/Vpp values (DRAMSim2), as floats.
    power: dict[str, float] = dataclasses.field(default_factory=dict, compare=False)
    #: every key as read, ``"section.key"`` (lower-case) -> value text without comment.
    raw: dict[str, str] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @property
    def banks(self) -> int:
        return self.bankgroups * self.banks_per_group

    @property
    def burst_cycles(self) -> float:
        """Clock cycles one burst occupies the data bus (DRAMSim3 ``burst_cycle``)."""
        return self.BL / _transfers_per_clock(self.protocol)

    @property
    def transfers_per_tck(self) -> float:
        """Data-bus transfers per clock cycle: ``data_rate_MTps * tCK_ns / 1000``."""
        return self.data_rate_MTps * self.tCK_ns / 1000.0

    @property
    def physical_columns(self) -> int:
        """``device_width``-bit columns per row (GDDR files count bursts of BL)."""
        return self.columns * self.BL if _is_gddr(self.protocol) else self.columns

    @property
    def row_bytes(self) -> int:
        """Bytes per row of one device: ``physical_columns * device_width / 8``."""
        return self.physical_columns * self.device_width // 8

    @property
    def ranks(self) -> int:
        """Ranks per channel as NeuPIMs' NewtonSim ``CalculateSize`` derives them.

        ``channel_size / (row_bytes * rows * banks * bus_width/device_width)`` in whole MB
        (C integer arithmetic), 1 when one rank is already larger than ``channel_size``.
        """
        devices = max(self.bus_width // self.device_width, 1)
        megs_per_bank = self.row_bytes * (self.rows // 1024) // 1024
        megs_per_rank = megs_per_bank * self.banks * devices
        if megs_per_rank <= 0 or megs_per_rank > self.channel_size_MB:
            return 1
        return self.channel_size_MB // megs_per_rank


def _is_gddr(protocol: str) -> bool:
    return protocol.upper().startswith("GDDR")


def _transfers_per_clock(protocol: str) -> int:
    p = protocol.upper()
    return {"GDDR5": 4, "GDDR5X": 8, "GDDR6": 16}.get(p, 2)


# --------------------------------------------------------------------------------------
# value parsing shared by both formats
# --------------------------------------------------------------------------------------


class _Values:
    """Key -> value text with typed, checked getters that raise ConfigError."""

    def __init__(self, source: str, values: dict[str, str], names: dict[str, str]) -> None:
        self.source = source
        self.values = values  # lower-case key -> stripped text ("" = absent)
        self.names = names  # lower-case key -> key as spelled for messages

    def name(self, key: str) -> str:
        return self.names.get(key.lower(), key)

    def text(self, key: str) -> str | None:
        v = self.values.get(key.lower())
        return v if v else None

    def number_text(self, key: str) -> str | None:
        """The value without a trailing parenthesised note (DRAMSim3's strtod ignores it)."""
        s = self.text(key)
        return None if s is None else _NOTE.sub("", s)

    def has(self, *keys: str) -> bool:
        return any(self.text(k) is not None for k in keys)

    def error(self, key: str, expected: str, got: object = None) -> ConfigError:
        return ConfigError(self.source, self.name(key), expected, got)

    def integer(self, key: str, default: int | None = None, low: int = 0) -> int:
        s = self.number_text(key)
        if s is None:
            if default is None:
                raise self.error(key, "a value (required key is missing or empty)")
            return default
        if not _INT.fullmatch(s):
            raise self.error(key, f"an integer >= {low}", s)
        v = int(s)
        if v < low:
            raise self.error(key, f"an integer >= {low}", s)
        return v

    def real(
        self, key: str, default: float | None = None, low: float = 0.0, low_open: bool = False
    ) -> float:
        s = self.number_text(key)
        if s is None:
            if default is None:
                raise self.error(key, "a value (required key is missing or empty)")
            return default
        try:
            v = float(s)
        except ValueError:
            raise self.error(key, "a finite number", s) from None
        if not math.isfinite(v):
            raise self.error(key, "a finite number", s)
        if v < low or (low_open and v == low):
            op = ">" if low_open else ">="
            raise self.error(key, f"a finite number {op} {low:g}", s)
        return v

    def optional_real(self, key: str, low: float = 0.0) -> float | None:
        return None if self.text(key) is None else self.real(key, low=low)

    def first(self, keys: tuple[str, ...]) -> str:
        """The first of ``keys`` that has a value (else the first key, for the message)."""
        for k in keys:
            if self.text(k) is not None:
                return k
        return keys[0]


def _read_text(path: Path) -> str:
    # a byte-order mark, as some Windows editors write, is not part of the first key
    return read_input(path, "DRAM INI file", "file").removeprefix("\ufeff")


def _strip_comment(value: str) -> str:
    m = _COMMENT.search(value)
    return (value[: m.start()] if m else value).strip()


# --------------------------------------------------------------------------------------
# DRAMSim3
# --------------------------------------------------------------------------------------


def _parse_sectioned(src: str, text: str) -> tuple[_Values, dict[str, str]]:
    cp = configparser.ConfigParser(
        inline_comment_prefixes=("#", ";"),
        comment_prefixes=("#", ";"),
        interpolation=None,
        strict=True,
        default_section="\x00no-default\x00",
    )
    cp.optionxform = str  # keep the file's spelling; lookups lower-case it themselves
    try:
        cp.read_string(text, source=src)
    except configparser.DuplicateOptionError as e:
        raise ConfigError(
            src,
            f"{e.section}.{e.option}",
            "each key once per section",
            f"repeated at line {e.lineno}",
        ) from None
    except configparser.DuplicateSectionError as e:
        raise ConfigError(
            src, str(e.section), "each [section] once", f"repeated at line {e.lineno}"
        ) from None
    except configparser.MissingSectionHeaderError as e:
        line = str(e.line).strip()
        key = _strip_comment(line).split("=", 1)[0].strip() or "file"
        raise ConfigError(
            src, key, "a [section] header before the first key", f"line {e.lineno}: {line}"
        ) from None
    except configparser.ParsingError as e:
        lineno, line = e.errors[0] if e.errors else (0, "")
        line = str(line).strip().strip("'\"").replace("\\n", "").strip()
        key = _strip_comment(line).split("=", 1)[0].split(":", 1)[0].strip() or "file"
        raise ConfigError(src, key, "'key = value' lines", f"line {lineno}: {line}") from None
    except configparser.Error as e:
        raise ConfigError(src, "file", "a DRAMSim3 INI file", str(e).splitlines()[0]) from None

    values: dict[str, str] = {}
    names: dict[str, str] = {}
    seen: dict[str, str] = {}
    for section in cp.sections():
        low = section.strip().lower()
        if low in seen:
            raise ConfigError(src, low, "each [section] once", f"[{seen[low]}] and [{section}]")
        seen[low] = section
        for option, value in cp.items(section, raw=True):
            key = f"{low}.{option.lower()}"
            if key in values:  # DRAMSim3's inih reader is case-insensitive
                raise ConfigError(
                    src, f"{low}.{option}", "each key once per section", f"also as {names[key]}"
                )
            values[key] = _strip_comment(value or "")
            names[key] = f"{low}.{option}"
    for sec, keys in _SECTIONS_REQUIRED.items():
        if sec not in seen:
            raise ConfigError(src, sec, f"a [{sec}] section (with {keys})", "no such section")
    return _Values(src, values, names), values


def _spell(v: _Values, key: str) -> None:
    """Make error messages spell the key with DRAMSim3's case when the file lacks it."""
    v.names.setdefault(key.lower(), key)


def _read_dramsim3(src: str, text: str) -> DramConfig:
    v, raw = _parse_sectioned(src, text)
    for key in (
        "dram_structure.bankgroups dram_structure.banks_per_group dram_structure.rows "
        "dram_structure.columns dram_structure.device_width dram_structure.BL "
        "dram_structure.protocol dram_structure.pim_type dram_structure.bankgroup_enable "
        "timing.tCK timing.AL timing.CL timing.CWL timing.tRCD timing.tRCDRD timing.tRCDWR "
        "timing.tRP timing.tRAS timing.tRTP timing.tRTP_L timing.tRTP_S timing.tWR "
        "timing.tCCD_S timing.tCCD_L timing.tRRD_S timing.tRRD_L timing.tFAW timing.tWTR_S "
        "timing.tWTR_L timing.tRFC timing.tREFI system.channels system.bus_width "
        "system.channel_size other.data_rate other.idle_power other.peak_power"
    ).split():
        _spell(v, key)
    d = DRAMSIM3_DEFAULTS

    protocol = v.text("dram_structure.protocol") or "DDR3"  # DRAMSim3 default
    bankgroups = v.integer("dram_structure.bankgroups", low=1)
    banks_per_group = v.integer("dram_structure.banks_per_group", low=1)
    bg_enable = (v.text("dram_structure.bankgroup_enable") or "true").lower()
    if bg_enable not in ("true", "false", "yes", "no", "on", "off", "1", "0"):
        raise v.error("dram_structure.bankgroup_enable", "true or false", bg_enable)
    if bg_enable in ("false", "no", "off", "0"):
        banks_per_group *= bankgroups
        bankgroups = 1
    pim_type = v.text("dram_structure.pim_type")
    if pim_type is not None:
        if pim_type.upper() not in _PIM_TYPES:
            raise v.error("dram_structure.pim_type", " or ".join(_PIM_TYPES), pim_type)
        pim_type = pim_type.upper()

    tCK = v.real("timing.tCK", low=0.0, low_open=True)
    if not v.has("timing.tRCD", "timing.tRCDRD"):
        raise v.error("timing.tRCD", "a value for tRCD or tRCDRD (required; both missing)")
    tRCD = v.integer(v.first(("timing.tRCD", "timing.tRCDRD")))
    tRTP = v.integer(v.first(("timing.tRTP", "timing.tRTP_L")), d["timing.tRTP"])
    AL = v.integer("timing.AL", d["timing.AL"])

    transfers = _transfers_per_clock(protocol)
    data_rate = v.optional_real("other.data_rate")
    if data_rate is not None and data_rate <= 0:
        raise v.error("other.data_rate", "a finite number > 0 (MT/s)", v.text("other.data_rate"))
    if data_rate is None:
        data_rate = transfers / tCK * 1000.0

    return DramConfig(
        protocol=protocol,
        bankgroups=bankgroups,
        banks_per_group=banks_per_group,
        rows=v.integer("dram_structure.rows", d["dram_structure.rows"], low=1),
        columns=v.integer("dram_structure.columns", low=1),
        device_width=v.integer("dram_structure.device_width", low=1),
        BL=v.integer("dram_structure.BL", low=1),
        tCK_ns=tCK,
        AL=AL,
        CL=v.integer("timing.CL"),
        CWL=v.integer("timing.CWL", d["timing.CWL"]),
        tRCD=tRCD,
        tRCDWR=v.integer("timing.tRCDWR", tRCD),
        tRP=v.integer("timing.tRP"),
        tRAS=v.integer("timing.tRAS"),
        tRTP=tRTP,
        tRTP_S=v.integer("timing.tRTP_S", tRTP),
        tWR=v.integer("timing.tWR", d["timing.tWR"]),
        tCCD_S=v.integer("timing.tCCD_S", d["timing.tCCD_S"]),
        tCCD_L=v.integer("timing.tCCD_L", d["timing.tCCD_L"]),
        tRRD_S=v.integer("timing.tRRD_S", d["timing.tRRD_S"]),
        tRRD_L=v.integer("timing.tRRD_L", d["timing.tRRD_L"]),
        tFAW=v.integer("timing.tFAW", d["timing.tFAW"]),
        tWTR_S=v.integer("timing.tWTR_S", d["timing.tWTR_S"]),
        tWTR_L=v.integer("timing.tWTR_L", d["timing.tWTR_L"]),
        tRFC=v.integer("timing.tRFC", d["timing.tRFC"]),
        tREFI=v.integer("timing.tREFI", d["timing.tREFI"], low=1),
        channels=v.integer("system.channels", d["system.channels"], low=1),
        bus_width=v.integer("system.bus_width", low=1),
        channel_size_MB=v.integer("system.channel_size", d["system.channel_size"], low=1),
        data_rate_MTps=data_rate,
        idle_power_mW=v.optional_real("other.idle_power"),
        peak_power_mW=v.optional_real("other.peak_power"),
        pim_type=pim_type,
        path=src,
        format="dramsim3",
        power={
            v.name(k).split(".", 1)[1]: v.real(k)
            for k in raw
            if k.startswith("power.") and v.text(k) is not None
        },
        raw=dict(raw),
    )


# --------------------------------------------------------------------------------------
# DRAMSim2 (flat device file)
# --------------------------------------------------------------------------------------

_DRAMSIM2_SYSTEM_KEYS = ("num_chans", "jedec_data_bus_bits", "trans_queue_depth")
_POWER_PREFIXES = ("idd", "ipp", "vdd", "vpp")


def _parse_flat(src: str, text: str) -> _Values:
    values: dict[str, str] = {}
    names: dict[str, str] = {}
    lines: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        body = _strip_comment(line)
        if not body:
            continue
        if "=" not in body:
            raise ConfigError(src, body, "KEY=VALUE lines", f"line {lineno}: {line.strip()}")
        key, value = (s.strip() for s in body.split("=", 1))
        if not key:
            raise ConfigError(src, "file", "KEY=VALUE lines", f"line {lineno}: {line.strip()}")
        low = key.lower()
        if low in values:
            raise ConfigError(src, key, "each key once", f"lines {lines[low]} and {lineno}")
        values[low], names[low], lines[low] = value, key, lineno
    return _Values(src, values, names)


def _read_dramsim2(src: str, text: str) -> DramConfig:
    v = _parse_flat(src, text)
    if not v.has("NUM_BANKS", "tCK") and any(k in v.values for k in _DRAMSIM2_SYSTEM_KEYS):
        key = next(k for k in _DRAMSIM2_SYSTEM_KEYS if k in v.values)
        raise v.error(
            key,
            "a DRAMSim2 device file (NUM_BANKS, NUM_ROWS, NUM_COLS, DEVICE_WIDTH, tCK, "
            "timings); this is a DRAMSim2 system file (NUM_CHANS, JEDEC_DATA_BUS_BITS, "
            "queues), which has no device timing",
        )
    for key in (
        "NUM_BANK_GROUPS NUM_BANKS NUM_ROWS NUM_COLS DEVICE_WIDTH BL tCK AL CL RL CWL WL "
        "tRCD tRCDRD tRCDWR tRP tRAS tRTP tRTPL tRTPS tWR tCCD tCCDS tCCDL tRRD tRRDS tRRDL "
        "tFAW tXAW tWTR tWTRS tWTRL tRFC tREFI NUM_CHANS JEDEC_DATA_BUS_BITS"
    ).split():
        _spell(v, key)
    d = DRAMSIM3_DEFAULTS

    bankgroups = v.integer("NUM_BANK_GROUPS", 1, low=1)
    banks = v.integer("NUM_BANKS", low=1)
    if banks % bankgroups:
        raise v.error("NUM_BANKS", f"a multiple of NUM_BANK_GROUPS={bankgroups}", banks)
    device_width = v.integer("DEVICE_WIDTH", low=1)
    rows = v.integer("NUM_ROWS", low=1)
    columns = v.integer("NUM_COLS", low=1)
    tCK = v.real("tCK", low=0.0, low_open=True)
    AL = v.integer("AL", 0)
    if v.has("CL"):
        CL = v.integer("CL")
    else:
        RL = v.integer("RL")
        if RL < AL:
            raise v.error("RL", f"RL >= AL={AL}", RL)
        CL = RL - AL
    if v.has("CWL"):
        CWL = v.integer("CWL")
    elif v.has("WL"):
        CWL = max(v.integer("WL") - AL, 0)
    else:
        CWL = max(CL - 1, 0)
    if not v.has("tRCD", "tRCDRD"):
        raise v.error("tRCD", "a value for tRCD or tRCDRD (required; both missing)")
    tRCD = v.integer(v.first(("tRCD", "tRCDRD")))
    tRTP = v.integer(v.first(("tRTP", "tRTPL")), d["timing.tRTP"])

    def pair(short: str, long_: str, common: str, default_s: int, default_l: int) -> tuple:
        s = v.integer(v.first((short, common)), default_s)
        return s, v.integer(v.first((long_, common)), default_l)

    tCCD_S, tCCD_L = pair("tCCDS", "tCCDL", "tCCD", d["timing.tCCD_S"], d["timing.tCCD_L"])
    tRRD_S, tRRD_L = pair("tRRDS", "tRRDL", "tRRD", d["timing.tRRD_S"], d["timing.tRRD_L"])
    tWTR_S, tWTR_L = pair("tWTRS", "tWTRL", "tWTR", d["timing.tWTR_S"], d["timing.tWTR_L"])
    bus_width = v.integer("JEDEC_DATA_BUS_BITS", device_width, low=1)
    size_mb = banks * rows * columns * device_width // 8 * max(bus_width // device_width, 1)
    power = {
        v.name(k): v.real(k)
        for k in v.values
        if k.startswith(_POWER_PREFIXES) and v.text(k) is not None
    }
    return DramConfig(
        protocol="DRAMSim2",
        bankgroups=bankgroups,
        banks_per_group=banks // bankgroups,
        rows=rows,
        columns=columns,
        device_width=device_width,
        BL=v.integer("BL", low=1),
        tCK_ns=tCK,
        AL=AL,
        CL=CL,
        CWL=CWL,
        tRCD=tRCD,
        tRCDWR=v.integer("tRCDWR", tRCD),
        tRP=v.integer("tRP"),
        tRAS=v.integer("tRAS"),
        tRTP=tRTP,
        tRTP_S=v.integer("tRTPS", tRTP),
        tWR=v.integer("tWR", d["timing.tWR"]),
        tCCD_S=tCCD_S,
        tCCD_L=tCCD_L,
        tRRD_S=tRRD_S,
        tRRD_L=tRRD_L,
        tFAW=v.integer(v.first(("tFAW", "tXAW")), d["timing.tFAW"]),
        tWTR_S=tWTR_S,
        tWTR_L=tWTR_L,
        tRFC=v.integer("tRFC", d["timing.tRFC"]),
        tREFI=v.integer("tREFI", d["timing.tREFI"], low=1),
        channels=v.integer("NUM_CHANS", 1, low=1),
        bus_width=bus_width,
        channel_size_MB=max(size_mb >> 20, 1),
        data_rate_MTps=2.0 / tCK * 1000.0,  # DRAMSim2 models DDR devices
        idle_power_mW=None,
        peak_power_mW=None,
        pim_type=None,
        path=src,
        format="dramsim2",
        power=power,
        raw=dict(v.values),
    )


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------


def read_ini(path: str | Path) -> DramConfig:
    """Read a DRAMSim3 INI or a DRAMSim2 device INI (format detected from the text)."""
    p = Path(path)
    src = str(p)
    text = _read_text(p)
    if any(line.strip().startswith("[") for line in text.splitlines()):
        return _read_dramsim3(src, text)
    if any("=" in _strip_comment(line) for line in text.splitlines()):
        return _read_dramsim2(src, text)
    raise ConfigError(
        src,
        "file",
        "a DRAMSim3 INI ([dram_structure], [timing], [system] sections) or a DRAMSim2 "
        "device INI (KEY=VALUE lines)",
        "no section header and no KEY=VALUE line",
    )


def pim_fields_from_ini(path: str | Path | DramConfig) -> dict[str, int | float]:
    """The :class:`~dse.hw.pim.PimChannel` fields a DRAM INI determines.

    ``tCK_ns``; ``data_rate`` = transfers per tCK = ``data_rate_MTps * tCK_ns / 1000``;
    ``bus_width_bits``; ``channels``; ``banks`` = ``bankgroups * banks_per_group`` (one
    rank; multi-rank PIM presets say otherwise themselves); ``col_bytes`` =
    :data:`PIM_COL_BYTES` (32); ``row_bytes`` (see :attr:`DramConfig.row_bytes`);
    ``rows``; ``BL``, ``CL``, ``tRCD``, ``tRP``, ``tRAS``, ``tRTP``, ``tWR``, ``tCCD_S``,
    ``tCCD_L``, ``tRRD_S``, ``tRRD_L``, ``tFAW``, ``tRFC``, ``tREFI`` as read; ``tCWL`` =
    ``CWL``, ``tRCD_wr`` = ``tRCDWR``, ``tWTR_S``/``tWTR_L`` as read; and

    * ``tRCD_mac`` = ``tRCD``: INIs have no separate ACT→MAC value (NewtonSim times
      G_ACT→COMP with tRCDRD, i.e. the same number).
    * ``tCCD_mac`` = ``max(tCCD_L, burst_cycles)``. This comes from NeuPIMs' NewtonSim
      ``timing.cc``, where COMP→COMP in a rank is ``read_to_read = max(burst_cycle, tCCD)``
      (the presets CSV writes it ``max(BL/2;tCCD_S)``). NewtonSim uses the ``_S`` value
      there; an all-bank MAC streams consecutive columns of the *same* banks, so this
      takes JEDEC's same-bank-group spacing ``tCCD_L``. The two agree for every HBM2
      file (tCCD_L = BL/2 = 2); for DDR4/LPDDR (tCCD_L = 8) ``tCCD_L`` is the stricter one.
      ``burst_cycles`` is ``BL/2`` for DDR-style protocols.

    When DRAMSim3 folds all banks into one bank group (``bankgroups == 1``) it applies the
    ``_S`` timings to same-group accesses, and so does this (``tCCD_L``/``tRRD_L`` become
    ``tCCD_S``/``tRRD_S``).
    """
    cfg = path if isinstance(path, DramConfig) else read_ini(path)
    tCCD_L, tRRD_L = cfg.tCCD_L, cfg.tRRD_L
    if cfg.bankgroups == 1:
        tCCD_L, tRRD_L = cfg.tCCD_S, cfg.tRRD_S
    return {
        "tCK_ns": cfg.tCK_ns,
        "data_rate": cfg.transfers_per_tck,
        "bus_width_bits": cfg.bus_width,
        "channels": cfg.channels,
        "banks": cfg.banks,
        "col_bytes": PIM_COL_BYTES,
        "row_bytes": cfg.row_bytes,
        "rows": cfg.rows,
        "BL": cfg.BL,
        "CL": cfg.CL,
        "tRCD": cfg.tRCD,
        "tRCD_mac": cfg.tRCD,
        "tRP": cfg.tRP,
        "tRAS": cfg.tRAS,
        "tRTP": cfg.tRTP,
        "tWR": cfg.tWR,
        "tCCD_S": cfg.tCCD_S,
        "tCCD_L": tCCD_L,
        "tCCD_mac": max(tCCD_L, math.ceil(cfg.burst_cycles)),
        "tRRD_S": cfg.tRRD_S,
        "tRRD_L": tRRD_L,
        "tFAW": cfg.tFAW,
        "tRFC": cfg.tRFC,
        "tREFI": cfg.tREFI,
        "tCWL": cfg.CWL,
        "tRCD_wr": cfg.tRCDWR,
        "tWTR_S": cfg.tWTR_S,
        "tWTR_L": cfg.tWTR_L if cfg.bankgroups > 1 else cfg.tWTR_S,
    }
