"""What runs: kernel and LLM shapes, batches' context lengths. Nothing here knows about models."""

from dse.workload.gemv import DTYPE_BYTES, Gemv
from dse.workload.lengths import LengthDist, sample_lengths
from dse.workload.llm import LlmShape, from_hf_config, load_preset

__all__ = [
    "DTYPE_BYTES",
    "Gemv",
    "LengthDist",
    "LlmShape",
    "from_hf_config",
    "load_preset",
    "sample_lengths",
]
