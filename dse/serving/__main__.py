"""``python -m dse.serving``: LLMServingSim's command line on dse's serving model.

    python -m dse.serving --cluster-config single_node_pim_instance.json \\
        --dataset example_trace.jsonl --output outputs/pim_offload_run.csv \\
        --enable-attn-offloading

reads LLMServingSim's cluster config (:mod:`dse.serving.cluster`) and dataset JSONL
(:mod:`dse.serving.traces`), serves the trace on that one design point one step at a time
(:mod:`dse.serving.sim` with exact per-token times) and writes LLMServingSim's per-request
CSV (:mod:`dse.serving.csvout`). At ``--log-level INFO`` it prints a line per step
(``step=… batch=… prompt_t=… decode_t=… npu_mem=… pim_busy=… gpu_busy=…``); at the end a
summary table. A ``--cluster-config`` or ``--dataset`` that names no file in the working
directory is looked up among the shipped examples (``conf/serving``, installed as
``dse/conf/serving``). ``--set KEY=VALUE`` (repeatable) overrides any design-point field as on
``python -m dse``'s command line; ``--summary FILE`` writes the metrics as JSON. A sweep of
the same cluster over many design points is ``python -m dse model=serving`` (README).
Errors name the file and key and exit with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from dse.errors import ConfigError
from dse.process import command

DTYPES = {"float16": "fp16", "bfloat16": "bf16", "fp16": "fp16", "bf16": "bf16"}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m dse.serving",
        description="Serve an LLMServingSim dataset on an LLMServingSim cluster config.",
    )
    shipped = ", ".join(p.name for p in sorted(_examples().glob("*.json*")))
    ap.add_argument(
        "--cluster-config",
        required=True,
        help=f"LLMServingSim cluster JSON (or a shipped example: {shipped})",
    )
    ap.add_argument(
        "--dataset", required=True, help="LLMServingSim dataset JSONL (or a shipped example)"
    )
    ap.add_argument("--output", required=True, help="per-request CSV to write")
    ap.add_argument("--enable-attn-offloading", action="store_true")
    ap.add_argument("--enable-sub-batch-interleaving", action="store_true")
    ap.add_argument("--enable-chunked-prefill", action="store_true")
    ap.add_argument("--dtype", default="float16", choices=sorted(DTYPES))
    ap.add_argument("--block-size", type=int, default=16)
    ap.add_argument("--max-num-seqs", type=int, default=128)
    ap.add_argument("--max-num-batched-tokens", type=int, default=2048)
    ap.add_argument("--npu-memory-utilization", type=float, default=0.9)
    ap.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--summary", help="write the run's metrics as JSON here")
    ap.add_argument("--slo-ttft-ms", type=float, default=1000.0)
    ap.add_argument("--slo-tpot-ms", type=float, default=100.0)
    return ap


def _examples() -> Path:
    from dse.config import CONF_DIR

    return CONF_DIR / "serving"


def shipped(path: str) -> str:
    """``path``, or the shipped example of that name where no such file exists here."""
    if Path(path).exists() or Path(path).parent != Path("."):
        return path
    example = _examples() / path
    return str(example) if example.is_file() else path


def overrides(args: argparse.Namespace, cluster) -> list[str]:
    """Hydra overrides of the run: the cluster's, then the flags', then ``--set``."""
    for flag, value, low in (
        ("--block-size", args.block_size, 1),
        ("--max-num-seqs", args.max_num_seqs, 1),
        ("--max-num-batched-tokens", args.max_num_batched_tokens, 1),
    ):
        if value < low:
            raise ConfigError("command line", flag, f"an integer >= {low}", value)
    for flag, value in (("--slo-ttft-ms", args.slo_ttft_ms), ("--slo-tpot-ms", args.slo_tpot_ms)):
        if not 0 < value < float("inf"):
            raise ConfigError("command line", flag, "a time in ms > 0", value)
    if not 0 < args.npu_memory_utilization <= 1:
        raise ConfigError(
            "command line",
            "--npu-memory-utilization",
            "a fraction in (0, 1]",
            args.npu_memory_utilization,
        )
    if args.max_num_batched_tokens < args.max_num_seqs:
        raise ConfigError(
            "command line",
            "--max-num-batched-tokens",
            f"at least --max-num-seqs ({args.max_num_seqs})",
            args.max_num_batched_tokens,
        )
    if args.enable_attn_offloading and "pim" not in cluster.groups and not cluster.ini_path:
        raise ConfigError(
            cluster.source, "nodes[].cpu_mem.pim_config", "a PIM config for attention offloading"
        )
    return [
        "space=single",
        "model=system",
        "workload=llama3_8b_step",
        *cluster.hydra_overrides(),
        f"policy.system={'gpu_pim' if args.enable_attn_offloading else 'gpu'}",
        f"policy.sbi={int(args.enable_sub_batch_interleaving)}",
        f"policy.chunked_prefill={int(args.enable_chunked_prefill)}",
        "policy.kv_alloc=paged",
        f"policy.block_size={args.block_size}",
        f"policy.max_num_seqs={args.max_num_seqs}",
        f"policy.max_batched_tokens={args.max_num_batched_tokens}",
        f"policy.mem_util={args.npu_memory_utilization}",
        f"workload.dtype={DTYPES[args.dtype]}",
        *args.set,
    ]


@contextlib.contextmanager
def _logging(level: str) -> Iterator[logging.Logger]:
    """The package's log at ``level``, for the call only: the ``dse`` logger's level, and,
    where the process has no logging set up (the command line), a handler of our own on it
    writing to this call's stderr; both undone on the way out. A program running the
    command in-process keeps its own handlers (the records reach them) and nothing of ours
    outlives the call."""
    top = logging.getLogger("dse")
    saved = top.level
    handler = None
    if not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
        top.addHandler(handler)
    top.setLevel(level)
    try:
        yield logging.getLogger("dse.serving")
    finally:
        if handler is not None:
            top.removeHandler(handler)
        top.setLevel(saved)


@command
def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with _logging(args.log_level) as log:
        return _main(args, log)


def _main(args: argparse.Namespace, log: logging.Logger) -> int:
    from dse.cli import catch_termination, interrupted

    try:
        with catch_termination() as caught:
            return _run(args, log)
    except KeyboardInterrupt:
        interrupted(caught, "dse.serving")
        return 130
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, log: logging.Logger) -> int:
    import dse  # noqa: F401  (x64)
    from dse.cli import _compose, build
    from dse.explore import enable_compilation_cache
    from dse.serving.cluster import read_cluster
    from dse.serving.csvout import write_requests_csv
    from dse.serving.run import request_table, run_point, step_lines
    from dse.serving.traces import read_jsonl

    for flag, value in (("--output", args.output), ("--summary", args.summary)):
        check_output_path(flag, value)
    enable_compilation_cache()
    cluster = read_cluster(shipped(args.cluster_config))
    trace = read_jsonl(shipped(args.dataset))
    cfg, prov = _compose(overrides(args, cluster))
    _, point, _ = build(cfg, prov)
    res = run_point(
        point,
        trace,
        slo_ttft_ns=args.slo_ttft_ms * 1e6,
        slo_tpot_ns=args.slo_tpot_ms * 1e6,
    )
    m = res.metrics
    if log.isEnabledFor(logging.INFO):
        kv_on_gpu = not args.enable_attn_offloading
        for line in step_lines(res, m["weights_GB"], kv_on_gpu):
            log.info(line)
    table = request_table(res, cluster.model_name)
    out = write_requests_csv(args.output, table)
    if args.summary:
        Path(args.summary).parent.mkdir(parents=True, exist_ok=True)
        Path(args.summary).write_text(json.dumps(m, indent=2) + "\n")
    _print_summary(m, res, out, args)
    if m["status"] != 0:
        log.warning("status: %s%s", m["status_text"], _why(m, len(res.trace)))
    return 0


def _why(m: dict, n: int) -> str:
    """What a status means for this run, in words."""
    parts = []
    if m["rejected"]:
        parts.append(
            f"{m['rejected']} of {n} requests can never fit the KV memory (a prompt longer "
            "than it holds, or no memory left beside the weights) and were not served"
        )
    if "bad_parameter" in m["status_text"]:
        parts.append("a parameter outside what the system model accepts")
    return f" ({'; '.join(parts)})" if parts else ""


def check_output_path(flag: str, value: str | None) -> None:
    """An output file the run can write: not a directory, its parent not a file."""
    if not value:
        return
    p = Path(value)
    if p.is_dir():
        raise ConfigError("command line", flag, "a file path (it is a directory)", value)
    parent = next((q for q in p.parents if q.exists()), None)
    if parent is not None and not parent.is_dir():
        want = f"a path under a directory ({parent} is a file)"
        raise ConfigError("command line", flag, want, value)


def _print_summary(m: dict, res, out: Path, args) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{len(res.trace)} requests → {out}", show_header=True)
    t.add_column("metric")
    t.add_column("value", justify="right")
    rows = [
        ("requests served / rejected", f"{m['requests']} / {m['rejected']}"),
        ("makespan", f"{m['makespan_s']:.3f} s"),
        (
            "prompt / generation throughput",
            f"{m['prompt_tok_per_s']:.0f} / {m['gen_tok_per_s']:.0f} tok/s",
        ),
        ("TTFT p50 / p99", f"{m['ttft_p50_ms']:.2f} / {m['ttft_p99_ms']:.2f} ms"),
        ("TPOT p50 / p99", f"{m['tpot_p50_ms']:.2f} / {m['tpot_p99_ms']:.2f} ms"),
        ("latency p50 / p99", f"{m['latency_p50_ms']:.1f} / {m['latency_p99_ms']:.1f} ms"),
        ("GPU / PIM busy", f"{100 * m['host_busy']:.0f}% / {100 * m['pim_busy']:.0f}%"),
        ("energy per token", f"{m['J_per_token']:.3f} J"),
        ("SLO attainment", f"{100 * m['slo_attainment']:.0f}%"),
        ("preemptions", f"{m['preemptions']}"),
        ("simulated in", f"{res.run_s:.3f} s (+ {res.compile_s:.1f} s compile)"),
    ]
    for a, b in rows:
        t.add_row(a, b)
    if args.log_level in ("DEBUG", "INFO"):
        Console(stderr=True).print(t)
    else:  # one line always says where the results went
        n, served = len(res.trace), m["requests"]
        what = f"{n} requests" if served == n else f"{served} of {n} requests served"
        print(f"dse.serving: {what} -> {out}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
