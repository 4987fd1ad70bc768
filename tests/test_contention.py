"""Host traffic beside the PIM's commands (npu_pim, dual row buffers: ``hw.pim.host_share``):
the overlap arithmetic by hand and its bounds over random design points."""

from __future__ import annotations

import numpy as np
import pytest

from dse.models.system import _beside
from dse.reference.system import _beside as _beside_ref
from tests.test_system import _batch, _fn, _random

CASES = [
    # start, dur, slow, window from, window to, end (by hand)
    (0.0, 10.0, 20.0, 0.0, 10.0, 15.0),  # half the work in the window, the rest after it
    (0.0, 10.0, 20.0, 5.0, 100.0, 15.0),  # 5 alone, then 5 at half speed
    (0.0, 10.0, 20.0, 20.0, 30.0, 10.0),  # the window opens after the op
    (10.0, 10.0, 20.0, 0.0, 5.0, 20.0),  # the window closed before the op
    (0.0, 10.0, 12.5, 0.0, 100.0, 12.5),  # wholly inside: the slow duration
    (0.0, 10.0, 10.0, 0.0, 100.0, 10.0),  # no contention
    (4.0, 8.0, 32.0, 0.0, 8.0, 15.0),  # 1 of 8 done by 8, the other 7 at full speed
]


@pytest.mark.parametrize("case", CASES)
def test_overlap_by_hand(case):
    *args, want = case
    assert float(_beside(*args)) == pytest.approx(want, rel=1e-12)
    assert _beside_ref(*args) == pytest.approx(want, rel=1e-12)


def test_contention_bounds_the_step():
    """Over random npu_pim points with dual row buffers and interleaving: the step with host
    share ``s`` is no faster than without contention and no slower than every host op at
    ``1/s`` of its speed all the time (the blocked device's step bounds it too)."""
    rng = np.random.default_rng(5)
    pts = [{**q, "policy.sbi": 1, "policy.dual_rb": 1} for q in _random(rng, 40, 2)]
    free = _fn("schedule_inputs")(_batch([{**q, "hw.pim.host_share": 1.0} for q in pts]))
    half = _fn("schedule_inputs")(_batch([{**q, "hw.pim.host_share": 0.5} for q in pts]))
    blocked = _fn("schedule_inputs")(
        _batch([{**q, "hw.pim.host_share": 0.5, "policy.dual_rb": 0} for q in pts])
    )
    ok = np.asarray(free["status"]) == 0
    assert ok.sum() > 25
    a, b = np.asarray(free["step_ns"])[ok], np.asarray(half["step_ns"])[ok]
    c = np.asarray(blocked["step_ns"])[ok]
    assert np.all(b >= a * (1 - 1e-12))
    assert np.all(b <= c * (1 + 1e-12))
    assert np.mean(b > a * (1 + 1e-6)) > 0.3  # the overlap exists and costs


def test_neupims_preset_share_is_the_measured_one():
    """``conf/pim/hbm2_neupims.yaml``'s ``host_share`` is what NewtonSim (NeuPIMs' dual row
    buffer controller) leaves NeuPIMs' NPU read stream beside NeuPIMs' attention programs:
    our runs in ``dse/validation/data/newton_contention.csv`` (long stream over both ranks,
    20 score chunks and 20 context programs, NeuPIMs' issue order), and the PIM programs are
    not slowed (< 0.5 %)."""
    from pathlib import Path

    import pandas as pd
    import yaml

    root = Path(__file__).resolve().parents[1]
    m = pd.read_csv(root / "dse/validation/data/newton_contention.csv")
    m = m[(m["mode"] == "dual") & (m["driver_order"] == "neupims") & (m["pattern"] == "rot")]
    alone = m[m["scenario"] == "reads alone"]["read_B_per_cycle"].iloc[0]
    both = m[(m["scenario"] == "both") & m["program"].isin(["score20", "ctx20"])]
    both = both[both["reads_done"] > both["reads_done_by_pim_end"]]  # the stream outlasts it
    share = both["read_B_per_cycle"].mean() / alone
    preset = yaml.safe_load((root / "conf/pim/hbm2_neupims.yaml").read_text())
    assert preset["host_share"] == pytest.approx(share, abs=0.01)
    solo = m[m["scenario"] == "PIM alone"].set_index("program")["pim_cycles"]
    for r in both.itertuples():
        assert r.pim_cycles <= 1.005 * solo[r.program]
