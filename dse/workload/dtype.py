"""Element types of weights, activations and the KV cache."""

#: bytes per element of each supported dtype
DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}
