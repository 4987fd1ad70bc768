"""Request traces (dse.serving.traces) on the shared LLMServingSim and NeuPIMs files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dse.errors import ConfigError
from dse.serving import read_jsonl, read_neupims_csv, synthetic, write_jsonl
from dse.workload.lengths import load_trace
from tests.conftest import REFERENCE

LSS = REFERENCE / "llmservingsim" / "workloads"


def _need(path: Path) -> Path:
    """A reference file (the tests reading them are marked ``reference``, skipped where
    $DSE_REFERENCE is absent): a missing one in a present directory is a broken checkout."""
    assert path.exists(), f"{path} missing (set DSE_REFERENCE to the reference/ folder)"
    return path


@pytest.mark.reference
@pytest.mark.parametrize(
    "name,count",
    [
        ("example_trace.jsonl", 10),
        ("sharegpt-llama-3.1-8b-300-sps10.noids.jsonl", 300),
        ("workload_me2_01_mixed.first50.jsonl", 50),
    ],
)
def test_llmservingsim_datasets(name, count):
    path = _need(LSS / name)
    t = read_jsonl(path)
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    assert len(t) == count == len(lines)
    assert t.input_toks.tolist() == [x["input_toks"] for x in lines]
    assert t.output_toks.tolist() == [x["output_toks"] for x in lines]
    assert t.arrival_ns.tolist() == [x["arrival_time_ns"] for x in lines]


@pytest.mark.reference
def test_example_trace_matches_llmservingsim_outputs():
    """The example trace's requests are the ones in LLMServingSim's per-request CSV."""
    import csv

    t = read_jsonl(_need(LSS / "example_trace.jsonl"))
    out = REFERENCE / "llmservingsim" / "example_outputs" / "example_single_run.csv"
    rows = {int(r["request id"]): r for r in csv.DictReader(_need(out).open())}
    for i in range(len(t)):
        assert int(rows[i]["input"]) == t.input_toks[i]
        assert int(rows[i]["output"]) == t.output_toks[i]
        assert int(rows[i]["arrival"]) == t.arrival_ns[i]


@pytest.mark.parametrize(
    "line,key",
    [
        ("{not json", "input"),
        ('{"input_toks": 3, "output_toks": 2}', "arrival_time_ns"),
        ('{"input_toks": 0, "output_toks": 2, "arrival_time_ns": 5}', "input_toks"),
        ('{"input_toks": 3, "output_toks": 2.5, "arrival_time_ns": 5}', "output_toks"),
        ('{"input_toks": 3, "output_toks": 2, "arrival_time_ns": -1}', "arrival_time_ns"),
        (
            '{"input_toks": 3, "output_toks": 2, "arrival_time_ns": 5, "input_tok_ids": [1]}',
            "input_tok_ids",
        ),
        ("[1, 2]", "input"),
    ],
)
def test_bad_line_names_its_line_and_key(tmp_path, line, key):
    good = '{"input_toks": 3, "output_toks": 2, "arrival_time_ns": 0}'
    path = tmp_path / "d.jsonl"
    path.write_text(f"{good}\n\n{good}\n{line}\n")
    with pytest.raises(ConfigError) as e:
        read_jsonl(path)
    assert e.value.source == f"{path}:4"
    assert key in str(e.value)


@pytest.mark.reference
def test_neupims_csv():
    path = _need(REFERENCE / "workloads" / "share-gpt2-bs512-ms7B-tp4-rr-0.csv")
    t = read_neupims_csv(path, output_toks=64)
    assert len(t) == 512
    assert t.input_toks[:4].tolist() == [2048, 2048, 1014, 930]
    assert np.all(t.output_toks == 64) and np.all(t.arrival_ns == 0)


def test_synthetic_poisson_and_seeded(tmp_path):
    a = synthetic(20_000, rate=50.0, seed=3, input_dist="qmsum", output_len=200)
    b = synthetic(20_000, rate=50.0, seed=3, input_dist="qmsum", output_len=200)
    for col in ("arrival_ns", "input_toks", "output_toks"):
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col))
    gaps = np.diff(np.concatenate([[0], a.arrival_ns])) / 1e9
    # exponential gaps: mean 1/rate and coefficient of variation 1 (n = 20,000: ~0.7% s.e.)
    assert gaps.mean() == pytest.approx(1 / 50.0, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.03)
    assert a.input_toks.mean() == pytest.approx(13966, rel=0.02)  # LongBench QMSum mean
    assert np.all(a.output_toks == 200)
    # ShareGPT: (prompt, output) pairs of the packaged trace
    s = synthetic(500, rate=10.0, seed=1)
    t = load_trace("sharegpt")
    pairs = set(zip(t["input_toks"].tolist(), t["output_toks"].tolist(), strict=True))
    assert set(zip(s.input_toks.tolist(), s.output_toks.tolist(), strict=True)) <= pairs
    # round trip through LLMServingSim's format
    back = read_jsonl(write_jsonl(s, tmp_path / "s.jsonl"))
    np.testing.assert_array_equal(back.input_toks, s.input_toks)
    np.testing.assert_array_equal(back.arrival_ns, s.arrival_ns)
    with pytest.raises(ConfigError, match="rate"):
        synthetic(10, rate=0.0)
