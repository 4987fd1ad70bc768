"""DRAM INI reader (dse.hw.dram) against the reference INI files and malformed inputs.

Expected values come from the files themselves, read with a tiny regex here (not with the
reader under test).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from dse.errors import ConfigError
from dse.hw.dram import DRAMSIM3_DEFAULTS, DramConfig, pim_fields_from_ini, read_ini
from tests.conftest import REFERENCE, reference_params

REF = REFERENCE
STOCK = sorted((REF / "dram").glob("*.ini"))
SAMSUNG = REF / "pim" / "samsung"
SAMSUNG_DEVICE = SAMSUNG / "HBM2_samsung_2M_16B_x64.ini"
SYSTEM_FILES = sorted(SAMSUNG.glob("system_hbm*.ini"))
PIM_DRAMSIM3 = sorted(p for p in (REF / "pim").rglob("*.ini") if p.parent != SAMSUNG)
LLMSERVINGSIM = sorted((REF / "pim" / "llmservingsim").glob("*.ini"))
ALL_DRAMSIM3 = STOCK + PIM_DRAMSIM3


def _params(paths):
    return reference_params(paths, [p.relative_to(REF).as_posix() for p in paths])


# ------------------------------------------------------------------------------------------
# independent tiny parser: "section.key" (lower-case) -> value text before any comment
# ------------------------------------------------------------------------------------------

_SECTION = re.compile(r"^\s*\[(\w+)\]")
_KEYVAL = re.compile(r"^\s*(\w+)\s*=\s*([^;#\n]*)")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def file_values(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    section = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if m := _SECTION.match(line):
            section = m.group(1).lower() + "."
        elif m := _KEYVAL.match(line):
            out[section + m.group(1).lower()] = m.group(2).strip()
    return out


def num(text: str) -> float:
    return float(_NUMBER.match(text).group(0))


# ------------------------------------------------------------------------------------------
# every reference file loads, spot-checked against its own text
# ------------------------------------------------------------------------------------------


@pytest.mark.reference
def test_reference_file_sets_are_complete():
    assert len(STOCK) == 60
    assert len(LLMSERVINGSIM) == 4
    assert len(PIM_DRAMSIM3) >= 11
    assert len(SYSTEM_FILES) == 3


DIRECT = {  # DramConfig field -> INI key, compared whenever the file has a value
    "rows": "dram_structure.rows",
    "columns": "dram_structure.columns",
    "device_width": "dram_structure.device_width",
    "BL": "dram_structure.bl",
    "CL": "timing.cl",
    "CWL": "timing.cwl",
    "tRP": "timing.trp",
    "tRAS": "timing.tras",
    "tWR": "timing.twr",
    "tCCD_S": "timing.tccd_s",
    "tCCD_L": "timing.tccd_l",
    "tRRD_S": "timing.trrd_s",
    "tRRD_L": "timing.trrd_l",
    "tFAW": "timing.tfaw",
    "tWTR_S": "timing.twtr_s",
    "tWTR_L": "timing.twtr_l",
    "tRFC": "timing.trfc",
    "tREFI": "timing.trefi",
    "channels": "system.channels",
    "bus_width": "system.bus_width",
    "channel_size_MB": "system.channel_size",
}


@pytest.mark.reference
@pytest.mark.parametrize("path", _params(ALL_DRAMSIM3))
def test_dramsim3_file_loads_and_matches_text(path):
    cfg = read_ini(path)
    fv = file_values(path)
    assert isinstance(cfg, DramConfig)
    assert cfg.path == str(path) and cfg.format == "dramsim3"
    assert cfg.protocol == fv["dram_structure.protocol"]
    assert cfg.tCK_ns == pytest.approx(num(fv["timing.tck"]))
    for field, key in DIRECT.items():
        if fv.get(key):
            assert getattr(cfg, field) == num(fv[key]), (field, key)
        elif field in ("tRFC", "tREFI", "tWR", "tFAW", "tCCD_S", "tCCD_L"):
            assert getattr(cfg, field) == DRAMSIM3_DEFAULTS[f"timing.{field}"], field
    bg, bpg = int(fv["dram_structure.bankgroups"]), int(fv["dram_structure.banks_per_group"])
    assert cfg.banks == bg * bpg
    if fv.get("dram_structure.bankgroup_enable", "true").lower() == "false":
        assert (cfg.bankgroups, cfg.banks_per_group) == (1, bg * bpg)
    else:
        assert (cfg.bankgroups, cfg.banks_per_group) == (bg, bpg)
    rcd = fv.get("timing.trcd") or fv["timing.trcdrd"]
    assert cfg.tRCD == num(rcd)
    rtp = fv.get("timing.trtp") or fv.get("timing.trtp_l")
    assert cfg.tRTP == (num(rtp) if rtp else 5)
    pim_type = fv.get("dram_structure.pim_type")
    assert cfg.pim_type == (pim_type or None)
    assert cfg.power["VDD"] == pytest.approx(num(fv["power.vdd"]))
    assert cfg.power["IDD0"] == pytest.approx(num(fv["power.idd0"]))
    # PimChannel view: every value a proper int (cycles) or positive float
    fields = pim_fields_from_ini(cfg)
    assert fields == pim_fields_from_ini(path)
    for k, v in fields.items():
        if k in ("tCK_ns", "data_rate"):
            assert isinstance(v, float) and v > 0, k
        else:
            assert isinstance(v, int) and v >= 0, k
    assert fields["banks"] == bg * bpg
    assert fields["tCCD_mac"] >= max(fields["tCCD_L"], 1)


@pytest.mark.reference
def test_empty_values_mean_absent_and_fall_back_to_dramsim3_defaults():
    path = REF / "pim" / "neupims" / "HBM_4Gb_x128_pim.ini"
    assert "timing.trfc" in file_values(path) and file_values(path)["timing.trfc"] == ""
    cfg = read_ini(path)
    assert cfg.tRFC == 74  # DRAMSim3 default
    assert cfg.raw["timing.trfc"] == ""
    assert cfg.raw["thermal.mat_dim_x"] == "1024"  # "1024;" comment without a space


@pytest.mark.reference
def test_gddr5x_tck_with_note_and_bankgroup_folding():
    cfg = read_ini(REF / "dram" / "GDDR5X_8Gb_x32.ini")
    assert cfg.tCK_ns == pytest.approx(0.666)  # "tCK = 0.666 (1/1.5)"
    assert cfg.bankgroups == 1 and cfg.banks_per_group == 16
    assert cfg.transfers_per_tck == pytest.approx(8.0)  # GDDR5X burst_cycle = BL/8
    fields = pim_fields_from_ini(cfg)
    assert fields["tCCD_L"] == cfg.tCCD_S  # one bank group: DRAMSim3 uses the _S timings


@pytest.mark.reference
@pytest.mark.parametrize("path", _params(LLMSERVINGSIM))
def test_llmservingsim_other_section(path):
    fv = file_values(path)
    cfg = read_ini(path)
    assert cfg.pim_type == "SINGLE"
    assert cfg.data_rate_MTps == num(fv["other.data_rate"])
    assert cfg.idle_power_mW == num(fv["other.idle_power"])
    assert cfg.peak_power_mW == num(fv["other.peak_power"])
    fields = pim_fields_from_ini(path)
    expected = num(fv["other.data_rate"]) * num(fv["timing.tck"]) / 1000
    assert fields["data_rate"] == pytest.approx(expected)
    assert fields["data_rate"] == pytest.approx(2.0, abs=0.02)  # all four are DDR-style


@pytest.mark.reference
def test_llmservingsim_known_numbers():
    by = {p.name: read_ini(p) for p in LLMSERVINGSIM}
    ddr4 = by["DDR4_8GB_3200_pim.ini"]
    assert (ddr4.data_rate_MTps, ddr4.idle_power_mW, ddr4.peak_power_mW) == (3200, 623, 3803)
    assert ddr4.transfers_per_tck == pytest.approx(2.016)
    lp5 = by["LPDDR5_2GB_6400_pim.ini"]
    assert lp5.protocol == "LPDDR4"  # sic: the file's protocol line
    assert (lp5.tCK_ns, lp5.tRAS, lp5.tRFC, lp5.channel_size_MB) == (0.3125, 134, 1216, 2048)
    lp4x = by["LPDDR4X_2GB_4266_pim.ini"]
    assert (lp4x.bankgroups, lp4x.tCK_ns, lp4x.tREFI) == (4, 0.468, 16666)
    hbm = by["HBM2_1GB_2000_pim.ini"]
    assert (hbm.idle_power_mW, hbm.peak_power_mW, hbm.channels) == (160, 760, 1)


@pytest.mark.reference
def test_data_rate_without_other_section_is_ddr():
    cfg = read_ini(REF / "dram" / "DDR4_8Gb_x8_3200.ini")
    assert cfg.idle_power_mW is None and cfg.peak_power_mW is None
    assert cfg.data_rate_MTps == pytest.approx(2 / cfg.tCK_ns * 1000)
    assert cfg.transfers_per_tck == pytest.approx(2.0)


@pytest.mark.reference
def test_neupims_dualpim_pim_fields():
    path = REF / "pim" / "neupims" / "HBM2_8Gb_x128_dualpim.ini"
    cfg = read_ini(path)
    assert cfg.pim_type == "DUAL" and cfg.ranks == 2 and cfg.row_bytes == 1024
    assert pim_fields_from_ini(path) == {
        "tCK_ns": 1.0,
        "data_rate": 2.0,
        "bus_width_bits": 128,
        "channels": 32,
        "banks": 16,
        "col_bytes": 32,
        "row_bytes": 1024,
        "rows": 32768,
        "BL": 4,
        "CL": 14,
        "tRCD": 14,
        "tRCD_mac": 14,
        "tRP": 14,
        "tRAS": 34,
        "tRTP": 6,
        "tWR": 16,
        "tCCD_S": 1,
        "tCCD_L": 2,
        "tCCD_mac": 2,
        "tRRD_S": 4,
        "tRRD_L": 6,
        "tFAW": 30,
        "tRFC": 260,
        "tREFI": 3900,
        "tCWL": 4,
        "tRCD_wr": 14,
        "tWTR_S": 6,
        "tWTR_L": 8,
    }


@pytest.mark.reference
def test_pim_fields_are_pim_channel_fields():
    import dataclasses

    from dse.hw.pim import PimChannel

    names = {f.name for f in dataclasses.fields(PimChannel)}
    fields = pim_fields_from_ini(REF / "dram" / "HBM2_8Gb_x128.ini")
    assert set(fields) <= names
    # the MAC-unit and buffer organisation is not in a DRAM INI
    buffers = {"obuf_entries", "dual_port", "blocking_readout"}
    # nor what the controller leaves host traffic while PIM commands run (measured)
    buffers |= {"host_share"}
    # nor the AiM command set's own timings (register/GBuf latencies, MAC-path activations,
    # the register-mode switch); tRC defaults to tRAS + tRP and the write preamble to 1
    aim = {"tRCD_af", "tRCD_ewmul", "tRCD_rdcp", "tRCD_wrcp", "tMOD", "CL_reg", "CWL_reg"}
    aim |= {"CWL_gb", "tWPRE", "tRC", "mac_placement"}
    assert names - set(fields) == {"lanes", "gbuf_bytes", "out_bytes"} | buffers | aim
    PimChannel(**fields, lanes=16, gbuf_bytes=2048, out_bytes=2)


# ------------------------------------------------------------------------------------------
# DRAMSim2: Samsung device file loads, system files are rejected
# ------------------------------------------------------------------------------------------


@pytest.mark.reference
def test_samsung_dramsim2_device():
    fv = file_values(SAMSUNG_DEVICE)
    cfg = read_ini(SAMSUNG_DEVICE)
    assert cfg.format == "dramsim2"
    assert cfg.bankgroups == int(fv["num_bank_groups"])
    assert cfg.banks == int(fv["num_banks"])
    assert (cfg.rows, cfg.columns) == (int(fv["num_rows"]), int(fv["num_cols"]))
    assert cfg.device_width == cfg.bus_width == int(fv["device_width"])
    assert cfg.BL == int(fv["bl"])
    assert cfg.CL == int(fv["rl"]) - int(fv["al"])
    assert cfg.tRCD == int(fv["trcdrd"]) and cfg.tRCDWR == int(fv["trcdwr"])
    assert cfg.tRTP == int(fv["trtpl"]) and cfg.tRTP_S == int(fv["trtps"])
    assert (cfg.tCCD_S, cfg.tCCD_L) == (int(fv["tccds"]), int(fv["tccdl"]))
    assert (cfg.tRRD_S, cfg.tRRD_L) == (int(fv["trrds"]), int(fv["trrdl"]))
    assert (cfg.tWTR_S, cfg.tWTR_L) == (int(fv["twtrs"]), int(fv["twtrl"]))
    assert cfg.tFAW == int(fv["txaw"])
    for f in ("tRP", "tRAS", "tWR", "tRFC", "tREFI"):
        assert getattr(cfg, f) == int(fv[f.lower()]), f
    assert cfg.tCK_ns == float(fv["tck"]) and cfg.data_rate_MTps == pytest.approx(2000)
    assert cfg.channels == 1 and cfg.pim_type is None
    assert cfg.row_bytes == 1024
    fields = pim_fields_from_ini(SAMSUNG_DEVICE)
    assert (fields["tCCD_mac"], fields["CL"], fields["row_bytes"]) == (4, 20, 1024)


@pytest.mark.reference
@pytest.mark.parametrize("path", _params(SYSTEM_FILES))
def test_dramsim2_system_file_rejected(path):
    with pytest.raises(ConfigError) as ei:
        read_ini(path)
    msg = str(ei.value)
    assert str(path) in msg and "NUM_CHANS" in msg and "system file" in msg
    assert ei.value.source == str(path)


# ------------------------------------------------------------------------------------------
# a minimal valid DRAMSim3 file, then malformed variants
# ------------------------------------------------------------------------------------------

BASE = """\
; minimal DRAMSim3 device
[dram_structure]
protocol = HBM
bankgroups = 4
banks_per_group = 4
rows = 32768
columns = 64
device_width = 128
BL = 4

[timing]   # cycles
tCK = 1
CL = 14
tRCDRD = 14
tRP = 14
tRAS = 34
tRTP_L = 6; same bank group
tRFC =

[power]
VDD = 1.2

[system]
channels = 8
bus_width = 128
"""


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    p = tmp_path / f"{name}.ini"
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content, encoding="utf-8")
    return p


def _drop(key: str) -> str:
    return re.sub(rf"(?m)^{key} *=.*\n", "", BASE)


def _set(key: str, value: str) -> str:
    out, n = re.subn(rf"(?m)^{key} *=.*$", f"{key} = {value}", BASE)
    assert n == 1
    return out


def test_minimal_valid_file_and_defaults(tmp_path):
    cfg = read_ini(_write(tmp_path, "ok", BASE))
    assert (cfg.tRCD, cfg.tRCDWR, cfg.tRTP, cfg.tRTP_S) == (14, 14, 6, 6)
    assert cfg.tRFC == 74 and cfg.tREFI == 7800 and cfg.tFAW == 50  # DRAMSim3 defaults
    assert (cfg.tCCD_S, cfg.tCCD_L, cfg.tWR, cfg.CWL) == (4, 6, 10, 12)
    assert cfg.channel_size_MB == 1024 and cfg.channels == 8
    assert cfg.data_rate_MTps == pytest.approx(2000.0)
    assert cfg.pim_type is None and cfg.idle_power_mW is None
    assert dict(cfg.power) == {"VDD": 1.2}


def test_keys_are_case_insensitive_and_comments_stripped(tmp_path):
    text = BASE.replace("tCK = 1", "TCK = 1.5 # ns").replace("CL = 14", "cl = 15;x")
    cfg = read_ini(_write(tmp_path, "case", text))
    assert cfg.tCK_ns == 1.5 and cfg.CL == 15


MALFORMED = [
    # (case id, file content (str/bytes) or None for "no file", key the message must name)
    ("missing-bankgroups", _drop("bankgroups"), "dram_structure.bankgroups"),
    ("missing-banks_per_group", _drop("banks_per_group"), "dram_structure.banks_per_group"),
    ("missing-columns", _drop("columns"), "dram_structure.columns"),
    ("missing-device_width", _drop("device_width"), "dram_structure.device_width"),
    ("missing-BL", _drop("BL"), "dram_structure.BL"),
    ("missing-tCK", _drop("tCK"), "timing.tCK"),
    ("missing-CL", _drop("CL"), "timing.CL"),
    ("missing-tRP", _drop("tRP"), "timing.tRP"),
    ("missing-tRAS", _drop("tRAS"), "timing.tRAS"),
    ("missing-tRCD-and-tRCDRD", _drop("tRCDRD"), "timing.tRCD"),
    ("missing-bus_width", _drop("bus_width"), "system.bus_width"),
    ("empty-tCK", _set("tCK", ""), "timing.tCK"),
    ("empty-CL", _set("CL", "  ; nothing"), "timing.CL"),
    ("empty-columns", _set("columns", ""), "dram_structure.columns"),
    ("negative-tRP", _set("tRP", "-3"), "timing.tRP"),
    ("negative-optional-tRFC", _set("tRFC", "-1"), "timing.tRFC"),
    ("non-numeric-tRAS", _set("tRAS", "abc"), "timing.tRAS"),
    ("trailing-junk-CL", _set("CL", "14x"), "timing.CL"),
    ("fraction-in-cycles", _set("tRCDRD", "14.5"), "timing.tRCDRD"),
    ("nan-tCK", _set("tCK", "nan"), "timing.tCK"),
    ("inf-tCK", _set("tCK", "inf"), "timing.tCK"),
    ("nan-cycles", _set("tRP", "NaN"), "timing.tRP"),
    ("zero-tCK", _set("tCK", "0"), "timing.tCK"),
    ("negative-tCK", _set("tCK", "-1.0"), "timing.tCK"),
    ("zero-bankgroups", _set("bankgroups", "0"), "dram_structure.bankgroups"),
    ("zero-tREFI", BASE.replace("tRFC =", "tREFI = 0"), "timing.tREFI"),
    ("duplicate-key", BASE.replace("CL = 14", "CL = 14\nCL = 15"), "timing.CL"),
    ("duplicate-key-other-case", BASE.replace("CL = 14", "CL = 14\ncl = 15"), "timing.cl"),
    ("duplicate-section", BASE + "[timing]\ntWR = 16\n", "timing"),
    ("missing-section-system", BASE.split("[system]")[0], "system"),
    ("missing-section-timing", re.sub(r"(?s)\[timing\].*?\[power\]", "[power]", BASE), "timing"),
    ("key-before-section", "protocol = HBM\n" + BASE, "protocol"),
    ("line-without-equals", BASE.replace("[power]", "[power]\ngarbage line"), "garbage line"),
    ("bad-pim_type", BASE.replace("BL = 4", "BL = 4\npim_type = TRIPLE"), "pim_type"),
    (
        "bad-bankgroup_enable",
        BASE.replace("BL = 4", "BL = 4\nbankgroup_enable = maybe"),
        "dram_structure.bankgroup_enable",
    ),
    ("non-numeric-data_rate", BASE + "[other]\ndata_rate = fast\n", "other.data_rate"),
    ("zero-data_rate", BASE + "[other]\ndata_rate = 0\n", "other.data_rate"),
    ("negative-idle_power", BASE + "[other]\nidle_power = -5 # mW\n", "other.idle_power"),
    ("non-numeric-power", _set("VDD", "high"), "power.VDD"),
    ("binary-garbage", b"\x7fELF\x02\x01\x01\x00\x00\x00\xff\xfe[timing]\x00\x13", "file"),
    ("not-utf8", b"[timing]\ntCK = 1\xff\xfe\n", "file"),
    ("empty-file", "", "file"),
    ("comments-only", "; nothing here\n# at all\n", "file"),
    ("nonexistent-path", None, "file"),
    ("dramsim2-system-file", "NUM_CHANS=16 ; channels\nJEDEC_DATA_BUS_BITS=64\n", "NUM_CHANS"),
    (
        "dramsim2-missing-NUM_ROWS",
        "NUM_BANKS=16\nNUM_COLS=128\nDEVICE_WIDTH=64\nBL=4\ntCK=1\nCL=14\ntRCD=14\ntRP=14\ntRAS=33\n",
        "NUM_ROWS",
    ),
    ("dramsim2-duplicate", "NUM_BANKS=16\ntCK=1\ntCK=2\n", "tCK"),
    (
        "dramsim2-bad-RL",
        "NUM_BANKS=16\nNUM_ROWS=8\nNUM_COLS=128\nDEVICE_WIDTH=64\nBL=4\ntCK=1\nRL=x\n",
        "RL",
    ),
    (
        "dramsim2-banks-not-multiple",
        "NUM_BANK_GROUPS=3\nNUM_BANKS=16\nNUM_ROWS=8\nNUM_COLS=8\nDEVICE_WIDTH=64\nBL=4\ntCK=1\n",
        "NUM_BANKS",
    ),
    ("dramsim2-line-without-equals", "NUM_BANKS=16\nbogus\n", "bogus"),
]


def test_enough_malformed_cases():
    assert len(MALFORMED) >= 25
    assert len({case for case, _, _ in MALFORMED}) == len(MALFORMED)


@pytest.mark.parametrize("case,content,key", MALFORMED, ids=[c for c, _, _ in MALFORMED])
def test_malformed_ini_raises_config_error(tmp_path, case, content, key):
    path = tmp_path / f"{case}.ini" if content is None else _write(tmp_path, case, content)
    with pytest.raises(ConfigError) as ei:
        read_ini(path)
    err = ei.value
    msg = str(err)
    assert str(path) in msg and err.source == str(path)
    assert key.lower() in msg.lower(), msg
    assert key.lower() in err.key.lower() or key.lower() in msg.lower()
    with pytest.raises(ConfigError):
        pim_fields_from_ini(path)


def test_directory_is_not_an_ini(tmp_path):
    d = tmp_path / "dir.ini"
    d.mkdir()
    with pytest.raises(ConfigError, match="file"):
        read_ini(d)


@pytest.mark.reference
def test_values_are_finite():
    for path in ALL_DRAMSIM3 + [SAMSUNG_DEVICE]:
        cfg = read_ini(path)
        assert math.isfinite(cfg.tCK_ns) and cfg.tCK_ns > 0
        assert math.isfinite(cfg.data_rate_MTps) and cfg.data_rate_MTps > 0
