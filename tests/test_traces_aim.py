"""AiM ISR trace writers, Sobol design and the committed AiM corpus (no simulator needed)."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import pytest

from dse.validation.traces import aim

CORPUS = Path(__file__).resolve().parents[1] / "dse" / "validation" / "data" / "corpus_aim.csv"

_LINE = re.compile(
    r"^(AiM (WR_GB|WR_BIAS|RD_MAC|RD_AF|AF|MAC_ABK|MAC_SBK|EWMUL|COPY_BKGB|COPY_GBBK|WR_ABK|"
    r"WR_SBK|RD_SBK|EWADD|SYNC|EOC)( \S+)*|[RW] MEM \d+ \d+ \d+)$"
)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_channel_mask_matches_cent_convention():
    assert aim.channel_mask([0]) == "0x80000000"
    assert aim.channel_mask(range(32)) == "0xffffffff"
    assert aim.channel_mask([31]) == "0x1"
    with pytest.raises(ValueError):
        aim.channel_mask([32])


def test_writers_are_deterministic_and_well_formed():
    for family, gen, args in aim.design(60):
        a = aim.trace_from(gen, args)
        b = aim.trace_from(gen, json.loads(aim.dump_args(args)))
        assert a == b, family
        lines = a.splitlines()
        assert lines[-1] == "AiM EOC"
        assert sum(ln == "AiM EOC" for ln in lines) == 1
        for ln in lines:
            assert _LINE.match(ln), ln
            for tok in ln.split():
                if tok.startswith("0x"):
                    assert 0 < int(tok, 16) < 1 << 32
        for m in re.finditer(r"^AiM (?:WR_GB|MAC_ABK|EWMUL) (\d+)", a, re.M):
            assert 1 <= int(m.group(1)) <= aim.COLS


def test_gemv_orders_issue_the_same_instructions():
    kw = {"K": 2500, "M": 700, "channels": 2}
    reuse = aim.gemv_reuse(**kw, reuse_size=8).splitlines()
    literal = aim.gemv_literal(**kw).splitlines()
    assert sorted(reuse) == sorted(literal)
    per_bank, rows = -(-700 // 32), -(-2500 // 1024)
    assert sum(ln.startswith("AiM MAC_ABK") for ln in reuse) == per_bank * rows
    assert sum(ln.startswith("AiM WR_GB") for ln in reuse) == rows
    # last row chunk: ceil((2500 - 2048) / 16) = 29 columns
    assert "AiM WR_GB 29 0 0xc0000000" in reuse


def test_attention_mappings():
    ks = aim.k_score(head_dim=128, n_kv_heads=8, L=40, g=2, channels=1).splitlines()
    # 3 token blocks of 16 banks, 2 GQA queries, 8 heads per row
    assert sum(ln.startswith("AiM MAC_ABK 8 ") for ln in ks) == 3 * 2 * 8
    vc = aim.v_context(head_dim=128, n_kv_heads=8, L=1100, g=1, channels=8).splitlines()
    assert sum(ln.startswith("AiM WR_GB") for ln in vc) == 2
    assert "AiM WR_GB 5 0 0xff000000" in vc  # ceil(76 / 16)
    assert sum(ln.startswith("AiM MAC_ABK") for ln in vc) == 2 * 8


def test_single_families_cover_every_accepted_instruction():
    for cmd in aim.SINGLE_COMMANDS:
        t = aim.single(command=cmd, n=3, opsize=4, channels=2, bank=5, row_stride=1)
        assert len(t.splitlines()) == 4
    with pytest.raises(ValueError):
        aim.single(command="WR_AFLUT", n=1)


def test_sobol_design_is_reproducible():
    a = aim.design(120)
    b = aim.design(120)
    assert a == b
    assert len(a) == 120
    assert a != aim.design(120, seed=aim.SEED + 1)
    fams = {f for f, _, _ in a}
    assert {"gemv_reuse", "gemv_literal", "k_score", "v_context", "mixed"} <= fams
    digest = _digest("".join(aim.trace_from(g, x) for _, g, x in a[:5]))
    assert digest == _digest("".join(aim.trace_from(g, x) for _, g, x in b[:5]))


def test_parse_stats():
    text = (
        "Frontend:\n  impl: AiMTrace\nMemorySystem:\n  memory_system_cycles: 1234\n"
        "  Controller:\n    CH0_num_MAC16_commands: 64  # total number of MAC16 commands\n"
    )
    st = aim.parse_stats(text)
    assert st["memory_system_cycles"] == 1234
    assert st["CH0_num_MAC16_commands"] == 64


def test_committed_corpus():
    with CORPUS.open(newline="") as f:
        rows = list(csv.DictReader(f))
    required = {
        "simulator",
        "sim_commit",
        "config",
        "generator",
        "generator_args",
        "family",
        "channels",
        "cycles",
        "tCK_ns",
        "n_MAC16",
        "n_ACT16",
        "n_PREA",
        "n_WRGB",
        "n_RDMAC16",
        "n_WRMAC16",
    }
    assert required <= set(rows[0])
    assert len(rows) >= 300
    fams: dict[str, int] = {}
    for r in rows:
        assert r["simulator"] == "aim_ramulator2"
        assert re.fullmatch(r"[0-9a-f]{40}", r["sim_commit"])
        assert int(r["cycles"]) > 0 and str(int(r["cycles"])) == r["cycles"]
        fams[r["family"]] = fams.get(r["family"], 0) + 1
    assert fams.get("gemv_reuse", 0) + fams.get("gemv_literal", 0) >= 100
    assert fams.get("k_score", 0) + fams.get("v_context", 0) >= 80
    # generator_args round-trip: a few rows re-create a trace whose MAC_ABK count matches
    for r in rows[::37]:
        trace = aim.trace_from(r["generator"], r["generator_args"])
        assert json.dumps(json.loads(r["generator_args"]), sort_keys=True) == r["generator_args"]
        n_mac = sum(ln.startswith("AiM MAC_ABK") for ln in trace.splitlines())
        assert n_mac == int(r["isr_MAC_ABK"])
