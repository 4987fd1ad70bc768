"""One serving step of a whole LLM on four system kinds (DESIGN.md §4.6, §4.7, §4.9).

A pure function of ONE design point; batching happens in :mod:`dse.explore`.
:mod:`dse.reference.system` list-schedules the same op graph one op at a time; the tests hold
the two together.

**The step.** ``workload.batch`` decode requests (context lengths from ``workload.lengths``,
KV admitted first come, first served as in :mod:`dse.models.kv_memory`) and
``prefill_reqs`` prompts of ``prefill_len`` tokens each. The model's shape comes from
``workload.llm`` (a preset in ``conf/workload/model/``) or, for ``custom``, the workload's
own ``layers, hidden, heads`` (KV heads), ``g, d, ffn, vocab, gated_ffn``.

**Ops of one layer** for a group of requests with ``T`` tokens (``tp`` devices split the
heads and the FFN; sizes below are one device's):

* ``pre``: RMS/LayerNorm, rotary and the QKV projection;
* ``pattn``: attention on the host: prefill attention (causal, ``n(n+1)/2`` query-key pairs
  per prompt) and, on ``gpu``, decode attention over each request's KV cache;
* ``xin`` / ``xout``: q, k, v of the decode tokens (and the prompts' new K, V, which the PIM
  keeps) to the PIM, the attention output back, over the host link (``gpu_pim`` only);
* ``att``: decode attention on the PIM channels (:mod:`dse.models.pim_attention`'s channel
  times under ``policy.partition``, the command-pipeline model of :mod:`dse.models.pim_kernel`
  underneath; softmax on the PIM side);
* ``post``: output projection, TP all-reduce, norm, FFN (3 matrices gated, else 2) and a
  second all-reduce;
* ``lm``: final norm and the LM head, once per step for each generated token.

A host op costs ``max(FLOPs / (peak · eff), bytes / (bandwidth · mem_eff)) + launch_ns`` per
kernel (GEMMs at ``gemm_eff``, attention at ``attn_eff``, norms on the vector units). On
``pim_only`` (CENT) the projections are PIM GEMVs, one pass of the weights per token (time
from :mod:`dse.models.pim_kernel`), norms and prefill attention run on the near-memory
units (the ``host`` preset), and all-reduces cross the CXL link (``hw.module.link_*``).
A TP all-reduce of ``b`` bytes on a ring costs ``2(tp-1)·latency + 2(tp-1)/tp · b / GBps``.

**Devices and order.** Four devices per pipeline stage: the host ``H``, the PIM ``P`` and
the host link in each direction ``Xi``, ``Xo``. ``npu_pim`` with ``dual_rb = 0`` (one row
buffer) and ``pim_only`` put ``H`` and ``P`` on one device: their times add. Ops run in a
fixed order per device, each as soon as the device is free and its inputs are done:

* ``H``: for each layer ``l`` and sub-batch ``s`` in turn: ``post_s(l-1)`` (from layer 1),
  ``pre_s(l)``, ``pattn_s(l)``; after the last layer ``post_s``, ``lm_s`` for each ``s``;
* ``P``: ``att_s(l)`` in the same (layer, sub-batch) order; ``Xi``/``Xo`` likewise;
* dependencies: ``xin_s(l)`` after ``pre_s(l)``; ``att_s(l)`` after ``xin_s(l)``;
  ``xout_s(l)`` after ``att_s(l)``; ``post_s(l)`` after ``xout_s(l)`` and ``pattn_s(l)``.

An op of zero duration (an empty sub-batch's, or the links on a kind without them) takes no
device time and is done when its inputs are. The step time is the max-plus recurrence of
these rules over the layers (:func:`stage_ns`).

**Sub-batch interleaving** (``policy.sbi``): each micro-batch's decode requests are split in
two, longest context first onto the half with less context so far (a request is never
split); prompts alternate. Dense ops run once per half, so their weights are read twice: it
pays only where the PIM attention of one half hides the dense ops of the other.

**Pipeline and micro-batches.** ``pp`` stages; the first ``layers mod pp`` hold
``layers // pp + 1`` layers, the others ``layers // pp``, the last also the LM head (or, with
``policy.lm_head=spread``, every stage a ``vocab / pp`` slice of it after its layers); requests
are dealt round-robin into ``micro_batches`` groups (any number: the arrays hold
``policy.mb_slots`` of them, which the evaluator raises to cover the run; CENT keeps one
request per stage in flight), prompts likewise. A stage runs one micro-batch at a time; a
micro-batch's activations cross to the next stage over the device link (CXL on
``pim_only``), and the host samples its tokens after the last stage (``host.sample_ns`` per
token, a machine of its own). The step is the permutation flow shop of (stage, link, stage,
…, sampling) machines: ``C[k][j] = max(C[k-1][j], C[k][j-1]) + p[k][j]``; the steady-state
period (iterations overlapped) is ``max(busiest machine's Σ_k p, slowest micro-batch's Σ_j
p)``; ``tokens_per_s`` = generated tokens / period.

**TP over any head count.** A module holds ``ceil(kv_heads / tp)`` KV heads; with more
modules than heads each head's tokens are split over ``tp // kv_heads`` of them, whose
partial outputs meet over the device link (:func:`shard_merge`). ``partition=cent`` places
the two kernels as CENT does (keys over the whole TP group, values on one module).

**CENT (pim_only) as its artifact builds a block** (docs/systems/cent.md): the TP group's
vectors cross the CXL switch in CENT's pattern (:func:`cent_comm`: 6 broadcasts, 6 gathers
per layer); the vector work's operands are staged through the banks a burst per PIM cycle
(:func:`cent_staging`); softmax and rotary run on the near-memory units
(``host.sfm_ns_per_score``, ``sfm_ns_per_head``, ``rope_ns_per_elem``); with
``mapping=cent`` every device does the vector work of every head, as CENT's devices do. A
stage on a channel slice (CENT's pipeline-parallel mode: ``hw.pim.channels`` below the
``hw.host.channels`` one set of units serves) shares the device's units and DMA with
``hw.host.channels // hw.pim.channels`` stages in lockstep (:func:`lockstep`): its vector
work and staging take that many times as long.

**Energy** over one period: host ``active_W`` while busy and ``idle_W`` otherwise on each of
the ``tp·pp`` devices, plus ``base_W``; host-memory traffic at ``mem_pJ_per_bit``; PIM
all-bank MACs and activations from the bytes the kernels stream (``hw.energy``), external
PIM writes of new K/V, background ``bg_mW`` per channel; link bits at their pJ/bit. The
breakdown sums to ``energy_J``; ``J_per_token`` divides by the generated tokens.

**Memory.** Weights are split over the ``tp·pp`` devices; the KV cache lives in host memory
(``gpu``), in the PIM (``gpu_pim``: all of it; ``npu_pim``, ``pim_only``: what the weights
leave); the decode batch is admitted first come, first served (the prompts' K/V are not
counted against it). A point whose weights do not fit or whose batch has no request admitted
is flagged ``capacity_exceeded``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dse._pytree import replace_paths
from dse.models import pim_kernel
from dse.models.kv_memory import kv_admission, kv_bytes_per_token
from dse.models.pim_attention import (
    C_MAX,
    GRID,
    busy_by_group,
    interp_parts,
    issue_bound,
    tile_heads,
)
from dse.models.pim_neupims import neupims_program
from dse.point import STATUS_CODE, DesignPoint
from dse.policy import LmHead, Partition, SystemKind
from dse.workload.dtype import DTYPE_BYTES
from dse.workload.lengths import sample_lengths
from dse.workload.llm import SHAPE_COLUMNS, param_count, shape_table

__all__ = [
    "ENERGY_PARTS",
    "METRICS",
    "M_SYS",
    "OPS",
    "SystemKind",
    "durations",
    "channel_key",
    "chunk_sums",
    "prompt_sums",
    "split_layers",
    "fit_slots",
    "shape_of",
    "stage_ns",
    "step",
    "steady",
]

M_SYS = 8  # micro-batches the arrays hold by default (``policy.mb_slots``)
G = 2 * M_SYS  # groups at the default: (micro-batch, sub-batch)
MB_SLOTS_MAX = 1024  # the most micro-batch slots a run may ask for
OPS = ("pre", "pattn", "xin", "att", "xout", "post", "lm")
_TABLE = shape_table()


def shape_of(wl) -> dict:
    """The LLM shape of a workload: its ``llm`` preset's row, or its own fields (custom)."""
    table = jnp.asarray(_TABLE, jnp.int64)
    own = jnp.stack([jnp.asarray(getattr(wl, c), jnp.int64) for c in SHAPE_COLUMNS])
    row = jnp.where(wl.llm == 0, own, table[jnp.clip(wl.llm, 0, len(_TABLE) - 1)])
    return {c: row[i] for i, c in enumerate(SHAPE_COLUMNS)}


def _f(x):
    return jnp.asarray(x, jnp.float64)


def _kernel_times(p: DesignPoint, s: dict, gemv_k, gemv_m):
    """The command-pipeline model (:mod:`dse.models.pim_kernel`) on this point's channel:
    ((2, len(GRID)) cycles of one head's score and context kernels on one channel at the
    attention grid (as :func:`dse.models.pim_attention.grid_cycles`), (5,) ns of the GEMVs
    ``gemv_k[i] → gemv_m[i]`` over the point's channels)."""
    n_gemv = gemv_k.shape[0]
    n = len(GRID)
    banks = jnp.maximum(p.hw.pim.banks, 1)
    db = DTYPE_BYTES[p.workload.dtype]
    elems = jnp.maximum(jnp.maximum(p.hw.pim.col_bytes, db) // db, 1)
    units = jnp.asarray(GRID, jnp.int64)
    one = jnp.ones(2 * n, jnp.int64)
    kinds = jnp.concatenate(
        [jnp.repeat(jnp.asarray([1, 2], jnp.int64), n), jnp.zeros(n_gemv, jnp.int64)]
    )
    ls = jnp.concatenate([units * banks, units * elems, jnp.ones(n_gemv, jnp.int64)])
    ks = jnp.concatenate([one * p.workload.K, jnp.maximum(jnp.ceil(gemv_k), 1).astype(jnp.int64)])
    ms = jnp.concatenate([one * p.workload.M, jnp.maximum(jnp.ceil(gemv_m), 1).astype(jnp.int64)])
    chans = jnp.concatenate([one, jnp.ones(n_gemv, jnp.int64) * p.hw.pim.channels])

    def at(kind, L, K, M, ch):
        q = replace_paths(
            p,
            {
                "workload.kind": kind,
                "workload.L": L,
                "workload.K": K,
                "workload.M": M,
                "workload.g": s["g"],
                "workload.d": s["d"],
                "workload.heads": tile_heads(
                    p.policy.partition, s["heads"], p.policy.tp, kind, p.hw.pim.channels
                ),
                "workload.partitions": jnp.asarray(1, jnp.int64),
                "hw.pim.channels": ch,
            },
        )
        out = pim_kernel.kernel(q)
        return out["cycles"], out["time_ns"]

    # one kernel after another: under a vmap every kernel's loop would run to the longest
    # kernel's trip count (16x slower when the channel parameters vary per point)
    cycles, ns = jax.lax.map(lambda a: at(*a), (kinds, ls, ks, ms, chans))
    return cycles[: 2 * n].astype(jnp.float64).reshape(2, n), ns[2 * n :]


# ------------------------------------------------------------------------------------------
# request groups
# ------------------------------------------------------------------------------------------


def split(lengths, live, micro_batches, sbi, slots: int = M_SYS):
    """Group of each decode request (``2·micro_batch + half``; -1 where not live) and its
    position within the group. Micro-batches: live requests dealt round-robin. Halves
    (``sbi``): within each micro-batch, longest context first onto the half whose context sum
    is smaller (the first half on ties)."""
    b = lengths.shape[0]
    pos = jnp.cumsum(live) - 1
    mb = jnp.where(live, pos % micro_batches, 0)

    def body(load, x):  # load: (slots, 2) context per half
        hot, n = x
        mine = hot @ load  # this request's micro-batch: (2,)
        h = (mine[1] < mine[0]).astype(jnp.int64)
        return load + hot[:, None] * jnp.stack([(1 - h) * n, h * n])[None, :], h

    def lpt():
        order = jnp.lexsort((jnp.arange(b), -lengths, ~live))  # live first, longest first
        mb_hot = (mb[order][:, None] == jnp.arange(slots)[None, :]).astype(jnp.int64)
        add = jnp.where(live, lengths, 0)[order]
        _, hs = jax.lax.scan(body, jnp.zeros((slots, 2), jnp.int64), (mb_hot, add))
        return jnp.zeros(b, jnp.int64).at[order].set(hs)

    half = jnp.where(live, jax.lax.cond(sbi > 0, lpt, lambda: jnp.zeros(b, jnp.int64)), 0)
    group = jnp.where(live, 2 * mb + half, -1)
    onehot = group[:, None] == jnp.arange(2 * slots)[None, :]
    slot = jnp.where(
        live, (jnp.cumsum(onehot, axis=0) - 1)[jnp.arange(b), jnp.maximum(group, 0)], 0
    )
    return group, slot


def prompts_per_group(n, micro_batches, sbi, slots: int = M_SYS):
    """Prompts of each group: dealt round-robin over the micro-batches, then alternately to
    the halves (the first half gets the odd one)."""
    k = jnp.arange(slots)
    per_mb = jnp.where(k < micro_batches, n // micro_batches + (k < n % micro_batches), 0)
    first = jnp.where(sbi > 0, (per_mb + 1) // 2, per_mb)
    return jnp.stack([first, per_mb - first], axis=1).reshape(2 * slots)


def prompt_sums(p: DesignPoint) -> dict:
    """Per-group sums over the prompt chunks of the point's step (``prefill_reqs`` whole
    prompts of ``prefill_len`` tokens, no past context): see :func:`chunk_sums`."""
    wl, pol = p.workload, p.policy
    m = jnp.clip(pol.micro_batches, 1, pol.mb_slots)
    n = _f(prompts_per_group(wl.prefill_reqs, m, pol.sbi, pol.mb_slots))
    plen = _f(wl.prefill_len)
    return {"n": n, "last": n, "tok": n * plen, "pairs": n * plen * (plen + 1) / 2, "kv": n * plen}


def chunk_sums(new, past, last, live, micro_batches, sbi, slots: int = M_SYS) -> dict:
    """Per-group sums over prompt chunks (chunked prefill): ``new`` tokens of each chunk,
    ``past`` context before it, ``last`` whether it ends its prompt (its last token reaches
    the LM head), ``live`` (P,). Chunks are dealt round-robin over the micro-batches, then
    alternately to the halves. Returns ``n`` chunks, ``last`` chunks ending their prompt,
    ``tok`` new tokens, ``pairs`` causal query-key pairs ``Σ new·past + new(new+1)/2``, ``kv``
    K/V tokens read ``Σ past + new`` (each ``(2·slots,)``)."""
    pos = jnp.cumsum(live) - 1
    mb = pos % micro_batches
    half = jnp.where(sbi > 0, (pos // micro_batches) % 2, 0)
    group = jnp.where(live, 2 * mb + half, -1)
    onehot = (group[:, None] == jnp.arange(2 * slots)[None, :]).astype(jnp.float64)
    new, past = _f(jnp.where(live, new, 0)), _f(jnp.where(live, past, 0))
    return {
        "n": _f(live) @ onehot,
        "last": _f(live & last) @ onehot,
        "tok": new @ onehot,
        "pairs": (new * past + new * (new + 1) / 2) @ onehot,
        "kv": (past + new) @ onehot,
    }


# ------------------------------------------------------------------------------------------
# op durations
# ------------------------------------------------------------------------------------------


def kernel_times(p: DesignPoint):
    """The point's attention tile grid and per-token PIM GEMV times (see
    :func:`_kernel_times`); independent of the batch, so a serving run computes them once."""
    s = shape_of(p.workload)
    tp = jnp.maximum(p.policy.tp, 1)
    hidden = _f(s["hidden"])
    qd = _f(s["heads"] * s["g"] * s["d"]) / tp
    kvd = _f(s["heads"] * s["d"]) / tp
    ffn = _f(s["ffn"]) / tp
    vocab = _f(s["vocab"]) / tp
    nmat = jnp.where(s["gated_ffn"] > 0, 3.0, 2.0)
    if p.policy.mapping == "cent":
        # CENT's GEMVs: Q, K, V and W1, W3 apart, every matrix split by output column over
        # the TP group (TransformerBlock.py:92-93, 697, 737; Llama.py:651-653, 829-830)
        qf, ff = qd * tp, ffn * tp
        ks = [hidden, hidden, hidden, qf, hidden, hidden, ff, hidden]
        ms = [qd, kvd, kvd, hidden / tp, ffn, ffn, hidden / tp, vocab]
        cyc, g = _kernel_times(p, s, jnp.stack(ks), jnp.stack(ms))
        up = g[4] + jnp.where(s["gated_ffn"] > 0, g[5], 0.0)
        return cyc, jnp.stack([g[0] + g[1] + g[2], g[3], up, g[6], g[7]])
    shapes_k = jnp.stack([hidden, qd, hidden, ffn, hidden])
    shapes_m = jnp.stack([qd + 2 * kvd, hidden, (nmat - 1) * ffn, hidden, vocab])
    return _kernel_times(p, s, shapes_k, shapes_m)


def durations(
    p: DesignPoint, lengths, live, prompts: dict | None = None, kern=None, c_max: int = C_MAX
):
    """Per-group op durations (ns, ``2·policy.mb_slots`` groups) and the step's accounting.

    ``prompts``: per-group prompt sums (:func:`chunk_sums`); default the point's own
    (:func:`prompt_sums`). ``kern``: :func:`kernel_times` of the point, when already known.
    ``c_max``: channels the arrays hold (serving runs allow more than the step model).

    Returns ``(d, pim_part, traffic, sizes)``: ``d[op]`` for op in :data:`OPS`; ``pim_part``
    the PIM's share of each op's time (``pim_only`` splits GEMV from vector work); ``traffic``
    byte counts per group for energy; ``sizes`` per-group token counts and PIM times."""
    wl, pol, pim = p.workload, p.policy, p.hw.pim
    s = shape_of(wl)
    db = DTYPE_BYTES[wl.dtype]
    tp = jnp.maximum(pol.tp, 1)
    slots = pol.mb_slots
    n_groups = 2 * slots
    m = jnp.clip(pol.micro_batches, 1, slots)
    kern = kernel_times(p) if kern is None else kern

    group, slot = split(lengths, live, m, pol.sbi, slots)
    onehot = (group[:, None] == jnp.arange(n_groups)[None, :]).astype(jnp.float64)
    n_dec = live.astype(jnp.float64) @ onehot  # (2·slots,)
    ctx = jnp.where(live, lengths, 0).astype(jnp.float64) @ onehot

    # decode attention on the PIM: per group, the busiest channel (+ token-centric hub)
    banks = jnp.maximum(pim.banks, 1)
    elems = jnp.maximum(jnp.maximum(pim.col_bytes, db) // db, 1)
    heads_mod = -(-s["heads"] // tp)
    # more modules than KV heads: each head's tokens are split over tp // heads modules
    # (CENT shards K by token over its TP group), whose partial outputs are merged below
    shards = jnp.where(pol.partition == Partition.cent, 1, jnp.maximum(tp // s["heads"], 1))
    channels = jnp.clip(pim.channels, 1, c_max)
    lens = jnp.where(live, -(-lengths // shards), 0)
    neupims = pol.mapping == "neupims"  # programs built instruction by instruction
    gmax, chan, *where = busy_by_group(
        lens,
        group,
        slot,
        heads_mod,
        channels,
        pol.partition,
        kern[0],
        banks,
        elems,
        n_groups,
        c_max,
        tp=tp,
        with_channels=neupims,
    )
    kernels = gmax * pim.tCK_ns
    if neupims:
        work = interp_parts(lens, kern[0], banks, elems)  # (2, B) score, context cycles
        instr = instructions(p, s, lens, heads_mod)
        kernels = issued(p, group, where[0], instr, work, kernels, n_groups, c_max)
    red = hub_reduction(p, lens, live, channels) * (pol.partition == 2)
    hub = heads_mod * (red @ onehot)
    tail = jnp.max(jnp.where(onehot > 0, red[:, None], 0.0), axis=0)
    busy = jnp.maximum(kernels, hub) + tail
    busy = busy + shard_merge(p, shards, n_dec)
    pr = prompt_sums(p) if prompts is None else prompts
    d, pim_part, traffic, sizes = op_durations(p, kern, n_dec, ctx, pr, busy)
    sizes["chan_busy_ns"] = chan * pim.tCK_ns  # (C_MAX,) one layer, all groups
    return d, pim_part, traffic, sizes


def instructions(p: DesignPoint, s: dict, lens, heads):
    """(2, B) PIM instructions of each request's score and context program over its ``heads``
    KV heads as NeuPIMs issues them (:func:`dse.models.pim_neupims.neupims_program`): per
    chunk one ``GWRITE``, per tile a ``P_HEADER`` and per result group one ``COMPS_READRES``
    (dual row buffers) or its COMPs one by one and a ``READRES`` (single, Newton)."""
    single = p.policy.dual_rb == 0

    def one(kind):
        q = neupims_program(
            kind, 1, 1, lens, s["d"], s["g"], p.hw.pim, heads, DTYPE_BYTES[p.workload.dtype]
        )
        per_tile = 1 + q["readres"] + jnp.where(single, q["comps"], 0)
        n = q["count"] * (q["gwrites"] + q["tiles"] * per_tile) * q["valid"]
        return jnp.where(lens > 0, n.sum(axis=0), 0)

    return jnp.stack([one(1), one(2)])


def issued(p: DesignPoint, group, chan_of, instr, work, kernels, n_groups, c_max):
    """Attention time of each group under the host's PIM instruction rate
    (``hw.host.pim_issue_per_ns``; :func:`dse.models.pim_attention.issue_bound` of the
    requests' ``instr`` and ``work``, (2, B)) for the request-level partitions, whose requests
    each run one NeuPIMs program on one channel; ``kernels`` (the channels' own time) where
    the rate is unbounded (0) or the placement is another."""
    rate = p.hw.host.pim_issue_per_ns
    ns_per_instr = 1.0 / jnp.where(rate > 0, rate, 1.0)
    t = issue_bound(chan_of, group, instr, work, n_groups, c_max, ns_per_instr, p.hw.pim.tCK_ns)
    on = (
        (rate > 0)
        & (p.policy.partition >= Partition.req_rr)
        & (p.policy.partition <= Partition.req_greedy)
    )
    return jnp.where(on, t, kernels)


def shard_merge(p: DesignPoint, shards, n_dec):
    """Token-sharded heads (``tp`` above the KV heads): each of a head's ``shards`` modules
    sends its partial attention output (``g·d`` values, running max and sum, fp32) to one
    of them over the device link (CXL on ``pim_only``), ns per group and layer."""
    s = shape_of(p.workload)
    pim_only = p.policy.system == SystemKind.pim_only
    lat = jnp.where(pim_only, p.hw.module.link_latency_ns, p.hw.link.dev_latency_ns)
    bw = jnp.where(pim_only, p.hw.module.link_GBps, p.hw.link.dev_GBps)
    nbytes = n_dec * (shards - 1) * _f(s["g"] * s["d"] + 2) * 4.0
    return jnp.where((shards > 1) & (n_dec > 0), lat + nbytes / bw, 0.0)


def hub_reduction(p: DesignPoint, lens, live, channels):
    """Token-centric partitioning: each request's per-head reduction of its channels' partial
    outputs on the hub (latency, transfer, ``parts - 1`` adds), ns."""
    mod, pim = p.hw.module, p.hw.pim
    s = shape_of(p.workload)
    gd = _f(s["g"] * s["d"])
    parts = jnp.minimum(channels, lens).astype(jnp.float64)
    return jnp.where(
        live & (parts > 0),
        mod.hub_latency_ns
        + parts * gd * pim.out_bytes / mod.hub_GBps
        + (parts - 1) * gd / mod.epu_Gops,
        0.0,
    )


def op_durations(p: DesignPoint, kern, n_dec, ctx, pr: dict, att_busy):
    """Op durations of groups of any shape from their sums: ``n_dec`` decode requests,
    ``ctx`` their context, ``pr`` prompt-chunk sums (:func:`chunk_sums`' keys) and
    ``att_busy`` the PIM attention time of each group were it offloaded (ns, one layer).
    Returns ``(d, pim_part, traffic, sizes)`` as :func:`durations`."""
    hw, wl, pol = p.hw, p.workload, p.policy
    host, link, pim = hw.host, hw.link, hw.pim
    s = shape_of(wl)
    db = DTYPE_BYTES[wl.dtype]
    kind = pol.system
    tp = jnp.maximum(pol.tp, 1)

    hidden = _f(s["hidden"])
    qd = _f(s["heads"] * s["g"] * s["d"]) / tp  # one device's query width
    kvd = _f(s["heads"] * s["d"]) / tp
    ffn = _f(s["ffn"]) / tp
    vocab = _f(s["vocab"]) / tp
    nmat = jnp.where(s["gated_ffn"] > 0, 3.0, 2.0)

    n_pre, pre_tok = pr["n"], pr["tok"]
    tok = n_dec + pre_tok  # tokens through the dense ops
    out_tok = n_dec + pr["last"]  # tokens through the LM head
    any_tok = tok > 0

    pim_only = kind == SystemKind.pim_only
    attn_on_pim = kind != SystemKind.gpu
    bw = host.mem_GBps * host.mem_eff  # bytes/ns
    peak = host.tflops * 1e3 * host.gemm_eff  # flop/ns
    vec = host.vector_tflops * 1e3
    apeak = host.tflops * 1e3 * host.attn_eff

    # npu_pim with dual row buffers: host traffic shares the channels with the PIM's commands
    # (hw.pim.host_share of the bandwidth left while they run): each host op's duration were
    # it to run wholly beside the PIM, for the schedule's overlap (stage_ns)
    shared = (kind == SystemKind.npu_pim) & (pol.dual_rb == 1)

    def roof(flops, nbytes, rate, launches, n, bw=bw):
        return jnp.where(
            n > 0, jnp.maximum(flops / rate, nbytes / bw) + launches * host.launch_ns, 0.0
        )

    def norm(n, bw=bw):
        return roof(8.0 * n * hidden, 2.0 * n * hidden * db, vec, 1, n, bw)

    # the host's GEMMs, n tokens × (k → m), and their scratchpad tiles (a shape's, whatever
    # the bandwidth the GEMM runs at)
    shapes = {
        "qkv": (tok, hidden, qd + 2 * kvd),
        "o": (tok, qd, hidden),
        "up": (tok, hidden, (nmat - 1) * ffn),
        "down": (tok, ffn, hidden),
        "lm": (out_tok, hidden, vocab),
    }
    tiles = {k: gemm_tiles(*v, db, host.spad_bytes) for k, v in shapes.items()}

    def gemm(name, bw=bw):  # loads and compute per tile
        n, k_, m_ = shapes[name]
        compute = 2.0 * n * k_ * m_ / peak
        load = db * (k_ * m_ + n * (k_ + m_)) / bw
        t = jnp.maximum(compute, load) + jnp.minimum(compute, load) / tiles[name]
        return jnp.where(n > 0, t + host.launch_ns, 0.0)

    # PIM GEMV time per token of each projection (pim_only) and the attention tile grid,
    # from the command-pipeline model in one vectorized call
    gemv = kern[1]
    g_qkv, g_o, g_up, g_down, g_lm = gemv

    # TP all-reduce of n tokens' hidden vectors on the device link (pim_only: cent_comm)
    ar_bytes = 2.0 * (tp - 1) / tp * tok * hidden * db
    allreduce = jnp.where(
        (tp > 1) & any_tok, 2.0 * (tp - 1) * link.dev_latency_ns + ar_bytes / link.dev_GBps, 0.0
    )

    # host attention: prefill always, decode on gpu
    pairs = pr["pairs"]
    keys = pairs + jnp.where(attn_on_pim, 0.0, ctx)
    q_tok = pre_tok + jnp.where(attn_on_pim, 0.0, n_dec)
    a_flops = 4.0 * qd * keys
    a_bytes = db * (
        2.0 * kvd * (pr["kv"] + jnp.where(attn_on_pim, 0.0, ctx)) + 2 * q_tok * (qd + kvd)
    )

    def host_ops(b):  # the host's ops at memory bandwidth b (bytes/ns)
        return {
            "pattn": roof(a_flops, a_bytes, apeak, 1, q_tok, b),
            "pre": norm(tok, b)
            + gemm("qkv", b)
            + roof(6.0 * tok * (qd + kvd), 2.0 * db * tok * (qd + kvd), vec, 1, tok, b),
            "post": gemm("o", b)
            + norm(tok, b)
            + gemm("up", b)
            + roof(4.0 * tok * ffn, 3.0 * db * tok * ffn, vec, 1, tok, b)
            + gemm("down", b)
            + 2 * allreduce,
            "lm": norm(out_tok, b) + gemm("lm", b),
        }

    dense = host_ops(bw)
    pattn, dense_pre, dense_post, dense_lm = (dense[k] for k in ("pattn", "pre", "post", "lm"))
    # npu_pim with dual row buffers: the host's ops as they run beside the PIM's commands
    # (hw.pim.host_share of the channels' bandwidth); stage_ns charges the overlap
    slow = host_ops(bw * jnp.where(shared, pim.host_share, 1.0))
    pim_pre_g = tok * g_qkv
    pim_post_g = tok * (g_o + g_up + g_down)
    pim_lm_g = out_tok * g_lm
    # pim_only (CENT): the TP group's vectors cross the CXL switch as CENT sends them, 5
    # hidden-vector broadcasts (multicast: one transfer whatever tp), 5 gathers of hidden
    # slices, one of FFN slices and one FFN broadcast per layer, each a message of whole
    # flits; rotary embedding on the near-memory units
    cent_heads = p.policy.mapping == "cent"  # CENT's placement: every device sees all heads
    full = jnp.where(cent_heads, tp, 1.0)
    comm_t, comm_bytes = cent_comm(p, tok, hidden, _f(s["ffn"]), db, tp)
    comm = jnp.where((tp > 1) & any_tok, comm_t, 0.0)
    # stages on a slice of a device (CENT's PP mode) share its units and its DMA in lockstep
    share = _f(lockstep(p))
    rope = share * tok * (qd + kvd) * full * host.rope_ns_per_elem
    stage = cent_staging(p, tok, ctx, hidden, qd * full, kvd * full, ffn * full, db)
    stage = {k: share * v for k, v in stage.items()}
    pim_pre_g = pim_pre_g + stage["pre"]
    pim_post_g = pim_post_g + stage["post"]
    pre = jnp.where(pim_only, share * norm(tok) + rope + pim_pre_g, dense_pre)
    post = jnp.where(pim_only, pim_post_g + 2 * share * norm(tok) + comm, dense_post)
    lm = jnp.where(pim_only, share * norm(out_tok) + pim_lm_g, dense_lm)

    # softmax on the host side of PIM attention (near-memory units: CENT), when costed there
    q_heads = qd / _f(s["d"]) * full
    softmax = q_heads * (ctx * host.sfm_ns_per_score + n_dec * host.sfm_ns_per_head)
    softmax = share * softmax
    kernel_busy = att_busy
    att_busy = att_busy + jnp.where(pim_only, stage["att"], 0.0)
    att = jnp.where(attn_on_pim & (n_dec > 0), att_busy + softmax, 0.0)
    sample = out_tok * host.sample_ns
    one_device = pim_only | ((kind == SystemKind.npu_pim) & (pol.dual_rb == 0))

    # host link (gpu_pim): q, k, v in; attention output out
    offload = kind == SystemKind.gpu_pim
    xin_b = (n_dec * (qd + 2 * kvd) + pre_tok * 2 * kvd) * db  # + prompts' K, V to the PIM
    xout_b = n_dec * qd * db
    xin = jnp.where(offload & (xin_b > 0), link.host_latency_ns + xin_b / link.host_GBps, 0.0)
    xout = jnp.where(offload & (n_dec > 0), link.host_latency_ns + xout_b / link.host_GBps, 0.0)

    d = {"pre": pre, "pattn": pattn, "xin": xin, "att": att, "xout": xout, "post": post, "lm": lm}
    # the PIM's share of each op (the rest is host time)
    pim_part = {
        "pre": jnp.where(pim_only, pim_pre_g, 0.0),
        "post": jnp.where(pim_only, pim_post_g, 0.0),
        "lm": jnp.where(pim_only, pim_lm_g, 0.0),
        # softmax: the host's on one device (pim_only, blocked npu_pim), else beside the PIM
        "att": jnp.where(
            attn_on_pim & (n_dec > 0), att_busy + jnp.where(one_device, 0.0, softmax), 0.0
        ),
    }
    # bytes for energy, per group and layer (lm: per step)
    w_layer = db * (hidden * (qd + 2 * kvd) + qd * hidden + nmat * hidden * ffn)
    host_bytes_layer = jnp.where(
        pim_only,
        0.0,
        jnp.where(any_tok, w_layer, 0.0)
        + db * tok * (4 * hidden + 2 * (qd + 2 * kvd) + 3 * ffn)
        + a_bytes,
    )
    host_bytes_lm = jnp.where(pim_only, 0.0, jnp.where(out_tok > 0, db * hidden * vocab, 0.0))
    kv_read = jnp.where(attn_on_pim, 2.0 * kvd * ctx * db, 0.0)  # PIM MAC operand bytes
    gemv_read = jnp.where(pim_only, tok * w_layer, 0.0)
    gemv_read_lm = jnp.where(pim_only, out_tok * db * hidden * vocab, 0.0)
    traffic = {
        "host_layer": host_bytes_layer,
        "host_lm": host_bytes_lm,
        "mac_layer": kv_read + gemv_read,
        "mac_lm": gemv_read_lm,
        "kv_write_layer": jnp.where(attn_on_pim, 2.0 * kvd * (n_dec) * db, 0.0),
        "host_link_layer": jnp.where(offload, xin_b + xout_b, 0.0),
        "dev_link_layer": jnp.where(pim_only, jnp.where(tp > 1, comm_bytes, 0.0), 2 * ar_bytes),
        "hop": tok * hidden * db,
    }
    sizes = {
        "n_dec": n_dec,
        "n_pre": n_pre,
        "pre_tok": pre_tok,
        "pre_pairs": pairs,
        "pre_kv": pr["kv"],
        "pre_last": pr["last"],
        "tok": tok,
        "out_tok": out_tok,
        "ctx": ctx,
        "channels": jnp.clip(pim.channels, 1, C_MAX),
        "shape": s,
        "db": db,
        "att": jnp.where(attn_on_pim & (n_dec > 0), kernel_busy, 0.0),  # the kernels alone
        "gemv_ns": jnp.stack([g_qkv, g_o, g_up, g_down, g_lm]),
        "sample": sample,
        # host ops wholly beside the PIM (npu_pim, dual row buffers; else the ops themselves)
        "slow": {k: jnp.where(shared, slow[k], d[k]) for k in ("pre", "pattn", "post", "lm")},
    }
    return d, pim_part, traffic, sizes


#: halvings the GEMM tiler may make (dimensions below 2**40 reach 1 within 120 of them)
_TILE_STEPS = 128


def gemm_tiles(m, k, n, db, spad_bytes):
    """Tiles of an (m x k) @ (k x n) GEMM staged in a scratchpad of ``spad_bytes``, as
    NeuPIMs' tiler cuts it (``MatMul::calculate_loops``): while a tile's operands and result,
    ``db (m k + k n + m n)`` bytes, exceed half the scratchpad (double buffering), halve its
    largest dimension (rounding up; the first of m, k, n on ties). Returns the tile count,
    ``inf`` where ``spad_bytes`` is 0 (no scratchpad limit: loads hidden under compute)."""
    half = jnp.where(spad_bytes > 0, _f(spad_bytes) / 2, jnp.inf)
    dims = jnp.stack(jnp.broadcast_arrays(_f(m), _f(k), _f(n)))
    axis = jnp.arange(3).reshape((3,) + (1,) * (dims.ndim - 1))

    def big(d):
        return (db * (d[0] * d[1] + d[1] * d[2] + d[0] * d[2]) > half) & (d.max(axis=0) > 1)

    def body(carry):
        i, d, count = carry
        cut = big(d)
        top = jnp.argmax(d, axis=0)  # the first maximum
        d = jnp.where(cut[None] & (axis == top[None]), jnp.ceil(d / 2), d)
        return i + 1, d, count * jnp.where(cut, 2.0, 1.0)

    def more(carry):
        i, d, _ = carry
        return (i < _TILE_STEPS) & jnp.any(big(d))

    init = (jnp.asarray(0), dims, jnp.ones(dims.shape[1:]))
    _, _, count = jax.lax.while_loop(more, body, init)
    return jnp.where(spad_bytes > 0, count, jnp.inf)


def lockstep(p: DesignPoint):
    """pim_only: pipeline stages that share one set of near-memory units and its DMA,
    ``hw.host.channels // hw.pim.channels`` (CENT's PP mode: a device's ``blocks_per_device``
    blocks on channel slices, run in lockstep, ``run_sim.py:201``, ``TransformerBlock.py``'s
    per-slice loop); 1 where the stage owns them (``hw.host.channels`` 0) or on other kinds."""
    host, pim = p.hw.host, p.hw.pim
    n = jnp.maximum(host.channels // jnp.maximum(pim.channels, 1), 1)
    return jnp.where((p.policy.system == SystemKind.pim_only) & (host.channels > 0), n, 1)


def cent_staging(p: DesignPoint, tok, ctx, hidden, qd, kvd, ffn, db) -> dict:
    """pim_only (CENT): the vector work's operands staged between the banks and the
    near-memory units, ns per group and layer for ``tok`` tokens of total context ``ctx``.

    CENT keeps every activation in the banks; each vector op stores its operands there and
    reads its result back as plain bursts (one column of ``col_bytes``), which the device's
    DMA issues one per PIM cycle (``Llama.py:trace_only``; counted from its traces):

    * ``pre``: RMSNorm (4 stores and 1 read of the hidden vector), rotary embedding (2
      store passes and 2 result passes of q and k, and its element-wise multiplies at
      ``tCCD_mac`` per column), the new K row (stores) and V (one all-bank write per
      ``banks`` values);
    * ``post``: the second RMSNorm and SiLU·x3 (3 stores and 1 read of the FFN vector);
    * ``att``: softmax: 4 stores (scores, scale, exponentials, 1/Σ) and 2 reads of every
      query head's ``L`` scores.
    """
    pim = p.hw.pim
    e = _f(jnp.maximum(jnp.maximum(pim.col_bytes, db) // db, 1))  # elements per burst
    tck = pim.tCK_ns
    mac = _f(jnp.maximum(pim.tCCD_mac, 1))
    q_heads = qd / _f(shape_of(p.workload)["d"])
    pre = (5 * hidden + 4 * (qd + kvd) + kvd + mac * (qd + kvd)) / e + kvd / _f(pim.banks)
    return {
        "pre": tck * tok * pre,
        "post": tck * tok * (5 * hidden + 4 * ffn) / e,
        "att": tck * 6 * q_heads * ctx / e,
    }


def cent_comm(p: DesignPoint, tok, hidden, ffn, db, tp):
    """CENT's CXL traffic of one transformer block for ``tok`` tokens over a TP group of
    ``tp`` devices (ns): 5 broadcasts of the hidden vector and one of the FFN vector
    (switch multicast, one message whatever ``tp``), 5 gathers of hidden slices and one of
    FFN slices (``tp - 1`` slices of ``1/tp`` each); every transfer ``link_latency_ns`` plus
    whole flits (``link_payload_bytes`` of ``link_flit_bytes``) at ``link_GBps``. Returns
    ``(ns, payload bytes)``."""
    mod = p.hw.module
    pay = _f(mod.link_payload_bytes)
    flit = _f(mod.link_flit_bytes)

    def bcast(nbytes):
        return mod.link_latency_ns + jnp.ceil(nbytes / pay) * flit / mod.link_GBps

    def gather(nbytes):
        return mod.link_latency_ns + jnp.ceil(nbytes / tp / pay) * (tp - 1) * flit / mod.link_GBps

    h, f = tok * hidden * db, tok * ffn * db
    nbytes = (5 * h + f) + (tp - 1) / tp * (5 * h + f)
    return 5 * bcast(h) + 5 * gather(h) + gather(f) + bcast(f), nbytes


# ------------------------------------------------------------------------------------------
# the schedule
# ------------------------------------------------------------------------------------------


def _run(clock, ready, dur):
    """An op on a device free at ``clock`` whose inputs are done at ``ready``: (device free
    after it, its end). Zero-duration ops take no device time."""
    end = jnp.where(dur > 0, jnp.maximum(clock, ready) + dur, ready)
    return jnp.where(dur > 0, end, clock), end


def _beside(start, dur, slow, lo, hi):
    """End of a host op of ``dur`` ns started at ``start`` that runs at ``dur / slow`` of its
    speed while the PIM is busy, over ``[lo, hi)`` (the PIM's commands take the rest of the
    channels' bandwidth); at full speed before and after."""
    u = jnp.clip(lo, start, jnp.maximum(hi, start))  # the busy window's start within the op
    before = u - start
    rest = dur - before
    win = jnp.maximum(hi - u, 0.0)
    sigma = jnp.where(dur > 0, slow / jnp.where(dur > 0, dur, 1.0), 1.0)
    inside = rest * sigma  # the rest wholly inside the window
    end = jnp.where(
        rest <= 0,
        start + dur,
        jnp.where(inside <= win, u + inside, jnp.maximum(hi, u) + rest - win / sigma),
    )
    return jnp.where(sigma > 1.0, end, start + dur)


def _host(clock, ready, dur, slow, lo, hi):
    """:func:`_run` for a host op beside the PIM's busy window ``[lo, hi)`` (:func:`_beside`)."""
    start = jnp.maximum(clock, ready)
    end = jnp.where(dur > 0, _beside(start, dur, slow, lo, hi), ready)
    return jnp.where(dur > 0, end, clock), end


def stage_ns(d, merged, n_lo, n_hi, slow=None):
    """Time of one pipeline stage per micro-batch: the fixed-order max-plus recurrence of
    the module docstring. ``d[op]`` are ``(2·slots,)`` arrays, group ``2k + s``; ``merged``:
    host and PIM on one device; stages hold ``n_lo`` or ``n_hi = n_lo + 1`` layers;
    ``slow[op]``: the host ops' durations wholly beside the PIM (npu_pim with dual row
    buffers; default: as ``d``), charged over their overlap with the PIM's busy window (the
    PIM ops back to back before it; each host op overlaps the attention last started, since
    the next one waits for a host op after it). Returns ``(slots,)`` stage times ``(n_hi
    layers, n_lo layers, n_lo layers + LM head)`` (one per micro-batch: arrays of ``2m``
    groups give ``m``)."""
    dd = {k: v.reshape(-1, 2) for k, v in d.items()}
    sl = {k: v.reshape(-1, 2) for k, v in (slow or {}).items()}
    zero = jnp.zeros(dd["pre"].shape[0])

    def host(h, ready, op, s, lo, hi, on=True):  # host op `op` of half `s` (none unless `on`)
        dur = jnp.where(on, dd[op][:, s], 0.0)
        return _host(h, ready, dur, jnp.where(on, sl[op][:, s], 0.0) if sl else dur, lo, hi)

    def layer(l, st):
        h, pclk, xi, xo, done, lo = st
        done = list(done)
        for s in (0, 1):
            h, _ = host(h, jnp.where(l > 0, done[s], 0.0), "post", s, lo, pclk, l > 0)
            h, pre_end = host(h, 0.0, "pre", s, lo, pclk)
            xi, xi_end = _run(xi, pre_end, dd["xin"][:, s])
            att = dd["att"][:, s]
            # two devices: the attention starts beside the prefill attention, its busy window
            # (from the first of the PIM's back-to-back ops) slows it
            a_start = jnp.maximum(pclk, xi_end)
            lo = jnp.where(att > 0, jnp.where(a_start > pclk, a_start, lo), lo)
            _, a_end = _run(pclk, xi_end, att)
            h, _ = host(h, 0.0, "pattn", s, lo, a_end)
            pc = jnp.where(merged, h, pclk)  # one device: after the prefill attention
            pclk, a_end = _run(pc, xi_end, att)
            h = jnp.where(merged, pclk, h)
            xo, done[s] = _run(xo, a_end, dd["xout"][:, s])
        return h, pclk, xi, xo, tuple(done), lo

    def finish(st, with_lm):
        h, pclk, xi, xo, done, lo = st
        for s in (0, 1):
            h, _ = host(h, done[s], "post", s, lo, pclk)
            h, _ = host(h, 0.0, "lm", s, lo, pclk, with_lm)
        return jnp.maximum(jnp.maximum(h, pclk), jnp.maximum(xi, xo))

    def body(l, carry):
        st, lo_t, last = carry
        st = layer(l, st)
        at_lo = l + 1 == n_lo
        lo_t = jnp.where(at_lo, finish(st, False), lo_t)
        last = jnp.where(at_lo, finish(st, True), last)
        return st, lo_t, last

    init = ((zero, zero, zero, zero, (zero, zero), zero), zero, zero)
    st, lo_t, last = jax.lax.fori_loop(0, jnp.maximum(n_hi, n_lo), body, init)
    return finish(st, False), lo_t, last


def split_layers(layers, pp):
    """Layers per pipeline stage: the first ``layers mod pp`` stages hold one more; the last
    stage (with the LM head) holds ``layers // pp``. Returns ``(n_lo, n_hi, stages with
    n_hi)``."""
    lo = layers // pp
    rem = layers % pp
    return lo, lo + (rem > 0), rem


def _pipeline(t_hi, t_lo, t_last, hop, pp, rem, tail=None):
    """Step (makespan) and steady-state period of micro-batches through ``pp`` stages: the
    permutation flow shop of (stage, hop, stage, …, last stage, ``tail``) machines. Stages
    before ``rem`` take ``t_hi``, the others ``t_lo``, the last ``t_last``; ``tail`` is the
    host's sampling after the last stage (default none); all ``(slots,)``."""
    tail = jnp.zeros_like(t_last) if tail is None else tail

    def stage_time(i):
        return jnp.where(i == pp - 1, t_last, jnp.where(i < rem, t_hi, t_lo))

    def machines(j, c):  # machine j ≥ 1: odd = hop, even = stage j / 2
        pj = jnp.where(j % 2 == 1, hop, stage_time(j // 2))
        s = jnp.cumsum(pj)
        return s + jax.lax.cummax(c - (s - pj))

    c = jax.lax.fori_loop(1, 2 * pp - 1, machines, jnp.cumsum(stage_time(0)))
    st = jnp.cumsum(tail)
    c = st + jax.lax.cummax(c - (st - tail))
    n_lo_mid = pp - 1 - rem  # middle stages with n_lo layers
    load = jnp.max(
        jnp.stack(
            [
                t_last.sum(),
                jnp.where(rem > 0, t_hi.sum(), 0.0),
                jnp.where(n_lo_mid > 0, t_lo.sum(), 0.0),
                jnp.where(pp > 1, hop.sum(), 0.0),
                tail.sum(),
            ]
        )
    )
    cycle = rem * t_hi + n_lo_mid * t_lo + t_last + (pp - 1) * hop + tail
    return c[-1], jnp.maximum(load, cycle.max())


# ------------------------------------------------------------------------------------------
# the model
# ------------------------------------------------------------------------------------------


def schedule(p: DesignPoint, d: dict, tok, stage=None, sample=None, slow=None):
    """The step from its op durations ``d`` and the tokens of each group ``tok`` (both
    ``2m`` groups): stage times (``stage``, default :func:`stage_ns` with the host ops
    beside the PIM ``slow``), the hand-offs between pipeline stages, the host's sampling of
    each group's tokens (``sample``, ns; default none), the flow shop. Returns ``(step_ns,
    period, merged, n_lo, hop)``."""
    pol, link, mod = p.policy, p.hw.link, p.hw.module
    s = shape_of(p.workload)
    db = DTYPE_BYTES[p.workload.dtype]
    kind = pol.system
    pp = jnp.maximum(pol.pp, 1)
    merged = (kind == SystemKind.pim_only) | ((kind == SystemKind.npu_pim) & (pol.dual_rb == 0))
    n_lo, n_hi, rem = split_layers(s["layers"], pp)
    # LM head spread over the stages: each runs vocab / pp of it after its layers
    spread = (pol.lm_head == LmHead.spread) & (pp > 1)
    lm_slice = jnp.where(spread, d["lm"].reshape(-1, 2).sum(axis=1) / pp, 0.0)
    d = {**d, "lm": jnp.where(spread, 0.0, d["lm"])}
    if stage is None:
        t_hi, t_lo, t_last = stage_ns(d, merged, jnp.maximum(n_lo, 1), n_hi, slow)
    else:
        t_hi, t_lo, t_last = stage(d, merged, jnp.maximum(n_lo, 1), n_hi)
    t_hi, t_lo, t_last = t_hi + lm_slice, t_lo + lm_slice, t_last + lm_slice
    l_lat = jnp.where(kind == SystemKind.pim_only, mod.link_latency_ns, link.dev_latency_ns)
    l_bw = jnp.where(kind == SystemKind.pim_only, mod.link_GBps, link.dev_GBps)
    mb_tok = tok.reshape(-1, 2).sum(axis=1)
    hop = jnp.where((pp > 1) & (mb_tok > 0), l_lat + mb_tok * s["hidden"] * db / l_bw, 0.0)
    tail = None if sample is None else sample.reshape(-1, 2).sum(axis=1)
    step_ns, period = _pipeline(t_hi, t_lo, t_last, hop, pp, rem, tail)
    return step_ns, period, merged, n_lo, hop


def _prepare(p: DesignPoint, steady_state: bool) -> dict:
    """Admission, op durations, stage times and the pipeline of one point."""
    hw, wl, pol = p.hw, p.workload, p.policy
    host, pim = hw.host, hw.pim
    s = shape_of(wl)
    db = DTYPE_BYTES[wl.dtype]
    kind = pol.system
    tp = jnp.maximum(pol.tp, 1)
    pp = jnp.maximum(pol.pp, 1)
    b_max = wl.batch_max
    lengths = sample_lengths(wl.lengths, wl.seed, b_max, wl.L, wl.length_scale)

    # --- memory: weights per device, KV capacity, admission ---------------------------------
    params = param_count(**{k: s[k] for k in SHAPE_COLUMNS})
    weights_dev = _f(params) * db / (tp * pp)
    pim_bytes = _f(pim.channels) * pim.banks * pim.rows * pim.row_bytes
    on_host = (kind == SystemKind.gpu) | (kind == SystemKind.gpu_pim)  # weights in GPU memory
    weights_fit = weights_dev <= jnp.where(on_host, host.mem_GB * 1e9, pim_bytes)
    capacity = jnp.select(
        [kind == SystemKind.gpu, kind == SystemKind.gpu_pim],
        [host.mem_GB * 1e9 - weights_dev, pim_bytes],
        pim_bytes - weights_dev,
    )
    cap = jnp.maximum(capacity, 0.0).astype(jnp.int64)
    bpt = kv_bytes_per_token(s["layers"], s["heads"], s["d"], db, tp, pp)
    offered = jnp.arange(b_max) < wl.batch

    def admit(mask):
        return kv_admission(
            lengths,
            mask,
            pol.kv_alloc,
            bpt,
            cap,
            wl.max_context,
            pol.kv_chunk_bytes,
            pol.block_size,
        )

    kv = admit(offered)
    if steady_state:  # the largest batch of this length mix that fits, up to batch_max
        full = admit(jnp.ones(b_max, bool))
        n_fit = jnp.minimum(full["max_batch"], b_max)
        kv = admit(jnp.arange(b_max) < n_fit)
        kv = {**kv, "max_batch": full["max_batch"]}
    live = kv["admitted_mask"]

    # --- durations and schedule -----------------------------------------------------------
    d, pim_part, traffic, sz = durations(p, lengths, live)
    step_ns, period, merged, n_lo, hop = schedule(
        p, d, sz["tok"], sample=sz["sample"], slow=sz["slow"]
    )
    period = jnp.maximum(period, 1e-9)
    return {
        "kv": kv,
        "live": live,
        "d": d,
        "pim_part": pim_part,
        "traffic": traffic,
        "sz": sz,
        "merged": merged,
        "n_lo": n_lo,
        "hop": hop,
        "step_ns": step_ns,
        "period": period,
        "weights_fit": weights_fit,
        "weights_dev": weights_dev,
    }


def schedule_inputs(p: DesignPoint) -> dict:
    """The step's metrics and what :mod:`dse.reference.system` needs of the point:
    per-group composition and PIM times, the shape ``llm`` resolves to, the device merge,
    the pipeline hand-offs."""
    return _evaluate(p, steady_state=False, inputs=True)


def _inputs(r: dict) -> dict:
    sz = r["sz"]
    return {
        "n_dec": sz["n_dec"],
        "ctx": sz["ctx"],
        "n_pre": sz["n_pre"],
        "pre_tok": sz["pre_tok"],
        "pre_pairs": sz["pre_pairs"],
        "pre_kv": sz["pre_kv"],
        "pre_last": sz["pre_last"],
        "att": sz["att"],
        "gemv_ns": sz["gemv_ns"],
        "merged": r["merged"],
        "hop": r["hop"],
        "sample": sz["sample"],
        "db": jnp.asarray(sz["db"], jnp.float64),
        **{f"d.{k}": v for k, v in r["d"].items()},
        **{f"shape.{k}": v for k, v in sz["shape"].items()},
    }


def accounting(p: DesignPoint, d: dict, pim_part: dict, traffic: dict, period) -> dict:
    """Busy time and energy of one period (ns of ``period``): ``host_ns``, ``pim_ns``,
    ``link_ns`` — one device's busy time, averaged over the pipeline stages — and the
    :data:`ENERGY_PARTS` (J) of all devices."""
    hw, pol = p.hw, p.policy
    host, link, mod, pim, en = hw.host, hw.link, hw.module, hw.pim, hw.energy
    s = shape_of(p.workload)
    kind = pol.system
    tp = jnp.maximum(pol.tp, 1)
    pp = jnp.maximum(pol.pp, 1)

    def total(x):  # one op over all layers of the model, all groups
        return x.sum() * s["layers"]

    host_part = {k: d[k] - pim_part.get(k, 0.0) for k in ("pre", "pattn", "att", "post", "lm")}
    host_busy_t = (
        sum(total(host_part[k]) for k in ("pre", "pattn", "att", "post")) + host_part["lm"].sum()
    )
    pim_t = sum(total(pim_part[k]) for k in ("pre", "post", "att")) + pim_part["lm"].sum()

    n_dev = _f(tp * pp)
    layers = _f(s["layers"])
    busy_dev = host_busy_t / pp  # one device's busy time in the period
    e_host = (
        n_dev
        * (host.active_W * busy_dev + host.idle_W * jnp.maximum(period - busy_dev, 0.0))
        * 1e-9
    )
    e_base = n_dev * host.base_W * period * 1e-9
    bits = 8e-12  # pJ/bit → J per byte
    host_bytes = traffic["host_layer"].sum() * layers + traffic["host_lm"].sum()
    e_host_mem = tp * host_bytes * host.mem_pJ_per_bit * bits
    mac_bytes = traffic["mac_layer"].sum() * layers + traffic["mac_lm"].sum()
    has_pim = kind != SystemKind.gpu
    acts = mac_bytes / pim.row_bytes
    e_pim = tp * (mac_bytes * en.mac_pJ_per_byte + acts * en.act_pJ) * 1e-12
    e_pim = e_pim + tp * traffic["kv_write_layer"].sum() * layers * en.rd_pJ_per_byte * 1e-12
    e_pim_bg = jnp.where(has_pim, n_dev * pim.channels * en.bg_mW * 1e-3 * period * 1e-9, 0.0)
    host_link_bytes = tp * traffic["host_link_layer"].sum() * layers
    dev_link_bytes = tp * traffic["dev_link_layer"].sum() * layers + jnp.where(
        pp > 1, (pp - 1) * traffic["hop"].sum(), 0.0
    )
    dev_pj = jnp.where(kind == SystemKind.pim_only, mod.link_pJ_per_bit, link.dev_pJ_per_bit)
    e_link = host_link_bytes * link.host_pJ_per_bit * bits + dev_link_bytes * dev_pj * bits
    return {
        "host_ns": busy_dev,
        "pim_ns": pim_t / pp,
        "link_ns": (total(d["xin"]) + total(d["xout"])) / pp,
        "e_host_J": e_host,
        "e_host_mem_J": e_host_mem,
        "e_pim_J": e_pim,
        "e_pim_bg_J": e_pim_bg,
        "e_link_J": e_link,
        "e_base_J": e_base,
    }


def _evaluate(p: DesignPoint, steady_state: bool, inputs: bool = False) -> dict:
    wl = p.workload
    r = _prepare(p, steady_state)
    s = r["sz"]["shape"]
    kv, live, d, pim_part, traffic, sz = (
        r[k] for k in ("kv", "live", "d", "pim_part", "traffic", "sz")
    )
    step_ns, period = r["step_ns"], r["period"]
    weights_fit, weights_dev = r["weights_fit"], r["weights_dev"]
    b_max = wl.batch_max

    def total(x):  # one op over all layers of the model, all groups
        return x.sum() * s["layers"]

    acc = accounting(p, d, pim_part, traffic, period)
    host_busy = acc["host_ns"] / period
    pim_busy = acc["pim_ns"] / period
    link_busy = acc["link_ns"] / period
    energy = sum(acc[k] for k in ENERGY_PARTS)
    gen = sz["out_tok"].sum()

    bad = bad_parameters(p) | (wl.batch > b_max)  # pp > layers among them
    status = (
        jnp.where(bad, STATUS_CODE["bad_parameter"], 0)
        | jnp.where(~weights_fit | (kv["admitted"] == 0), STATUS_CODE["capacity_exceeded"], 0)
        | kv["status"]
    ).astype(jnp.int64)
    if not steady_state:  # asked for workload.batch, ran what fits (advisory)
        short = (kv["admitted"] > 0) & (kv["admitted"] < jnp.minimum(wl.batch, b_max))
        status = status | jnp.where(short, STATUS_CODE["batch_limited"], 0)
    safe_gen = jnp.maximum(gen, 1.0)
    extra = _inputs(r) if inputs else {}
    return extra | {
        "step_ns": step_ns,
        "period_ns": period,
        "tokens_per_s": gen / period * 1e9,
        "host_busy": host_busy,
        "pim_busy": pim_busy,
        "link_busy": link_busy,
        "energy_J": energy,
        "J_per_token": energy / safe_gen,
        "e_host_J": acc["e_host_J"],
        "e_host_mem_J": acc["e_host_mem_J"],
        "e_pim_J": acc["e_pim_J"],
        "e_pim_bg_J": acc["e_pim_bg_J"],
        "e_link_J": acc["e_link_J"],
        "e_base_J": acc["e_base_J"],
        "attn_pim_ns": total(d["att"]),
        "dense_ns": total(d["pre"]) + total(d["post"]) + d["lm"].sum(),
        "tokens": gen,
        "batch": live.sum(),
        "admitted": kv["admitted"],
        "max_batch": kv["max_batch"],
        "weights_GB": weights_dev * 1e-9,
        "mem_util": kv["mem_util"],
        "status": status,
    }


def bad_parameters(p: DesignPoint, channel_slots: int = C_MAX) -> jnp.ndarray:
    """The parameter checks every model of a whole system shares (the step here, the
    serving simulation): micro-batches beyond their slots, more PIM channels than the
    arrays hold (``channel_slots``), more pipeline stages than layers, more tensor-parallel
    devices than attention heads, a clock period that is not positive."""
    pol, pim = p.policy, p.hw.pim
    s = shape_of(p.workload)
    return (
        (pol.micro_batches > pol.mb_slots)
        | (pim.channels > channel_slots)
        | (jnp.maximum(pol.pp, 1) > s["layers"])
        | (pol.tp < 1)
        | (pol.tp > s["heads"] * s["g"])
        | (pim.tCK_ns <= 0)
    )


def fit_slots(base: DesignPoint, swept) -> DesignPoint:
    """``base`` with ``policy.mb_slots`` raised to the next power of two that holds the most
    micro-batches of ``swept`` (or of ``base``), capped at :data:`MB_SLOTS_MAX` (more is
    flagged ``bad_parameter``); never lowered."""
    mb = swept.get("policy.micro_batches")
    need = int(np.max(mb)) if mb is not None and np.size(mb) else int(base.policy.micro_batches)
    slots = int(base.policy.mb_slots)
    while slots < min(need, MB_SLOTS_MAX):
        slots *= 2
    if slots == base.policy.mb_slots:
        return base
    return replace_paths(base, {"policy.mb_slots": slots})


def channel_key(p: DesignPoint) -> jnp.ndarray:
    """A sort key that puts points with the same channel organisation side by side: the
    evaluator's blocks then hold kernels of similar loop trip counts."""
    pim = p.hw.pim
    key = pim.banks
    for x, bits in ((pim.col_bytes, 8), (pim.row_bytes, 16), (pim.gbuf_bytes, 20), (pim.lanes, 8)):
        key = key * (1 << bits) + jnp.clip(x, 0, (1 << bits) - 1)
    return key.astype(jnp.int64)


def step(p: DesignPoint) -> dict[str, jnp.ndarray]:
    """One serving step of the point's batch (see the module docstring)."""
    return _evaluate(p, steady_state=False)


def steady(p: DesignPoint) -> dict[str, jnp.ndarray]:
    """The step at the largest batch of the length mix that fits memory (up to
    ``batch_max``): steady-state decode throughput as the PIM papers report it."""
    return _evaluate(p, steady_state=True)


#: the terms of ``energy_J``
ENERGY_PARTS = ("e_host_J", "e_host_mem_J", "e_pim_J", "e_pim_bg_J", "e_link_J", "e_base_J")

METRICS = {
    "step_ns": ("ns", "one iteration of the batch (pipeline makespan)"),
    "period_ns": ("ns", "steady-state time between iterations (pipelined)"),
    "tokens_per_s": ("tokens/s", "generated tokens per second at the steady-state period"),
    "host_busy": ("1", "GPU/NPU (or near-memory units) busy time / period, per device"),
    "pim_busy": ("1", "PIM busy time / period, per module"),
    "link_busy": ("1", "host link busy time / period (gpu_pim)"),
    "energy_J": ("J", "energy of one period, all devices"),
    "J_per_token": ("J/token", "energy_J / generated tokens"),
    "e_host_J": ("J", "host devices: active while busy, idle otherwise"),
    "e_host_mem_J": ("J", "host memory traffic"),
    "e_pim_J": ("J", "PIM MACs, activations and K/V writes"),
    "e_pim_bg_J": ("J", "PIM background power"),
    "e_link_J": ("J", "host link, device link and CXL bits"),
    "e_base_J": ("J", "rest of the node (base_W)"),
    "attn_pim_ns": ("ns", "PIM decode attention time, all layers and groups"),
    "dense_ns": ("ns", "dense-op time (pre, post, LM head), all layers and groups"),
    "tokens": ("tokens", "tokens generated by the step (decode + one per prompt)"),
    "batch": ("requests", "decode requests run (admitted)"),
    "admitted": ("requests", "requests whose KV fits (FCFS)"),
    "max_batch": ("requests", "requests of this length mix that fit the KV capacity"),
    "weights_GB": ("GB", "weights per device"),
    "mem_util": ("1", "reserved KV bytes / KV capacity"),
    "status": ("bits", "0 = feasible; see dse.point.STATUS_BITS"),
}
