"""Reference for :mod:`dse.models.system`: one serving step as an explicit op graph,
list-scheduled one op at a time in plain Python.

:func:`host_durations` recomputes the host and link ops of every request group from the
point's numbers (roofline, all-reduce, host-link formulas written out again);
:func:`op_graph` builds every op of a step (layers × sub-batches × micro-batches × pipeline
stages, the LM head, the hand-offs between stages) with its device, duration and inputs;
:func:`list_schedule` runs a greedy list scheduler: whenever a device is free it starts the
ready op of highest priority (the order of :mod:`dse.models.system`'s docstring); an op of
zero duration is done when its inputs are. A stage runs one micro-batch at a time (its
first ops wait for the previous micro-batch's last). :func:`timeline_plot` draws the lanes.

The PIM's own times (decode attention per group from the channel model, GEMV time per
token on ``pim_only``) are inputs: the PIM models have references of their own.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "Op",
    "host_durations",
    "list_schedule",
    "op_graph",
    "simulate",
    "simulate_point",
    "timeline_plot",
]

KINDS = ("gpu", "gpu_pim", "npu_pim", "pim_only")


@dataclasses.dataclass
class Op:
    name: str
    device: str
    dur: float
    deps: list[int]
    prio: tuple
    pim: float = 0.0  # the PIM's share of dur
    slow: float = 0.0  # a host op's duration wholly beside the PIM's commands (0: dur)
    start: float = math.nan
    end: float = math.nan


def _beside(start: float, dur: float, slow: float, lo: float, hi: float) -> float:
    """End of a host op started at ``start`` that takes ``dur`` alone and ``slow`` wholly
    beside the PIM, which is busy over ``[lo, hi)``."""
    if slow <= dur or hi <= start or lo >= start + dur:
        return start + dur
    sigma = slow / dur
    u = max(lo, start)
    rest = dur - (u - start)  # work left when the PIM's window opens
    if rest * sigma <= hi - u:
        return u + rest * sigma
    return hi + rest - (hi - u) / sigma


def _roof(flops, nbytes, rate, bw, launches, launch_ns, n):
    if n <= 0:
        return 0.0
    return max(flops / rate, nbytes / bw) + launches * launch_ns


def _tiles(m: float, k: float, n: float, db: float, spad_bytes: float) -> float:
    """NeuPIMs' GEMM tiler: halve the largest of (m, k, n), rounding up, while the tile's
    ``db (m k + k n + m n)`` bytes exceed half the scratchpad; the number of tiles (inf
    without a scratchpad limit)."""
    if spad_bytes <= 0:
        return math.inf
    d, count = [float(m), float(k), float(n)], 1
    while db * (d[0] * d[1] + d[1] * d[2] + d[0] * d[2]) > spad_bytes / 2 and max(d) > 1:
        i = d.index(max(d))
        d[i] = math.ceil(d[i] / 2)
        count *= 2
    return float(count)


def host_durations(pt: Mapping[str, float], grp: Mapping[str, float], pim_t: Mapping[str, float]):
    """Op durations (ns) of one request group.

    ``pt``: scalars of the point (kind, tp, shape: hidden, heads (KV), g, d, ffn, vocab,
    gated_ffn, db; host: tflops, vector_tflops, mem_GBps, gemm_eff, attn_eff, mem_eff,
    launch_ns; links: host_GBps, host_latency_ns, dev_GBps, dev_latency_ns, cxl_GBps,
    cxl_latency_ns); ``grp``: n_dec, ctx (Σ context) of the group's decode requests and, of
    its prompt chunks, tok (new tokens), pairs (causal query-key pairs), kv (K/V tokens read),
    last (chunks that end their prompt);
    ``pim_t``: att (ns) and the PIM GEMV ns per token qkv, o, up, down, lm. Returns
    ``(durations, pim shares)`` keyed by op name."""
    kind = KINDS[int(pt["kind"])]
    tp = pt["tp"]
    db = pt["db"]
    hid = pt["hidden"]
    qd = pt["heads"] * pt["g"] * pt["d"] / tp
    kvd = pt["heads"] * pt["d"] / tp
    ffn = pt["ffn"] / tp
    voc = pt["vocab"] / tp
    nmat = 3.0 if pt["gated_ffn"] else 2.0
    n_dec, ctx, pre_tok = grp["n_dec"], grp["ctx"], grp["tok"]
    tok = n_dec + pre_tok
    out = n_dec + grp["last"]
    bw = pt["mem_GBps"] * pt["mem_eff"]
    L = pt["launch_ns"]
    gemm_rate = pt["tflops"] * 1e3 * pt["gemm_eff"]
    vec_rate = pt["vector_tflops"] * 1e3
    attn_rate = pt["tflops"] * 1e3 * pt["attn_eff"]

    def gemm(n, k, m):  # loads before compute in each scratchpad tile
        if n <= 0:
            return 0.0
        compute = 2 * n * k * m / gemm_rate
        load = db * (k * m + n * (k + m)) / bw
        tiles = _tiles(n, k, m, db, pt.get("spad_bytes", 0))
        return max(compute, load) + min(compute, load) / tiles + L

    def norm(n):
        return _roof(8 * n * hid, 2 * n * hid * db, vec_rate, bw, 1, L, n)

    def ew(n, width, flops_per, bytes_per):  # elementwise over n × width
        return _roof(flops_per * n * width, bytes_per * db * n * width, vec_rate, bw, 1, L, n)

    if kind == "pim_only":
        lat, gbps = pt["cxl_latency_ns"], pt["cxl_GBps"]
    else:
        lat, gbps = pt["dev_latency_ns"], pt["dev_GBps"]

    full = tp if pt["cent_heads"] else 1.0  # CENT's placement: every device sees all heads
    on_pim = kind != "gpu"
    keys = grp["pairs"] + (0 if on_pim else ctx)
    q_tok = pre_tok + (0 if on_pim else n_dec)
    kv_tok = grp["kv"] + (0 if on_pim else ctx)
    pattn = _roof(
        4 * qd * keys, db * (2 * kvd * kv_tok + 2 * q_tok * (qd + kvd)), attn_rate, bw, 1, L, q_tok
    )
    share = {"pre": 0.0, "post": 0.0, "lm": 0.0, "att": 0.0}
    if kind == "pim_only":
        share["pre"] = tok * pim_t["qkv"]
        share["post"] = tok * (pim_t["o"] + pim_t["up"] + pim_t["down"])
        share["lm"] = out * pim_t["lm"]
        comm = 0.0
        if tp > 1 and tok > 0:  # CENT: 5 + 1 broadcasts, 5 + 1 gathers per block
            pay, flit = pt["payload_bytes"], pt["flit_bytes"]
            hb, fb = tok * hid * db, tok * pt["ffn"] * db
            bcast = [lat + math.ceil(b / pay) * flit / gbps for b in (hb, fb)]
            gather = [lat + math.ceil(b / tp / pay) * (tp - 1) * flit / gbps for b in (hb, fb)]
            comm = 5 * bcast[0] + bcast[1] + 5 * gather[0] + gather[1]
        n = pt.get("lockstep", 1)  # stages sharing the units and the DMA of one device, in lockstep
        rope = n * tok * (qd + kvd) * full * pt["rope_ns_per_elem"]
        # operands of the vector work staged through the banks, a burst per PIM cycle
        qf, kf, e = qd * full, kvd * full, pt["burst_elems"]
        norm_st = 5 * hid / e  # 4 stores and a read of the hidden vector
        rope_st = (4 * (qf + kf) + pt["tCCD_mac"] * (qf + kf)) / e
        kv_st = kf / e + kf / pt["banks"]
        share["pre"] += n * pt["tCK_ns"] * tok * (norm_st + rope_st + kv_st)
        share["post"] += n * pt["tCK_ns"] * tok * (norm_st + 4 * ffn * full / e)
        pre = n * norm(tok) + rope + share["pre"]
        post = share["post"] + 2 * n * norm(tok) + comm
        lm = n * norm(out) + share["lm"]
    else:
        ar = 0.0  # ring all-reduce over the device link
        if tp > 1 and tok > 0:
            ar = 2 * (tp - 1) * lat + 2 * (tp - 1) / tp * tok * hid * db / gbps
        pre = norm(tok) + gemm(tok, hid, qd + 2 * kvd) + ew(tok, qd + kvd, 6, 2)
        post = (
            gemm(tok, qd, hid)
            + norm(tok)
            + gemm(tok, hid, (nmat - 1) * ffn)
            + ew(tok, ffn, 4, 3)
            + gemm(tok, ffn, hid)
            + 2 * ar
        )
        lm = norm(out) + gemm(out, hid, voc)
    att = pim_t["att"] if (on_pim and n_dec > 0) else 0.0
    n = pt.get("lockstep", 1) if kind == "pim_only" else 1
    if att > 0 and kind == "pim_only":  # softmax's scores staged: 4 stores, 2 reads
        att += n * pt["tCK_ns"] * 6 * (qd * full / pt["d"]) * ctx / pt["burst_elems"]
    share["att"] = att
    if att > 0:  # softmax: the host's on one device (merged), else beside the PIM
        q_heads = qd / pt["d"] * full
        att += n * q_heads * (ctx * pt["sfm_ns_per_score"] + n_dec * pt["sfm_ns_per_head"])
        if not pt["merged"]:
            share["att"] = att
    xin = xout = 0.0
    if kind == "gpu_pim" and (n_dec > 0 or pre_tok > 0):  # prompts' K, V go to the PIM too
        xin_bytes = (n_dec * (qd + 2 * kvd) + pre_tok * 2 * kvd) * db
        xin = pt["host_latency_ns"] + xin_bytes / pt["host_GBps"]
    if kind == "gpu_pim" and n_dec > 0:
        xout = pt["host_latency_ns"] + n_dec * qd * db / pt["host_GBps"]
    d = {"pre": pre, "pattn": pattn, "xin": xin, "att": att, "xout": xout, "post": post, "lm": lm}
    return d, share


def op_graph(
    groups: Sequence[tuple[Mapping[str, float], Mapping[str, float]]],
    merged: bool,
    layers: int,
    pp: int,
    hops: Sequence[float],
    samples: Sequence[float] | None = None,
    slow: Sequence[Mapping[str, float]] | None = None,
    spread: bool = False,
) -> list[Op]:
    """Every op of one step. ``groups[2k + s]`` = (durations, PIM shares) of micro-batch
    ``k``'s half ``s``; ``hops[k]``: micro-batch ``k``'s hand-off between stages;
    ``samples[k]``: the host's sampling of its tokens after the last stage (device ``S``);
    ``slow[2k + s]``: the host ops' durations wholly beside the PIM (default: none);
    ``spread``: the LM head as ``pp`` vocabulary slices, one on every stage once the stage's
    other work is done (``policy.lm_head=spread``), else on the last stage after its layers."""
    lo, rem = divmod(layers, pp)  # the first `rem` stages hold one layer more
    ops: list[Op] = []

    def add(name, device, dur, deps, prio, pim=0.0, slow=0.0):
        deps = [x for x in deps if x is not None]
        ops.append(Op(name, device, float(dur), deps, prio, pim, float(slow)))
        return len(ops) - 1

    n_mb = len(groups) // 2
    spread = spread and pp > 1
    prev_end: dict[int, int] = {}  # stage → the previous micro-batch's stage-end op
    for k in range(n_mb):
        hop_in = None
        for j in range(pp):
            H, P = f"H{j}", (f"H{j}" if merged else f"P{j}")
            Xi, Xo = f"Xi{j}", f"Xo{j}"
            first = j * lo + min(j, rem)
            last_layer = first + lo + (j < rem) - 1
            gate = [hop_in, prev_end.get(j)]
            stage_ops: list[int] = []
            done: dict[int, int | None] = {}
            prio_k = (k, j)
            for li, layer in enumerate(range(first, last_layer + 1)):
                for s in (0, 1):
                    d, sh = groups[2 * k + s]
                    sl = slow[2 * k + s] if slow is not None else {}
                    o = 0
                    deps = gate if li == 0 else []
                    if li > 0:
                        post = add(
                            f"post{s}.L{layer - 1}",
                            H,
                            d["post"],
                            [done[s]],
                            (*prio_k, li, s, o),
                            sh["post"],
                            sl.get("post", 0.0),
                        )
                        stage_ops.append(post)
                        deps = [post]
                    o += 1
                    prio = (*prio_k, li, s, o)
                    pre = add(
                        f"pre{s}.L{layer}", H, d["pre"], deps, prio, sh["pre"], sl.get("pre", 0.0)
                    )
                    o += 1
                    prio = (*prio_k, li, s, o)
                    pat = add(
                        f"pattn{s}.L{layer}", H, d["pattn"], [pre], prio, 0.0, sl.get("pattn", 0.0)
                    )
                    xin = add(f"xin{s}.L{layer}", Xi, d["xin"], [pre], (*prio_k, li, s, 0))
                    att = add(
                        f"att{s}.L{layer}", P, d["att"], [xin], (*prio_k, li, s, 9), sh["att"]
                    )
                    xout = add(f"xout{s}.L{layer}", Xo, d["xout"], [att], (*prio_k, li, s, 0))
                    done[s] = xout
                    stage_ops += [pre, pat, xin, att, xout]
                    # post waits for this layer's prefill attention as well
                    done[s] = add(f"join{s}.L{layer}", "-", 0.0, [xout, pat], (*prio_k, li, s, 10))
            li = last_layer - first + 1
            for s in (0, 1):
                d, sh = groups[2 * k + s]
                sl = slow[2 * k + s] if slow is not None else {}
                post = add(
                    f"post{s}.L{last_layer}",
                    H,
                    d["post"],
                    [done[s]],
                    (*prio_k, li, s, 0),
                    sh["post"],
                    sl.get("post", 0.0),
                )
                stage_ops.append(post)
                if j == pp - 1 and not spread:
                    prio = (*prio_k, li, s, 1)
                    lm = add(f"lm{s}", H, d["lm"], [post], prio, sh["lm"], sl.get("lm", 0.0))
                    stage_ops.append(lm)
            if spread:  # a vocabulary slice on every stage, once the stage's work is done
                for s in (0, 1):
                    d, sh = groups[2 * k + s]
                    prio = (*prio_k, li, 2, s)
                    deps = list(stage_ops)
                    stage_ops.append(add(f"lm{s}.s{j}", H, d["lm"] / pp, deps, prio, sh["lm"] / pp))
            end = add(f"end.k{k}.s{j}", "-", 0.0, stage_ops, (*prio_k, li + 1))
            prev_end[j] = end
            if j < pp - 1:
                hop_in = add(f"hop.k{k}.s{j}", f"L{j}", hops[k], [end], (k, j, li + 2))
            elif samples is not None:
                add(f"sample.k{k}", "S", samples[k], [end], (k, j, li + 2))
    return ops


def list_schedule(ops: list[Op], in_order: bool = True) -> float:
    """List scheduling of ``ops`` (in place: sets start/end); returns the makespan.

    ``in_order`` (the systems modelled: NeuPIMs' and LLMServingSim's per-device op streams):
    each device runs its ops in priority order (lowest ``prio`` first), each when the device
    is free and its inputs are done. Otherwise greedy: whenever a device is free it starts
    its ready op of highest priority, so a later op may overtake one that still waits for its
    inputs. Zero-duration ops (and ops on device ``"-"``) finish when their inputs are done.
    A host op with ``slow`` (on ``H{j}``) runs at ``dur / slow`` of its speed while ``P{j}``
    is busy: over the PIM ops that have started and those queued behind them, already
    released, that will follow back to back (:func:`_beside`); PIM ops start before host
    ops at the same instant."""
    n = len(ops)
    waiting = [len(o.deps) for o in ops]
    users: list[list[int]] = [[] for _ in range(n)]
    for i, o in enumerate(ops):
        for dep in o.deps:
            users[dep].append(i)
    ready: dict[str, list] = {}
    free: dict[str, float] = {}
    ready_at = [0.0] * n
    released = [False] * n
    window: dict[str, tuple[float, float]] = {}  # PIM lane → its busy window (from, to)
    events: list[tuple[float, int]] = []  # (time, op) completions
    instant: list[int] = []

    def release(i: int, t: float) -> None:
        o = ops[i]
        ready_at[i] = t
        released[i] = True
        if o.dur <= 0 or o.device == "-":
            instant.append(i)
        else:
            heapq.heappush(ready.setdefault(o.device, []), (o.prio, i))

    def finish(i: int, t: float) -> None:
        ops[i].end = t
        for u in users[i]:
            waiting[u] -= 1
            if waiting[u] == 0:
                release(u, max(t, max(ops[d].end for d in ops[u].deps)))

    queue: dict[str, list[int]] = {}  # in-order: each device's ops, highest priority first
    for i in sorted(range(n), key=lambda i: ops[i].prio):
        if ops[i].dur > 0 and ops[i].device != "-":
            queue.setdefault(ops[i].device, []).append(i)
    head = dict.fromkeys(queue, 0)
    for i in range(n):
        if waiting[i] == 0:
            release(i, 0.0)

    def busy_window(lane: str, t: float) -> tuple[float, float]:
        lo, hi = window.get(lane, (0.0, 0.0))
        q = queue.get(lane, [])
        for j in q[head.get(lane, 0) :]:  # queued PIM ops that will follow back to back
            if not released[j] or ready_at[j] > max(hi, t):
                break
            lo, hi = (lo, hi + ops[j].dur) if hi >= t else (t, t + ops[j].dur)
        return lo, hi

    t = 0.0
    while True:
        while instant:
            i = instant.pop()
            ops[i].start = ready_at[i]
            finish(i, ready_at[i])
        started = False
        for dev, q in sorted(ready.items(), key=lambda kv: not kv[0].startswith("P")):
            if q and free.get(dev, 0.0) <= t:
                cand = [(p, i) for p, i in q if ready_at[i] <= t]
                if in_order:  # only the device's next op in its stream may start
                    nxt = queue[dev][head[dev]]
                    cand = [(p, i) for p, i in cand if i == nxt]
                if not cand:
                    continue
                p, i = min(cand)
                head[dev] = head.get(dev, 0) + 1
                q.remove((p, i))
                heapq.heapify(q)
                ops[i].start = t
                o = ops[i]
                end = t + o.dur
                if dev.startswith("P"):
                    lo, hi = window.get(dev, (0.0, 0.0))
                    window[dev] = (lo if t <= hi else t, end)
                elif o.slow > o.dur:
                    end = _beside(t, o.dur, o.slow, *busy_window("P" + dev[1:], t))
                free[dev] = end
                heapq.heappush(events, (free[dev], i))
                started = True
        if started:
            continue
        if not events:
            break
        t, i = heapq.heappop(events)
        finish(i, t)
        while events and events[0][0] == t:
            finish(heapq.heappop(events)[1], t)
    return max((o.end for o in ops), default=0.0)


def simulate(pt, groups_comp, pim_times, merged, layers, pp, hops, in_order=True, samples=None):
    """The step of one point: op durations from :func:`host_durations`, the graph of
    :func:`op_graph`, :func:`list_schedule`. ``groups_comp[g]`` = {n_dec, ctx, tok, pairs,
    kv, last} (see :func:`host_durations`);
    ``pim_times[g]`` = {att, qkv, o, up, down, lm}. Returns step_ns, period_ns, host_busy,
    pim_busy and the ops."""
    pt = {**pt, "merged": merged}
    groups = [host_durations(pt, c, t) for c, t in zip(groups_comp, pim_times, strict=True)]
    samples = list(samples) if samples is not None else [0.0] * (len(groups) // 2)
    slow = None
    share = pt.get("host_share", 1.0)
    if KINDS[int(pt["kind"])] == "npu_pim" and not merged and share < 1.0:
        # dual row buffers: the host's ops at the bandwidth left beside the PIM's commands
        beside = {**pt, "mem_eff": pt["mem_eff"] * share}
        slow = [
            host_durations(beside, c, t)[0] for c, t in zip(groups_comp, pim_times, strict=True)
        ]
    ops = op_graph(groups, merged, layers, pp, hops, samples, slow, pt.get("lm_spread", False))
    step = list_schedule(ops, in_order)
    # steady state: the busiest machine (a stage over its micro-batches, or a hop link) and
    # the slowest micro-batch's trip through every machine
    stage_t: dict[tuple[int, int], float] = {}
    begin: dict[tuple[int, int], float] = {}
    for o in ops:
        if o.name.startswith("end."):
            k, j = (int(x[1:]) for x in o.name.split(".")[1:])
            stage_t[k, j] = o.end
    for o in ops:
        if o.device.startswith(("H", "P", "X")) and o.dur > 0:
            k = int(o.prio[0])
            j = int(o.prio[1])
            begin[k, j] = min(begin.get((k, j), math.inf), o.start)
    dur = {kj: stage_t[kj] - begin.get(kj, stage_t[kj]) for kj in stage_t}
    n_mb = len(groups) // 2
    machines = [sum(dur[k, j] for k in range(n_mb)) for j in range(pp)]
    if pp > 1:
        machines.append(sum(hops))
    machines.append(sum(samples))
    cycles = [
        sum(dur[k, j] for j in range(pp)) + (pp - 1) * hops[k] + samples[k] for k in range(n_mb)
    ]
    period = max(machines + cycles)
    host_t = sum(o.dur - o.pim for o in ops if o.device.startswith(("H", "P")))
    pim_t = sum(o.pim for o in ops)
    return {
        "step_ns": step,
        "period_ns": period,
        "host_busy": host_t / (pp * period) if period > 0 else 0.0,
        "pim_busy": pim_t / (pp * period) if period > 0 else 0.0,
        "ops": ops,
    }


def simulate_point(fields: Mapping[str, float], inputs: Mapping[str, object]) -> dict:
    """:func:`simulate` for one design point: ``fields`` its dotted parameters (numbers),
    ``inputs`` its row of :func:`dse.models.system.schedule_inputs` (per-group composition
    and PIM times, the shape its ``llm`` resolves to, the device merge and hand-offs)."""
    f, x = fields, inputs
    kind = int(f["policy.system"])
    pt = {
        "kind": kind,
        "tp": max(int(f["policy.tp"]), 1),
        "db": float(x["db"]),
        "cxl_GBps": float(f["hw.module.link_GBps"]),
        "cxl_latency_ns": float(f["hw.module.link_latency_ns"]),
    }
    for k in ("hidden", "heads", "g", "d", "ffn", "vocab", "gated_ffn"):
        pt[k] = float(x[f"shape.{k}"])
    pt["cent_heads"] = fields.get("policy.mapping") == "cent"
    pt["lm_spread"] = int(f.get("policy.lm_head", 0)) == 1
    units, ch = int(f.get("hw.host.channels", 0)), max(int(f["hw.pim.channels"]), 1)
    pt["lockstep"] = max(units // ch, 1) if units > 0 else 1
    db = float(x["db"])
    pt["burst_elems"] = float(max(int(f["hw.pim.col_bytes"]) // int(db), 1))
    pt["tCCD_mac"] = float(max(int(f["hw.pim.tCCD_mac"]), 1))
    pt["banks"] = float(f["hw.pim.banks"])
    pt["tCK_ns"] = float(f["hw.pim.tCK_ns"])
    pt["host_share"] = float(f["hw.pim.host_share"])
    pt["flit_bytes"] = float(f["hw.module.link_flit_bytes"])
    pt["payload_bytes"] = float(f["hw.module.link_payload_bytes"])
    for k in (
        "sfm_ns_per_score",
        "sfm_ns_per_head",
        "rope_ns_per_elem",
        "tflops",
        "vector_tflops",
        "mem_GBps",
        "gemm_eff",
        "attn_eff",
        "mem_eff",
        "launch_ns",
        "spad_bytes",
    ):
        pt[k] = float(f[f"hw.host.{k}"])
    for k in ("host_GBps", "host_latency_ns", "dev_GBps", "dev_latency_ns"):
        pt[k] = float(f[f"hw.link.{k}"])
    n_groups = len(x["att"])
    comp = [
        {
            "n_dec": float(x["n_dec"][j]),
            "ctx": float(x["ctx"][j]),
            "tok": float(x["pre_tok"][j]),
            "pairs": float(x["pre_pairs"][j]),
            "kv": float(x["pre_kv"][j]),
            "last": float(x["pre_last"][j]),
        }
        for j in range(n_groups)
    ]
    gv = [float(v) for v in x["gemv_ns"]]
    pim_t = [
        {
            "att": float(x["att"][j]),
            "qkv": gv[0],
            "o": gv[1],
            "up": gv[2],
            "down": gv[3],
            "lm": gv[4],
        }
        for j in range(n_groups)
    ]
    layers = int(x["shape.layers"])
    return simulate(
        pt,
        comp,
        pim_t,
        bool(x["merged"]),
        layers,
        max(int(f["policy.pp"]), 1),
        [float(h) for h in x["hop"]],
        samples=[float(a + b) for a, b in np.asarray(x["sample"]).reshape(-1, 2)],
    )


def timeline_plot(ops: Sequence[Op], path: str | Path, title: str = "", layers: int | None = None):
    """A Gantt chart of the scheduled ``ops``, one lane per device (host, PIM, links);
    ``layers``: only the ops of the first that many layers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def layer_of(o):
        tag = o.name.rsplit(".L", 1)
        return int(tag[1]) if len(tag) == 2 and tag[1].isdigit() else -1

    shown = [
        o
        for o in ops
        if o.dur > 0 and o.device != "-" and (layers is None or 0 <= layer_of(o) < layers)
    ]
    lanes = sorted({o.device for o in shown}, key=lambda d: ("HPXLS".find(d[0]), d))
    label = {
        "H": "host (GPU/NPU)",
        "P": "PIM",
        "X": "host link",
        "L": "stage link",
        "S": "host sampling",
    }
    colors = {
        "pre": "#4C72B0",
        "pattn": "#8172B2",
        "post": "#55A868",
        "lm": "#937860",
        "att": "#C44E52",
        "xin": "#CCB974",
        "xout": "#CCB974",
        "hop": "#64B5CD",
    }
    fig, ax = plt.subplots(figsize=(10, 0.6 * len(lanes) + 1.6))
    for o in shown:
        base = o.name.split(".")[0].rstrip("01")
        half = o.name.split(".")[0][-1:] if base != o.name.split(".")[0] else ""
        y = lanes.index(o.device)
        ax.barh(
            y,
            o.dur / 1e3,
            left=o.start / 1e3,
            color=colors.get(base, "grey"),
            edgecolor="black",
            linewidth=0.4,
            hatch="//" if half == "1" else None,
        )
        if o.dur / 1e3 > 0.04 * max(x.end for x in shown) / 1e3:
            ax.text((o.start + o.dur / 2) / 1e3, y, base, ha="center", va="center", fontsize=7)
    ax.set_yticks(range(len(lanes)))
    ax.set_yticklabels(
        [f"{label.get(d[0], d)} {d[1:]}" if d[1:] != "0" else label.get(d[0], d) for d in lanes]
    )
    ax.invert_yaxis()
    ax.set_xlabel("time (µs)")
    ax.set_title(title or "one step: ops per device (hatched: second sub-batch)")
    from matplotlib.patches import Patch

    ax.legend(
        handles=[
            Patch(color=c, label=n)
            for n, c in colors.items()
            if any(o.name.startswith(n) for o in shown)
        ],
        loc="lower right",
        fontsize=7,
        ncol=4,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
