"""AttAcc HBM3-PIM trace writers, corpus design and the committed Ramulator corpus (no
simulator needed)."""

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from dse.validation.traces import attacc as T

CORPUS = Path(__file__).resolve().parents[1] / "dse/validation/data/corpus_attacc.csv"


def _ops(lines):
    return Counter(line.split()[0] for line in lines)


def test_layer_writer_deterministic_and_format():
    kw = dict(L=300, heads=19, dhead=128, dbyte=2, pim_type="BA", variant="current", max_L=4096)
    a, b = T.attacc_layer(**kw), T.attacc_layer(**kw)
    assert a == b
    for line in a[:50] + a[-50:]:
        op, addr = line.split()
        assert op.startswith("PIM_") and addr.startswith("0x") and len(addr) >= 10
        int(addr, 16)


def test_layer_counts_single_iteration():
    # 16 heads -> one (odd) iteration; BA, dhead 128, fp16: Dk = 2 columns, 16 tokens/partition
    kw = dict(L=256, heads=16, dhead=128, dbyte=2, pim_type="BA", max_L=4096)
    cur = _ops(T.attacc_layer(variant="current", **kw))
    assert cur["PIM_WR_GB"] == 4 * 2 * 16
    assert cur["PIM_MAC_AB"] == 2 * (16 * 2 * 16)  # score + context
    assert cur["PIM_MV_SB"] == 8 * 16 + 2 * 8 * 16
    assert cur["PIM_SFM"] == 16 and cur["PIM_MV_GB"] == 8 * 16
    assert cur["PIM_BARRIER"] == 16 * 5
    # the cache variant repeats softmax, MVGBs and a barrier after each of the 1 + 1 steps
    cache = _ops(T.attacc_layer(variant="cache", **kw))
    assert cache["PIM_SFM"] == 2 * 16 and cache["PIM_MV_GB"] == 2 * 8 * 16
    assert cache["PIM_MAC_AB"] == cur["PIM_MAC_AB"]


def test_variants_agree_for_even_iterations():
    kw = dict(L=700, heads=30, dhead=64, dbyte=2, pim_type="BG", max_L=4096)
    assert T.attacc_layer(variant="current", **kw) == T.attacc_layer(variant="cache", **kw)
    kw["heads"] = 33  # three iterations: the odd last one differs
    assert T.attacc_layer(variant="current", **kw) != T.attacc_layer(variant="cache", **kw)


@pytest.mark.parametrize("pim", T.PIM_TYPES)
def test_mac_ops_per_pim_type(pim):
    ops = _ops(T.attacc_layer(L=128, heads=2, dhead=64, dbyte=2, pim_type=pim))
    assert ops[T.MAC_OP[pim]] > 0
    assert sum(v for k, v in ops.items() if k.startswith("PIM_MAC")) == ops[T.MAC_OP[pim]]


def test_mechanism_streams():
    lines = T.mac_rows(rows=3, k=5, pim_type="BA", channels=2, barrier_every=1)
    assert _ops(lines) == Counter({"PIM_MAC_AB": 30, "PIM_BARRIER": 6})
    assert len(T.moves(kind="MVSB", n=10, pattern="alt_bg", channels=3)) == 30
    mm = _ops(T.mac_moves(macs=4, n=3, kind="WRGB", barrier=True, repeat=2))
    assert mm == Counter({"PIM_MAC_AB": 8, "PIM_WR_GB": 6, "PIM_BARRIER": 4})


def test_args_round_trip_and_make_trace():
    args = dict(L=200, heads=5, dhead=256, dbyte=1, pim_type="BUFFER", variant="cache", max_L=4096)
    js = T.args_json(args)
    assert json.loads(js) == args and T.args_json(json.loads(js)) == js
    text = T.make_trace(T.GENERATORS["attacc_layer"], js)
    assert text == "".join(x + "\n" for x in T.attacc_layer(**args))
    assert T.make_trace(T.GENERATORS["attacc_layer"], args) == text


def test_design_reproducible():
    a, b = T.corpus_points(240), T.corpus_points(240)
    assert [T.args_json(p["generator_args"]) for p in a] == [
        T.args_json(p["generator_args"]) for p in b
    ]
    fams = Counter(p["family"] for p in a)
    assert fams["attacc_layer_current"] >= 100 and fams["attacc_layer_cache"] >= 30
    cur = [p["meta"]["heads"] for p in a if p["family"] == "attacc_layer_current"]
    odd = {-(-h // 16) % 2 for h in cur}
    assert odd == {0, 1}
    for p in a:
        if p["family"] == "attacc_layer_cache":
            assert -(-p["meta"]["heads"] // 16) % 2 == 1


def test_config_text():
    y = T.ramulator_config("/tmp/x.trace", power_constraint=False, command_log="/tmp/l")
    assert "preset: HBM3_5.2Gbps_NPC" in y and "impl: AllBankHBM3" in y
    assert "HBM3TraceRecorder" in y
    assert "preset: HBM3_5.2Gbps\n" in T.ramulator_config("t", power_constraint=True)


def test_committed_corpus():
    assert CORPUS.exists(), CORPUS
    with CORPUS.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 200
    assert set(T.COLUMNS) <= set(rows[0])
    fams = Counter(r["family"] for r in rows)
    assert fams["attacc_layer_current"] >= 100 and fams["attacc_layer_cache"] >= 30
    for r in rows:
        assert r["simulator"] == T.SIMULATOR
        assert int(r["cycles"]) > 0 and str(int(r["cycles"])) == r["cycles"]
        json.loads(r["generator_args"])
    # a row's generator + args rebuild a trace with the recorded number of lines
    r = next(r for r in rows if r["family"] == "attacc_layer_current")
    assert T.make_trace(r["generator"], r["generator_args"]).count("\n") == int(r["trace_lines"])
