"""The system model at CENT's own configurations against CENT's artifact results
(dse/validation/data/published_cent.csv, transcribed from its simulation_results.csv)."""

from __future__ import annotations

import numpy as np
import pytest

from dse.validation.published import cent_link_GBps, cent_model, cent_published, compare_cent

TOL = 0.20  # absolute throughputs and latencies (issue acceptance)


def test_cent_link_is_144_lanes_over_n():
    """CENT's CXL: 144 // N PCIe lanes of 4 GiB/s per device."""
    assert cent_link_GBps(8) == pytest.approx(18 * 4 * 2**30 / 1e9)
    assert cent_link_GBps(32) == pytest.approx(4 * 4 * 2**30 / 1e9)


@pytest.mark.slow  # its own compile of CENT's mapping (~35 s)
def test_cent_7b_splits_and_70b_tp32():
    """Llama-2 7B on 8 devices, every TP x PP split at L 128/1024/4096, and Llama-2 70B at
    TP 16 and 32 (8 KV heads): every point feasible, throughput within 20% of CENT's and
    rising with pipeline depth as CENT's does."""
    pub = cent_published()
    rows = pub[
        ((pub["model"] == "llama2_7b") & (pub["ch_per_block"] == 32))
        | ((pub["model"] == "llama2_70b") & (pub["TP"] >= 16) & (pub["L"] == 128))
    ]
    df = cent_model(rows)
    assert (df["status"] == "ok").all()
    rel = df["model_tokens_per_s"] / df["tokens_per_s"] - 1
    assert np.all(np.abs(rel) <= TOL), df.assign(rel=rel)
    for _, g in df[df["model"] == "llama2_7b"].groupby("L"):
        tps = g.sort_values("PP")["model_tokens_per_s"].to_numpy()
        assert np.all(np.diff(tps) > 0)


@pytest.mark.slow  # 57 points up to 80 pipeline stages, NeuPIMs excluded (~30 s)
def test_cent_every_configuration():
    """All 57 rows, model-parallel and pipeline-parallel mode (a block per channel slice,
    the device's units shared in lockstep, the LM head spread over the stages), within 20%
    of CENT, and every trend (throughput with PP, latency with TP, latency with context) in
    CENT's direction."""
    res = compare_cent()
    df, trends = res["table"], res["trends"]
    assert (df["status"] == "ok").all()
    assert np.all(np.abs(df["rel_tps"]) <= TOL), df[np.abs(df["rel_tps"]) > TOL]
    for name in ("throughput vs PP", "latency vs TP", "latency vs L"):
        agree, total = trends[name]
        assert agree == total, name
