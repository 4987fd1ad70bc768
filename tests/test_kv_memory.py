"""KV-cache admission (dse.models.kv_memory) against the one-request-at-a-time reference."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dse.models.kv_memory import (
    KvAlloc,
    kv_admission,
    kv_bytes_per_token,
    kv_capacity,
)
from dse.point import STATUS_CODE
from dse.reference import kv_memory as ref
from dse.validation.report import kv_batch as _batch

MAX_LEN = 1 << 20
INT_KEYS = (
    "admitted",
    "reserved_bytes",
    "used_bytes",
    "waste_bytes",
    "units",
    "unit_bytes",
    "max_batch",
    "rejected_too_long",
    "status",
)
FLOAT_KEYS = ("capacity_util", "mem_util")
POLICIES = tuple(KvAlloc)

_batched = jax.jit(jax.vmap(kv_admission))
# one batch under every policy at once
_per_policy = jax.jit(jax.vmap(kv_admission, in_axes=(None, None, 0, None, None, None, None, None)))


_single = jax.jit(kv_admission)


def _one(lengths, mask, alloc, bpt, cap, max_ctx, chunk, block) -> dict:
    """One batch (padded to 16, so that the hand-checked cases share one compile)."""
    n = len(lengths)
    lens = np.zeros(16, np.int64)
    lens[:n] = lengths
    padded = np.zeros(16, bool)
    padded[:n] = mask
    out = _single(lens, padded, alloc, bpt, cap, max_ctx, chunk, block)
    out = {k: np.asarray(v).tolist() for k, v in out.items()}
    return out | {"admitted_mask": out["admitted_mask"][:n]}


def _rows(out: dict, n: int) -> list[dict]:
    out = {k: np.asarray(v) for k, v in out.items()}
    return [{k: v[i].tolist() for k, v in out.items()} for i in range(n)]


def _assert_same(got: dict, want: dict, ctx: object = None) -> None:
    for k in INT_KEYS:
        assert got[k] == want[k], (k, got[k], want[k], ctx)
    assert got["admitted_mask"] == want["admitted_mask"], ctx
    for k in FLOAT_KEYS:
        assert got[k] == pytest.approx(want[k], rel=1e-12, abs=1e-12), (k, ctx)


def _all_policies(lengths, bpt, cap, max_ctx, chunk, block, b_max: int = 16) -> list[dict]:
    """The vectorized result under static, dynamic and paged for one batch padded to b_max."""
    lens = np.zeros(b_max, np.int64)
    lens[: len(lengths)] = lengths
    mask = np.arange(b_max) < len(lengths)
    out = _per_policy(lens, mask, np.arange(3), bpt, cap, max_ctx, chunk, block)
    return _rows(out, 3)


def _reference(lengths, bpt, cap, max_ctx, chunk, block, alloc, b_max: int = 16) -> dict:
    lens = list(lengths) + [0] * (b_max - len(lengths))
    mask = [i < len(lengths) for i in range(b_max)]
    return ref.kv_admission(lens, mask, alloc, bpt, cap, max_ctx, chunk, block)


# --- random batches against the reference ---------------------------------------------------


def test_random_batches_match_reference():
    rng = np.random.default_rng(20240611)
    batches = [_batch(rng, alloc) for alloc in POLICIES for _ in range(520)]
    by_size: dict[int, list[dict]] = {}
    for b in batches:
        by_size.setdefault(len(b["lengths"]), []).append(b)
    seen = {(a, s): 0 for a in POLICIES for s in (True, False)}
    for group in by_size.values():
        args = [
            np.asarray([b[k] for b in group], np.int64 if k != "mask" else bool)
            for k in (
                "lengths",
                "mask",
                "alloc",
                "bytes_per_token",
                "capacity_bytes",
                "max_context",
                "chunk_bytes",
                "block_size",
            )
        ]
        for b, got in zip(group, _rows(_batched(*args), len(group)), strict=True):
            want = ref.kv_admission(**b)
            _assert_same(got, want, b)
            n = int(b["mask"].sum())
            seen[(KvAlloc(b["alloc"]), 0 < want["admitted"] < n)] += 1
    # the draw covers partial admission (stopped mid-batch) and full/empty admission
    assert all(v >= 50 for v in seen.values()), seen


# --- hand-checked cases ---------------------------------------------------------------------


def test_fcfs_stops_at_first_misfit_and_skips_masked_out():
    # bpt 1, paged block 1: reservation = length. The 2nd request does not fit; the 3rd would.
    lens = np.array([60, 50, 10, 999], np.int64)
    mask = np.array([True, True, True, False])
    out = _one(lens, mask, KvAlloc.paged, 1, 100, 1000, 1, 1)
    assert out["admitted"] == 1
    assert out["admitted_mask"] == [True, False, False, False]
    # a masked-out request does not stop admission
    mask = np.array([True, False, True, True])
    out = _one(lens, mask, KvAlloc.paged, 1, 100, 1000, 1, 1)
    assert out["admitted_mask"] == [True, False, True, False]
    # max_batch: the cycle (60, 10, 999) does not fit once; FCFS prefix 60, 10 → 2
    assert out["max_batch"] == 2
    # the cycle (60, 10) reserves 70: 200 = 2 cycles + the 60 → 5 requests
    out = _one(lens, np.array([True, False, True, False]), KvAlloc.paged, 1, 200, 1000, 1, 1)
    assert out["admitted"] == 2 and out["max_batch"] == 5


def test_static_too_long_stops_admission():
    lens = np.array([10, 5000, 10], np.int64)
    out = _one(lens, np.ones(3, bool), KvAlloc.static, 2, 10**9, 4096, 1, 1)
    assert out["admitted"] == 1
    assert out["rejected_too_long"] == 1
    assert out["max_batch"] == 10**9 // (4096 * 2)
    out = _one(lens, np.ones(3, bool), KvAlloc.dynamic, 2, 10**9, 4096, 64, 1)
    assert out["admitted"] == 3 and out["rejected_too_long"] == 0


def test_dynamic_can_admit_fewer_when_chunks_do_not_tile_max_context():
    # bpt 3, max_context 1: static reserves 3 bytes; a 2-byte chunk rounds 3 up to 4
    lens = np.array([1], np.int64)
    static, dynamic, _ = _all_policies(lens, 3, 3, 1, 2, 1)
    assert static["admitted"] == 1 and dynamic["admitted"] == 0


def test_kv_bytes_per_token():
    # Llama-2-70B: 80 layers, 8 KV heads of 128, fp16 → 320 KiB per token
    assert kv_bytes_per_token(80, 8, 128, 2) == 327680
    assert kv_bytes_per_token(80, 8, 128, 2, tp=8) == 40960
    assert kv_bytes_per_token(80, 8, 128, 2, tp=16) == 40960  # a KV head is replicated
    assert kv_bytes_per_token(80, 8, 128, 2, tp=8, pp=3) == 2 * 27 * 1 * 128 * 2


def test_kv_capacity():
    assert (
        int(kv_capacity(80 * 2**30, 0.9, 40 * 2**30, 2**30))
        == math.floor(80 * 2**30 * 0.9) - 41 * 2**30
    )
    assert int(kv_capacity(16 * 2**30, 0.9, 40 * 2**30, 0)) == 0  # clipped
    caps = kv_capacity(np.array([10**12, 10**9]), np.array([0.5, 1.0]), 10**8, 0)
    assert np.asarray(caps).tolist() == [5 * 10**11 - 10**8, 9 * 10**8]


def test_bad_parameters_flagged():
    lens = np.array([1, 2], np.int64)
    ok = np.ones(2, bool)
    bad = STATUS_CODE["bad_parameter"]
    assert _one(lens, ok, KvAlloc.dynamic, 4, 100, 8, 0, 1)["status"] == bad
    assert _one(lens, ok, 7, 4, 100, 8, 16, 1)["status"] == bad
    assert _one(-lens, ok, KvAlloc.paged, 4, 100, 8, 16, 1)["status"] == bad
    assert _one(lens, ok, KvAlloc.paged, 4, 100, 8, 16, 1)["status"] == 0


# --- properties -----------------------------------------------------------------------------

lengths_st = st.lists(st.integers(1, MAX_LEN), min_size=1, max_size=16)
bpt_st = st.integers(1, MAX_LEN)


@given(
    lengths=lengths_st,
    bpt=bpt_st,
    cap=st.one_of(st.integers(0, 1 << 20), st.integers(0, 1 << 50)),
    max_ctx=st.integers(1, MAX_LEN),
    chunk=st.integers(1, 1 << 26),
    block=st.integers(1, 4096),
)
def test_invariants(lengths, bpt, cap, max_ctx, chunk, block):
    for alloc, out in zip(
        POLICIES, _all_policies(lengths, bpt, cap, max_ctx, chunk, block), strict=True
    ):
        _assert_same(out, _reference(lengths, bpt, cap, max_ctx, chunk, block, alloc))
        assert 0.0 <= out["capacity_util"] <= 1.0
        assert 0.0 <= out["mem_util"] <= 1.0
        assert out["reserved_bytes"] <= cap
        assert out["waste_bytes"] >= 0
        assert out["admitted"] <= min(len(lengths), out["max_batch"])
        # FCFS: the admitted requests are a prefix of the batch
        assert out["admitted_mask"][: len(lengths)] == [
            i < out["admitted"] for i in range(len(lengths))
        ]


@st.composite
def _tiled(draw):
    """A batch with every length <= max_context, where chunks (and blocks) tile max_context."""
    bpt, chunk, block = draw(bpt_st), draw(st.integers(1, 1 << 24)), draw(st.integers(1, 512))
    step = math.lcm(chunk // math.gcd(chunk, bpt), block)  # max_context·bpt % chunk == 0
    max_ctx = step * draw(st.integers(1, max(1, MAX_LEN // step)))
    lengths = [1 + x % max_ctx for x in draw(lengths_st)]
    cap = draw(st.integers(0, len(lengths) * max_ctx * bpt + 1))
    return lengths, bpt, cap, max_ctx, chunk, block


@given(_tiled())
def test_dynamic_and_paged_admit_at_least_static(case):
    lengths, bpt, cap, max_ctx, chunk, block = case
    assert (max_ctx * bpt) % chunk == 0 and max_ctx % block == 0
    static, dynamic, paged = _all_policies(*case)
    assert dynamic["admitted"] >= static["admitted"]
    assert paged["admitted"] >= static["admitted"]
    assert dynamic["max_batch"] >= static["max_batch"]
    assert paged["max_batch"] >= static["max_batch"]


@given(lengths=lengths_st, bpt=bpt_st, cap=st.integers(0, 1 << 46), block=st.integers(1, 256))
def test_fine_grained_allocation_wastes_nothing(lengths, bpt, cap, block):
    # paged with block_size 1 and dynamic with 1-byte chunks reserve exactly the live KV
    _, dyn1, paged1 = _all_policies(lengths, bpt, cap, MAX_LEN, 1, 1)
    for out in (dyn1, paged1):
        assert out["waste_bytes"] == 0
        assert out["capacity_util"] == (1.0 if out["admitted"] else 0.0)
    # dynamic with chunks of one block equals paged
    _, dyn, paged = _all_policies(lengths, bpt, cap, MAX_LEN, block * bpt, block)
    for k in ("admitted", "reserved_bytes", "used_bytes", "max_batch", "units", "unit_bytes"):
        assert dyn[k] == paged[k], k


@given(
    length=st.integers(1, MAX_LEN),
    n=st.integers(1, 16),
    bpt=bpt_st,
    chunk=st.integers(1, 1 << 26),
    cap=st.integers(0, 1 << 48),
)
def test_identical_lengths_closed_form(length, n, bpt, chunk, cap):
    per_request = -(-length * bpt // chunk) * chunk
    _, dynamic, _ = _all_policies([length] * n, bpt, cap, MAX_LEN, chunk, 1)
    assert dynamic["admitted"] == min(n, cap // per_request)
    assert dynamic["max_batch"] == cap // per_request


@given(seed=st.integers(0, 2**32 - 1), bpt=st.integers(MAX_LEN // 2, MAX_LEN), full=st.booleans())
def test_no_overflow_at_1m_tokens(seed, bpt, full):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(MAX_LEN // 2, MAX_LEN + 1, 1024)
    lengths[0] = MAX_LEN
    live = [int(x) * bpt for x in lengths]  # Python ints: exact
    total = sum(live)
    assert total > 2**47  # far beyond int32
    chunk = int(rng.choice([1 << 20, 3 << 19, 1]))
    # full: room for every request's last partial chunk or block as well
    cap = total + 1024 * (chunk + 16 * bpt) if full else int(rng.integers(0, total))
    outs = _all_policies(lengths, bpt, cap, MAX_LEN, chunk, 16, b_max=1024)
    for alloc, out in zip(POLICIES, outs, strict=True):
        want = _reference(lengths.tolist(), bpt, cap, MAX_LEN, chunk, 16, alloc, b_max=1024)
        _assert_same(out, want)
        admitted = out["admitted"]
        assert out["used_bytes"] == sum(live[:admitted])
        if full and alloc != KvAlloc.static:
            assert admitted == 1024 and out["used_bytes"] == total
