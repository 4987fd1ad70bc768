"""Every config option and every study composes and builds a design point and a space."""

from __future__ import annotations

import pytest

from dse.cli import _compose, build
from dse.config import CONF_DIR, SWEEPS_DIR

GROUPS = {
    g: sorted(p.stem for p in (CONF_DIR / g).glob("*.yaml"))
    for g in ("pim", "host", "workload", "policy", "space")
}
STUDIES = sorted(p.stem for p in SWEEPS_DIR.glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g, opts in GROUPS.items() for o in opts])
def test_every_option_composes_and_builds(group, option):
    cfg, prov = _compose([f"{group}={option}"])
    c, base, space = build(cfg, prov)
    assert space.num_points >= 1
    if group == "pim":
        assert c["hw"]["pim"]["name"] == option
        assert c["hw"]["pim"]["source"], "every preset names its source file"


@pytest.mark.parametrize("study", STUDIES)
def test_every_study_composes_and_builds(study):
    text = (SWEEPS_DIR / f"{study}.yaml").read_text()
    assert text.startswith("# Question:"), "a study's first line says the question it answers"
    cfg, prov = _compose([], config_name=study, config_dir=SWEEPS_DIR)
    c, base, space = build(cfg, prov)
    assert c["study"] == study
    assert space.num_points >= 1


def test_default_main_job_is_at_least_10k_points():
    cfg, prov = _compose([])
    _, _, space = build(cfg, prov)
    assert space.num_points >= 10_000


def test_groups_are_not_empty():
    assert all(GROUPS.values()) and STUDIES
    assert {
        "aim_gddr6",
        "hbm3_attacc",
        "hbm3_attacc_npc",
        "hbm2_neupims",
        "hbm2_newton",
        "hbm2_samsung",
        "ddr4_3200_llmservingsim",
        "hbm2_llmservingsim",
        "lpddr5_llmservingsim",
        "lpddr4x_llmservingsim",
    } <= set(GROUPS["pim"])


@pytest.mark.reference
def test_ini_file_fills_the_channel(tmp_path):
    """hw.pim.ini=<file> loads timings from a DRAMSim3 INI; explicit overrides still win."""
    from tests.conftest import REFERENCE

    path = REFERENCE / "pim/llmservingsim/DDR4_8GB_3200_pim.ini"
    cfg, prov = _compose([f"hw.pim.ini={path}", "space=single", "hw.pim.tRP=30"])
    _, base, _ = build(cfg, prov)
    assert float(base.hw.pim.tCK_ns) == pytest.approx(0.63)
    assert int(base.hw.pim.tRCD) == 22 and int(base.hw.pim.tRAS) == 52
    assert int(base.hw.pim.tRP) == 30  # the command line beats the INI
