"""The kernel one design point runs on PIM: an FC GEMV or a decode-attention kernel.

``kind`` selects it (an integer-coded leaf, so kernels mix in one vectorized call):

* ``gemv``: ``y = W x`` with ``W`` of shape ``M x K`` (an FC layer at decode);
* ``score``: ``q Kᵀ`` for one KV head at context ``L`` and head dim ``d``: a GEMV whose
  ``L`` outputs (one per token) each reduce ``d`` elements; ``g`` queries (a GQA group)
  share the K head;
* ``context``: ``s V``: a GEMV whose ``d`` outputs each reduce ``L`` elements (the softmax
  scores are the input).

Attention layout (DESIGN.md §4.2): ``heads`` KV heads per layer are spread over the PIM
channels; each head's tokens are split over ``partitions`` channels (token partitioning),
so a channel runs ``ceil(heads * partitions / channels)`` heads of ``ceil(L / partitions)``
tokens one after another. ``pim_gemv`` uses ``K``, ``M`` and ``dtype`` only.
"""

from __future__ import annotations

from enum import IntEnum

from dse._pytree import leaf, pytree_dataclass, static_field
from dse.workload.dtype import DTYPE_BYTES
from dse.workload.lengths import LengthDist
from dse.workload.llm import Llm

__all__ = ["DTYPE_BYTES", "Gemv", "KernelKind"]


class KernelKind(IntEnum):
    gemv = 0
    score = 1
    context = 2


@pytree_dataclass
class Gemv:
    K: int = leaf("input features: reduction length (elements)", low=1)
    M: int = leaf("output features: rows of W (elements)", low=1)
    dtype: str = static_field(
        "fp16",
        "element type of W and x; static: it fixes elements per column access",
        choices=tuple(DTYPE_BYTES),
    )
    kind: int = leaf(
        "kernel (KernelKind): gemv, score or context", choices=KernelKind, default="gemv"
    )
    trace: str = static_field(
        "",
        "a PIM command trace file (AiM ISR format) that pim_kernel evaluates command by "
        "command instead of the kernel above; static: the trace fixes the program",
    )
    L: int = leaf("attention context length (tokens)", low=1, default=4096)
    d: int = leaf("attention head dimension (elements)", low=1, default=128)
    g: int = leaf("queries per KV head (GQA group size; 1 = MHA)", low=1, default=1)
    heads: int = leaf("KV heads of the layer spread over the channels", low=1, default=1)
    partitions: int = leaf("channels one head's tokens are split over", low=1, default=1)
    # a decode batch (dse.models.pim_attention)
    batch: int = leaf("live requests in the decode batch", low=1, default=1)
    batch_max: int = static_field(64, "padded batch size (static: it fixes array shapes)")
    lengths: int = leaf(
        "context lengths of the batch (LengthDist; fixed = L for every request)",
        choices=LengthDist,
        default="fixed",
    )
    seed: int = leaf("seed of the batch's context lengths", low=0, default=0)
    length_scale: float = leaf("factor on drawn context lengths", low=0, low_open=True, default=1.0)
    layers: int = leaf("decoder layers of the model", low=1, default=32)
    max_context: int = leaf(
        "maximum context a request may reach (static KV reservation)", low=1, default=131072
    )
    # the whole model (dse.models.system): a preset, or the fields below with llm = custom
    llm: int = leaf(
        "LLM preset (conf/workload/model/); custom: the shape fields of this node",
        choices=Llm,
        default="custom",
    )
    hidden: int = leaf("model width (custom shape)", low=1, default=4096)
    ffn: int = leaf("FFN intermediate width (custom shape)", low=1, default=14336)
    vocab: int = leaf("vocabulary size (custom shape)", low=1, default=128256)
    gated_ffn: int = leaf(
        "1: gated FFN (3 matrices); 0: up, down (custom shape)", low=0, high=1, default=1
    )
    tied_embeddings: int = leaf(
        "1: LM head shares the embedding (custom shape)", low=0, high=1, default=0
    )
    prefill_reqs: int = leaf("requests whose prompt is processed in this step", low=0, default=0)
    prefill_len: int = leaf("prompt tokens of each prefill request", low=1, default=512)
