"""Fuzzing every input path: generated (mostly malformed, some extreme) inputs for each file
format the project reads, the command-line overrides, the search and space settings, and
design points at the edges of the number range. Each case must end in a normal result or in
one :class:`~dse.errors.ConfigError` whose message is one line; never another exception, a
hang or an `ok` row with a non-finite or negative metric. A few whole command lines run as
processes: exit 0, or exit 2 with one line on stderr and no folder left behind.

Default run: 610 generated input cases, 300 extreme design points and 10 command lines
(``FUZZ_SCALE`` multiplies the generated ones; the slow target runs 5x). docs/reliability.md
lists what is checked and the counts (``FUZZ_REPORT=counts.json`` writes them).
"""

from __future__ import annotations

import json
import math
import os
import string
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dse import cli
from dse.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
FAST = settings(
    max_examples=1,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


def cases(n: int):
    """Hypothesis settings for ``n`` examples (times FUZZ_SCALE), reproducible."""
    return settings(FAST, max_examples=max(1, int(n * SCALE)))


COUNTS: dict[str, dict[str, int]] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    """With FUZZ_REPORT=path, write the cases tried per input path and how each ended
    (docs/reliability.md quotes them)."""
    yield
    path = os.environ.get("FUZZ_REPORT")
    if path:
        Path(path).write_text(json.dumps(COUNTS, indent=1, sort_keys=True) + "\n")


def one_line(fn, *args, **kw):
    """``fn(*args, **kw)``: its result, or None after a ConfigError of one line."""
    import inspect

    test = next((f.function for f in inspect.stack() if f.function.startswith("test_")), "?")
    tally = COUNTS.setdefault(test, {"cases": 0, "accepted": 0, "clean_error": 0})
    tally["cases"] += 1
    try:
        out = fn(*args, **kw)
    except ConfigError as err:
        text = err.oneline()
        assert "\n" not in text and text.strip(), repr(text)
        tally["clean_error"] += 1
        return None
    tally["accepted"] += 1
    return out


# --- values that break naive parsers ------------------------------------------------------
WEIRD_NUMBERS = st.sampled_from(
    [0, -1, 1, 2**31, 2**62, 2**63, 2**64, -(2**63), 10**30, 1e308, -1e308, 1e-320, 0.5]
)
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    WEIRD_NUMBERS,
    st.text(max_size=12),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
RAW_BYTES = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),  # deep nesting
    st.just(b"\xff\xfe\x00garbage"),
    st.just(b'{"a": NaN}'),
    st.just(b""),
)


def _write(tmp: Path, name: str, data: bytes | str) -> Path:
    p = tmp / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
    return p


# --- trace formats ------------------------------------------------------------------------
TRACE_ROW = st.fixed_dictionaries(
    {},
    optional={
        "input_toks": JSON_SCALARS,
        "output_toks": JSON_SCALARS,
        "arrival_time_ns": JSON_SCALARS,
        "input_tok_ids": JSON_VALUES,
        "output_tok_ids": JSON_VALUES,
    },
)
GOOD_ROW = st.fixed_dictionaries(
    {
        "input_toks": st.integers(1, 4096),
        "output_toks": st.integers(1, 512),
        "arrival_time_ns": st.integers(0, 10**12),
    }
)


@cases(120)
@given(
    rows=st.lists(st.one_of(TRACE_ROW, GOOD_ROW, JSON_VALUES), min_size=0, max_size=6),
    raw=st.one_of(st.none(), RAW_BYTES),
)
def test_jsonl_traces(tmp_path_factory, rows, raw):
    from dse.serving.traces import read_jsonl

    tmp = tmp_path_factory.mktemp("jsonl")
    text = raw if raw is not None else "\n".join(json.dumps(r) for r in rows)
    trace = one_line(read_jsonl, _write(tmp, "t.jsonl", text))
    if trace is not None:
        assert len(trace) >= 1
        assert (trace.input_toks >= 1).all() and (trace.output_toks >= 1).all()
        assert (trace.arrival_ns >= 0).all() and (trace.input_toks < 2**62).all()


@cases(60)
@given(
    lines=st.lists(st.one_of(st.integers(-5, 10**6).map(str), st.text(max_size=6)), max_size=6),
    header=st.sampled_from(["seq_len", "ch_idx,seq_len", "len", ""]),
    out=st.integers(-3, 600),
)
def test_neupims_csv_traces(tmp_path_factory, lines, header, out):
    from dse.serving.traces import read_neupims_csv

    tmp = tmp_path_factory.mktemp("csv")
    p = _write(tmp, "t.csv", "\n".join([header, *lines]))
    trace = one_line(read_neupims_csv, p, out)
    if trace is not None:
        assert (trace.input_toks >= 1).all() and (trace.output_toks == out).all()


# --- configs: cluster JSON, Hugging Face config.json, DRAM INI, AiM traces ---------------
def _cluster(mutation: dict) -> dict:
    inst = {
        "model_name": "meta-llama/Llama-3.1-8B",
        "hardware": "RTXPRO6000",
        "npu_mem": {"mem_size": 96, "mem_bw": 1597},
        "num_npus": 1,
        "tp_size": 1,
        "pp_size": 1,
        "pd_type": None,
    }
    node = {"num_instances": 1, "cpu_mem": {"mem_size": 128, "mem_bw": 256}, "instances": [inst]}
    cfg = {"num_nodes": 1, "link_bw": 16, "link_latency": 0, "nodes": [node]}
    for path, value in mutation.items():
        target = {"": cfg, "node": node, "instance": inst}[path.split(":")[0]]
        target[path.split(":")[1]] = value
    return cfg


CLUSTER_KEYS = st.sampled_from(
    [
        ":num_nodes",
        ":nodes",
        ":link_bw",
        "node:instances",
        "node:cpu_mem",
        "node:num_instances",
        "instance:tp_size",
        "instance:pp_size",
        "instance:model_name",
        "instance:hardware",
        "instance:npu_mem",
        "instance:num_npus",
    ]
)


@cases(80)
@given(
    mutation=st.dictionaries(CLUSTER_KEYS, JSON_VALUES, max_size=3),
    raw=st.one_of(st.none(), RAW_BYTES),
)
def test_cluster_configs(tmp_path_factory, mutation, raw):
    from dse.serving.cluster import read_cluster

    tmp = tmp_path_factory.mktemp("cluster")
    text = raw if raw is not None else json.dumps(_cluster(mutation))
    one_line(read_cluster, _write(tmp, "c.json", text))


HF_KEYS = st.sampled_from(
    [
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "intermediate_size",
        "vocab_size",
        "head_dim",
        "model_type",
        "torch_dtype",
        "tie_word_embeddings",
    ]
)


@cases(60)
@given(
    mutation=st.dictionaries(HF_KEYS, JSON_VALUES, max_size=3),
    raw=st.one_of(st.none(), RAW_BYTES),
)
def test_hf_configs(tmp_path_factory, mutation, raw):
    from dse.workload.llm import from_hf_config

    base = {
        "model_type": "llama",
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "vocab_size": 128256,
    }
    tmp = tmp_path_factory.mktemp("hf")
    text = raw if raw is not None else json.dumps({**base, **mutation})
    shape = one_line(from_hf_config, _write(tmp, "config.json", text))
    if shape is not None:
        assert shape.layers >= 1 and shape.hidden >= 1


INI_LINES = st.lists(
    st.one_of(
        st.sampled_from(["[dram_structure]", "[timing]", "[system]", "[other]", "["]),
        st.builds(
            "{}={}".format,
            st.sampled_from(
                [
                    "protocol",
                    "bankgroups",
                    "banks_per_group",
                    "rows",
                    "columns",
                    "device_width",
                    "BL",
                    "tCK",
                    "CL",
                    "tRCD",
                    "tRP",
                    "tRAS",
                    "channel_size",
                    "channels",
                    "bus_width",
                    "NUM_BANKS",
                ]
            ),
            st.one_of(st.integers(-5, 10**6).map(str), st.sampled_from(["HBM2", "DDR4", "x", ""])),
        ),
        st.text(max_size=20),
    ),
    max_size=25,
)


@cases(60)
@given(lines=INI_LINES, raw=st.one_of(st.none(), RAW_BYTES))
def test_dram_ini_files(tmp_path_factory, lines, raw):
    from dse.hw.dram import pim_fields_from_ini, read_ini

    tmp = tmp_path_factory.mktemp("ini")
    p = _write(tmp, "d.ini", raw if raw is not None else "\n".join(lines))
    cfg = one_line(read_ini, p)
    if cfg is not None:
        one_line(pim_fields_from_ini, cfg)


@cases(40)
@given(
    lines=st.lists(
        st.one_of(
            st.sampled_from(["MAC_ABK 0 1", "WR_GB 0 0 0", "EOC", "RD_MAC 0", "ACT 1 2"]),
            st.text(alphabet=string.ascii_uppercase + string.digits + " _", max_size=20),
        ),
        max_size=12,
    ),
    raw=st.one_of(st.none(), RAW_BYTES),
)
def test_aim_traces(tmp_path_factory, lines, raw):
    from dse.workload.pim_trace import load_aim_trace

    tmp = tmp_path_factory.mktemp("aim")
    one_line(load_aim_trace, _write(tmp, "t.trace", raw if raw is not None else "\n".join(lines)))


# --- overrides: the config layer ---------------------------------------------------------
FIELDS = sorted(cli.field_info())
OVERRIDE_VALUES = st.one_of(
    WEIRD_NUMBERS.map(str),
    st.sampled_from(["nan", "inf", "-inf", "true", "maybe", "null", "[]", "{}", "''", "1e999"]),
    st.integers(-10, 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
)


@cases(60)
@given(
    key=st.one_of(st.sampled_from(FIELDS), st.sampled_from(FIELDS).map(lambda k: k + "x")),
    value=OVERRIDE_VALUES,
    plus=st.booleans(),
)
def test_parameter_overrides(key, value, plus):
    """A parameter set on the command line to anything: composed and built, or one line
    naming it; a built point is a valid design point."""
    ov = f"{'+' if plus else ''}{key}={value}"

    def compose_and_build():
        cfg, prov = cli._compose(["space=single", ov])
        return cli.build(cfg, prov)

    one_line(compose_and_build)


AXIS_SPECS = st.one_of(
    st.lists(OVERRIDE_VALUES, max_size=4).map(lambda v: "[" + ",".join(v) + "]"),
    st.builds(
        "{{{}: [{}, {}, {}]}}".format,
        st.sampled_from(["range", "linspace", "logspace", "geomspace", "values", "bogus"]),
        WEIRD_NUMBERS,
        WEIRD_NUMBERS,
        st.one_of(WEIRD_NUMBERS, st.integers(-2, 10**12)),
    ),
)


@cases(50)
@given(
    key=st.sampled_from(
        [
            "hw.pim.banks",
            "hw.pim.tCK_ns",
            "hw.pim.tRCD_mac",
            "policy.sched",
            "workload.dtype",
            "hw.pim.nothere",
        ]
    ),
    spec=AXIS_SPECS,
    sampler=st.sampled_from(["grid", "sobol", "random", "lhs", "bogus"]),
    n=st.one_of(WEIRD_NUMBERS, st.integers(-3, 5000)),
)
def test_space_axes_and_samplers(key, spec, sampler, n):
    """An axis and a sampler set to anything: a space whose counts are exact non-negative
    integers (no wrap-around), or one line."""
    overrides = [
        "space=single",
        f"+space.axes.{key}={spec}",
        f"space.sampler={sampler}",
        f"space.n={n}",
    ]

    def compose_and_build():
        cfg, prov = cli._compose(overrides)
        return cli.build(cfg, prov)

    built = one_line(compose_and_build)
    if built is not None:
        space = built[2]
        assert isinstance(space.total_points, int) and 0 <= space.total_points <= 2**48


SEARCH_KEYS = st.sampled_from(
    [
        "search.minimize",
        "search.max_evals",
        "search.population",
        "search.generations",
        "search.tol",
        "search.lr",
        "search.patience",
        "search.seed",
        "search.grid_levels",
        "search.strategy",
        "search.objective",
    ]
)


@cases(40)
@given(key=SEARCH_KEYS, value=OVERRIDE_VALUES)
def test_search_settings(key, value):
    from dse.search.cli import problem_from

    def compose():
        cfg, prov = cli._compose([f"{key}={value}"], config_name="search")
        c, base, _ = cli.build(cfg, prov)
        return problem_from(c, base, "search")

    out = one_line(compose)
    if out is not None:
        _, settings_ = out
        assert settings_["population"] >= 1 and settings_["grid_levels"] >= 1
        assert settings_["max_evals"] is None or settings_["max_evals"] >= 1
        assert math.isfinite(settings_["tol"]) and settings_["tol"] >= 0


@cases(40)
@given(
    low=st.one_of(WEIRD_NUMBERS, st.floats(allow_nan=True, allow_infinity=True)),
    high=st.one_of(WEIRD_NUMBERS, st.floats(allow_nan=True, allow_infinity=True)),
    kind=st.sampled_from(["float", "int"]),
    log=st.booleans(),
)
def test_search_bounds(low, high, kind, log):
    from dse.search.params import parse_params

    path = "hw.pim.tCK_ns" if kind == "float" else "hw.pim.tRP"
    spec = {path: {"type": kind, "low": low, "high": high, "log": log}}
    params = one_line(parse_params, spec)
    if params is not None:
        q = params[0]
        assert math.isfinite(q.low) and math.isfinite(q.high) and q.low < q.high
        if kind == "int":
            assert len(q.values) <= (1 << 20)


# --- design points at the edges of the number range --------------------------------------
@cases(1)
@given(data=st.data())
def test_extreme_points_are_flagged_never_ok_with_bad_numbers(data):
    """300 design points of the GEMV model with timing, clock and sizes drawn from 1e-30 to
    1e300 (one call): every row is feasible with finite, non-negative metrics, or flagged
    with a status; never `ok` with NaN, inf or a negative value."""
    from dse.explore import evaluate_points
    from dse.point import is_feasible
    from tests.conftest import default_point

    base = default_point()
    keys = [
        "hw.pim.tCK_ns",
        "hw.pim.tRCD_mac",
        "hw.pim.tRP",
        "hw.pim.banks",
        "hw.pim.lanes",
        "hw.pim.row_bytes",
        "workload.K",
        "workload.M",
    ]
    n = max(50, int(300 * SCALE))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    pool = np.asarray([1e-30, 1e-9, 1e-3, 1.0, 7.0, 1e3, 1e9, 1e15, 1e30, 1e300])
    infos = cli.field_info()
    cols = {}
    for k in keys:
        v = rng.choice(pool, n)
        if infos[k].dtype.kind == "i":
            v = np.clip(np.round(v), 1, 2**62)
        cols[k] = v.astype(infos[k].dtype)
    metrics = evaluate_points(base, cols, "pim_gemv")[0]
    status = np.asarray(metrics["status"])
    ok = is_feasible(status)
    assert ok.any() and (~ok).any()  # both kinds of points drawn
    for name, v in metrics.items():
        v = np.asarray(v)
        if name == "status" or v.dtype.kind not in "iuf":
            continue
        good = v[ok].astype(np.float64)
        assert np.isfinite(good).all(), name
        assert (good >= 0).all(), name


# --- whole command lines -------------------------------------------------------------------
BAD_COMMANDS = [
    ["-m", "dse", "space=single", "+hw.pim.tRPP=5"],
    ["-m", "dse", "space=single", "hw.pim.tCK_ns=-1"],
    ["-m", "dse", "space=single", "+space.axes.hw.pim.tCK_ns={linspace: [0.5, 2, 100000000000]}"],
    [
        "-m",
        "dse",
        "space=single",
        "+space.axes.hw.pim.tRP={range:[1,65536]}",
        "+space.axes.hw.pim.tRAS={range:[1,65536]}",
        "+space.axes.hw.pim.tRCD_mac={range:[1,65536]}",
        "+space.axes.hw.pim.tCCD_mac={range:[1,65536]}",
    ],
    ["-m", "dse", "space=single", "output.dir=afile"],
    ["-m", "dse.search", "search.minimize=maybe"],
    ["-m", "dse.search", "search.max_evals=0"],
    [
        "-m",
        "dse.serving",
        "--cluster-config",
        "single_node_pim_instance.json",
        "--dataset",
        "fifo",
        "--output",
        "o.csv",
    ],
    [
        "-m",
        "dse.serving",
        "--cluster-config",
        "single_node_pim_instance.json",
        "--dataset",
        "example_trace.jsonl",
        "--output",
        ".",
        "--log-level",
        "WARNING",
    ],
    ["-m", "dse.merge", "afile"],
]


@pytest.mark.parametrize("argv", BAD_COMMANDS, ids=lambda a: " ".join(a[1:3])[:40])
def test_bad_command_lines_exit_2_with_one_line_and_leave_nothing(tmp_path, argv):
    (tmp_path / "afile").write_text("x")
    os.mkfifo(tmp_path / "fifo")
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = subprocess.run(
        [sys.executable, *argv, "hydra/job_logging=disabled"]
        if argv[1] == "dse"
        else [sys.executable, *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "DSE_HOST_DEVICES": "1"},
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in proc.stderr, lines
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    "kw", [{"input_len": 0}, {"input_len": -5}, {"output_len": 0}, {"n": 0}, {"rate": -1.0}]
)
def test_synthetic_lengths_are_refused_not_coerced(kw):
    """A synthetic trace asked for prompts of -5 tokens or outputs of 0 is refused (it was
    raised to 1 without a word)."""
    from dse.serving.traces import synthetic

    args = {"n": 4, "rate": 1.0, "input_dist": "fixed", **kw}
    with pytest.raises(ConfigError) as err:
        synthetic(**args)
    assert err.value.key == next(iter(kw))
