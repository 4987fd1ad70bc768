"""Per-channel assignment and timeline of a decode batch's attention (plain Python).

One batch at a time, written to read like the mechanism that :mod:`dse.models.pim_attention`
states: requests are dealt into micro-batches, each micro-batch's (request, head) tiles (or
token slices) are placed on channels one by one, every channel runs its tiles back to back,
and the pipeline stages process the micro-batches in order (a max-plus recurrence over
stages × micro-batches). Returns the metrics and the per-channel timelines.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from dse.models.pim_attention import GRID
from dse.policy import Partition

__all__ = ["ChannelTile", "simulate", "tile_cycles", "timeline_plot"]


def _linear(x: int, ys: Sequence[float]) -> float:
    xs = GRID
    if x >= xs[-1]:
        i = len(xs) - 2
    else:
        i = max(bisect.bisect_right(xs, x) - 1, 0)
        if xs[i] == x:
            return float(ys[i])
    return float(ys[i]) + (x - xs[i]) * (float(ys[i + 1]) - float(ys[i])) / (xs[i + 1] - xs[i])


def tile_cycles(n: int, grid: Sequence[Sequence[float]], banks: int, elems: int) -> int:
    """Cycles of one head over ``n`` tokens on one channel: the score kernel's cycles at
    ``ceil(n / banks)`` outputs per bank plus the context kernel's at ``ceil(n / elems)``
    columns, each linear between its grid points (and along the last segment beyond),
    rounded half to even."""
    if n <= 0:
        return 0
    return round(_linear(-(-n // banks), grid[0]) + _linear(-(-n // elems), grid[1]))


@dataclasses.dataclass
class ChannelTile:
    request: int
    head: int
    tokens: int
    start: float  # cycles from the start of the layer
    end: float


def _place(requests: list[tuple[int, int]], hp: Mapping[str, Any], grid) -> list[list[ChannelTile]]:
    """Place one micro-batch's work (``(request index, length)`` in order) on the channels."""
    c, heads = int(hp["channels"]), int(hp["heads"])
    part = Partition(int(hp["partition"]))
    if part in (Partition.req_rr, Partition.req_greedy):
        heads = 1  # a whole request is one tile (the grid times all its heads together)
    chans: list[list[ChannelTile]] = [[] for _ in range(c)]
    load = [0] * c

    def put(ch: int, r: int, h: int, n: int) -> None:
        t = tile_cycles(n, grid, int(hp["banks"]), int(hp["elems"]))
        chans[ch].append(ChannelTile(r, h, n, load[ch], load[ch] + t))
        load[ch] += t

    if part in (Partition.hfp_rr, Partition.req_rr):
        t = 0
        for r, n in requests:
            for h in range(heads):
                put(t % c, r, h, n)
                t += 1
    elif part in (Partition.hfp_greedy, Partition.req_greedy):
        tiles = [(r, h, n) for r, n in requests for h in range(heads)]
        units = int(hp["banks"]), int(hp["elems"])
        tiles.sort(key=lambda x: -tile_cycles(x[2], grid, *units))  # stable: request order on ties
        for r, h, n in tiles:
            put(load.index(min(load)), r, h, n)
    else:  # token-centric: every head's tokens over all channels
        for r, n in requests:
            for h in range(heads):
                for ch in range(c):
                    share = n // c + (1 if ch < n % c else 0)
                    if share:
                        put(ch, r, h, share)
    return chans


def _hub_ns(n: int, hp: Mapping[str, Any]) -> float:
    """One token-centric reduction of the partial s·V vectors of a (request, head)."""
    parts = min(int(hp["channels"]), n)
    gd = hp["g"] * hp["d"]
    return (
        hp["hub_latency_ns"]
        + parts * gd * hp["out_bytes"] / hp["hub_GBps"]
        + (parts - 1) * gd / hp["epu_Gops"]
    )


def simulate(lengths: Sequence[int], live: Sequence[bool], hp: Mapping[str, Any], grid):
    """Metrics of the batch (the keys of :func:`dse.models.pim_attention.step_ns`) and the
    per-channel timelines of each micro-batch's layer."""
    reqs = [(i, int(n)) for i, (n, on) in enumerate(zip(lengths, live, strict=True)) if on]
    m = max(int(hp["micro_batches"]), 1)
    micro = [reqs[k::m] for k in range(m)]  # dealt round-robin
    tp, pp, layers = int(hp["tp"]), int(hp["pp"]), int(hp["layers"])
    lps = -(-layers // pp)
    tcp = Partition(int(hp["partition"])) == Partition.tcp
    out_bytes = hp["kv_heads"] * hp["g"] * hp["d"] * hp["dtype_bytes"]

    def layer_ns(batch):
        chans = _place(batch, hp, grid)
        busy = [sum(t.end - t.start for t in ch) for ch in chans]
        reductions = [_hub_ns(n, hp) for _, n in batch] if tcp else []
        hub = sum(reductions) * hp["heads"]
        sync = 0.0
        if tp > 1 and batch:
            sync = hp["link_latency_ns"] + len(batch) * out_bytes * (tp - 1) / tp / hp["link_GBps"]
        # the hub reduces one head while the channels run the next; the last one is exposed
        chan_ns = max(busy, default=0) * hp["tCK_ns"]
        return max(chan_ns, hub) + max(reductions, default=0.0) + sync, busy, hub, chans

    stage, busy_sum, hub_total, timelines = [], [0.0] * int(hp["channels"]), 0.0, []
    for batch in micro:
        lay, busy, hub, chans = layer_ns(batch)
        hop = hp["link_latency_ns"] + len(batch) * out_bytes / hp["link_GBps"] if pp > 1 else 0.0
        stage.append(lps * lay + hop if batch else 0.0)
        busy_sum = [a + b for a, b in zip(busy_sum, busy, strict=True)]
        hub_total += hub
        timelines.append(chans)
    # pipeline: stage s starts micro-batch k when it is done with k-1 and stage s-1 with k
    done = [[0.0] * m for _ in range(pp)]
    for s in range(pp):
        for k in range(m):
            ready = max(done[s - 1][k] if s else 0.0, done[s][k - 1] if k else 0.0)
            done[s][k] = ready + stage[k]
    step = done[pp - 1][m - 1]
    chan = [b * hp["tCK_ns"] for b in busy_sum]
    n_chan = tp * pp * int(hp["channels"])
    total_busy = tp * layers * sum(chan)
    safe = step if step > 0 else 1e-30
    return {
        "layer_ns": layer_ns(reqs)[0],
        "step_ns": step,
        "chan_busy_max_ns": lps * max(chan),
        "chan_busy_mean_ns": total_busy / n_chan,
        "chan_util_mean": total_busy / n_chan / safe,
        "chan_util_max": lps * max(chan) / safe,
        "hub_ns": layers * hub_total,
        "tokens": sum(n for _, n in reqs),
    }, timelines


def timeline_plot(timelines, path: str, tck_ns: float = 1.0, title: str = "") -> str:
    """Gantt chart of one layer per micro-batch: a lane per channel, a bar per tile (or token
    slice), coloured by request — where the channels idle under a partitioning."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mbs = [mb for mb in timelines if any(mb)] or timelines[:1]
    fig, axes = plt.subplots(len(mbs), 1, figsize=(11, 1.2 + 0.18 * len(mbs[0]) * len(mbs)))
    axes = [axes] if len(mbs) == 1 else list(axes)
    cmap = plt.get_cmap("tab20")
    for k, (ax, channels) in enumerate(zip(axes, mbs, strict=True)):
        for c, tiles in enumerate(channels):
            bars = [(t.start * tck_ns / 1e3, (t.end - t.start) * tck_ns / 1e3) for t in tiles]
            colors = [cmap(t.request % 20) for t in tiles]
            ax.broken_barh(bars, (c - 0.4, 0.8), facecolors=colors, edgecolor="white", lw=0.2)
        ax.set_ylabel(f"channel{'' if len(mbs) == 1 else f' (mb {k})'}")
        ax.set_ylim(-0.6, len(channels) - 0.4)
        ax.set_yticks(range(0, len(channels), max(1, len(channels) // 8)))
    axes[-1].set_xlabel("µs from the start of the layer")
    axes[0].set_title(title or "attention tiles per channel (colour: request)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
