"""The host's PIM instruction rate (NeuPIMs' npu+pim baseline): NeuPIMs' instruction counts
from its program structure, and the issue bound against a plain loop over channels."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from dse._pytree import replace_paths
from dse.models import system
from dse.models.pim_attention import issue_bound
from tests.conftest import default_point


def test_neupims_instruction_counts():
    """A 300-token GPT3-7B request at TP 4 (8 KV heads of 128 on its channel, HBM2-PIM: 32
    banks, 1 KiB rows, 16 elements per COMP). Counted by hand from NeuPIMs' operators
    (docs/systems/neupims.md §6): score 2 chunks × (GWRITE + 10 tiles × (P_HEADER + 4 heads ×
    (8 COMP + READRES))) = 742 single, 2 + 20 × 5 = 102 dual; context 8 heads × (GWRITE +
    4 tiles × (P_HEADER + 19 COMP + READRES)) = 680 single, 8 × (1 + 4 × 2) = 72 dual."""
    base = default_point()
    for dual, want in ((0, (742, 680)), (1, (102, 72))):
        p = replace_paths(
            base,
            {
                "workload.llm": 0,
                "workload.heads": 32,
                "workload.g": 1,
                "workload.d": 128,
                "policy.tp": 4,
                "policy.dual_rb": dual,
                "hw.pim.banks": 32,
                "hw.pim.row_bytes": 1024,
                "hw.pim.lanes": 16,
                "hw.pim.col_bytes": 32,
            },
        )
        s = {"heads": 32, "g": 1, "d": 128}
        n = system.instructions(p, s, jnp.asarray([300, 0]), 32 // 4)
        assert n[:, 0].tolist() == list(want)
        assert n[:, 1].tolist() == [0, 0]


def _loop(chan_of, group, instr, work, n_groups, c_max, ns_per_instr, tck):
    """Channel after channel, by hand."""
    out = np.zeros(n_groups)
    for g in range(n_groups):
        for k in range(2):
            start, end = 0.0, 0.0
            for c in range(c_max):
                sel = (chan_of == c) & (group == g)
                n = instr[k][sel].sum() * ns_per_instr
                w = work[k][sel].sum() * tck
                if n > 0 or w > 0:
                    end = max(end, start + max(n, w))
                start += n
            out[g] += end
    return out


def test_issue_bound_matches_a_loop_over_channels():
    rng = np.random.default_rng(3)
    for _ in range(200):
        b = int(rng.integers(1, 40))
        c_max = int(rng.choice([4, 8, 32]))
        n_groups = int(rng.choice([1, 2, 4]))
        chan_of = rng.integers(-1, c_max, b)
        group = np.where(rng.random(b) < 0.1, -1, rng.integers(0, n_groups, b))
        instr = rng.integers(0, 2000, (2, b))
        work = rng.integers(0, 20000, (2, b))
        rate, tck = float(rng.choice([0.25, 1.0, 4.0])), float(rng.choice([0.5, 1.0]))
        got = issue_bound(
            jnp.asarray(chan_of),
            jnp.asarray(group),
            jnp.asarray(instr),
            jnp.asarray(work),
            n_groups,
            c_max,
            1 / rate,
            tck,
        )
        want = _loop(chan_of, group, instr, work, n_groups, c_max, 1 / rate, tck)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)
        # never faster than the busiest channel's own work, nor than issuing everything
        ok = (chan_of >= 0) & (group >= 0)
        for g in range(n_groups):
            sel = ok & (group == g)
            assert got[g] >= instr[:, sel].sum() / rate - 1e-9
