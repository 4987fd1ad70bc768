"""PIM presets: the presets CSV reader (dse.hw.presets) and every conf/pim/*.yaml.

Each Hydra preset is checked against its source: the DRAM INI it names (through
dse.hw.dram.pim_fields_from_ini) and/or its row of pim_timing_presets.csv (through
dse.hw.presets.read_presets). Fields a preset sets differently from a source are listed in
PRESET_SOURCES with the reason; an entry there that does not actually differ fails too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dse.errors import ConfigError
from dse.hw.dram import pim_fields_from_ini
from dse.hw.pim import PimChannel
from dse.hw.presets import REQUIRED_COLUMNS, cell_number, read_presets
from tests.conftest import REFERENCE

ROOT = Path(__file__).resolve().parents[1]
CSV = REFERENCE / "pim" / "pim_timing_presets.csv"
CONF = ROOT / "conf" / "pim"
YAMLS = sorted(CONF.glob("*.yaml"))
FIELDS = [f.name for f in dataclasses.fields(PimChannel)]
FLOAT_FIELDS = {"tCK_ns", "data_rate", "host_share"}

# ------------------------------------------------------------------------------------------
# preset -> source(s); `*_overrides`: field -> why the preset differs from that source
# ------------------------------------------------------------------------------------------

_RANKS = (
    "2 ranks x 16 banks per channel: NewtonSim's CalculateSize gives 2 ranks for "
    "channel_size 1024 MB (512 MB per rank); pim_fields_from_ini counts one rank"
)
PRESET_SOURCES: dict[str, dict] = {
    "aim_gddr6": {
        "csv": "aim_GDDR6_AiM_timing",
        "csv_overrides": {
            "tRFC": "CSV cell is text: refresh is never issued in CENT's AiM model, so tRFC = 0",
        },
    },
    "hbm2_neupims": {
        "ini": "pim/neupims/HBM2_8Gb_x128_dualpim.ini",
        "ini_overrides": {"banks": _RANKS},
        "csv": "neupims_HBM2_8Gb_x128_dualpim",
    },
    "hbm2_newton": {
        "ini": "pim/neupims/HBM2_8Gb_x128_singlepim.ini",
        "ini_overrides": {"banks": _RANKS},
        "csv": "neupims_HBM2_8Gb_x128_singlepim",
    },
    "hbm2_samsung": {
        "ini": "pim/samsung/HBM2_samsung_2M_16B_x64.ini",
        "ini_overrides": {
            "channels": "NUM_CHANS=16 lives in system_hbm.ini; a DRAMSim2 device file gives 1",
            "banks": "NUM_PIM_BLOCKS=8: one PIM block (MAC unit) per 2 banks",
        },
        "csv": "samsung_HBM2_PIM",
        "csv_overrides": {
            "banks": "NUM_PIM_BLOCKS=8: one PIM block per 2 of the 16 banks the CSV counts",
        },
    },
    "hbm3_attacc": {"csv": "attacc_HBM3_5.2Gbps"},
    "hbm3_attacc_npc": {"csv": "attacc_HBM3_5.2Gbps_NPC"},
    "ddr4_3200_llmservingsim": {"ini": "pim/llmservingsim/DDR4_8GB_3200_pim.ini"},
    "hbm2_llmservingsim": {"ini": "pim/llmservingsim/HBM2_1GB_2000_pim.ini"},
    "lpddr5_llmservingsim": {"ini": "pim/llmservingsim/LPDDR5_2GB_6400_pim.ini"},
    "lpddr4x_llmservingsim": {"ini": "pim/llmservingsim/LPDDR4X_2GB_4266_pim.ini"},
}


@pytest.fixture(scope="module")
def presets():
    return read_presets(CSV)


def load(name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(CONF / f"{name}.yaml"))


def csv_fields(row: dict) -> dict[str, int | float | None]:
    """PimChannel fields a presets-table row determines (None: the cell has no number)."""
    n = row["num"]

    def mul(a, b):
        return None if a is None or b is None else a * b

    def div(a, b):
        return None if a is None or not b else a / b

    return {
        "tCK_ns": n["sim_clock_ns"],
        "data_rate": mul(n["data_rate_Gbps_per_pin"], n["sim_clock_ns"]),
        "channels": mul(n["channels"], n["pseudo_ch_per_ch"]),
        "banks": div(n["banks_per_channel_total"], n["pseudo_ch_per_ch"]),
        "lanes": n["macs_per_bank_per_col_cmd"],
        "col_bytes": n["col_access_bytes"],
        "row_bytes": n["row_bytes_per_bank"],
        "BL": n["BL"],
        "CL": n["CL"],
        "tRCD": n["tRCDRD"],
        "tRCD_mac": n["tRCD_MAC"] if n["tRCD_MAC"] is not None else n["tRCDRD"],
        "tRP": n["tRP"],
        "tRAS": n["tRAS"],
        "tRTP": n["tRTP_or_tRTPL"],
        "tWR": n["tWR"],
        "tCCD_S": n["tCCD_S"],
        "tCCD_L": n["tCCD_L"],
        "tCCD_mac": n["tCCD_allbank_MAC"],
        "tRRD_S": n["tRRD_S"],
        "tRRD_L": n["tRRD_L"],
        "tFAW": n["tFAW"],
        "tRFC": n["tRFC"],
        "tREFI": n["tREFI"],
        "tRCD_wr": n["tRCDWR"],
        "tRC": n["tRC"],
        "tWTR_S": n["tWTR_S"],
        "tWTR_L": n["tWTR_L"],
    }


def same(field: str, a, b) -> bool:
    if a is None or b is None:
        return False
    if field in FLOAT_FIELDS:
        return a == pytest.approx(b, rel=1e-3, abs=1e-3)
    return a == b


def check_against(name: str, preset: dict, expected: dict, overrides: dict, what: str):
    for field, want in expected.items():
        got = preset[field]
        if field in overrides:
            assert overrides[field].strip(), f"{name}.{field}: override without a reason"
            assert not same(field, got, want), (
                f"{name}.{field} = {got!r} equals its {what} ({want!r}); drop the override"
            )
        else:
            assert same(field, got, want), f"{name}.{field} = {got!r}, {what} says {want!r}"
    stale = set(overrides) - set(expected)
    assert not stale, f"{name}: overrides for fields the {what} does not determine: {stale}"


# ------------------------------------------------------------------------------------------
# read_presets
# ------------------------------------------------------------------------------------------


@pytest.mark.reference
def test_presets_table_reads(presets):
    assert len(presets) == 10
    assert "attacc_HBM3_5.2Gbps_NPC" in presets and "samsung_HBM2_PIM" in presets
    for name, row in presets.items():
        assert row["raw"]["preset"] == name
        assert set(row["raw"]) == set(row["num"])
        assert row["num"]["preset"] is None and row["num"]["notes"] is None


@pytest.mark.reference
@pytest.mark.parametrize(
    "preset,column,raw,number",
    [
        ("neupims_HBM2_8Gb_x128_dualpim", "tCCD_allbank_MAC", "max(BL/2;tCCD_S)=2", 2),
        ("neupims_HBM2_8Gb_x128_dualpim", "tRCD_MAC", "", None),
        ("attacc_HBM3_5.2Gbps", "tRFC", "JEDEC(350ns @8Gb)=456", 456),
        ("attacc_HBM3_5.2Gbps", "sim_clock_ns", "0.769", 0.769),
        ("attacc_HBM3_5.2Gbps", "tCCD_allbank_MAC", "6", 6),
        ("aim_GDDR6_AiM_timing", "channels", "32 per CENT device (2 per chip)", 32),
        ("aim_GDDR6_AiM_timing", "tCCD_allbank_MAC", "nCCDL=2 (1 ns)", 2),
        ("aim_GDDR6_AiM_timing", "tRRD_S", "5 (preset 11; JEDEC x16 table override)", 5),
        (
            "aim_GDDR6_AiM_timing",
            "tRFC",
            "table lookup out of range for 128Gb (refresh never issued)",
            None,
        ),
        ("aim_GDDR6_AiM_timing", "tREFI", "7800 (recomputed; refresh never issued)", 7800),
        ("samsung_HBM2_PIM", "tFAW", "tXAW=16 (XAW=4)", 16),
        ("samsung_HBM2_PIM", "tRTP_or_tRTPL", "5 (tRTPL)", 5),
        ("samsung_HBM2_PIM", "row_bytes_per_bank", "1024 (128 cols x 64b)", 1024),
        ("ramulator2_HBM3_6400Mbps", "tRFC", "nRFCpb=320", 320),
        ("ramulator2_HBM3_6400Mbps", "ranks", "2 (sid)", 2),
    ],
)
def test_presets_cells(presets, preset, column, raw, number):
    row = presets[preset]
    assert row["raw"][column] == raw
    got = row["num"][column]
    assert got == number and type(got) is type(number)


@pytest.mark.parametrize(
    "cell,number",
    [
        ("14", 14),
        ("2.0", 2.0),
        ("-3", -3),
        ("", None),
        ("abc", None),
        ("x=1.5e3", 1500.0),
        ("f(a=1)=7", 7),
        ("f(a=1)", None),
        ("12abc", None),
        ("7 ns", 7),
    ],
)
def test_cell_number_rule(cell, number):
    assert cell_number(cell) == number


@pytest.mark.reference
def test_presets_errors(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(ConfigError, match="nope.csv") as ei:
        read_presets(missing)
    assert ei.value.key == "file"
    header = CSV.read_text(encoding="utf-8").splitlines()[0].split(",")
    for col in ("tCCD_L", "preset", "tREFI"):
        cols = [c for c in header if c != col]
        p = tmp_path / f"no_{col}.csv"
        p.write_text(",".join(cols) + "\n" + ",".join("1" for _ in cols) + "\n")
        with pytest.raises(ConfigError) as ei:
            read_presets(p)
        assert ei.value.key == col and str(p) in str(ei.value)
    dup = tmp_path / "dup.csv"
    cols = list(REQUIRED_COLUMNS)
    dup.write_text(",".join(cols) + "\n" + ("a" + ",1" * (len(cols) - 1) + "\n") * 2)
    with pytest.raises(ConfigError, match="each preset name once"):
        read_presets(dup)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ConfigError, match="empty.csv"):
        read_presets(empty)


# ------------------------------------------------------------------------------------------
# conf/pim/*.yaml
# ------------------------------------------------------------------------------------------


def test_every_yaml_has_a_source_entry():
    assert {p.stem for p in YAMLS} == set(PRESET_SOURCES)


@pytest.mark.parametrize("path", YAMLS, ids=[p.stem for p in YAMLS])
@pytest.mark.reference
def test_yaml_shape(path):
    assert path.read_text(encoding="utf-8").splitlines()[0] == "# @package hw.pim"
    cfg = load(path.stem)
    assert set(cfg) == set(FIELDS) | {"name", "source"}
    assert cfg["name"] == path.stem
    rel = cfg["source"].split("#", 1)[0]
    assert rel.startswith("reference/"), cfg["source"]
    src = REFERENCE / rel.removeprefix("reference/")
    assert src.is_file(), cfg["source"]
    if "#" in cfg["source"]:
        assert cfg["source"].split("#", 1)[1] in read_presets(CSV)
    for f in dataclasses.fields(PimChannel):
        v = cfg[f.name]
        if f.name in FLOAT_FIELDS:
            assert isinstance(v, int | float) and not isinstance(v, bool), f.name
        else:
            assert isinstance(v, int) and not isinstance(v, bool), f"{f.name} must be an int"
        low = f.metadata.get("low")
        if low is not None:
            assert v > low if f.metadata.get("low_open") else v >= low, f.name
    PimChannel(**{k: cfg[k] for k in FIELDS})


@pytest.mark.parametrize("name", sorted(PRESET_SOURCES))
@pytest.mark.reference
def test_yaml_matches_its_sources(name, presets):
    src = PRESET_SOURCES[name]
    assert "ini" in src or "csv" in src
    cfg = load(name)
    if "ini" in src:
        ini = REFERENCE / src["ini"]
        assert cfg["source"] == f"reference/{src['ini']}"
        check_against(name, cfg, pim_fields_from_ini(ini), src.get("ini_overrides", {}), "INI")
    if "csv" in src:
        if "ini" not in src:
            assert cfg["source"] == f"reference/pim/pim_timing_presets.csv#{src['csv']}"
        expected = csv_fields(presets[src["csv"]])
        overrides = src.get("csv_overrides", {})
        for field, want in expected.items():
            assert want is not None or field in overrides, (
                f"{name}.{field}: CSV row {src['csv']} has no number; list an override"
            )
        check_against(name, cfg, expected, overrides, f"CSV row {src['csv']}")


def test_attacc_variants_differ_only_in_mac_spacing():
    a, b = load("hbm3_attacc"), load("hbm3_attacc_npc")
    diff = {k for k in FIELDS if a[k] != b[k]}
    assert diff == {"tCCD_mac"} and (a["tCCD_mac"], b["tCCD_mac"]) == (6, 4)


def test_neupims_and_newton_share_the_channel():
    a, b = load("hbm2_neupims"), load("hbm2_newton")
    assert {k: a[k] for k in FIELDS} == {k: b[k] for k in FIELDS}
