"""``python -m dse.serving`` (LLMServingSim's command line) and ``python -m dse
model=serving`` end to end on the shared LLMServingSim files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dse.config import CONF_DIR
from dse.serving.__main__ import main
from dse.serving.csvout import read_requests_csv
from tests.conftest import REFERENCE

LLMSS = REFERENCE / "llmservingsim"
CLUSTER = CONF_DIR / "serving/single_node_pim_instance.json"


@pytest.fixture(scope="module")
def offload_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("serving") / "pim_offload_run.csv"
    summary = out.with_suffix(".json")
    rc = main(
        [
            "--cluster-config",
            str(CLUSTER),
            "--dataset",
            str(LLMSS / "workloads/example_trace.jsonl"),
            "--output",
            str(out),
            "--enable-attn-offloading",
            "--dtype",
            "float16",
            "--block-size",
            "16",
            "--log-level",
            "WARNING",
            "--summary",
            str(summary),
        ]
    )
    assert rc == 0
    return out, json.loads(summary.read_text())


@pytest.mark.reference
def test_header_byte_identical(offload_run):
    out, _ = offload_run
    ours = out.read_bytes().splitlines(keepends=True)[0]
    for name in ("example_single_run.csv", "example_pim_run.csv", "example_pim_sub_batch_run.csv"):
        theirs = (LLMSS / "example_outputs" / name).read_bytes().splitlines(keepends=True)[0]
        assert ours == theirs


@pytest.mark.reference
def test_rows_are_consistent(offload_run):
    """Every request once; ITL has output−1 entries; TTFT + ΣITL = latency = end − arrival
    exactly (as in LLMServingSim's files); rows in completion order."""
    out, summary = offload_run
    df = read_requests_csv(out)
    theirs = read_requests_csv(LLMSS / "example_outputs/example_pim_run.csv")
    assert sorted(df["request_id"]) == sorted(theirs["request_id"])
    assert list(df.columns) == list(theirs.columns)
    for _, r in df.iterrows():
        assert len(r["ITL"]) == r["output"] - 1
        assert r["TTFT"] + sum(r["ITL"]) == r["latency"] == r["end_time"] - r["arrival"]
        assert 0 <= r["queuing_delay"] < r["TTFT"]
    assert np.all(np.diff(df["end_time"]) >= 0)
    assert summary["status"] == 0 and summary["requests"] == 10
    # inputs and outputs are the dataset's
    trace = pd.read_json(LLMSS / "workloads/example_trace.jsonl", lines=True)
    for _, r in df.iterrows():
        assert r["input"] == trace["input_toks"][r["request_id"]]
        assert r["output"] == trace["output_toks"][r["request_id"]]


@pytest.mark.reference
def test_step_log(tmp_path, caplog, capsys):
    import logging

    caplog.set_level(logging.INFO, logger="dse.serving")
    rc = main(
        [
            "--cluster-config",
            str(CLUSTER),
            "--dataset",
            str(LLMSS / "workloads/example_trace.jsonl"),
            "--output",
            str(tmp_path / "o.csv"),
            "--enable-attn-offloading",
            "--enable-sub-batch-interleaving",
        ]
    )
    assert rc == 0
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step=")]
    assert len(lines) > 100
    keys = [f.split("=")[0] for f in lines[0].split() if "=" in f]
    assert keys == ["step", "batch", "prompt_t", "decode_t", "npu_mem", "pim_busy", "gpu_busy"]
    busy = [int(x.split("pim_busy=")[1].split("%")[0]) for x in lines]
    assert max(busy) > 0 and all(0 <= b <= 100 for b in busy)


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--dataset", "missing.jsonl"], "missing.jsonl"),
        (["--max-num-seqs", "0"], "--max-num-seqs"),
        (["--max-num-batched-tokens", "8"], "--max-num-batched-tokens"),
    ],
)
def test_bad_input_exits_2(tmp_path, capsys, args, expect):
    dataset = tmp_path / "d.jsonl"  # a valid dataset: only the option named is bad
    dataset.write_text(
        '{"input_toks": 30, "output_toks": 4, "arrival_time_ns": 0}\n'
        '{"input_toks": 12, "output_toks": 9, "arrival_time_ns": 1000}\n'
    )
    base = {
        "--cluster-config": str(CLUSTER),
        "--dataset": str(dataset),
        "--output": str(tmp_path / "o.csv"),
    }
    argv = []
    over = dict(zip(args[::2], args[1::2], strict=True))
    for k, v in {**base, **over}.items():
        argv += [k, v]
    assert main(argv) == 2
    assert expect in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_bad_dataset_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"input_toks": 3, "output_toks": 4, "arrival_time_ns": 0}\n{"input_toks": -1}\n'
    )
    rc = main(
        [
            "--cluster-config",
            str(CLUSTER),
            "--dataset",
            str(bad),
            "--output",
            str(tmp_path / "o.csv"),
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "bad.jsonl:2" in err


@pytest.mark.reference
@pytest.mark.slow
def test_hydra_sweep_one_row_per_point(tmp_path):
    """The same cluster as a sweep: two PIM channel counts × interleaving on/off in one call."""
    from dse.cli import main as dse_main

    out = tmp_path / "run"
    dse_main(
        [
            "model=serving",
            "space=single",
            f"serving.cluster={CLUSTER}",
            f"serving.dataset={LLMSS / 'workloads/example_trace.jsonl'}",
            "workload=llama3_8b_step",
            "policy.system=gpu_pim",
            "+space.axes.hw.pim.channels=[16,64]",
            "+space.axes.policy.sbi=[0,1]",
            f"output.dir={out}",
            "progress=false",
        ]
    )
    df = pd.read_parquet(out / "points.parquet")
    assert len(df) == 4
    assert set(df["hw.pim.channels"]) == {16, 64}
    assert (df["requests"] == 10).all() and (df["status"] == "ok").all()
    # more channels: faster attention, lower TPOT
    by = df.set_index(["hw.pim.channels", "policy.sbi"])["tpot_p50_ms"]
    assert by[(64, 0)] < by[(16, 0)]


def test_channel_slots_cover_the_space():
    """A serving run's arrays hold the most PIM channels any point of its space has: the
    base's, a list axis's largest value or a range's high end, as a power of two ≥ 128."""
    from dse.serving.model import _channel_slots
    from dse.validation.report import default_point

    base = default_point()

    def axes(ch):
        return {"space": {"axes": {"hw": {"pim": {"channels": ch}}}}}

    assert _channel_slots({}, base) == 128
    assert _channel_slots(axes([16, 64]), base) == 128
    assert _channel_slots(axes([128, 256]), base) == 256
    assert _channel_slots(axes({"low": 8, "high": 300}), base) == 512
    assert _channel_slots(axes(129), base) == 256


@pytest.mark.slow  # a serving compile with 256 channels (~35 s)
def test_serving_any_channel_count(tmp_path):
    """More PIM channels than the default arrays hold (LLMServingSim's case study uses 256):
    the run sizes its arrays to the space, every point is served, and head-first attention
    over twice the channels keeps the PIM busy for less time (512 tiles: 4 per channel, then
    2), with no higher TPOT."""
    from dse.cli import main as dse_main

    out = tmp_path / "run"
    dse_main(
        [
            "model=serving",
            "space=single",
            "workload=llama3_8b_step",
            "policy.system=gpu_pim",
            "serving.synthetic.n=64",
            "serving.synthetic.rate=10000",
            "serving.synthetic.input_dist=fixed",
            "serving.synthetic.input_len=2048",
            "serving.synthetic.output_len=64",
            "+space.axes.hw.pim.channels=[128,256]",
            f"output.dir={out}",
            "progress=false",
        ]
    )
    df = pd.read_parquet(out / "points.parquet").set_index("hw.pim.channels")
    assert (df["status"] == "ok").all()
    assert (df["requests"] == 64).all()
    assert df.loc[256, "pim_busy"] < 0.7 * df.loc[128, "pim_busy"]
    assert df.loc[256, "tpot_p50_ms"] <= df.loc[128, "tpot_p50_ms"]


def test_quiet_run_still_says_where_results_went(tmp_path, capsys):
    """At ``--log-level WARNING`` the summary table is not printed, but one line on stderr
    still names the CSV written (a dataset of the test's own)."""
    data = tmp_path / "trace.jsonl"
    rows = [{"input_toks": 8, "output_toks": 4, "arrival_time_ns": 1000 * i} for i in range(3)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "quiet.csv"
    args = ["--cluster-config", str(CLUSTER), "--dataset", str(data), "--output", str(out)]
    assert main([*args, "--log-level", "WARNING"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert out.exists() and err == [f"dse.serving: 3 requests -> {out}"]
