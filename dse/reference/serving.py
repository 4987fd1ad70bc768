"""Reference serving simulator: the scheduler of :mod:`dse.serving.sim`, one step at a time,
in plain Python, for ONE design point.

Every step is run: no event skipping, no closed forms. A step's time and accounting come
from :mod:`dse.models.system`'s own path (:func:`~dse.models.system.durations` over its
:data:`~dse.models.system.G` groups, :func:`~dse.models.system.chunk_sums`, the max-plus
recurrence and the pipeline), compiled once for the point and called per step with the
batch in slot order — not :mod:`dse.serving.step`'s per-slot tables. Requests are plain
objects; the queue is a list. Used by the tests and the benchmark's ratio.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from dse.models import system
from dse.point import DesignPoint
from dse.policy import KvAlloc
from dse.serving.step import C_SERVE, STEP_KEYS

__all__ = ["reference_step", "simulate"]


@jax.jit
def _step(p: DesignPoint, kern, L, dec, new, past, last, chunk) -> dict:
    pol = p.policy
    pr = system.chunk_sums(new, past, last, chunk, 1, pol.sbi)
    d, pim_part, traffic, sz = system.durations(p, L, dec, prompts=pr, kern=kern, c_max=C_SERVE)
    step_ns, *_ = system.schedule(p, d, sz["tok"], slow=sz["slow"])
    acc = system.accounting(p, d, pim_part, traffic, step_ns)
    return {"step_ns": step_ns, **{k: acc[k] for k in STEP_KEYS[1:]}}


_kernel_times = jax.jit(system.kernel_times)


def reference_step(p: DesignPoint):
    """A ``(L, dec, new, past, last, chunk) -> {STEP_KEYS}`` for point ``p`` through
    :func:`dse.models.system.durations` (one micro-batch; compiled once per slot count)."""
    kern = _kernel_times(p)

    def call(L, dec, new, past, last, chunk):
        out = _step(p, kern, *(jnp.asarray(x) for x in (L, dec, new, past, last, chunk)))
        return {k: float(v) for k, v in out.items()}

    return call


@dataclasses.dataclass
class _Req:
    row: int
    arrival: int
    inp: int
    out: int
    state: str = "queued"  # queued, running, preempted, ended, rejected
    slot: int = -1
    seq: int = -1
    done: int = 0
    plen: int = 0
    kv: int = 0
    gen: int = 0
    want: int = 0
    admit_ns: float = -1.0
    first_ns: float = -1.0
    end_ns: float = -1.0
    preempts: int = 0
    emits: list = dataclasses.field(default_factory=list)


def _units(policy: dict, n: int) -> int:
    bpt = policy["bpt"]
    if policy["alloc"] == KvAlloc.static:
        return policy["max_context"] * bpt
    if policy["alloc"] == KvAlloc.dynamic:
        ch = policy["chunk"]
        return -(-(n * bpt) // ch) * ch
    bl = policy["block"]
    return -(-n // bl) * bl * bpt


def simulate(p: DesignPoint, trace, slots: int, max_steps: int = 10_000_000) -> dict:
    """Serve ``trace`` (a :class:`dse.serving.traces.Trace`) on point ``p``, one step at a
    time. Returns per-row arrays in arrival order (as :func:`dse.serving.sim.simulate`),
    every request's token times, and the sums of :data:`~dse.serving.step.STEP_KEYS`."""
    from dse.serving.sim import memory

    pol = p.policy
    mem = {k: np.asarray(v).item() for k, v in jax.jit(memory)(p).items()}
    cap = int(mem["cap"])
    kvp = {
        "bpt": int(mem["bpt"]),
        "alloc": int(pol.kv_alloc),
        "max_context": int(p.workload.max_context),
        "chunk": max(int(pol.kv_chunk_bytes), 1),
        "block": max(int(pol.block_size), 1),
    }
    units = functools.partial(_units, kvp)
    S = min(max(int(pol.max_num_seqs), 1), slots)
    T = max(int(pol.max_batched_tokens), 1)
    chunked = int(pol.chunked_prefill) > 0
    step = reference_step(p)

    order = np.argsort(np.asarray(trace.arrival_ns), kind="stable")
    reqs = [
        _Req(i, int(trace.arrival_ns[r]), int(trace.input_toks[r]), int(trace.output_toks[r]))
        for i, r in enumerate(order)
    ]
    for q in reqs:
        total = q.inp + q.out
        too_long = kvp["alloc"] == KvAlloc.static and total > kvp["max_context"]
        q.never_fits = units(total) > cap or too_long
    queue = list(reqs)  # not yet admitted, arrival order
    slot_of: list[_Req | None] = [None] * slots
    t, seqc, steps = 0.0, 0, 0
    acc = dict.fromkeys(STEP_KEYS, 0.0)

    while any(q.state not in ("ended", "rejected") for q in reqs) and steps < max_steps:
        running = [q for q in slot_of if q is not None and q.state == "running"]
        decs = [q for q in running if q.done >= q.plen]
        parts = [q for q in running if q.done < q.plen]
        left = T - len(decs)
        for q in decs:
            q.want = 1
        for q in parts:  # at most one
            rest = q.plen - q.done
            q.want = min(rest, max(left, 0)) if chunked else rest
            left -= q.want

        # memory: preempt the most recently admitted while the reservations do not fit
        preempted_now = False
        while running and sum(units(q.kv + q.want) for q in running) > cap:
            v = max(running, key=lambda q: q.seq)
            running.remove(v)
            v.state, v.done, v.kv, v.want = "preempted", 0, 0, 0
            v.plen = v.inp + v.gen
            v.preempts += 1
            preempted_now = True
        need = sum(units(q.kv + q.want) for q in running)
        first_prefill = not any(q.done < q.plen for q in running)

        def budget(before: int, plen: int, left: int = left, first: bool = first_prefill):
            if chunked:
                return before < left, max(0, min(left - before, plen))
            return before + plen <= left or (before == 0 and first and left > 0), plen

        waiting_pre = [q for q in slot_of if q is not None and q.state == "preempted"]
        admitted: list[_Req] = []
        if not preempted_now:
            if waiting_pre:
                q = min(waiting_pre, key=lambda q: q.row)
                ok, w = budget(0, q.plen)
                if len(running) < S and left > 0 and ok and need + units(w) <= cap:
                    q.state, q.seq, q.want = "running", seqc, w
                    seqc += 1
                    running.append(q)
            else:
                before = 0
                while queue and queue[0].arrival <= t:
                    q = queue[0]
                    if q.never_fits:
                        q.state = "rejected"
                        queue.pop(0)
                        continue
                    ok, w = budget(before, q.inp)
                    if not (ok and len(running) < S and left > 0 and need + units(w) <= cap):
                        break
                    queue.pop(0)
                    q.state, q.seq, q.want = "running", seqc, w
                    q.plen, q.done, q.kv, q.gen = q.inp, 0, 0, 0
                    q.admit_ns = t
                    seqc += 1
                    before += q.inp
                    need += units(w)
                    running.append(q)
                    admitted.append(q)
        for q in admitted:  # lowest empty slots, in admission order
            q.slot = slot_of.index(None)
            slot_of[q.slot] = q

        if not running:
            if waiting_pre:
                continue
            if not queue:
                break
            t = max(t, float(queue[0].arrival))
            continue

        L = np.zeros(slots, np.int64)
        dec = np.zeros(slots, bool)
        new = np.zeros(slots, np.int64)
        past = np.zeros(slots, np.int64)
        last = np.zeros(slots, bool)
        chunk = np.zeros(slots, bool)
        for q in running:
            if q.done >= q.plen:
                L[q.slot], dec[q.slot] = q.kv + 1, True
            elif q.want > 0:
                new[q.slot], past[q.slot], chunk[q.slot] = q.want, q.done, True
                last[q.slot] = q.done + q.want >= q.plen
        r = step(L, dec, new, past, last, chunk)
        for k in STEP_KEYS:
            acc[k] += r[k]
        t += r["step_ns"]
        steps += 1
        for q in running:
            emitted = False
            if dec[q.slot]:
                q.kv += 1
                q.gen += 1
                emitted = True
            elif chunk[q.slot]:
                q.done += q.want
                q.kv += q.want
                if q.done >= q.plen:
                    if q.gen == 0:
                        q.first_ns = t
                    q.gen += 1
                    emitted = True
            if emitted:
                q.emits.append(t)
                if q.gen >= q.out:
                    q.state, q.end_ns = "ended", t
                    slot_of[q.slot] = None

    f = np.asarray
    return {
        "admit_ns": f([q.admit_ns for q in reqs]),
        "first_ns": f([q.first_ns for q in reqs]),
        "end_ns": f([q.end_ns for q in reqs]),
        "rejected": f([q.state == "rejected" for q in reqs]),
        "preempts": f([q.preempts for q in reqs]),
        "emits": [q.emits for q in reqs],
        "steps": steps,
        "acc": acc,
        "finished": all(q.state in ("ended", "rejected") for q in reqs),
    }
