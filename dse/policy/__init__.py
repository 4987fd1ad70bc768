"""How work is mapped and scheduled: integer-coded choices, compared side by side under vmap."""

from __future__ import annotations

from enum import IntEnum

from dse._pytree import leaf, pytree_dataclass, static_field

__all__ = [
    "GemvOrder",
    "MAPPINGS",
    "IoPolicy",
    "KvAlloc",
    "LmHead",
    "Partition",
    "Policy",
    "RefreshMode",
    "Sched",
    "SystemKind",
]


class IoPolicy(IntEnum):
    """How external transfers relate to MAC streaming in the first-order channel model.

    ``serial``: WR-INP and RD-OUT block the MAC pipeline (their times add).
    ``overlap``: transfers run beside MAC streaming; only the first input fill and the last
    readout are exposed (the bound is the slower of the two).
    """

    serial = 0
    overlap = 1


class Sched(IntEnum):
    """Command scheduling in the command-pipeline model (DESIGN.md §4.3).

    ``static``: one in-order queue, WR-INP → MAC → RD-OUT stacks, fixed worst-case gaps.
    ``pingpong``: buffers split in halves; transfers on one half while MACs use the other;
    roles swap when both sides are done. ``dynamic``: separate in-order I/O and compute
    queues ordered only by buffer-entry dependencies; row commands issue early.
    """

    static = 0
    pingpong = 1
    dynamic = 2


#: how pim_kernel turns a kernel into PIM commands (static: each compiles its own program).
#: ``tiles``: the buffer-tile pipeline under ``sched`` (DESIGN.md §4.3); ``cent``: CENT's
#: GDDR6-AiM request streams issued by the channel's in-order controller
#: (dse.models.pim_program); ``attacc``: a whole decode-attention layer as AttAcc maps it on
#: an HBM3 stack (dse.models.pim_attacc); ``neupims``: a request's attention kernels as
#: NeuPIMs builds its PIM programs (dse.models.pim_neupims).
MAPPINGS = ("tiles", "cent", "attacc", "neupims")


class GemvOrder(IntEnum):
    """GEMV loop order of the ``cent`` mapping: ``reuse``: one GBuf write serves a group of
    outputs (as many as the MAC result registers hold, ``obuf_entries``); ``literal``: every
    output is initialised, accumulated and read out in turn."""

    reuse = 0
    literal = 1


class RefreshMode(IntEnum):
    """``stall``: the channel freezes for tRFC every tREFI. ``skip``: a tile that would cross a
    refresh waits for it to end, so no tile is split by a refresh."""

    stall = 0
    skip = 1


class Partition(IntEnum):
    """How a decode batch's attention is spread over a module's channels (DESIGN.md §4.4).

    ``hfp_rr``: (request, KV head) tiles dealt to channels in turn; ``hfp_greedy``: longest
    tile first onto the least-loaded channel (NeuPIMs); ``tcp``: every head's tokens split
    over all channels, partial s·V sums reduced through the hub (PIMphony); ``req_rr`` /
    ``req_greedy``: whole requests (all of the module's KV heads of a request on one channel,
    one PIM program over those heads) dealt in turn (NeuPIMs' naive ``npu+pim`` branch) or
    longest first onto the least-loaded channel (NeuPIMs' ``main``). ``cent``: the two
    kernels placed apart as CENT places them: a request's keys token-sharded over every
    channel of the TP group (token ``t`` on bank ``t mod (channels·banks·tp)``, all KV heads
    of a token together), its values head-sharded over one module's channels; every channel
    works on one request at a time, requests one after another."""

    hfp_rr = 0
    hfp_greedy = 1
    tcp = 2
    req_rr = 3
    req_greedy = 4
    cent = 5


class KvAlloc(IntEnum):
    """KV-cache allocation (DESIGN.md §4.5): ``static`` reserves the maximum context per
    request; ``dynamic`` grows in chunks (waste only in the last chunk); ``paged`` in blocks
    of ``block_size`` tokens (vLLM-style, GPU/NPU memory)."""

    static = 0
    dynamic = 1
    paged = 2


class LmHead(IntEnum):
    """Where a pipeline runs the LM head. ``last``: on the last stage, after its layers (the
    last stage carries it for every micro-batch). ``spread``: every stage runs a slice of the
    vocabulary (``vocab / pp`` of the logits, local top-k) after its layers, so the stages stay
    balanced and a micro-batch's trip counts the whole head once; CENT's ``PP / T_token``
    throughput is this pipeline's."""

    last = 0
    spread = 1


class SystemKind(IntEnum):
    """Where a serving step runs (DESIGN.md §4.7).

    ``gpu``: everything on the host GPU. ``gpu_pim``: decode attention on PIM attached to
    host memory, over the host link (LLMServingSim ``--enable-attn-offloading``).
    ``npu_pim``: GEMMs on the NPU, decode attention on PIM in the same HBM (NeuPIMs; see
    ``Policy.dual_rb``). ``pim_only``: every GEMV on PIM, vector ops on near-memory units
    (CENT)."""

    gpu = 0
    gpu_pim = 1
    npu_pim = 2
    pim_only = 3


@pytree_dataclass
class Policy:
    io: int = leaf("I/O vs MAC overlap (IoPolicy)", choices=IoPolicy)
    sched: int = leaf("command scheduling (Sched)", choices=Sched, default="dynamic")
    mapping: str = static_field(
        "tiles",
        "pim_kernel command mapping: tiles (buffer-tile pipeline under sched), cent (CENT's "
        "AiM request streams, in-order controller), attacc (AttAcc's attention layer) or neupims "
        "(NeuPIMs' PIM programs); static",
        choices=MAPPINGS,
    )
    gemv_order: int = leaf(
        "cent mapping: GEMV loop order (GemvOrder)", choices=GemvOrder, default="reuse"
    )
    refresh: int = leaf("refresh handling (RefreshMode)", choices=RefreshMode, default="stall")
    row_reuse: int = leaf(
        "1: GQA row-reuse mapping (all g queries per open row); 0: one query per pass",
        low=0,
        high=1,
        default=0,
    )
    partition: int = leaf("attention partitioning (Partition)", choices=Partition, default="hfp_rr")
    tp: int = leaf("tensor-parallel modules (split the KV heads)", low=1, default=1)
    pp: int = leaf("pipeline stages (split the layers)", low=1, default=1)
    micro_batches: int = leaf("micro-batches in flight through the pipeline", low=1, default=1)
    lm_head: int = leaf(
        "where a pipeline runs the LM head (LmHead)", choices=LmHead, default="last"
    )
    mb_slots: int = static_field(
        8,
        "micro-batches the system model's arrays hold (static; the evaluator raises it to the "
        "next power of two that covers policy.micro_batches)",
    )
    kv_alloc: int = leaf("KV-cache allocation (KvAlloc)", choices=KvAlloc, default="dynamic")
    kv_chunk_bytes: int = leaf("dynamic allocation chunk (bytes)", low=1, default=1 << 20)
    block_size: int = leaf("paged allocation block (tokens)", low=1, default=16)
    system: int = leaf("system kind (SystemKind)", choices=SystemKind, default="gpu")
    dual_rb: int = leaf(
        "npu_pim: 1 = dual row buffers (PIM compute and NPU reads overlap); 0 = blocked",
        low=0,
        high=1,
        default=1,
    )
    sbi: int = leaf(
        "1: sub-batch interleaving (two load-balanced halves, dense ops of one beside the "
        "PIM attention of the other)",
        low=0,
        high=1,
        default=0,
    )
    max_num_seqs: int = leaf(
        "serving: requests running at once (vLLM max_num_seqs)", low=1, default=128
    )
    max_batched_tokens: int = leaf(
        "serving: tokens one step processes (vLLM max_num_batched_tokens)", low=1, default=2048
    )
    chunked_prefill: int = leaf(
        "serving: 1 = prompts split to fill the step's token budget; 0 = whole prompts",
        low=0,
        high=1,
        default=0,
    )
    mem_util: float = leaf(
        "serving, gpu: fraction of GPU memory for weights and KV (npu_memory_utilization)",
        low=0.0,
        high=1.0,
        default=0.9,
    )
