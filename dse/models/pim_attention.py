"""Decode attention of a batch across PIM channels and modules (DESIGN.md §4.4).

A pure function of ONE design point; batching happens in :mod:`dse.explore`.
:mod:`dse.reference.pim_attention` assigns the same tiles one at a time; the tests hold the
two together.

**Work.** A decode step of a padded batch (``batch_max`` slots, the first ``batch`` live)
whose requests have context lengths ``L_r``. Each layer runs, for every request and KV head,
the score (q·Kᵀ) and context (s·V) kernels of :mod:`dse.models.pim_kernel` for the head's
``g`` GQA queries. A module (``channels`` PIM channels and a hub with GPRs and an EPU) holds
``kv_heads / tp`` heads of every layer of its pipeline stage.

**Tile timing.** One channel's cycles for one head over ``n`` tokens, score plus context,
come from the command-pipeline model (:mod:`dse.models.pim_kernel`) on this point's channel
and policies: the score kernel evaluated exactly at :data:`GRID` outputs per bank and the
context kernel at :data:`GRID` columns, each interpolated linearly in its own unit (so the
steps of ``ceil(n / banks)`` and ``ceil(n / elements per column)`` are exact); the README
reports the error against the exact kernel.

**Partitioning** (``policy.partition``):

* ``hfp_rr`` (head-first, round-robin): (request, head) tiles, request-major, dealt to the
  channels in turn; channel time = Σ of its tiles;
* ``hfp_greedy``: the tiles longest first, each onto the least-loaded channel (lowest index
  on ties), as NeuPIMs balances channels;
* ``tcp`` (token-centric): every head's tokens are split over all channels (the first
  ``L mod C`` get one more); q·Kᵀ results are concatenated, the ``min(C, L)`` partial s·V
  vectors (``g·d`` values each) are reduced once per (request, head) through the hub:
  ``hub_latency_ns`` + GPR transfer of the partials at ``hub_GBps`` + ``(parts-1)·g·d`` adds on
  the EPU at ``epu_Gops``. The hub reduces one head while the channels compute the next, so
  it adds only where it is the busier side, plus the last reduction:
  ``max(slowest channel, Σ reductions) + the longest single reduction``;
* ``req_rr`` / ``req_greedy`` (request-level, as NeuPIMs places requests): all of a module's
  KV heads of a request on one channel, timed as one program over those heads (the grid is
  evaluated with ``ceil(kv_heads / tp)`` heads), dealt in turn (NeuPIMs' naive ``npu+pim``
  branch) or longest first onto the least-loaded channel (NeuPIMs' ``main``).

Module time for a layer = slowest channel (head-first), as above (token-centric).
**Tensor parallelism**: ``tp`` modules split the KV heads (they must divide evenly) and
all-gather the attention outputs
(``n·kv_heads·g·d`` elements, ring: ``(tp-1)/tp`` of them per module) over a link of
``link_GBps`` with ``link_latency_ns`` per layer. **Pipeline parallelism**: ``pp`` stages of
``ceil(layers/pp)`` layers; live requests are dealt round-robin into ``micro_batches``
micro-batches, each a stage time ``t_k`` (its layers' attention plus the hand-off of its
activations to the next stage); the step takes ``Σ t_k + (pp-1)·max t_k`` (a flow shop of
identical stages), so micro-batches fewer than stages leave bubbles and inactive stages'
channels idle.

Metrics: attention time per layer (whole batch as one micro-batch) and per decode step,
channel busy time (max/mean over every channel of the system, per step), channel
utilization (busy / step time), MAC-unit utilization (useful multiply-accumulates over the
MAC lanes' capacity in the step), hub time and KV-cache admission (:mod:`dse.models.kv_memory`):
``workload.batch`` requests are offered, those whose KV fits on a module are admitted first
come, first served, and the step runs the admitted ones (a point where none fits is flagged
``capacity_exceeded``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dse._pytree import replace_paths
from dse.models import pim_kernel
from dse.models.kv_memory import kv_admission, kv_bytes_per_token
from dse.point import STATUS_CODE, DesignPoint
from dse.policy import Partition
from dse.workload.gemv import DTYPE_BYTES
from dse.workload.lengths import sample_lengths

__all__ = [
    "attention",
    "Partition",
    "tile_heads",
    "GRID",
    "C_MAX",
    "M_MAX",
    "METRICS",
    "interp_cycles",
    "interp_parts",
    "busy_by_group",
    "issue_bound",
    "pipeline",
    "step_ns",
]

#: where the kernel is evaluated exactly: outputs per bank (score) and columns (context), four
#: points per octave from 1 to 1M, and one past every power of two (row, buffer and
#: output-buffer sizes are powers of two: the kernel steps there)
GRID = tuple(sorted({round(2 ** (k / 4)) for k in range(81)} | {2**j + 1 for j in range(20)}))
C_MAX = 32  # channels per module the vectorized arrays hold (DESIGN.md §4.4: 16–32)
M_MAX = 16  # micro-batches
SEARCH = "scan_unrolled"  # searchsorted method for the grid (fastest on CPU for ~80 points)


def _interp(x, ys):
    """Piecewise-linear in :data:`GRID` (``x >= 1``); beyond the last point its segment's
    slope goes on."""
    grid = jnp.asarray(GRID, jnp.float64)
    i = jnp.clip(jnp.searchsorted(grid, x, side="right", method=SEARCH) - 1, 0, len(GRID) - 2)
    x0, x1 = grid[i], grid[i + 1]
    return ys[i] + (x - x0) * (ys[i + 1] - ys[i]) / (x1 - x0)


def interp_cycles(n, grid_cycles, banks, elems):
    """Channel cycles (score + context, one head) for ``n`` tokens, rounded to whole cycles:
    the score kernel at ``ceil(n / banks)`` outputs per bank and the context kernel at
    ``ceil(n / elems)`` columns, each linear between its grid points; 0 tokens cost nothing."""
    nf = jnp.asarray(n, jnp.int64)
    m = (-(-nf // banks)).astype(jnp.float64)
    k = (-(-nf // elems)).astype(jnp.float64)
    t = _interp(m, grid_cycles[0]) + _interp(k, grid_cycles[1])
    return jnp.where(nf > 0, jnp.round(t), 0.0).astype(jnp.int64)


def interp_parts(n, grid_cycles, banks, elems):
    """(2, …) channel cycles of the score and of the context kernel for ``n`` tokens, each
    as :func:`interp_cycles` takes it and rounded to whole cycles."""
    nf = jnp.asarray(n, jnp.int64)
    m = (-(-nf // banks)).astype(jnp.float64)
    k = (-(-nf // elems)).astype(jnp.float64)
    t = jnp.stack([_interp(m, grid_cycles[0]), _interp(k, grid_cycles[1])])
    return jnp.where(nf > 0, jnp.round(t), 0.0).astype(jnp.int64)


def groups_of(live, micro_batches):
    """Micro-batch of each request (live requests dealt round-robin; -1 where not live) and
    its position within the micro-batch."""
    pos = jnp.cumsum(live) - 1
    m = jnp.maximum(micro_batches, 1)
    return jnp.where(live, pos % m, -1), jnp.where(live, pos // m, 0)


def busy_by_group(
    lengths,
    group,
    slot,
    heads,
    channels,
    partition,
    grid_cycles,
    banks,
    elems,
    n_groups: int,
    c_max: int = C_MAX,
    tp=1,
    with_channels: bool = False,
):
    """Channel busy cycles of one layer on one module, per group of requests.

    ``lengths`` (B,), ``group`` (B,) the group of each request (-1: none), ``slot`` (B,) its
    position within its group (the round-robin order), ``heads`` KV heads on the module,
    ``channels`` ≤ ``c_max`` (default :data:`C_MAX`). Returns (the busiest channel of each
    group (n_groups,), each channel's busy cycles summed over the groups (c_max,)); channels
    beyond ``channels`` stay 0. ``tp``: modules of the TP group (``cent`` shards keys over
    all their channels). ``with_channels``: also return each request's channel (B,) (its
    first tile's for the head-level partitions; -1 where it has none or is spread over all)."""
    c_idx = jnp.arange(c_max)
    on_chan = c_idx < channels
    # (B,) one head's whole context; request-level partitions: the grid is one request's
    # program over all its heads, placed as one tile
    tau = interp_cycles(lengths, grid_cycles, banks, elems)
    heads = jnp.where(partition >= 3, 1, heads)

    def summed(per_request, first=None):  # (B, C) → per group max, per channel total
        first = jnp.full(lengths.shape, -1, jnp.int64) if first is None else first

        def one():  # a single group
            loads = jnp.where(group[:, None] == 0, per_request, 0).sum(axis=0)
            return jnp.zeros(n_groups, jnp.int64).at[0].set(loads.max()), loads, first

        def many():
            loads = jax.ops.segment_sum(
                per_request, jnp.where(group >= 0, group, n_groups), n_groups + 1
            )[:n_groups]
            return loads.max(axis=1), loads.sum(axis=0), first

        return jax.lax.cond(jnp.max(group) <= 0, one, many)

    def round_robin():  # request at slot q owns tiles q·H + h, h < H, on channel t mod C
        s = c_idx[None, :] - ((slot * heads) % channels)[:, None]  # channel - first channel
        s = jnp.where(s < 0, s + channels, s)
        n_rr = (heads // channels + (s < heads % channels)) * on_chan[None, :]
        first = jnp.where(group >= 0, (slot * heads) % channels, -1).astype(jnp.int64)
        return summed(n_rr * tau[:, None], first)

    def token_centric():  # every channel gets floor(L/C) or ceil(L/C) tokens of every head
        lo, rem = lengths // channels, lengths % channels
        t_lo = interp_cycles(lo, grid_cycles, banks, elems)
        t_hi = interp_cycles(lo + 1, grid_cycles, banks, elems)
        per = (
            jnp.where(c_idx[None, :] < rem[:, None], t_hi[:, None], t_lo[:, None])
            * on_chan[None, :]
        )
        return summed(heads * per)

    def greedy():
        return _greedy(tau, group, heads, channels, n_groups, c_max, with_channels)

    def cent():  # score over ceil(L / (C·tp)) tokens per channel, context over all L; the
        # grid holds every head of the score and a channel's heads of the context
        n_s = -(-lengths // (channels * jnp.maximum(tp, 1)))
        t = _interp((-(-n_s // banks)).astype(jnp.float64), grid_cycles[0]) + _interp(
            (-(-lengths // elems)).astype(jnp.float64), grid_cycles[1]
        )
        t = jnp.where(lengths > 0, jnp.round(t), 0.0).astype(jnp.int64)
        return summed(t[:, None] * on_chan[None, :])

    gmax, total, first = jax.lax.switch(
        jnp.clip(partition, 0, 5), [round_robin, greedy, token_centric, round_robin, greedy, cent]
    )
    return (gmax, total, first) if with_channels else (gmax, total)


def _greedy(tau, group, heads, channels, n_groups: int, c_max: int = C_MAX, track=False):
    """Tiles of each group longest first (request order on ties), each onto the group's
    least-loaded channel (lowest index on ties). Returns (busiest channel per group, busy
    per channel over the groups, each request's channel: its last tile's where ``track``,
    else -1; -1 where not live)."""
    live = group >= 0
    none = jnp.full(tau.shape, -1, jnp.int64)
    order = jnp.lexsort((-tau, jnp.where(live, group, n_groups)))  # groups in turn
    n_tiles = live.sum() * heads
    off = jnp.where(jnp.arange(c_max) < channels, 0, _FULL)

    def one_group():  # no micro-batches: place every tile, no group bookkeeping
        def body(t, carry):
            load, where = carry
            c = jnp.argmin(load)
            r = order[t // heads]
            return load.at[c].add(tau[r]), where.at[r].set(c) if track else where

        load, where = jax.lax.fori_loop(0, n_tiles, body, (off, none))
        busy = jnp.where(load >= _FULL, 0, load)
        return jnp.zeros(n_groups, jnp.int64).at[0].set(busy.max()), busy, where

    def groups():
        def body(t, carry):
            load, total, gmax, where = carry
            r = order[t // heads]
            g = group[r]
            c = jnp.argmin(load)
            load = load.at[c].add(tau[r])
            where = where.at[r].set(c) if track else where
            # the group's last tile: record its busiest channel, add to the totals, reset
            nxt = order[jnp.minimum((t + 1) // heads, order.shape[0] - 1)]
            end = (t + 1 == n_tiles) | (((t + 1) % heads == 0) & (group[nxt] != g))
            busy = jnp.where(load >= _FULL, 0, load)
            gmax = jnp.where(end, gmax.at[g].set(busy.max()), gmax)
            total = jnp.where(end, total + busy, total)
            return jnp.where(end, off, load), total, gmax, where

        init = (off, jnp.zeros(c_max, jnp.int64), jnp.zeros(n_groups, jnp.int64), none)
        _, total, gmax, where = jax.lax.fori_loop(0, n_tiles, body, init)
        return gmax, total, where

    return jax.lax.cond(jnp.max(group) <= 0, one_group, groups)


_FULL = np.int64(1) << 62  # load of a channel that does not exist


def issue_bound(chan_of, group, instr, work, n_groups: int, c_max: int, ns_per_instr, tCK_ns):
    """Attention time (ns) of each group when the host hands PIM instructions to the memory
    controllers one at a time, ``ns_per_instr`` apart, over all channels together and channel
    after channel, as NeuPIMs' ``npu+pim`` baseline does (its ``pim_ld_queue_cycle`` moves one
    instruction per NPU cycle, src/NeuPIMSystolicWS.cc:150-184, from one queue that holds the
    channels' requests in channel order, src/scheduler/Scheduler.cc:251-264;
    docs/systems/neupims.md §3).

    ``chan_of`` (B,) each request's channel (-1: none), ``group`` (B,) its group (-1: none),
    ``instr`` (2, B) the instructions of its score and context programs, ``work`` (2, B) their
    cycles on the channel at ``tCK_ns``. Per kernel, channel ``c`` receives its ``N_c``
    instructions from ``S_c = ns_per_instr · Σ_{j<c} N_j`` on and ends at
    ``S_c + max(W_c · tCK_ns, N_c · ns_per_instr)``; the kernel ends with its last channel, and
    the context kernel starts after the score kernel of every channel (NeuPIMs' ``Attend`` is
    the child op of ``LogitSoftmax``). Returns (n_groups,) score + context ns."""
    ok = (chan_of >= 0) & (group >= 0)
    seg = jnp.where(ok, group * c_max + chan_of, n_groups * c_max)

    def per_channel(x):  # (B,) → (n_groups, c_max)
        x = jnp.where(ok, x, 0).astype(jnp.float64)
        return jax.ops.segment_sum(x, seg, n_groups * c_max + 1)[:-1].reshape(n_groups, c_max)

    total = jnp.zeros(n_groups, jnp.float64)
    for k in (0, 1):
        n = per_channel(instr[k]) * ns_per_instr
        w = per_channel(work[k]) * tCK_ns
        start = jnp.cumsum(n, axis=1) - n
        end = jnp.where((n > 0) | (w > 0), start + jnp.maximum(w, n), 0.0)
        total = total + end.max(axis=1)
    return total


def pipeline(stage_ns, stages):
    """Decode step of micro-batches of stage times ``stage_ns`` through ``stages`` identical
    pipeline stages (a flow shop: Σ t_k + (stages - 1)·max t_k)."""
    return stage_ns.sum() + (stages - 1) * stage_ns.max()


def grid_cycles(p: DesignPoint):
    """(2, len(GRID)) cycles of one head on one channel: the score kernel at :data:`GRID`
    outputs per bank and the context kernel at :data:`GRID` columns, from the
    command-pipeline model with this point's channel, GQA group and policies."""

    def at(kind, n):
        q = replace_paths(
            p,
            {
                "workload.kind": kind,
                "workload.L": n,
                "workload.heads": tile_heads(
                    p.policy.partition, p.workload.heads, p.policy.tp, kind, p.hw.pim.channels
                ),
                "workload.partitions": _i(1),
                "hw.pim.channels": _i(1),
            },
        )
        return pim_kernel.kernel(q)["cycles"]

    units = jnp.asarray(GRID, jnp.int64)
    banks, elems = _units(p)
    ns = jnp.concatenate([units * banks, units * elems])
    kinds = jnp.repeat(jnp.asarray([1, 2], jnp.int64), len(GRID))
    # one kernel after another: a vmap would run every loop to the longest kernel's trip count
    cycles = jax.lax.map(lambda a: at(*a), (kinds, ns))
    return cycles.astype(jnp.float64).reshape(2, len(GRID))


def tile_heads(partition, kv_heads, tp, kind=1, channels=1):
    """KV heads one placement tile of kernel ``kind`` (1 score, 2 context) holds: 1, a
    module's ``ceil(kv_heads / tp)`` for the request-level partitions (``req_rr``,
    ``req_greedy``), or under ``cent`` every KV head for the score (a token's keys of all
    heads on one bank) and a channel's ``ceil(kv_heads / channels)`` for the context."""
    cent = jnp.where(kind == 1, kv_heads, _cdiv(kv_heads, jnp.maximum(channels, 1)))
    req = jnp.where(partition >= 3, _cdiv(kv_heads, jnp.maximum(tp, 1)), 1)
    return jnp.where(partition == Partition.cent, cent, req).astype(jnp.int64)


def _units(p: DesignPoint):
    """Banks and elements per column access: the steps of the score and context kernels."""
    db = DTYPE_BYTES[p.workload.dtype]
    banks = jnp.maximum(p.hw.pim.banks, 1)
    elems = jnp.maximum(jnp.maximum(p.hw.pim.col_bytes, db) // db, 1)
    return banks, elems


def _i(x):
    return jnp.asarray(x, jnp.int64)


def step_ns(lengths, live, hp, grid):
    """Decode-step attention of a padded batch: the formulas of the module docstring on
    explicit ``lengths`` (B,) and ``live`` (B,) with scalar parameters ``hp`` (a dict: heads
    (per module), kv_heads, g, d, dtype_bytes, out_bytes, banks, elems (per column), layers,
    channels, tp, pp, micro_batches, partition, tCK_ns, hub_GBps, epu_Gops, hub_latency_ns,
    link_GBps, link_latency_ns; see :func:`hyper`). Returns a dict of metrics (times in ns)."""
    lengths = jnp.where(live, lengths, 0)
    heads, c = hp["heads"], hp["channels"]
    group, slot = groups_of(live, hp["micro_batches"])
    whole = groups_of(live, 1)
    units = hp["banks"], hp["elems"]
    mb_max, chan = busy_by_group(
        lengths, group, slot, heads, c, hp["partition"], grid, *units, M_MAX, tp=hp["tp"]
    )
    all_max = jax.lax.cond(  # the whole batch as one micro-batch
        hp["micro_batches"] == 1,
        lambda: mb_max[0],
        lambda: busy_by_group(
            lengths, *whole, heads, c, hp["partition"], grid, *units, 1, tp=hp["tp"]
        )[0][0],
    )
    gd = (hp["g"] * hp["d"]).astype(jnp.float64)
    # hub: one reduction of min(C, L) partial vectors per (request, head), token-centric only
    parts = jnp.minimum(c, lengths).astype(jnp.float64)
    red = jnp.where(
        live & (parts > 0),
        hp["hub_latency_ns"]
        + parts * gd * hp["out_bytes"] / hp["hub_GBps"]
        + (parts - 1) * gd / hp["epu_Gops"],
        0.0,
    ) * (hp["partition"] == 2)
    onehot = (group[:, None] == jnp.arange(M_MAX)[None, :]).astype(jnp.float64)
    hub_mb = heads * (red @ onehot)
    tail_mb = jnp.max(jnp.where(onehot > 0, red[:, None], 0.0), axis=0)
    n_mb = live.astype(jnp.float64) @ onehot
    out_bytes = hp["kv_heads"] * gd * hp["dtype_bytes"]  # attention output per request
    tp = hp["tp"]
    sync = lambda n: jnp.where(  # noqa: E731
        (tp > 1) & (n > 0),
        hp["link_latency_ns"] + n * out_bytes * (tp - 1) / tp / hp["link_GBps"],
        0.0,
    )
    hop = lambda n: jnp.where(  # noqa: E731
        (hp["pp"] > 1) & (n > 0), hp["link_latency_ns"] + n * out_bytes / hp["link_GBps"], 0.0
    )
    lps = -(-hp["layers"] // hp["pp"])
    layer_mb = jnp.maximum(mb_max * hp["tCK_ns"], hub_mb) + tail_mb + sync(n_mb)
    stage = jnp.where(n_mb > 0, lps * layer_mb + hop(n_mb), 0.0)
    step = pipeline(stage, hp["pp"])
    n_all = live.sum().astype(jnp.float64)
    layer = jnp.maximum(all_max * hp["tCK_ns"], heads * red.sum()) + red.max() + sync(n_all)
    # channel busy over the step: every stage's channels run their layers for each micro-batch
    chan = chan * hp["tCK_ns"]  # (C_MAX,) per layer, all micro-batches
    n_chan = tp * hp["pp"] * c
    total_busy = tp * hp["layers"] * chan.sum()
    safe = jnp.maximum(step, 1e-30)
    return {
        "layer_ns": layer,
        "step_ns": step,
        "chan_busy_max_ns": lps * chan.max(),
        "chan_busy_mean_ns": total_busy / n_chan,
        "chan_util_mean": total_busy / n_chan / safe,
        "chan_util_max": lps * chan.max() / safe,
        "hub_ns": hp["layers"] * hub_mb.sum(),
        "tokens": lengths.sum(),
    }


METRICS = {
    "step_ns": ("ns", "decode-step attention time of the model (all layers, pipeline included)"),
    "layer_ns": ("ns", "attention time of one layer, whole batch on one module (+ TP sync)"),
    "chan_util_mean": ("1", "channel busy time / step time, mean over every channel"),
    "chan_util_max": ("1", "busiest channel's busy time / step time"),
    "chan_busy_max_ns": ("ns", "busiest channel's busy time in the step"),
    "chan_busy_mean_ns": ("ns", "mean channel busy time in the step"),
    "mac_util": ("1", "useful MACs / (all channels' MAC lanes over the step)"),
    "hub_ns": ("ns", "hub reduction time in the step (token-centric)"),
    "tokens": ("tokens", "context tokens of the admitted requests"),
    "admitted": ("requests", "requests of the batch whose KV fits (FCFS) under policy.kv_alloc"),
    "max_batch": ("requests", "requests of this length mix that fit the KV capacity"),
    "capacity_util": ("1", "live KV bytes / reserved KV bytes"),
    "mem_util": ("1", "reserved KV bytes / KV capacity"),
    "kv_reserved_bytes": ("bytes", "KV bytes reserved on one module"),
    "status": ("bits", "0 = feasible; see dse.point.STATUS_BITS"),
}


def hyper(p: DesignPoint) -> dict:
    """The scalar parameters :func:`step_ns` takes, from a design point."""
    pim, wl, pol = p.hw.pim, p.workload, p.policy
    tp = jnp.maximum(pol.tp, 1)
    return {
        "heads": _cdiv(wl.heads, tp),
        "kv_heads": wl.heads,
        "g": wl.g,
        "d": wl.d,
        "dtype_bytes": DTYPE_BYTES[wl.dtype],
        "out_bytes": pim.out_bytes,
        "banks": _units(p)[0],
        "elems": _units(p)[1],
        "layers": wl.layers,
        "channels": jnp.clip(pim.channels, 1, C_MAX),
        "tp": tp,
        "pp": jnp.maximum(pol.pp, 1),
        "micro_batches": jnp.clip(pol.micro_batches, 1, M_MAX),
        "partition": pol.partition,
        "tCK_ns": pim.tCK_ns,
        "hub_GBps": p.hw.module.hub_GBps,
        "epu_Gops": p.hw.module.epu_Gops,
        "hub_latency_ns": p.hw.module.hub_latency_ns,
        "link_GBps": p.hw.module.link_GBps,
        "link_latency_ns": p.hw.module.link_latency_ns,
    }


def attention(p: DesignPoint) -> dict[str, jnp.ndarray]:
    """Decode attention of the point's batch (see the module docstring)."""
    pim, wl, pol = p.hw.pim, p.workload, p.policy
    b_max = wl.batch_max
    lengths = sample_lengths(wl.lengths, wl.seed, b_max, wl.L, wl.length_scale)
    live = jnp.arange(b_max) < wl.batch
    hp = hyper(p)
    tp, db = hp["tp"], hp["dtype_bytes"]
    # KV cache of one module (its layers and heads of every request), admitted FCFS; the
    # step runs the admitted requests
    bpt = kv_bytes_per_token(wl.layers, wl.heads, wl.d, db, tp, hp["pp"])
    module_bytes = pim.channels * pim.banks * pim.rows * pim.row_bytes
    kv = kv_admission(
        lengths,
        live,
        pol.kv_alloc,
        bpt,
        module_bytes,
        wl.max_context,
        pol.kv_chunk_bytes,
        pol.block_size,
    )
    out = step_ns(lengths, kv["admitted_mask"], hp, grid_cycles(p))
    # MAC units: useful multiply-accumulates over every channel's lanes during the step
    useful = 2.0 * wl.layers * wl.heads * wl.g * wl.d * out["tokens"]
    lanes = (tp * hp["pp"] * hp["channels"] * pim.banks * pim.lanes).astype(jnp.float64)
    capacity = lanes * out["step_ns"] / (pim.tCK_ns * jnp.maximum(pim.tCCD_mac, 1))
    bad = (
        (pim.channels > C_MAX)
        | (pol.micro_batches > M_MAX)
        | (wl.heads % tp != 0)
        | (wl.batch > b_max)
        | (pim.tCK_ns <= 0)
    )
    # fewer requests admitted than asked for (memory, or under static allocation a request
    # longer than max_context): advisory, the step is the admitted batch's; max_batch stays
    # the capacity figure
    short = (kv["admitted"] > 0) & (kv["admitted"] < jnp.minimum(wl.batch, b_max))
    status = (
        jnp.where(bad, STATUS_CODE["bad_parameter"], 0)
        | jnp.where(kv["admitted"] == 0, STATUS_CODE["capacity_exceeded"], 0)
        | jnp.where(short, STATUS_CODE["batch_limited"], 0)
        | kv["status"]
    ).astype(jnp.int64)
    return {
        **out,
        "mac_util": useful / jnp.maximum(capacity, 1e-30),
        "admitted": kv["admitted"],
        "max_batch": kv["max_batch"],
        "capacity_util": kv["capacity_util"],
        "mem_util": kv["mem_util"],
        "kv_reserved_bytes": kv["reserved_bytes"],
        "status": status,
    }


def _cdiv(a, b):
    return -(-a // b)
