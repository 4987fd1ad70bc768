"""Random-read throughput of one DRAM channel: DRAMsim3's controller, cycle by cycle, in JAX.

Uniformly random reads are too irregular for a closed form to be exact: which banks have
work depends on the random bank of each request and on DRAMsim3's queues, and the command,
data and activation limits interact cycle by cycle (a READ that loses its command slot to an
ACT leaves a bubble on the data bus; a bank that runs out of requests idles while the
activation window is free). This module runs the mechanism itself, as
umd-memsys/DRAMsim3 at 29817593 implements it (file:line in src/), vectorised over design
points with ``jax.vmap`` of one ``lax.scan`` over clock cycles:

* **Requests.** A request source that never waits (DRAMsim3's trace CPU with every request
  due at cycle 0, cpu.cc:73-90) offers one read per cycle to the read queue
  (``trans_queue_size`` entries, controller.cc:151-160); its bank is uniform over the
  channel's ``ranks x banks`` banks and its row always differs from the open one (random rows
  hit with probability ~1/rows; DRAMsim3 measured 2 hits in 45,664 reads on DDR4-2400).
* **Transaction scheduling** (controller.cc:197-224): once per cycle the *first* read in the
  read queue whose per-bank command queue (``cmd_queue_size``) has room moves there.
* **Command issue** (controller.cc:66-92, command_queue.cc:36-52): one command per cycle; the
  queues are scanned round-robin starting after the queue that issued last, and the first
  ready command wins. A bank's head request needs PRE (row open), ACT (closed) then READ;
  HBM's dual command bus issues a second command in the same cycle when one is a column
  command and the other is not (``hbm_dual_cmd``).
* **Timing** (timing.cc): READ->READ ``max(burst, tCCD_L)`` in the bank group,
  ``max(burst, tCCD_S)`` in the rank, ``burst + tRTRS`` to another rank; ACT->READ ``tRCD``
  (``tRCDRD`` on GDDR/HBM); ACT->PRE ``tRAS``; ACT->ACT ``tRC`` in the bank, ``tRRD_L`` /
  ``tRRD_S`` in the rank; READ->PRE ``AL + tRTP``; PRE->ACT ``tRP``; PRE->PRE ``tPPD``
  (GDDR, LPDDR4); at most 4 ACTs per ``tFAW`` and, on GDDR, 32 per ``t32AW`` per rank
  (channel_state.cc:270-305). Close-page reads auto-precharge (READ_PRECHARGE:
  ``AL + burst + tRTP + tRP`` to the next ACT).
* **Refresh** (refresh.cc, command_queue.cc:56-72): every ``tREFI / ranks`` cycles the next
  rank needs a refresh; its queues are skipped, its open banks are precharged in bank order
  when ready, then REFRESH blocks the rank for ``tRFC``. The other ranks go on.

Throughput is counted over whole refresh intervals after a warm-up. The random stream is the
same for every design point (common random numbers), so differences between points are
differences of mechanism, not of sampling; the sampling error of one point is ~0.5%.
Agreement with DRAMsim3 on 71 INIs: docs/oracle/dramsim3.md.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["random_read_cycles", "QMAX", "RMAX", "TQMAX", "CYCLES", "WARMUP"]

#: Largest ``ranks x banks`` (command queues), ranks and read-queue entries simulated.
QMAX, RMAX, TQMAX = 64, 4, 64
#: Cycles simulated and cycles discarded before counting.
CYCLES, WARMUP = 45056, 4096
_NEG = -(1 << 20)  # "long ago" for activation windows
_I = jnp.int32


def _derived(p: dict) -> dict:
    """Per-point integer timing constants (traced scalars)."""
    i = lambda x: jnp.round(x).astype(_I)  # noqa: E731
    one_bg = p["bankgroups"] <= 1
    burst = i(p["burst"])
    rrs = jnp.maximum(burst, i(p["tCCD_S"]))
    rrl = jnp.where(one_bg, rrs, jnp.maximum(burst, i(p["tCCD_L"])))
    R = i(p["ranks"])
    B = i(p["bankgroups"] * p["banks_per_group"])
    aw32 = p["t32AW"]
    return dict(
        R=R,
        B=B,
        BPG=i(p["banks_per_group"]),
        Q=R * B,
        rrs=rrs,
        rrl=rrl,
        rro=burst + i(p["tRTRS"]),
        rrds=i(p["tRRD_S"]),
        rrdl=jnp.where(one_bg, i(p["tRRD_S"]), i(p["tRRD_L"])),
        rcd=i(p["tRCD_rd"]),
        ras=i(p["tRAS"]),
        rp=i(p["tRP"]),
        rc=i(p["tRAS"]) + i(p["tRP"]),
        rtp=i(p["AL"]) + i(p["tRTP"]),
        readp_act=i(p["AL"]) + burst + i(p["tRTP"]) + i(p["tRP"]),
        read_ref=i(p["AL"]) + i(p["tRTP"]) + i(p["tRP"]),
        ppd=i(p["tPPD"]),
        faw=i(p["tFAW"]),
        aw32=i(jnp.where(jnp.isfinite(aw32), aw32, 0)),  # 0: no 32-activation window
        rfc=i(p["tRFC"]),
        refi=jnp.maximum(i(p["tREFI"]) // R, 1),
        tq=i(p["trans_queue"]),
        cq=i(p["cmd_queue"]),
        open_page=p["open_page"] > 0,
        dual=p["dual_cmd"] > 0,
    )


def _simulate(p: dict, u: jax.Array) -> jax.Array:
    """Cycles per read of one design point (``p``: scalar fields; ``u``: uniforms [CYCLES])."""
    d = _derived(p)
    qi = jnp.arange(QMAX, dtype=_I)
    rank_q = qi // d["B"]
    bg_q = (qi % d["B"]) // d["BPG"]
    valid = qi < d["Q"]
    ti = jnp.arange(TQMAX, dtype=_I)
    avail = CYCLES - WARMUP
    window = jnp.where(d["refi"] <= avail, (avail // d["refi"]) * d["refi"], avail)

    zeros = jnp.zeros(QMAX, _I)
    state = dict(
        t_act=zeros,
        t_rd=zeros,
        t_pre=zeros,
        t_ref=zeros,
        phase=jnp.ones(QMAX, _I),  # 0: row open, needs PRE; 1: closed, needs ACT; 2: needs READ
        cnt=zeros,
        faw=jnp.full((RMAX, 4), _NEG, _I),
        aw=jnp.full((RMAX, 32), _NEG, _I),
        tq=jnp.zeros(TQMAX, _I),
        tq_len=_I(0),
        idx=_I(0),
        refq=jnp.zeros(RMAX, _I),
        ref_len=_I(0),
        next_rank=_I(0),
        reads=_I(0),
    )

    def ready(s, clk, excl):
        r = rank_q
        faw_ok = clk >= s["faw"][r, 0] + d["faw"]
        aw_ok = (d["aw32"] == 0) | (clk >= s["aw"][r, 0] + d["aw32"])
        act_ok = (s["t_act"] <= clk) & faw_ok & aw_ok
        ph = s["phase"]
        ok = (
            ((ph == 0) & (s["t_pre"] <= clk))
            | ((ph == 1) & act_ok)
            | ((ph == 2) & (s["t_rd"] <= clk))
        )
        return ok & (s["cnt"] > 0) & valid & (r != excl)

    def pick(s, clk, excl):
        ok = ready(s, clk, excl)
        dist = jnp.mod(qi - s["idx"] - 1, d["Q"])
        q = jnp.argmin(jnp.where(ok, dist, QMAX + 1)).astype(_I)
        return q, jnp.any(ok)

    def issue(s, q, kind, do, clk):
        """kind: 0 PRE, 1 ACT, 2 READ, 3 REFRESH (q: a bank of the rank); ``do``: issue at all."""
        one = (qi == q) & do
        r = rank_q[q]
        same_rank = rank_q == r
        same_bg = same_rank & (bg_q == bg_q[q])
        is_pre, is_act = do & (kind == 0), do & (kind == 1)
        is_rd, is_ref = do & (kind == 2), do & (kind == 3)
        mx = jnp.maximum
        t_act, t_rd, t_pre, t_ref = s["t_act"], s["t_rd"], s["t_pre"], s["t_ref"]
        # ACT
        rrd = jnp.where(same_bg, d["rrdl"], d["rrds"])
        t_act = jnp.where(is_act & same_rank, mx(t_act, clk + rrd), t_act)
        t_act = jnp.where(is_act & one, mx(t_act, clk + d["rc"]), t_act)
        t_rd = jnp.where(is_act & one, mx(t_rd, clk + d["rcd"]), t_rd)
        t_pre = jnp.where(is_act & one, mx(t_pre, clk + d["ras"]), t_pre)
        faw = (
            s["faw"]
            .at[r]
            .set(jnp.where(is_act, jnp.roll(s["faw"][r], -1).at[3].set(clk), s["faw"][r]))
        )
        aw = (
            s["aw"]
            .at[r]
            .set(jnp.where(is_act, jnp.roll(s["aw"][r], -1).at[31].set(clk), s["aw"][r]))
        )
        # READ (READ_PRECHARGE under a close-page policy)
        rr = jnp.where(same_bg, d["rrl"], jnp.where(same_rank, d["rrs"], d["rro"]))
        t_rd = jnp.where(is_rd, mx(t_rd, clk + rr), t_rd)
        t_pre = jnp.where(is_rd & one & d["open_page"], mx(t_pre, clk + d["rtp"]), t_pre)
        closep = is_rd & one & ~d["open_page"]
        t_act = jnp.where(closep, mx(t_act, clk + d["readp_act"]), t_act)
        t_ref = jnp.where(closep, mx(t_ref, clk + d["read_ref"]), t_ref)
        # PRE
        t_act = jnp.where(is_pre & one, mx(t_act, clk + d["rp"]), t_act)
        t_ref = jnp.where(is_pre & one, mx(t_ref, clk + d["rp"]), t_ref)
        t_pre = jnp.where(is_pre & same_rank & ~one, mx(t_pre, clk + d["ppd"]), t_pre)
        # REFRESH (rank)
        blk = is_ref & same_rank
        t_act = jnp.where(blk, mx(t_act, clk + d["rfc"]), t_act)
        t_ref = jnp.where(blk, mx(t_ref, clk + d["rfc"]), t_ref)
        phase = s["phase"]
        phase = jnp.where(one & is_act, 2, phase)
        phase = jnp.where(one & is_rd, jnp.where(d["open_page"], 0, 1), phase)
        phase = jnp.where(one & is_pre, 1, phase)
        cnt = s["cnt"] - (one & is_rd).astype(_I)
        counted = is_rd & (clk >= WARMUP) & (clk < WARMUP + window)
        refq = jnp.where(is_ref, jnp.roll(s["refq"], -1), s["refq"])
        ref_len = s["ref_len"] - is_ref.astype(_I)
        return dict(
            s,
            t_act=t_act,
            t_rd=t_rd,
            t_pre=t_pre,
            t_ref=t_ref,
            faw=faw,
            aw=aw,
            phase=phase,
            cnt=cnt,
            reads=s["reads"] + counted.astype(_I),
            refq=refq,
            ref_len=ref_len,
        )

    def step(s, xs):
        clk, uu = xs
        # refresh.cc: the next rank needs a refresh every tREFI / ranks cycles
        due = (clk > 0) & (clk % d["refi"] == 0)
        s = dict(
            s,
            refq=jnp.where(
                due,
                s["refq"].at[jnp.minimum(s["ref_len"], RMAX - 1)].set(s["next_rank"]),
                s["refq"],
            ),
            ref_len=jnp.where(due, jnp.minimum(s["ref_len"] + 1, RMAX), s["ref_len"]),
            next_rank=jnp.where(due, (s["next_rank"] + 1) % d["R"], s["next_rank"]),
        )
        refreshing = s["ref_len"] > 0
        rr = s["refq"][0]
        excl = jnp.where(refreshing, rr, -1)
        # FinishRefresh: first open bank of the rank that may precharge, else REFRESH when all
        # of its banks are closed and ready
        in_r = valid & (rank_q == rr)
        is_open = s["phase"] != 1
        pre_ok = in_r & is_open & (s["t_pre"] <= clk)
        q_pre = jnp.argmax(pre_ok).astype(_I)
        all_ok = jnp.all(~in_r | (~is_open & (s["t_ref"] <= clk)))
        ref_cmd = refreshing & (jnp.any(pre_ok) | all_ok)
        ref_kind = jnp.where(jnp.any(pre_ok), 0, 3)
        q_ref = jnp.where(jnp.any(pre_ok), q_pre, rr * d["B"])
        # otherwise the round-robin over command queues
        q1, f1 = pick(s, clk, excl)
        q = jnp.where(ref_cmd, q_ref, q1)
        kind1 = jnp.where(ref_cmd, ref_kind, s["phase"][q1])
        issued = ref_cmd | f1
        s = dict(s, idx=jnp.where(~ref_cmd & f1, q1, s["idx"]))
        s = issue(s, q, kind1, issued, clk)
        # HBM dual command: a second command of the other class (column vs row) in this cycle
        excl2 = jnp.where(s["ref_len"] > 0, s["refq"][0], -1)
        q2, f2 = pick(s, clk, excl2)
        f2 = f2 & d["dual"] & issued
        kind2 = s["phase"][q2]
        other_class = (kind2 == 2) != (kind1 == 2)
        s = dict(s, idx=jnp.where(f2, q2, s["idx"]))
        s = issue(s, q2, kind2, f2 & other_class, clk)
        # ScheduleTransaction: the first queued read whose bank queue has room
        room = (s["cnt"][s["tq"]] < d["cq"]) & (ti < s["tq_len"])
        j = jnp.argmax(room).astype(_I)
        move = jnp.any(room)
        b = s["tq"][j]
        cnt = s["cnt"].at[b].add(move.astype(_I))
        shifted = jnp.where(ti >= j, jnp.roll(s["tq"], -1), s["tq"])
        tq = jnp.where(move, shifted, s["tq"])
        tq_len = s["tq_len"] - move.astype(_I)
        # the request source: one new read per cycle while the read queue has room
        add = tq_len < d["tq"]
        bank = jnp.minimum((uu * d["Q"]).astype(_I), d["Q"] - 1)
        tq = jnp.where(add, tq.at[jnp.minimum(tq_len, TQMAX - 1)].set(bank), tq)
        tq_len = tq_len + add.astype(_I)
        return dict(s, cnt=cnt, tq=tq, tq_len=tq_len), None

    clks = jnp.arange(CYCLES, dtype=_I)
    s, _ = jax.lax.scan(step, state, (clks, u))
    return window.astype(jnp.float64) / jnp.maximum(s["reads"], 1).astype(jnp.float64)


_FIELDS = (
    "burst", "ranks", "bankgroups", "banks_per_group", "AL", "tRCD_rd", "tRP", "tRAS",
    "tCCD_S", "tCCD_L", "tRRD_S", "tRRD_L", "tFAW", "t32AW", "tRTRS", "tRTP", "tPPD",
    "tRFC", "tREFI", "trans_queue", "cmd_queue", "open_page", "dual_cmd",
)  # fmt: skip


@partial(jax.jit, static_argnames=("seed",))
def _batched(fields: dict, seed: int = 0) -> jax.Array:
    u = jax.random.uniform(jax.random.PRNGKey(seed), (CYCLES,), dtype=jnp.float64)
    return jax.vmap(lambda f: _simulate(f, u))(fields)


def random_read_cycles(p: Any, seed: int = 0):
    """Mean cycles per read of saturating uniformly random reads, refresh included.

    ``p`` is an :class:`~dse.hw.dram_interface.InterfaceParams` whose fields are numbers or
    arrays of one shape (NumPy or JAX, traced values included). Returns an array of that
    shape (NumPy when no input is a JAX array). Raises ``ValueError`` for a channel with more
    than :data:`QMAX` banks, :data:`RMAX` ranks or :data:`TQMAX` read-queue entries.
    """
    vals = {k: getattr(p, k) for k in _FIELDS}
    is_jax = any(type(v).__module__.startswith(("jax", "jaxlib")) for v in vals.values())
    arrs = jnp.broadcast_arrays(*[jnp.asarray(v, dtype=jnp.float64) for v in vals.values()])
    shape = arrs[0].shape
    flat = {k: a.reshape(-1) for k, a in zip(vals, arrs, strict=True)}
    if not is_jax:
        n = np.asarray(flat["ranks"]) * np.asarray(flat["bankgroups"] * flat["banks_per_group"])
        for name, value, limit in (
            ("ranks x banks", n, QMAX),
            ("ranks", np.asarray(flat["ranks"]), RMAX),
            ("trans_queue", np.asarray(flat["trans_queue"]), TQMAX),
        ):
            if np.any(value > limit) or np.any(value < 1):
                raise ValueError(
                    f"random-read scheduler: {name} must be in 1..{limit}, got {value.max():g}"
                )
    out = _batched(flat).reshape(shape)
    return out if is_jax else np.asarray(out)
