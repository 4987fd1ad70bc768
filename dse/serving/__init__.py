"""Serving runs: request traces (and, next, the continuous-batching simulation)."""

from dse.serving.traces import Trace, read_jsonl, read_neupims_csv, synthetic, write_jsonl

__all__ = ["Trace", "read_jsonl", "read_neupims_csv", "synthetic", "write_jsonl"]
