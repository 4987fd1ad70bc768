"""The command-level PIM timing: trace parser, engine vs reference, cent mapping vs the trace,
and the measured AiM corpus (CENT's GDDR6-AiM simulator; dse/validation/data)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dse.errors import ConfigError
from dse.reference.pim_commands import simulate_aim
from dse.workload.pim_trace import parse_aim_trace

_OPS = ("WR_GB", "WR_BIAS", "MAC_ABK", "RD_MAC", "AF", "RD_AF", "EWMUL", "COPY_BKGB",
        "COPY_GBBK", "MAC_SBK", "WR_ABK", "GPR", "CFR", "SYNC")  # fmt: skip


def random_trace(rng: np.random.Generator, n: int, channels: int = 4) -> str:
    """A random AiM ISR trace over ``channels`` channels: every array and register command,
    opsizes 1-8, rows among 3 (so row hits, misses and mode switches all occur)."""
    lines = []
    for _ in range(n):
        op = _OPS[rng.integers(len(_OPS))]
        m = int(rng.integers(1, 1 << channels)) << (32 - channels)
        one = 1 << (31 - int(rng.integers(channels)))
        k, row, bank = int(rng.integers(1, 9)), int(rng.integers(3)), int(rng.integers(16))
        lines.append(
            {
                "WR_GB": f"AiM WR_GB {k} 0 {m:#x}",
                "WR_BIAS": f"AiM WR_BIAS 0 {m:#x}",
                "MAC_ABK": f"AiM MAC_ABK {k} {m:#x} {row}",
                "RD_MAC": f"AiM RD_MAC 0 {m:#x}",
                "AF": f"AiM AF {m:#x}",
                "RD_AF": f"AiM RD_AF 0 {m:#x}",
                "EWMUL": f"AiM EWMUL {k} {m:#x} {row}",
                "COPY_BKGB": f"AiM COPY_BKGB {k} {m:#x} {bank} {row}",
                "COPY_GBBK": f"AiM COPY_GBBK {k} {m:#x} {bank} {row}",
                "MAC_SBK": f"AiM MAC_SBK {k} {m:#x} {bank} {row}",
                "WR_ABK": f"AiM WR_ABK 0 {one:#x} {row}",
                "GPR": "W GPR 3",
                "CFR": f"W CFR 2 {int(rng.integers(4))}",
                "SYNC": "AiM SYNC",
            }[op]
        )
    return "\n".join([*lines, "AiM EOC"]) + "\n"


@pytest.fixture(scope="module")
def aim_point():
    from dse.validation.corpus import preset_point

    return preset_point("aim_gddr6")


def test_engine_equals_reference_on_random_traces(aim_point):
    """The vectorized engine (one call for every trace) issues every command at the cycle the
    command-by-command reference does: cycles and row/mode commands identical."""
    from dse.validation.corpus import trace_cycles

    rng = np.random.default_rng(7)
    traces = [parse_aim_trace(random_trace(rng, int(rng.integers(20, 120)))) for _ in range(24)]
    got = trace_cycles(traces, "aim_gddr6")
    for tr, g in zip(traces, got, strict=True):
        ref = simulate_aim(tr, aim_point.hw.pim)
        assert g["cycles"] == ref["cycles"]
        assert g["n_tmod"] == ref["counts"].get("TMOD", 0)
        assert g["n_act"] == ref["counts"].get("ACT16", 0) + ref["counts"].get("ACT", 0)
        assert g["n_pre"] == ref["counts"].get("PREA", 0) + ref["counts"].get("PRE", 0)


def test_closed_form_one_row_of_macs(aim_point):
    """k MACs on one fresh row: ACT16 at cycle 1, the first MAC tRCD_mac later, the rest
    tCCD_mac apart, EOC two cycles after the last: cycles = 1 + tRCD_mac + (k-1) tCCD_mac + 2
    (AiM: 57 + 2k, the simulator's own figure)."""
    pim = aim_point.hw.pim
    for k in (1, 7, 64):
        tr = parse_aim_trace(f"AiM MAC_ABK {k} 0x80000000 5\nAiM EOC\n")
        want = 1 + int(pim.tRCD_mac) + (k - 1) * int(pim.tCCD_mac) + 2
        assert simulate_aim(tr, pim)["cycles"] == want == 57 + 2 * k


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("AiM MAC_ABK 4 0x1\nAiM EOC\n", "MAC_ABK"),
        ("AiM FOO 1\nAiM EOC\n", "opcode"),
        ("AiM WR_GB 0 0 0x1\nAiM EOC\n", "opsize"),
        ("AiM WR_ABK 0 0x3 2\nAiM EOC\n", "channel_mask"),
        ("AiM MAC_SBK 1 0x1 16 0\nAiM EOC\n", "bank_index"),
        ("AiM WR_GB 1 0 zz\nAiM EOC\n", "channel_mask"),
        ("AiM WR_GB 1 0 0x1\n", "EOC"),
        ("X MEM 0 0 0\nAiM EOC\n", "type"),
    ],
)
def test_bad_trace_names_line_and_key(text, key):
    with pytest.raises(ConfigError) as e:
        parse_aim_trace(text, "t.trace")
    assert e.value.key == key
    assert e.value.source.startswith("t.trace")


def _cent_cases(rng: np.random.Generator, n: int):
    from dse.validation.traces import aim

    cases = []
    for i in range(n):
        kind = i % 4
        ch = int(rng.choice([1, 2, 4, 8, 32]))
        if kind < 2:
            K, M = (int(x) for x in np.exp(rng.uniform(np.log(64), np.log(6000), 2)))
            a = {"K": K, "M": M, "channels": ch}
            if kind == 0:
                a["reuse_size"] = int(rng.choice([4, 8, 32]))
            fam, fn = (
                ("gemv_reuse", aim.gemv_reuse) if kind == 0 else ("gemv_literal", aim.gemv_literal)
            )
        else:
            a = {
                "head_dim": int(rng.choice([64, 128, 256])),
                "n_kv_heads": int(rng.choice([2, 8])),
                "L": int(rng.integers(16, 3000)),
                "g": int(rng.choice([1, 4])),
                "channels": ch,
            }
            fam, fn = ("k_score", aim.k_score) if kind == 2 else ("v_context", aim.v_context)
        cases.append((fam, a, fn(**a)))
    return cases


def test_cent_mapping_equals_its_trace():
    """pim_kernel policy.mapping=cent (loops extrapolated once periodic) gives the cycles of
    the full trace of the same kernel on random sizes of all four CENT kernels."""
    from dse.validation.corpus import _cent_point, trace_cycles
    from dse.validation.report import evaluate_params

    cases = _cent_cases(np.random.default_rng(3), 16)
    want = trace_cycles([parse_aim_trace(t) for _, _, t in cases], "aim_gddr6")
    got = evaluate_params([_cent_point(f, a) for f, a, _ in cases], model="pim_kernel")
    assert [g["cycles"] for g in got] == [w["cycles"] for w in want]


def _corpus(families=None, max_requests=None):
    from dse.validation.corpus import AIM_PLAIN_MEMORY, load

    df = load(["aim_ramulator2"])
    df = df[~df["family"].isin(AIM_PLAIN_MEMORY)]
    if families:
        df = df[df["family"].isin(families)]
    if max_requests:
        df = df[df["host_requests"] <= max_requests]
    return df


def test_aim_corpus_traces_exact_fast_subset():
    """The measured GDDR6-AiM runs with <= 600 host requests (every family but plain memory
    accesses): the trace workload on the stock aim_gddr6 preset gives the simulator's
    cycles exactly."""
    from dse.validation.corpus import _aim_rows

    df = _corpus(max_requests=600)
    assert len(df) >= 100
    ev = _aim_rows(df)
    assert (ev["model_value"] == ev["measured"]).all(), ev.loc[
        ev["model_value"] != ev["measured"], ["family", "generator_args", "measured", "model_value"]
    ]


def test_aim_corpus_kernels_through_cent_mapping():
    """Every measured CENT kernel (GEMV both orders, K-score, V-context): pim_kernel with
    policy.mapping=cent, from the kernel's sizes alone, gives the simulator's cycles exactly."""
    from dse.validation.corpus import _aim_kernel_rows

    df = _corpus(["gemv_reuse", "gemv_literal", "k_score", "v_context"])
    assert len(df) >= 200
    ev = _aim_kernel_rows(df)
    bad = ev[ev["model_value"] != ev["measured"]]
    assert bad.empty, bad[["family", "generator_args", "measured", "model_value"]]


@pytest.mark.slow
def test_aim_corpus_traces_exact_all():
    """Every measured AiM run but the plain-memory families: exact cycles."""
    from dse.validation.corpus import _aim_rows

    ev = _aim_rows(_corpus())
    bad = ev[ev["model_value"] != ev["measured"]]
    assert bad.empty, bad[["family", "generator_args", "measured", "model_value"]]


def test_trace_workload_from_the_command_line(tmp_path):
    """``workload=trace`` sweeps a user's trace over a timing: the channel starts in array
    mode, so WR_GB, MAC_ABK and RD_MAC each switch mode; a switch's TMOD takes its own issue
    cycle and holds the next command tMOD cycles: 3 (tMOD - 1) more at tMOD = 32 than at 0."""
    from dse import explore

    t = tmp_path / "k.trace"
    t.write_text(
        "AiM WR_GB 4 0 0x80000000\nAiM MAC_ABK 4 0x80000000 1\nAiM RD_MAC 0 0x80000000\nAiM EOC\n"
    )
    df = explore(
        [
            "model=pim_kernel",
            "pim=aim_gddr6",
            "workload=trace",
            f"workload.trace={t}",
            "space=single",
            "+space.axes.hw.pim.tMOD=[0,32]",
        ]
    )
    cyc = df.sort_values("hw.pim.tMOD")["cycles"].to_numpy()
    assert cyc[1] - cyc[0] == 3 * (32 - 1)
    assert (df["status"] == "ok").all()
    assert json.loads(json.dumps(int(cyc[0])))
