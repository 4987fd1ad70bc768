"""One serving step's time, busy time and energy from the batch's composition (DESIGN.md §4.7).

The same step as :mod:`dse.models.system` (its :func:`~dse.models.system.op_durations`, the
max-plus recurrence :func:`~dse.models.system.stage_ns`, the pipeline and the period
:func:`~dse.models.system.accounting`), computed from per-slot state in O(slots) so that a
serving run can evaluate thousands of steps for thousands of design points:

* the PIM attention tile cost of a request, a function of its context alone, is tabulated
  once per design point (:func:`constants`) up to the trace's longest request, so a step
  reads one value per request instead of interpolating the kernel grid;
* one micro-batch (``policy.micro_batches = 1``): the groups are the two halves of
  sub-batch interleaving (the second empty without it), split as in
  :func:`dse.models.system.split` (longest context first onto the half with less context);
* the channel loads of head-first round-robin partitioning come from a circular difference
  array over the channels instead of a (requests × channels) matrix. Greedy head placement
  is not supported in serving runs (the simulator flags such points ``bad_parameter``).

The tests hold :func:`evaluate` to :func:`dse.models.system.durations` on random batches.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dse.models import system
from dse.models.pim_attention import interp_cycles
from dse.point import DesignPoint
from dse.policy import Partition
from dse.workload.dtype import DTYPE_BYTES

__all__ = ["C_SERVE", "STEP_KEYS", "constants", "evaluate"]

#: PIM channels per module a serving run's arrays hold by default (LLMServingSim puts one on
#: each DIMM: 64 on its 512 GB example node); a run with more raises it (``Options.channels``)
C_SERVE = 128

#: what :func:`evaluate` returns: the step (ns), one device's busy time (ns) and energy (J)
STEP_KEYS = ("step_ns", "host_ns", "pim_ns", "link_ns", *system.ENERGY_PARTS)


def _f(x):
    return jnp.asarray(x, jnp.float64)


def _mv(m, v):
    """``m @ v`` as a product and a sum: under ``vmap`` a batched dot of such small shapes is
    many times slower on the CPU than the fused elementwise form."""
    return (m * jnp.broadcast_to(v, m.shape)).sum(axis=-1)


def constants(p: DesignPoint, max_len: int, c_max: int = C_SERVE) -> dict:
    """What a point's steps share: the kernel grid and per-token GEMV times
    (:func:`dse.models.system.kernel_times`) and ``tau[L]``, the attention cycles one KV
    head of a request with ``L`` tokens of context costs its busiest channel, for
    ``L ≤ max_len`` (token-centric: ``ceil(L / channels)`` tokens per channel; head-first:
    the whole context on one channel), and ``cum[L] = Σ_{x<L} tau[x]``. ``c_max``: channels
    the arrays hold."""
    pim, pol = p.hw.pim, p.policy
    db = DTYPE_BYTES[p.workload.dtype]
    kern = system.kernel_times(p)
    banks = jnp.maximum(pim.banks, 1)
    elems = jnp.maximum(jnp.maximum(pim.col_bytes, db) // db, 1)
    channels = jnp.clip(pim.channels, 1, c_max)
    n = jnp.arange(max_len + 1, dtype=jnp.int64)
    per = jnp.where(pol.partition == Partition.tcp, -(-n // channels), n)
    tau = interp_cycles(per, kern[0], banks, elems)
    return {
        "kern": kern,
        "tau": tau,
        "cum": jnp.concatenate([jnp.zeros(1, tau.dtype), jnp.cumsum(tau)]),
    }


def _halves(L, dec, sbi):
    """Half of each decode slot: with interleaving, longest context first (slot order on
    ties) onto the half whose context sum is smaller (the first on ties)."""
    b = L.shape[0]

    def lpt():
        order = jnp.lexsort((jnp.arange(b), -L, ~dec))

        def body(load, x):
            h = (load[1] < load[0]).astype(jnp.int64)
            return load + jnp.stack([(1 - h) * x, h * x]), h

        _, hs = jax.lax.scan(body, jnp.zeros(2, jnp.int64), jnp.where(dec, L, 0)[order])
        return jnp.zeros(b, jnp.int64).at[order].set(hs)

    return jnp.where(dec, jax.lax.cond(sbi > 0, lpt, lambda: jnp.zeros(b, jnp.int64)), 0)


def _round_robin(tau, half, dec, heads, channels, c_max: int = C_SERVE):
    """Head-first round-robin: the request at position ``q`` of its half owns tiles
    ``q·heads + h`` on channel ``tile mod channels``. Returns each half's busiest channel
    (lowest index on ties) and its load, and how many tiles each request has on its half's
    busiest channel."""
    h2 = jnp.stack([dec & (half == 0), dec & (half == 1)])  # (2, B)
    pos = jnp.cumsum(h2, axis=1) - 1
    base = (heads // channels) * jnp.where(h2, tau[None, :], 0).sum(axis=1)  # (2,)
    w = heads % channels
    q = _f(pos * heads)  # (q mod channels) in float64: exact here, and no integer division
    start = (q - jnp.floor(q / channels) * channels).astype(jnp.int64)
    width = 2 * c_max + 1
    idx = jnp.arange(2)[:, None] * width
    val = jnp.where(h2, tau[None, :], 0)
    diff = jnp.zeros(2 * width, jnp.int64)
    diff = diff.at[(idx + start).ravel()].add(val.ravel())
    diff = diff.at[(idx + start + w).ravel()].add(-val.ravel())
    run = jnp.cumsum(diff.reshape(2, width), axis=1)  # on a doubled circle
    c = jnp.arange(c_max)
    wrap = (c + channels < width)[None, :]
    load = run[:, c] + run[:, jnp.minimum(c + channels, width - 1)] * wrap
    load = jnp.where(c[None, :] < channels, load, -1)
    star = jnp.argmax(load, axis=1)  # (2,)
    off = _f(star[:, None] - start)  # the busiest channel's offset from the request's first
    off = off - jnp.floor(off / channels) * channels
    tiles = heads // channels + (off < w)  # (2, B)
    mine = jnp.where(half == 1, tiles[1], tiles[0])
    return base + jnp.max(load, axis=1), star, jnp.where(dec, mine, 0)


def _one_group_stage(d, merged, n_lo, n_hi):
    """:func:`dse.models.system.stage_ns` when only the first half holds requests (no
    interleaving): every op waits for the one before it, so a stage of ``n`` layers takes
    ``n · (pre + X + post)`` (+ the LM head on the last), with ``X = max(pattn, xin + att +
    xout)``, or ``max(pattn, xin) + att + xout`` when host and PIM are one device."""
    g = {k: v[0] for k, v in d.items()}
    x = jnp.where(
        merged,
        jnp.maximum(g["pattn"], g["xin"]) + g["att"] + g["xout"],
        jnp.maximum(g["pattn"], g["xin"] + g["att"] + g["xout"]),
    )
    layer = g["pre"] + x + g["post"]
    return (
        (n_hi * layer)[None],
        (n_lo * layer)[None],
        (n_lo * layer + g["lm"])[None],
    )


def evaluate(p: DesignPoint, c: dict, L, dec, new, past, last, chunk, c_max: int = C_SERVE) -> dict:
    """One step: decode slots ``dec`` attend over ``L`` tokens (their context including the
    token they process); prompt-chunk slots ``chunk`` process ``new`` tokens after ``past``
    (``last``: the chunk ends its prompt, its last token reaches the LM head). All (B,) in
    slot order; ``c_max`` channels the arrays hold. Returns :data:`STEP_KEYS`."""
    wl, pol, pim = p.workload, p.policy, p.hw.pim
    s = system.shape_of(wl)
    tp = jnp.maximum(pol.tp, 1)
    heads = -(-s["heads"] // tp)
    channels = jnp.clip(pim.channels, 1, c_max)
    Ld = jnp.where(dec, L, 0)

    half = _halves(Ld, dec, pol.sbi)
    hot = jnp.stack([dec & (half == 0), dec & (half == 1)]).astype(jnp.float64)  # (2, B)
    n_dec = hot.sum(axis=1)
    ctx = _mv(hot, _f(Ld))
    tau = c["tau"][jnp.clip(Ld, 0, c["tau"].shape[0] - 1)]
    tcp = pol.partition == Partition.tcp
    zb = jnp.zeros_like(Ld)
    g_rr, star, w_rr = jax.lax.cond(
        tcp,
        lambda: (jnp.zeros(2, tau.dtype), jnp.zeros(2, jnp.int64), zb),
        lambda: _round_robin(tau, half, dec, heads, channels, c_max),
    )
    gmax = jnp.where(tcp, heads * _mv(hot, _f(tau)), _f(g_rr))
    red = system.hub_reduction(p, Ld, dec, channels) * tcp
    hub = heads * _mv(hot, red)
    tail = jnp.max(jnp.where(hot > 0, red[None, :], 0.0), axis=1)
    on_gmax = gmax * pim.tCK_ns >= hub
    busy = jnp.maximum(gmax * pim.tCK_ns, hub) + tail

    # prompt chunks alternate between the halves in slot order
    ch = jax.lax.cond(
        pol.sbi > 0, lambda: (jnp.cumsum(chunk) - 1) % 2, lambda: jnp.zeros(chunk.shape, jnp.int64)
    )
    chot = jnp.stack([chunk & (ch == 0), chunk & (ch == 1)]).astype(jnp.float64)
    nw, pa = _f(jnp.where(chunk, new, 0)), _f(jnp.where(chunk, past, 0))
    pr = {
        "n": chot.sum(axis=1),
        "last": _mv(chot, _f(chunk & last)),
        "tok": _mv(chot, nw),
        "pairs": _mv(chot, nw * pa + nw * (nw + 1) / 2),
        "kv": _mv(chot, pa + nw),
    }

    def from_busy(busy):
        d, pim_part, traffic, sz = system.op_durations(p, c["kern"], n_dec, ctx, pr, busy)

        def stage(d, merged, n_lo, n_hi):
            return jax.lax.cond(
                pol.sbi > 0,
                lambda: system.stage_ns(d, merged, n_lo, n_hi, sz["slow"]),
                lambda: _one_group_stage(d, merged, n_lo, n_hi),
            )

        step_ns, *_ = system.schedule(p, d, sz["tok"], stage, sz["sample"])
        acc = system.accounting(p, d, pim_part, traffic, step_ns)
        return step_ns, acc

    (step_ns, acc) = from_busy(busy)

    def slopes():  # ∂step/∂(attention time of each half): the critical path's counts
        one = jnp.eye(2)
        return jnp.stack([jax.jvp(from_busy, (busy,), (one[h],))[1][0] for h in (0, 1)])

    # without interleaving the step is n·(…+ att_0 + …): linear in the first half's time
    slope = jax.lax.cond(pol.sbi > 0, slopes, lambda: jnp.zeros(2))
    return {
        "step_ns": step_ns,
        **{k: acc[k] for k in STEP_KEYS[1:]},
        # what an event interval needs (dse.serving.sim)
        "half": half,
        "weight": jnp.where(tcp, heads, w_rr) * dec,  # tiles on the half's busiest channel
        "star": jnp.where(tcp, 0, star),
        "on_gmax": on_gmax,
        "hubtail": jnp.where(on_gmax, 0.0, hub) + tail,
        "att": busy,
        "slope": slope,
    }
