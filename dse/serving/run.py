"""One serving run end to end: a design point and a trace in, LLMServingSim's per-request
table, a step log and the metrics out. Used by ``python -m dse.serving`` and the studies."""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np
import pandas as pd

from dse.point import DesignPoint, decode_status, flag_invalid
from dse.precision import with_x64
from dse.serving import sim
from dse.serving.csvout import COLUMNS
from dse.serving.traces import Trace

__all__ = ["RunOutput", "run_point", "request_table", "step_lines"]


@dataclasses.dataclass
class RunOutput:
    trace: Trace
    arrays: sim.TraceArrays
    raw: dict[str, np.ndarray]  # sim.simulate's result
    metrics: dict[str, float]
    compile_s: float
    run_s: float


def options_for(trace: Trace, point: DesignPoint, **kw) -> sim.Options:
    """Options fitting a trace: slots for ``max_num_seqs``, tables to the longest request."""
    longest = int((trace.input_toks + trace.output_toks).max()) if len(trace) else 1
    return sim.Options(slots=max(int(point.policy.max_num_seqs), 1), max_len=longest + 1, **kw)


_SIM = {}


@with_x64
def run_point(point: DesignPoint, trace: Trace, per_step: bool = True, **kw) -> RunOutput:
    """Serve ``trace`` on ``point``. ``per_step``: one step per loop iteration (exact
    per-token times for the per-request table and a line per step); otherwise event
    skipping."""
    if len(trace) == 0:
        from dse.errors import ConfigError

        raise ConfigError(trace.source, "dataset", "at least one request", 0)
    ta = sim.TraceArrays.from_trace(trace)
    out_max = int(trace.output_toks.max())
    if per_step:
        steps = int(trace.output_toks.sum() + trace.input_toks.sum() + 4 * len(trace) + 64)
        kw = {"max_skip": 1, "log_iters": steps, "token_times": out_max, **kw}
    opt = options_for(trace, point, **kw)
    key = (opt, jax.tree_util.tree_structure(point), ta.arrival.shape)
    t0 = time.perf_counter()
    if key not in _SIM:

        def fn(p, t):
            r = sim.simulate(p, t, opt)
            return r, sim.summarize(p, t, r, opt)

        _SIM[key] = jax.jit(fn).lower(point, ta).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    raw, metrics = jax.block_until_ready(_SIM[key](point, ta))
    run_s = time.perf_counter() - t0
    raw = {k: np.asarray(v) for k, v in raw.items()}
    checked = flag_invalid({k: np.asarray(v).reshape(1) for k, v in metrics.items()})
    metrics = {k: v.item() for k, v in checked.items()}
    metrics["status_text"] = str(decode_status(np.asarray([metrics["status"]]))[0])
    return RunOutput(trace, ta, raw, metrics, compile_s, run_s)


def request_table(res: RunOutput, model_name: str, instance: int = 0) -> pd.DataFrame:
    """LLMServingSim's per-request rows (completion order; times in ns, ITL a list), from a
    ``per_step`` run. Rejected requests (they can never fit) are left out."""
    r, ta = res.raw, res.arrays
    arr = np.asarray(ta.arrival)
    out = np.asarray(ta.out)
    ok = (r["end_ns"] >= 0) & ~r["rejected"]
    rows = []
    for i in np.flatnonzero(ok):
        times = r["tok_t"][i, : out[i]]
        itl = np.diff(np.rint(times).astype(np.int64)) if out[i] > 1 else np.zeros(0, np.int64)
        end = int(round(r["end_ns"][i]))
        first = int(round(r["first_ns"][i]))
        rows.append(
            {
                "instance_id": instance,
                "request_id": int(ta.rid[i]),
                "model": model_name,
                "input": int(ta.inp[i]),
                "output": int(out[i]),
                "arrival": int(arr[i]),
                "end_time": end,
                "latency": end - int(arr[i]),
                "queuing_delay": int(round(r["admit_ns"][i])) - int(arr[i]),
                "TTFT": first - int(arr[i]),
                "TPOT": int(round((end - first) / (out[i] - 1))) if out[i] > 1 else 0,
                "ITL": [int(x) for x in itl],
                "_end": r["end_ns"][i],
            }
        )
    if not rows:  # nothing served (every request rejected): the header alone
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    df = pd.DataFrame(rows).sort_values(["_end", "request_id"], kind="stable")
    return df.drop(columns="_end").reset_index(drop=True)


def _si(x: float) -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.1f}{suffix}"
    return f"{x:.0f}"


def step_lines(res: RunOutput, weights_GB: float, kv_on_gpu: bool):
    """LLMServingSim's documented INFO step lines, one per logged iteration:
    ``step=… batch=… prompt_t=… tok/s decode_t=… tok/s npu_mem=… GB pim_busy=…% gpu_busy=…%``
    from the step's own token counts and busy time."""
    r = res.raw
    n = min(int(r["it"]), r["log_t"].shape[0])
    step = 0
    for i in range(n):
        k = int(r["log_k"][i])
        if k == 0:
            continue
        step += k
        dt = max(float(r["log_dt"][i]), 1e-9)
        host, pim, _ = r["log_busy"][i]
        mem = weights_GB + (r["log_kv"][i] * 1e-9 if kv_on_gpu else 0.0)
        yield (
            f"step={step} batch={int(r['log_batch'][i])} "
            f"prompt_t={_si(r['log_pre'][i] / dt * 1e9)} tok/s "
            f"decode_t={_si(r['log_dec'][i] / dt * 1e9)} tok/s npu_mem={mem:.1f} GB "
            f"pim_busy={100 * pim / dt:.0f}% gpu_busy={100 * host / dt:.0f}%"
        )
