"""Continuous-batching serving simulation of a request trace, vectorized over design points
(DESIGN.md §4.8).

A pure function of ONE design point and one trace (:func:`simulate`), written for
``jax.jit(jax.vmap(...))`` over many points; :mod:`dse.reference.serving` runs the same
scheduler one step at a time in plain Python and the tests hold the two together.

**Scheduler** (each iteration is one step; requests in arrival order, ``S`` =
``policy.max_num_seqs``, ``T`` = ``policy.max_batched_tokens``):

1. Running requests first: every decoding request processes one token; the (at most one)
   request part-way through its prompt continues with ``min(rest, T − decodes)`` tokens
   (chunked prefill) or its whole rest.
2. KV memory: a running request holding ``n`` tokens after the step reserves
   ``units(n)`` (``policy.kv_alloc``: ``static`` ``max_context`` tokens from admission,
   ``dynamic`` chunks of ``kv_chunk_bytes``, ``paged`` blocks of ``block_size`` tokens). While
   the reservations exceed the capacity, the most recently admitted running request is
   preempted: it frees its KV and waits to recompute its prompt and the tokens it has
   generated (vLLM's recompute preemption). A step that preempts admits nothing.
3. Admission, first come first served: the oldest preempted request if there is one (one
   per step), else arrived requests in arrival order, each while fewer than ``S`` run, the
   token budget has room (chunked: its first chunk is what is left of the budget; whole
   prompts: they must fit the budget, except the step's first prompt, which runs whole) and
   its first chunk's KV fits. The first request that cannot be admitted stops admission.
   A request whose whole length (prompt + output) could never fit the KV capacity alone is
   rejected when it reaches the head of the queue (flagged ``requests_rejected``).
4. With nothing to run, time jumps to the next arrival.
5. The step's time comes from :mod:`dse.serving.step` (the system model of
   :mod:`dse.models.system` on this composition). A prompt's last chunk emits its first
   output token (a recomputed prompt emits the next one); a decode step emits one per
   decoding request. A request ends with its ``output_toks``-th token.

**Event skipping.** When a step has no prompt chunk, the batch stays the same until the
next *event*: a request finishes (``min`` remaining tokens), the KV reservations outgrow
the capacity (found by bisection on the number of steps), or an arriving request could be
admitted. Between events every context grows by one token per step. On ``gpu`` the step
time is linear in the step index; on the PIM kinds it is linear in each half's attention
time, which is the sum over its requests of (tiles on the busiest channel) × the tabulated
tile cycles at the grown context (:mod:`dse.serving.step`), so the interval's time, and the
step at which an arrival falls, are exact sums over tables; busy time and energy take the
same share of their change. The closed form is used only where it is exact — the same split
into halves, busiest channel, attention branch and (with interleaving) the same critical
path, from the step's slopes, at both ends of the interval — otherwise the iteration runs
one step. Two things are taken to hold inside an interval when they hold at both ends: the
busiest channel of head-first round-robin (when the heads are not a multiple of the
channels) and, on ``gpu``, the memory-bound branch of decode attention's roofline. One
loop iteration covers a whole interval: the cost grows with events, not with generated
tokens. Intervals are capped at ``max_skip`` steps.

**Outputs per request** (ns): first admission, first token, end; per point: the metrics in
:data:`METRICS`. Inter-token latencies go into a log-spaced histogram
(:data:`ITL_BINS` bins per decade) for their percentiles. ``log_iters`` keeps a record per
iteration (the step log) and ``token_times`` every request's token times; with
``max_skip = 1`` (one step per iteration) they give LLMServingSim's per-request ITL lists
(:func:`dse.serving.run.request_table`).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from dse._pytree import replace_paths
from dse.models import system
from dse.models.kv_memory import kv_bytes_per_token
from dse.point import STATUS_CODE, DesignPoint
from dse.policy import KvAlloc, Partition, SystemKind
from dse.process import AXIS, points_mesh
from dse.serving import step as stepmod
from dse.trace_cache import compile_cached
from dse.workload.dtype import DTYPE_BYTES
from dse.workload.llm import SHAPE_COLUMNS, param_count

__all__ = [
    "ITL_BINS",
    "METRICS",
    "Options",
    "TraceArrays",
    "compile_batch",
    "simulate",
    "simulate_batch",
    "summarize",
]

ITL_LO, ITL_DECADES, ITL_BINS = 1e3, 8, 400  # ITL histogram: 1 µs to 100 s, 400 per decade
_NB = ITL_DECADES * ITL_BINS
ADMIT_WINDOW = 16  # queue rows one admission pass looks at


@dataclasses.dataclass(frozen=True)
class Options:
    """Static settings of a serving run (they fix array shapes and loop structure)."""

    slots: int = 128  # request slots: ≥ every point's max_num_seqs
    max_len: int = 4096  # longest request (prompt + output): the attention table's length
    max_skip: int = 256  # steps one event interval may cover
    max_iters: int = 100_000  # loop iterations before a point is flagged iteration_limit
    log_iters: int = 0  # per-iteration records kept (single-point runs); 0: none
    token_times: int = 0  # > 0: keep every request's token times (up to this many tokens)
    slo_ttft_ns: float = 1e9
    slo_tpot_ns: float = 1e8
    channels: int = 128  # PIM channels per module the arrays hold (≥ every point's)


#: points that step through one loop together. Smaller blocks waste less on points that end
#: early (a block runs until its last point is done) and cost more per point in loop
#: overhead: on 1,024 points x 1,000 requests, 32 gave 82 simulations/s, 16 gave 74, 64
#: gave 78, 256 gave 68 (token-centric; head-first 32.2 at 32, 26.3 at 256).
BLOCK = 32


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True)
class TraceArrays:
    """A trace sorted by arrival (ties in file order): ``rid`` the request id of each row."""

    arrival: jax.Array
    inp: jax.Array
    out: jax.Array
    rid: jax.Array

    def tree_flatten(self):
        return (self.arrival, self.inp, self.out, self.rid), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)

    @classmethod
    def from_trace(cls, trace) -> TraceArrays:
        order = np.argsort(np.asarray(trace.arrival_ns), kind="stable")
        return cls(
            jnp.asarray(np.asarray(trace.arrival_ns)[order], jnp.int64),
            jnp.asarray(np.asarray(trace.input_toks)[order], jnp.int64),
            jnp.asarray(np.asarray(trace.output_toks)[order], jnp.int64),
            jnp.asarray(order, jnp.int64),
        )


def _f(x):
    return jnp.asarray(x, jnp.float64)


def memory(p: DesignPoint) -> dict:
    """Weights per device, KV capacity and KV bytes per token of a point (as
    :mod:`dse.models.system`; on ``gpu`` the capacity is ``mem_util`` of GPU memory less the
    weights)."""
    hw, wl, pol = p.hw, p.workload, p.policy
    s = system.shape_of(wl)
    db = DTYPE_BYTES[wl.dtype]
    kind = pol.system
    tp, pp = jnp.maximum(pol.tp, 1), jnp.maximum(pol.pp, 1)
    weights = _f(param_count(**{k: s[k] for k in SHAPE_COLUMNS})) * db / (tp * pp)
    pim_bytes = _f(hw.pim.channels) * hw.pim.banks * hw.pim.rows * hw.pim.row_bytes
    gpu_bytes = hw.host.mem_GB * 1e9 * pol.mem_util
    on_host = (kind == SystemKind.gpu) | (kind == SystemKind.gpu_pim)
    fits = weights <= jnp.where(on_host, gpu_bytes, pim_bytes)
    cap = jnp.select(
        [kind == SystemKind.gpu, kind == SystemKind.gpu_pim],
        [gpu_bytes - weights, pim_bytes],
        pim_bytes - weights,
    )
    bpt = kv_bytes_per_token(s["layers"], s["heads"], s["d"], db, tp, pp)
    return {
        "weights": weights,
        "fits": fits,
        "cap": jnp.maximum(cap, 0.0).astype(jnp.int64),
        "bpt": jnp.asarray(bpt, jnp.int64),
    }


def units(p: DesignPoint, n, bpt):
    """KV bytes a request holding ``n`` tokens reserves under ``policy.kv_alloc``: one
    float64 division (exact for the integer sizes involved, below 2**53)."""
    pol = p.policy
    static = pol.kv_alloc == KvAlloc.static
    dynamic = pol.kv_alloc == KvAlloc.dynamic
    bpt_f = _f(bpt)
    # ceil(n · a / g) · g · m + s0
    a = jnp.where(dynamic, bpt_f, jnp.where(static, 0.0, 1.0))
    g = jnp.where(
        dynamic, _f(jnp.maximum(pol.kv_chunk_bytes, 1)), _f(jnp.maximum(pol.block_size, 1))
    )
    m = jnp.where(dynamic, 1.0, bpt_f)
    s0 = jnp.where(static, _f(jnp.maximum(p.workload.max_context, 1)) * bpt_f, 0.0)
    return (jnp.ceil(_f(n) * a / g) * g * m + s0).astype(jnp.int64)


def _bin(x):
    b = jnp.floor(jnp.log10(jnp.maximum(x, ITL_LO) / ITL_LO) * ITL_BINS).astype(jnp.int64)
    return jnp.clip(b, 0, _NB - 1)


def simulate(p: DesignPoint, tr: TraceArrays, opt: Options) -> dict:
    """Serve ``tr`` on design point ``p`` (see the module docstring). Returns per-request
    arrays (trace rows in arrival order), the ITL histogram, totals and, with
    ``opt.log_iters``, the iteration log. For many points use :func:`simulate_batch`."""
    state, body, finish = _machine(p, tr, opt)
    return finish(jax.lax.while_loop(lambda st: _active(st, opt), body, state))


def simulate_batch(
    base: DesignPoint, swept: dict, tr: TraceArrays, opt: Options, block: int = BLOCK
) -> dict:
    """:func:`simulate` for every point ``replace_paths(base, swept[i])``, traceable (one
    device): the points of a block of ``block`` step together in one loop that runs until the
    block's last is done (a finished point's iterations change nothing; its per-request table
    is written in place); blocks run one after another, each on a working set that stays in
    cache. :func:`compile_batch` compiles the same for several devices."""
    return _blocks(base, swept, tr, opt, block)


def compile_batch(
    base: DesignPoint,
    swept: dict,
    tr: TraceArrays,
    opt: Options,
    block: int = BLOCK,
    metrics: bool = False,
):
    """Compile :func:`simulate_batch` (with ``metrics``: :func:`summarize` of every point
    instead) for the shapes of ``(base, swept, tr)``; returns ``run(base, swept, tr)``. With
    several local devices (on the CPU, one per core: :mod:`dse.process`) and a point count they
    divide, each device runs its own share of the points, side by side."""
    fn = functools.partial(_run, opt=opt, block=block, metrics=metrics)
    key = ("serving", opt, block, metrics)
    n = next(iter(swept.values())).shape[0] if swept else 1
    nd = jax.local_device_count()
    if not swept or nd < 2 or n % nd:
        return compile_cached(fn, (base, swept, tr), key)
    # each device steps its own share of the points through its own loop (shard_map): the
    # partitioner would otherwise gather every point's state into one loop
    mesh = points_mesh(nd)
    local = jax.shard_map(
        fn, mesh=mesh, in_specs=(P(), P(AXIS), P()), out_specs=P(AXIS), check_vma=False
    )
    rep, pts = NamedSharding(mesh, P()), NamedSharding(mesh, P(AXIS))
    return compile_cached(local, (base, swept, tr), key, (rep, pts, rep), pts)


def _run(base, swept, tr, opt, block, metrics):
    r = _blocks(base, swept, tr, opt, block)
    if not metrics:
        return r
    return jax.vmap(lambda s, x: summarize(replace_paths(base, s), tr, x, opt))(swept, r)


def _blocks(base: DesignPoint, swept: dict, tr: TraceArrays, opt: Options, block: int) -> dict:
    """Blocks of ``block`` points, one after another, each stepping until its own last point
    is done. The points are first ordered by KV capacity in tokens (a stable sort): a point
    whose cache is tight preempts and re-admits, and runs two to three times the events of
    one with room, so the tight points share blocks instead of holding back every block."""
    n = next(iter(swept.values())).shape[0] if swept else 1
    if not swept or n <= block:
        return _batch(base, swept, tr, opt)
    m = -(-n // block) * block  # padded with copies of the last point, dropped after

    def pad(v):
        return jnp.concatenate([v, jnp.repeat(v[-1:], m - n, axis=0)]) if m > n else v

    swept = jax.tree.map(pad, swept)

    def tokens(s):
        mem = memory(replace_paths(base, s))
        return mem["cap"] // jnp.maximum(mem["bpt"], 1)

    order = jnp.argsort(jax.vmap(tokens)(swept), stable=True)
    ordered = jax.tree.map(lambda v: v[order], swept)
    blocks = jax.tree.map(lambda v: v.reshape(m // block, block, *v.shape[1:]), ordered)
    out = jax.lax.map(lambda s: _batch(base, s, tr, opt), blocks)
    back = jnp.zeros_like(order).at[order].set(jnp.arange(m))
    return jax.tree.map(lambda v: v.reshape(m, *v.shape[2:])[back][:n], out)


def _batch(base: DesignPoint, swept: dict, tr: TraceArrays, opt: Options) -> dict:
    def machine(s):
        return _machine(replace_paths(base, s), tr, opt)

    state = jax.vmap(lambda s: machine(s)[0])(swept)
    state = jax.lax.while_loop(
        lambda st: jax.vmap(lambda x: _active(x, opt))(st).any(),
        lambda st: jax.vmap(lambda s, x: machine(s)[1](x))(swept, st),
        state,
    )
    return jax.vmap(lambda s, x: machine(s)[2](x))(swept, state)


def _active(st: dict, opt: Options):
    return (st["ended"] < st["rej"].shape[0]) & (st["it"] < opt.max_iters)


def _first_k(t0, t1, K, gap, hi):
    """Smallest ``k`` in ``[1, hi]`` with ``Σ_{j<k} step(j) ≥ gap`` were the step linear in
    ``j`` from ``t0`` (``j = 0``) to ``t1`` (``j = K − 1``)."""
    dx = _f(jnp.maximum(K - 1, 1))
    sg = jnp.where(K > 1, (t1 - t0) / dx, 0.0)
    qa, qb = sg / 2, t0 - sg / 2
    root = (-qb + jnp.sqrt(jnp.maximum(qb * qb + 4 * qa * gap, 0.0))) / jnp.maximum(2 * qa, 1e-300)
    kq = jnp.where(qa > 1e-9 * t0, root, gap / jnp.maximum(t0, 1e-300))
    return jnp.clip(jnp.ceil(jnp.nan_to_num(kq, posinf=1e18)), 1, hi).astype(jnp.int64)


def _machine(p: DesignPoint, tr: TraceArrays, opt: Options):
    """(initial state, one loop iteration, final results) of one point's run."""
    pol = p.policy
    B, N = opt.slots, tr.arrival.shape[0]
    S = jnp.clip(pol.max_num_seqs, 1, B)
    T = jnp.maximum(pol.max_batched_tokens, 1)
    chunked = pol.chunked_prefill > 0
    mem = memory(p)
    cap, bpt = mem["cap"], mem["bpt"]
    is_static = pol.kv_alloc == KvAlloc.static
    total_len = tr.inp + tr.out
    rejected_req = (units(p, total_len, bpt) > cap) | (
        is_static & (total_len > p.workload.max_context)
    )

    def u(n):
        return units(p, n, bpt)

    zb = jnp.zeros(B, jnp.int64)
    L_iter = max(opt.log_iters, 1)
    state = {
        "t": jnp.asarray(0.0),
        "nxt": jnp.asarray(0, jnp.int64),
        "seqc": jnp.asarray(0, jnp.int64),
        "it": jnp.asarray(0, jnp.int64),
        "steps": jnp.asarray(0, jnp.int64),
        "ended": jnp.asarray(0, jnp.int64),
        # slots
        "row": zb - 1,  # trace row held (-1: empty)
        "st": zb,  # 0 empty, 1 running, 2 preempted
        "seq": zb,
        "done": zb,  # prompt tokens processed
        "plen": zb,  # prompt tokens to process (input, or input + generated after preemption)
        "kv": zb,
        "gen": zb,
        "out": zb,
        "emit": jnp.zeros(B),  # time of the slot's last token
        # per request (trace row)
        "s_admit": jnp.zeros(B),  # the slot's request: first admission, first token
        "s_first": jnp.zeros(B),
        "s_pre": zb,  # its preemptions
        # per request (trace row): admission, first token, end (ns), preemptions; written
        # once, when the request ends
        "res": jnp.full((N, 4), -1.0),
        # totals
        "hist": jnp.zeros(_NB),
        "acc": jnp.zeros(len(stepmod.STEP_KEYS)),  # Σ over steps of STEP_KEYS
        "gen_tok": jnp.asarray(0, jnp.int64),
        "peak_kv": jnp.asarray(0, jnp.int64),
        "n_preempt": jnp.asarray(0, jnp.int64),
        # iteration log
        "log_t": jnp.zeros(L_iter),  # start of the iteration
        "log_dt": jnp.zeros(L_iter),  # its duration
        "log_k": jnp.zeros(L_iter, jnp.int64),  # steps
        "log_batch": jnp.zeros(L_iter, jnp.int64),  # running requests
        "log_pre": jnp.zeros(L_iter, jnp.int64),  # prompt tokens processed
        "log_dec": jnp.zeros(L_iter, jnp.int64),  # tokens decoded
        "log_kv": jnp.zeros(L_iter, jnp.int64),  # KV bytes reserved
        "log_busy": jnp.zeros((L_iter, 3)),  # host, PIM, link busy ns
        "tok_t": jnp.zeros((N, max(opt.token_times, 1))),  # token times (opt.token_times)
    }

    def init():
        return {**state, "c": stepmod.constants(p, opt.max_len, opt.channels), "rej": rejected_req}

    def body(st):
        c = st["c"]
        active = _active(st, opt)

        def run_step(L, dec, new, past, last, chunk):
            return stepmod.evaluate(p, c, L, dec, new, past, last, chunk, opt.channels)

        t = st["t"]
        running = st["st"] == 1
        isdec = running & (st["done"] >= st["plen"])
        partial = running & (st["done"] < st["plen"])
        n_dec = isdec.sum()
        left0 = T - n_dec
        rest = st["plen"] - st["done"]
        want_p = jnp.where(chunked, jnp.minimum(rest, jnp.maximum(left0, 0)), rest)
        want = jnp.where(isdec, 1, jnp.where(partial, want_p, 0))
        left = left0 - jnp.where(partial, want_p, 0).sum()

        # --- 2. memory: preempt the most recently admitted until the reservations fit ---------
        need_r = jnp.where(running, u(st["kv"] + want), 0)

        def p_cond(x):
            run, _ = x
            return (jnp.where(run, need_r, 0).sum() > cap) & run.any()

        def p_body(x):
            run, pre = x
            v = jnp.argmax(jnp.where(run, st["seq"], -1))
            return run.at[v].set(False), pre.at[v].set(True)

        run_after, pre_now = jax.lax.while_loop(p_cond, p_body, (running, jnp.zeros(B, bool)))
        any_pre = pre_now.any()
        need = jnp.where(run_after, need_r, 0).sum()
        n_run = run_after.sum()
        st_arr = jnp.where(pre_now, 2, st["st"])
        plen = jnp.where(pre_now, tr.inp[jnp.clip(st["row"], 0, N - 1)] + st["gen"], st["plen"])
        done = jnp.where(pre_now, 0, st["done"])
        kv = jnp.where(pre_now, 0, st["kv"])
        want = jnp.where(run_after, want, 0)
        isdec = isdec & run_after
        partial = partial & run_after
        s_pre = st["s_pre"] + pre_now

        # --- 3. admission ---------------------------------------------------------------------
        waiting_pre = st_arr == 2
        has_pre = waiting_pre.any()
        first_prefill = ~partial.any()  # no chunk scheduled yet this step

        def budget(before, plen_i):
            ok_chunk = before < left
            ok_whole = (before + plen_i <= left) | ((before == 0) & first_prefill & (left > 0))
            w = jnp.where(chunked, jnp.clip(left - before, 0, plen_i), plen_i)
            return jnp.where(chunked, ok_chunk, ok_whole), w

        # (a) the oldest preempted request
        vp = jnp.argmin(jnp.where(waiting_pre, st["row"], N + 1))
        ok_b, w_p = budget(jnp.asarray(0, jnp.int64), plen[vp])
        admit_pre = has_pre & ~any_pre & (n_run < S) & (left > 0) & ok_b & (need + u(w_p) <= cap)
        # (b) arrived requests from the head of the queue, ADMIT_WINDOW rows at a time: a
        # further window only when every row of the last one went through
        empty = st_arr == 0
        rank_e = jnp.cumsum(empty) - 1  # k-th admitted request → k-th empty slot
        W = min(B, ADMIT_WINDOW)

        def window(a):
            rows = a["nxt"] + jnp.arange(W)
            inb = rows < N
            rw = jnp.minimum(rows, N - 1)
            arrived = inb & (tr.arrival[rw] <= t)
            rej = arrived & st["rej"][rw]
            cand = arrived & ~rej
            plen_w = jnp.where(cand, tr.inp[rw], 0)
            ok_budget, w_w = budget(a["tok"] + jnp.cumsum(plen_w) - plen_w, plen_w)
            cnt_before = a["cnt"] + jnp.cumsum(cand) - cand
            mem_w = jnp.where(cand, u(w_w), 0)
            fits = need + a["mem"] + jnp.cumsum(mem_w) <= cap
            ok = cand & ok_budget & (n_run + cnt_before < S) & fits & (left > 0)
            fail = ~inb | ~arrived | (cand & ~ok)
            clear = (jnp.cumsum(fail) == 0) & a["more"]
            adm_w = clear & ok
            n_adm = adm_w.sum()
            rank_a = jnp.cumsum(adm_w) - 1
            by_rank = (
                jnp.zeros(W, jnp.int64)
                .at[jnp.where(adm_w, rank_a, W)]
                .set(jnp.arange(W), mode="drop")
            )
            k = rank_e - a["cnt"]
            take = empty & (k >= 0) & (k < n_adm)
            widx = by_rank[jnp.clip(k, 0, W - 1)]
            new_row = rw[widx]
            return {
                "nxt": a["nxt"] + clear.sum(),
                "tok": a["tok"] + jnp.where(adm_w, plen_w, 0).sum(),
                "cnt": a["cnt"] + n_adm,
                "mem": a["mem"] + jnp.where(adm_w, mem_w, 0).sum(),
                "n_rej": a["n_rej"] + (clear & rej).sum(),
                "more": a["more"] & clear.all(),
                "row": jnp.where(take, new_row, a["row"]),
                "take": a["take"] | take,
                "want": jnp.where(take, w_w[widx], a["want"]),
            }

        zero = jnp.asarray(0, jnp.int64)
        adm = window(
            {
                "nxt": st["nxt"],
                "tok": zero,
                "cnt": zero,
                "mem": zero,
                "n_rej": zero,
                "more": ~has_pre & ~any_pre,
                "row": st["row"],
                "take": jnp.zeros(B, bool),
                "want": want,
            }
        )
        adm = jax.lax.while_loop(lambda a: a["more"] & (a["nxt"] < N), window, adm)
        take, new_row, n_adm = adm["take"], adm["row"], adm["cnt"]

        seq = st["seq"]
        seqc = st["seqc"]
        row = new_row
        st_new = jnp.where(take, 1, st_arr)
        seq = jnp.where(take, seqc + rank_e, seq)
        seqc = seqc + n_adm
        plen = jnp.where(take, tr.inp[new_row], plen)
        done = jnp.where(take, 0, done)
        kv = jnp.where(take, 0, kv)
        gen = jnp.where(take, 0, st["gen"])
        out = jnp.where(take, tr.out[new_row], st["out"])
        want = adm["want"]
        emit = st["emit"]
        # the preempted request's re-admission
        sel_p = (jnp.arange(B) == vp) & admit_pre
        st_new = jnp.where(sel_p, 1, st_new)
        seq = jnp.where(sel_p, seqc, seq)
        seqc = seqc + admit_pre
        want = jnp.where(sel_p, w_p, want)
        s_admit = jnp.where(take, t, st["s_admit"])
        s_pre = jnp.where(take, 0, s_pre)
        nxt = adm["nxt"]

        running = st_new == 1
        chunk = running & (done < plen) & (want > 0)
        isdec = running & (done >= plen)
        any_run = running.any()

        # --- 5. the step(s) -------------------------------------------------------------------
        n_dec = isdec.sum()
        k_done = jnp.min(jnp.where(isdec, out - gen, jnp.iinfo(jnp.int64).max))
        pure = ~chunk.any() & any_run
        need_now = need + adm["mem"] + jnp.where(admit_pre, u(w_p), 0)

        def fits_after(k):  # reservations before step k (1-based) of the interval
            return jnp.where(running, u(kv + k), 0).sum() <= cap

        # a step that preempts is followed by one that may re-admit: no skipping past it
        k_hi = jnp.where(pure & ~any_pre, jnp.minimum(k_done, opt.max_skip), 1)

        def bis(x):
            lo, hi = x
            mid = (lo + hi + 1) // 2
            good = fits_after(mid)
            return jnp.where(good, mid, lo), jnp.where(good, hi, mid - 1)

        k_mem, _ = jax.lax.while_loop(
            lambda x: x[0] < x[1],
            bis,
            (jnp.asarray(1, jnp.int64), jnp.where(is_static | fits_after(k_hi), 1, k_hi)),
        )
        k_mem = jnp.where(is_static | fits_after(k_hi), k_hi, k_mem)
        K = jnp.maximum(jnp.minimum(k_hi, k_mem), 1)

        L0 = kv + 1
        new = jnp.where(chunk, want, 0)
        lastc = chunk & (done + want >= plen)
        e0 = run_step(L0, isdec, new, done, lastc, chunk)
        e1 = run_step(L0 + K - 1, isdec, new, done, lastc, chunk)
        a0 = jnp.stack([e0[k] for k in stepmod.STEP_KEYS])
        a1 = jnp.stack([e1[k] for k in stepmod.STEP_KEYS])
        t0, t1 = a0[0], a1[0]

        # an arrival that could be admitted ends the interval at the first step starting after it
        head_arr = tr.arrival[jnp.minimum(nxt, N - 1)]
        watch = pure & ~has_pre & (nxt < N) & (head_arr > t) & (running.sum() < S)
        gap = _f(head_arr) - t
        n_tab = c["cum"].shape[0] - 2
        Ldec = jnp.where(isdec, L0, 0)

        def linear():  # gpu: the step is linear in j itself
            dx = _f(jnp.maximum(K - 1, 1))

            def span(k):  # Σ_{j<k} step(j)
                return k * t0 + (t1 - t0) * jnp.where(K > 1, _f(k * (k - 1)) / 2 / dx, 0.0)

            # smallest k ≥ 1 with k·t0 + σ·k(k−1)/2 ≥ gap, then exact by ±1
            kk = _first_k(t0, t1, K, gap, K)
            for _ in range(2):
                kk = jnp.where((kk > 1) & (span(kk - 1) >= gap), kk - 1, kk)
                kk = jnp.where((kk < K) & (span(kk) < gap), kk + 1, kk)
            k = jnp.where(watch, kk, K)
            last = t0 + jnp.where(K > 1, (t1 - t0) * _f(jnp.maximum(k - 1, 0)) / dx, 0.0)
            return k, span(k), last

        def tabled():
            # PIM kinds: the step is linear in each half's attention time, which is the
            # tCK-scaled sum over its requests of (tiles on the busiest channel) × tau(L + j),
            # exact from the tables while the split, the busiest channel and the critical
            # path stay what they are at both ends; otherwise the interval is one step
            same = (
                jnp.all(jnp.where(isdec, e0["half"] == e1["half"], True))
                & jnp.all(e0["star"] == e1["star"])
                & jnp.all(e0["on_gmax"] == e1["on_gmax"])
                & jnp.all(jnp.abs(e0["hubtail"] - e1["hubtail"]) <= 1e-9 * jnp.abs(e1["hubtail"]))
            )
            d_att = e1["att"] - e0["att"]
            s_lin = jnp.where(d_att[0] > 0, (t1 - t0) / jnp.maximum(d_att[0], 1e-300), 0.0)
            s_no = jnp.stack([s_lin, 0.0])
            sb = pol.sbi > 0
            slope = jnp.where(sb, e0["slope"], s_no)
            agree = jnp.where(
                sb,
                jnp.all(jnp.abs(e0["slope"] - e1["slope"]) <= 1e-9 * (1 + jnp.abs(e0["slope"])))
                & (jnp.abs(t0 + stepmod._mv(slope, d_att) - t1) <= 1e-9 * t1),
                (d_att[0] > 0) | (jnp.abs(t1 - t0) <= 1e-12 * t1),
            )
            exact = same & agree
            KK = jnp.where(exact, K, 1)
            f = jnp.where(
                isdec,
                jnp.where(e0["half"] == 1, slope[1], slope[0])
                * e0["weight"]
                * jnp.where(e0["half"] == 1, e0["on_gmax"][1], e0["on_gmax"][0])
                * p.hw.pim.tCK_ns,
                0.0,
            )
            tau0 = c["tau"][jnp.clip(Ldec, 0, n_tab)]
            cum0 = c["cum"][jnp.clip(Ldec, 0, n_tab + 1)]

            def span(k):  # Σ_{j<k} step(j)
                inc = c["cum"][jnp.clip(Ldec + k, 0, n_tab + 1)] - cum0 - k * tau0
                return k * t0 + stepmod._mv(f, _f(inc))

            def arr_body(x):  # smallest k in [lo, hi] with span(k) ≥ gap
                lo, hi = x
                mid = (lo + hi) // 2
                good = span(mid) >= gap
                return jnp.where(good, lo, mid + 1), jnp.where(good, mid, hi)

            k_arr, _ = jax.lax.while_loop(
                lambda x: x[0] < x[1],
                arr_body,
                (jnp.asarray(1, jnp.int64), jnp.where(watch, KK, 1)),  # KK when none reaches
            )
            k = jnp.where(watch, jnp.minimum(KK, k_arr), KK)
            km1 = jnp.maximum(k - 1, 0)
            last = t0 + stepmod._mv(f, _f(c["tau"][jnp.clip(Ldec + km1, 0, n_tab)] - tau0))
            return k, span(k), last

        k, dt, last_t = jax.lax.cond(pol.system == SystemKind.gpu, linear, tabled)
        k = jnp.where(any_run, k, 0)
        dt = jnp.where(any_run, dt, 0.0)
        # busy time and energy: the same share of their change as the step time's
        frac = jnp.where(
            jnp.abs(t1 - t0) > 0, (dt - k * t0) / jnp.where(t1 != t0, t1 - t0, 1.0), 0.0
        )
        acc_add = k * a0 + (a1 - a0) * frac
        acc_add = acc_add.at[0].set(dt)

        # idle: jump to the next arrival
        nxt_arr = _f(tr.arrival[jnp.minimum(nxt, N - 1)])
        t_idle = jnp.where(~any_run & ~has_pre & (nxt < N), jnp.maximum(nxt_arr, t), t)
        t_end = jnp.where(any_run, t + dt, t_idle)

        # --- 6. apply ---------------------------------------------------------------------------
        gen_dec = jnp.where(isdec, k, 0)
        fin_chunk = chunk & (done + want >= plen)
        done = jnp.where(chunk, done + want, done)
        kv = jnp.where(isdec, kv + k, jnp.where(chunk, kv + want, kv))
        first_tok = fin_chunk & (gen == 0)
        re_tok = fin_chunk & (gen > 0)
        gen = gen + gen_dec + fin_chunk
        end_now = running & (gen >= out) & (gen_dec + fin_chunk > 0)
        written = end_now & active
        s_first = jnp.where(first_tok, t_end, st["s_first"])
        res = (
            st["res"]
            .at[jnp.where(written, row, N)]
            .set(jnp.stack([s_admit, s_first, jnp.full(B, t_end), _f(s_pre)], axis=1), mode="drop")
        )

        # ITL histogram: decode tokens at the step times; recomputed prompts' gap since the last
        hist = st["hist"]
        w_dec = _f(n_dec * k) / 2 * active
        hist = hist.at[_bin(t0)].add(jnp.where(any_run, w_dec, 0.0))
        hist = hist.at[_bin(last_t)].add(jnp.where(any_run, w_dec, 0.0))
        hist = hist.at[_bin(t_end - emit)].add(_f(re_tok & active))
        emit = jnp.where(isdec | fin_chunk, t_end, emit)

        st_fin = jnp.where(end_now, 0, st_new)
        row_fin = jnp.where(end_now, -1, row)

        new_state = dict(st)
        new_state.update(
            t=t_end,
            nxt=nxt,
            seqc=seqc,
            it=st["it"] + 1,
            steps=st["steps"] + k,
            ended=st["ended"] + end_now.sum() + adm["n_rej"],
            row=row_fin,
            st=st_fin,
            seq=seq,
            done=done,
            plen=plen,
            kv=kv,
            gen=gen,
            out=out,
            emit=emit,
            s_admit=s_admit,
            s_first=s_first,
            s_pre=s_pre,
            res=res,
            hist=hist,
            acc=st["acc"] + jnp.where(any_run, acc_add, 0.0),
            gen_tok=st["gen_tok"] + (gen_dec + fin_chunk).sum(),
            peak_kv=jnp.maximum(
                st["peak_kv"], jnp.maximum(need_now, jnp.where(running, u(kv), 0).sum())
            ),
            n_preempt=st["n_preempt"] + pre_now.sum(),
        )
        # a finished point's iteration changes no slot (nothing runs or waits); its scalars
        # must not move either
        new_state = {
            k: jnp.where(active, v, st[k]) if k != "c" and v.ndim == 0 else v
            for k, v in new_state.items()
        }
        if opt.log_iters:
            i = jnp.where(active, jnp.minimum(st["it"], opt.log_iters - 1), opt.log_iters)
            new_state.update(
                log_t=st["log_t"].at[i].set(t),
                log_dt=st["log_dt"].at[i].set(dt),
                log_k=st["log_k"].at[i].set(k),
                log_batch=st["log_batch"].at[i].set(running.sum()),
                log_pre=st["log_pre"].at[i].set(jnp.where(chunk, want, 0).sum()),
                log_dec=st["log_dec"].at[i].set(n_dec * k),
                log_kv=st["log_kv"].at[i].set(need_now),
                log_busy=st["log_busy"].at[i].set(acc_add[1:4]),
            )
        if opt.token_times:  # one step per iteration (max_skip = 1): one token per emitter
            idx = jnp.where(active & (isdec | fin_chunk), row, N)
            new_state["tok_t"] = (
                st["tok_t"]
                .at[idx, jnp.clip(gen - 1, 0, opt.token_times - 1)]
                .set(t_end, mode="drop")
            )
        return new_state

    def finish(out):
        return _results(p, tr, opt, out, mem, cap, B, total_len)

    return init(), body, finish


def _results(p, tr, opt, out, mem, cap, B, total_len):
    pol = p.policy
    out = dict(out)
    alive = _active(out, opt)
    out.pop("c")
    res = out.pop("res")
    out["admit_ns"], out["first_ns"], out["end_ns"] = res[:, 0], res[:, 1], res[:, 2]
    out["preempts"] = res[:, 3].astype(jnp.int64)
    out["rejected"] = out.pop("rej")  # every request reaches the head of the queue
    bad = (
        system.bad_parameters(p, opt.channels)  # the system model's own rules
        | (pol.micro_batches != 1)
        | ((pol.partition != Partition.hfp_rr) & (pol.partition != Partition.tcp))
        | (pol.max_num_seqs > B)
        | (pol.max_batched_tokens < pol.max_num_seqs)
        | (p.hw.pim.channels > opt.channels)
        | (tr.inp.shape[0] > 0) & (jnp.max(total_len) > opt.max_len)
    )
    status = (
        jnp.where(bad, STATUS_CODE["bad_parameter"], 0)
        | jnp.where(~mem["fits"] | (cap <= 0), STATUS_CODE["capacity_exceeded"], 0)
        | jnp.where(out["rejected"].any(), STATUS_CODE["requests_rejected"], 0)
        | jnp.where(alive, STATUS_CODE["iteration_limit"], 0)
    ).astype(jnp.int64)
    out["status"] = status
    out["weights"] = mem["weights"]
    out["cap"] = cap
    return out


def summarize(p: DesignPoint, tr: TraceArrays, r: dict, opt: Options) -> dict:
    """Per-point metrics (:data:`METRICS`) from :func:`simulate`'s result."""
    ok = (r["end_ns"] >= 0) & ~r["rejected"]
    arr = _f(tr.arrival)
    out = _f(tr.out)
    ttft = r["first_ns"] - arr
    lat = r["end_ns"] - arr
    tpot = jnp.where(out > 1, (r["end_ns"] - r["first_ns"]) / jnp.maximum(out - 1, 1), 0.0)
    queue = r["admit_ns"] - arr
    n_ok = ok.sum()
    start = jnp.min(jnp.where(ok, arr, jnp.inf))
    end = jnp.max(jnp.where(ok, r["end_ns"], -jnp.inf))
    span = jnp.where(n_ok > 0, end - start, 0.0)
    safe = jnp.maximum(span, 1e-9)

    def pct(x, q):
        return jnp.where(n_ok > 0, jnp.nanpercentile(jnp.where(ok, x, jnp.nan), q), 0.0)

    h = r["hist"]
    cum = jnp.cumsum(h)
    edges = ITL_LO * 10.0 ** (jnp.arange(_NB + 1) / ITL_BINS)

    def itl_pct(q):
        target = cum[-1] * q / 100
        i = jnp.clip(jnp.searchsorted(cum, target), 0, _NB - 1)
        below = jnp.where(i > 0, cum[jnp.maximum(i - 1, 0)], 0.0)
        f = jnp.where(h[i] > 0, (target - below) / jnp.maximum(h[i], 1e-300), 0.5)
        lo, hi = edges[i], edges[i + 1]
        return jnp.where(cum[-1] > 0, lo * (hi / lo) ** f, 0.0)

    acc = dict(zip(stepmod.STEP_KEYS, r["acc"], strict=True))
    e_step = sum(acc[k] for k in system.ENERGY_PARTS)
    host, pol = p.hw.host, p.policy
    n_dev = _f(jnp.maximum(pol.tp, 1) * jnp.maximum(pol.pp, 1))
    has_pim = pol.system != SystemKind.gpu
    idle_W = n_dev * (host.idle_W + host.base_W) + jnp.where(
        has_pim, n_dev * p.hw.pim.channels * p.hw.energy.bg_mW * 1e-3, 0.0
    )
    # idle gaps inside the span (before the first arrival does not count)
    idle = jnp.maximum(span - acc["step_ns"], 0.0)
    energy = e_step + idle_W * idle * 1e-9
    slo = ok & (ttft <= opt.slo_ttft_ns) & (tpot <= opt.slo_tpot_ns)
    gen_out = jnp.where(ok, out, 0).sum()
    m = {
        "requests": n_ok,
        "rejected": r["rejected"].sum(),
        "makespan_s": span * 1e-9,
        "prompt_tok_per_s": jnp.where(ok, _f(tr.inp), 0).sum() / safe * 1e9,
        "gen_tok_per_s": gen_out / safe * 1e9,
        "req_per_s": n_ok / safe * 1e9,
        "host_busy": acc["host_ns"] / safe,
        "pim_busy": acc["pim_ns"] / safe,
        "link_busy": acc["link_ns"] / safe,
        "peak_kv_GB": _f(r["peak_kv"]) * 1e-9,
        "weights_GB": r["weights"] * 1e-9,
        "energy_J": energy,
        "J_per_token": energy / jnp.maximum(gen_out, 1.0),
        "slo_attainment": slo.sum() / jnp.maximum(n_ok, 1),
        "preemptions": r["n_preempt"],
        "steps": r["steps"],
        "iterations": r["it"],
        "status": r["status"],
    }
    for name, x in (("ttft", ttft), ("tpot", tpot), ("latency", lat), ("queue", queue)):
        for q in (50, 90, 99):
            m[f"{name}_p{q}_ms"] = pct(x, q) * 1e-6
        m[f"{name}_mean_ms"] = (
            jnp.where(n_ok > 0, jnp.where(ok, x, 0.0).sum() / jnp.maximum(n_ok, 1), 0.0) * 1e-6
        )
    for q in (50, 90, 99):
        m[f"itl_p{q}_ms"] = itl_pct(q) * 1e-6
    return m


METRICS = {
    "requests": ("requests", "requests served to the end"),
    "rejected": ("requests", "requests that can never fit the KV capacity"),
    "makespan_s": ("s", "first arrival to last completion"),
    "prompt_tok_per_s": ("tokens/s", "prompt tokens / makespan"),
    "gen_tok_per_s": ("tokens/s", "generated tokens / makespan"),
    "req_per_s": ("requests/s", "requests served / makespan"),
    "host_busy": ("1", "GPU/NPU busy time / makespan (one device)"),
    "pim_busy": ("1", "PIM busy time / makespan"),
    "link_busy": ("1", "host link busy time / makespan"),
    "peak_kv_GB": ("GB", "largest KV reservation of a step"),
    "weights_GB": ("GB", "weights per device"),
    "energy_J": ("J", "energy of the run: steps, plus idle and base power between them"),
    "J_per_token": ("J/token", "energy_J / generated tokens"),
    "slo_attainment": ("1", "requests meeting both the TTFT and the TPOT target"),
    "preemptions": ("count", "recompute preemptions"),
    "steps": ("steps", "model steps run"),
    "iterations": ("count", "simulation loop iterations (events)"),
    "status": ("bits", "0 = feasible; see dse.point.STATUS_BITS"),
}
for _n, _what in (
    ("ttft", "time to first token"),
    ("tpot", "time per output token after the first"),
    ("latency", "arrival to last token"),
    ("queue", "arrival to first admission"),
):
    for _q in (50, 90, 99):
        METRICS[f"{_n}_p{_q}_ms"] = ("ms", f"{_what}, {_q}th percentile over requests")
    METRICS[f"{_n}_mean_ms"] = ("ms", f"{_what}, mean over requests")
for _q in (50, 90, 99):
    METRICS[f"itl_p{_q}_ms"] = ("ms", f"inter-token latency, {_q}th percentile over tokens")
