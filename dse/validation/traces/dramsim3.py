"""DRAMsim3 ground truth for a DRAM channel's external interface.

Writes DRAMsim3 request traces (``0xADDR READ|WRITE cycle``, one request per line), runs an
external ``dramsim3main`` binary on every INI of a directory and collects one CSV row per
(INI, measurement): sustained streaming / random bandwidth and the average read latency, idle
and loaded. The simulator itself is not part of this repository; see docs/oracle/dramsim3.md.

Our traces target channel 0 only: DRAMsim3's trace CPU hands at most one request per cycle to
the memory system, which is enough to saturate one channel of every shipped protocol (one burst
takes >= 2 cycles) but not eight HBM channels. The built-in ``-s stream`` / ``-s random``
generators are run too (all channels, one request per cycle, 1/3 writes for random).

    python -m dse.validation.traces.dramsim3 --sim /path/to/dramsim3main.out \
        --ini-dir ../shared/reference/dram --ini-dir ../shared/reference/pim/neupims \
        --out dse/validation/data/corpus_dramsim3.csv

Every row's ``generator`` + ``generator_args`` (JSON) re-create its trace bit for bit with
:func:`make_trace` (``write_trace``); the INI layout is parsed by :func:`parse_ini`.
"""

from __future__ import annotations

import argparse
import configparser
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dse.process import command
from dse.validation.traces import write_corpus

SIMULATOR = "dramsim3"

COLUMNS = [
    "simulator",
    "sim_commit",
    "config",
    "config_dir",
    "generator",
    "generator_args",
    "family",
    "cycles",
    "tCK_ns",
    "protocol",
    "channels",
    "active_channels",
    "ranks",
    "bus_width_bits",
    "BL",
    "burst_cycles",
    "request_bytes",
    "data_rate_MTps",
    "peak_channel_GBps",
    "peak_GBps",
    "row_buf_policy",
    "address_mapping",
    "queue_structure",
    "trans_queue_size",
    "CL",
    "tRCD",
    "tRP",
    "tRAS",
    "tCCD_S",
    "tCCD_L",
    "tFAW",
    "tRFC",
    "tREFI",
    "requests",
    "reads_done",
    "writes_done",
    "row_hit_rate",
    "bandwidth_GBps",
    "bandwidth_per_channel_GBps",
    "peak_fraction",
    "avg_read_latency_cycles",
    "avg_read_latency_ns",
    "wall_s",
]


# --------------------------------------------------------------------------- INI layout


def _log2(x: int) -> int:
    """DRAMsim3's LogBase2: floor(log2(x)), 0 for x <= 1."""
    n = 0
    while x > 1:
        x //= 2
        n += 1
    return n


@dataclass(frozen=True)
class Layout:
    """The parts of a DRAMsim3 INI that the trace writer and the CSV need.

    Mirrors DRAMsim3's Config: InitSystemParams, InitDRAMParams (burst_cycle per protocol,
    column rescaling for GDDR/HBM), CalculateSize (ranks) and SetAddressMapping (bit fields).
    """

    protocol: str
    channels: int
    ranks: int
    bankgroups: int
    banks_per_group: int
    rows: int
    columns: int  # after DRAMsim3's GDDR (*BL) / HBM (*2) rescaling
    bus_width: int
    BL: int
    burst_cycle: int
    tCK: float
    address_mapping: str
    row_buf_policy: str
    queue_structure: str
    trans_queue_size: int
    timing: dict

    @property
    def request_bytes(self) -> int:
        return self.bus_width // 8 * self.BL

    @property
    def shift_bits(self) -> int:
        return _log2(self.request_bytes)

    def field_widths(self) -> dict[str, int]:
        return {
            "ch": _log2(self.channels),
            "ra": _log2(self.ranks),
            "bg": _log2(self.bankgroups),
            "ba": _log2(self.banks_per_group),
            "ro": _log2(self.rows),
            "co": _log2(self.columns) - _log2(self.BL),
        }

    def field_positions(self) -> dict[str, int]:
        """Bit position of each field above shift_bits; the last token is the lowest."""
        widths = self.field_widths()
        tokens = [self.address_mapping[i : i + 2] for i in range(0, 12, 2)]
        pos, out = 0, {}
        for tok in reversed(tokens):
            out[tok] = pos
            pos += widths[tok]
        return out

    def local_bits(self) -> int:
        """Address bits of one channel (every field but ``ch``)."""
        w = self.field_widths()
        return sum(v for k, v in w.items() if k != "ch")

    def channel_address(self, local: np.ndarray, channel: int = 0) -> np.ndarray:
        """Byte addresses of channel-local request indices.

        The bits of ``local`` fill the non-channel fields in the INI's own order (lowest field
        first), so consecutive indices walk the channel exactly as a sequential byte stream
        walks the whole address space, minus the channel field.
        """
        widths = self.field_widths()
        pos = self.field_positions()
        local = np.asarray(local, dtype=np.uint64)
        out = np.zeros_like(local)
        shift = 0
        for tok in sorted((t for t in pos if t != "ch"), key=lambda t: pos[t]):
            w = widths[tok]
            field = (local >> np.uint64(shift)) & np.uint64((1 << w) - 1)
            out |= field << np.uint64(pos[tok])
            shift += w
        out |= np.uint64(channel) << np.uint64(pos["ch"])
        return out << np.uint64(self.shift_bits)

    @property
    def data_rate_MTps(self) -> float:
        """Transfers per second per pin: BL beats in burst_cycle clocks."""
        return self.BL / self.burst_cycle / self.tCK * 1e3

    @property
    def peak_channel_GBps(self) -> float:
        return self.request_bytes / (self.burst_cycle * self.tCK)

    @property
    def row_cycle(self) -> int:
        t = self.timing
        return t["tRAS"] + t["tRP"]


_NUM = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_PROTOCOLS = ("DDR3", "DDR4", "GDDR5", "GDDR5X", "GDDR6", "LPDDR", "LPDDR3", "LPDDR4")


def parse_ini(path: str | os.PathLike) -> Layout:
    """Parse a DRAMsim3 INI with DRAMsim3's defaults; raise ValueError if it is not one."""
    cp = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), strict=False)
    cp.optionxform = str
    with open(path) as fh:
        text = fh.read()
    try:
        cp.read_string(text)
    except configparser.Error as exc:
        raise ValueError(f"{path}: not an INI DRAMsim3 reads ({exc})") from exc
    if not cp.has_section("dram_structure") or not cp.has_section("timing"):
        raise ValueError(f"{path}: no [dram_structure]/[timing] sections (not DRAMsim3)")

    def num(sec: str, key: str, default: float, conv=float) -> float:
        # INIReader: strtol/strtod on the value; no leading number -> the default
        m = _NUM.match(cp.get(sec, key, fallback="").strip())
        return conv(float(m.group(0))) if m else default

    def gi(sec: str, key: str, default: int) -> int:
        return int(num(sec, key, default, int))

    protocol = cp.get("dram_structure", "protocol", fallback="DDR3").strip()
    if protocol not in (*_PROTOCOLS, "HBM", "HBM2"):
        raise ValueError(f"{path}: protocol {protocol} not simulated here")
    bankgroups = gi("dram_structure", "bankgroups", 2)
    bpg = gi("dram_structure", "banks_per_group", 2)
    bg_enable = cp.get("dram_structure", "bankgroup_enable", fallback="true").lower()
    if bg_enable in ("false", "0", "no", "off"):
        bpg *= bankgroups
        bankgroups = 1
    rows = gi("dram_structure", "rows", 1 << 16)
    columns = gi("dram_structure", "columns", 1 << 10)
    device_width = gi("dram_structure", "device_width", 8)
    BL = gi("dram_structure", "BL", 8)
    if BL == 0:
        raise ValueError(f"{path}: BL=0 (ideal bandwidth) not measured")
    div = {"GDDR5": 4, "GDDR5X": 8, "GDDR6": 16}.get(protocol, 2)
    burst_cycle = BL // div
    if protocol.startswith("GDDR"):
        columns *= BL
    elif protocol.startswith("HBM"):
        columns *= 2
    channel_size = gi("system", "channel_size", 1024)
    channels = gi("system", "channels", 1)
    bus_width = gi("system", "bus_width", 64)
    devices_per_rank = bus_width // device_width
    page = columns * device_width // 8
    megs_per_bank = page * (rows // 1024) // 1024
    megs_per_rank = megs_per_bank * bankgroups * bpg * devices_per_rank
    ranks = 1 if megs_per_rank > channel_size else channel_size // megs_per_rank
    keys = {
        "CL": 12,
        "CWL": 12,
        "tRCD": 10,
        "tRCDRD": 24,
        "tRCDWR": 20,
        "tRP": 10,
        "tRAS": 24,
        "tCCD_S": 4,
        "tCCD_L": 6,
        "tFAW": 50,
        "tRFC": 74,
        "tREFI": 7800,
        "tWTR_S": 5,
        "tWTR_L": 5,
        "tRTRS": 2,
        "tWR": 10,
        "tRRD_S": 4,
        "tRRD_L": 4,
    }
    timing = {k: gi("timing", k, v) for k, v in keys.items()}
    if protocol in ("GDDR5", "GDDR5X", "GDDR6", "HBM", "HBM2"):
        timing["tRCD"] = timing["tRCDRD"]  # DRAMsim3 uses tRCDRD for reads on these
    return Layout(
        protocol=protocol,
        channels=channels,
        ranks=ranks,
        bankgroups=bankgroups,
        banks_per_group=bpg,
        rows=rows,
        columns=columns,
        bus_width=bus_width,
        BL=BL,
        burst_cycle=burst_cycle,
        tCK=num("timing", "tCK", 1.0),
        address_mapping=cp.get("system", "address_mapping", fallback="chrobabgraco").strip(),
        row_buf_policy=cp.get("system", "row_buf_policy", fallback="OPEN_PAGE").strip(),
        queue_structure=cp.get("system", "queue_structure", fallback="PER_BANK").strip(),
        trans_queue_size=gi("system", "trans_queue_size", 32),
        timing=timing,
    )


# --------------------------------------------------------------------------- trace writers


@dataclass(frozen=True)
class TraceSpec:
    """One of our generated traces (all requests target channel ``channel``).

    kind: ``stream`` (consecutive channel-local indices), ``random`` (uniform indices,
    ``np.random.default_rng(seed)``). ``write_every``: every n-th request is a write (0: none).
    ``gap``: cycles between request arrival times (0: all at cycle 0, i.e. as fast as the
    controller accepts them). ``start``: first channel-local index of a stream.
    """

    kind: str
    n: int
    gap: int = 0
    write_every: int = 0
    seed: int = 0
    channel: int = 0
    start: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TraceSpec:
        return cls(**json.loads(text))


def trace_requests(layout: Layout, spec: TraceSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(addresses, is_write, arrival cycle) of a trace."""
    span = 1 << layout.local_bits()
    if spec.kind == "stream":
        local = (np.arange(spec.n, dtype=np.uint64) + np.uint64(spec.start)) % np.uint64(span)
    elif spec.kind == "random":
        rng = np.random.default_rng(spec.seed)
        local = rng.integers(0, span, size=spec.n, dtype=np.uint64)
    else:
        raise ValueError(f"unknown trace kind {spec.kind!r}")
    addr = layout.channel_address(local, spec.channel)
    idx = np.arange(spec.n)
    is_write = (
        (idx % spec.write_every == spec.write_every - 1)
        if spec.write_every
        else np.zeros(spec.n, bool)
    )
    cycle = idx.astype(np.int64) * spec.gap
    return addr, is_write, cycle


def trace_lines(layout: Layout, spec: TraceSpec) -> Iterator[str]:
    addr, is_write, cycle = trace_requests(layout, spec)
    for a, w, c in zip(addr.tolist(), is_write.tolist(), cycle.tolist(), strict=True):
        yield f"0x{a:x} {'WRITE' if w else 'READ'} {c}\n"


def write_trace(layout: Layout, spec: TraceSpec, path: str | os.PathLike) -> int:
    n = 0
    with open(path, "w") as fh:
        chunk: list[str] = []
        for line in trace_lines(layout, spec):
            chunk.append(line)
            n += 1
            if len(chunk) >= 65536:
                fh.writelines(chunk)
                chunk.clear()
        fh.writelines(chunk)
    return n


# --------------------------------------------------------------------------- measurement plan


@dataclass(frozen=True)
class Measurement:
    family: str
    generator: str  # "trace" (ours) or "builtin"
    args: dict
    cycles: int

    def args_json(self) -> str:
        return json.dumps(self.args, sort_keys=True)


def idle_gap(layout: Layout) -> int:
    """Cycles between idle-latency reads: well past one row cycle plus a read."""
    t = layout.timing
    need = 2 * (layout.row_cycle + t["tRCD"] + t["CL"] + layout.burst_cycle)
    return int(max(100, math.ceil(need / 50) * 50))


def plan(layout: Layout, cycles: int, idle_reads: int, seed: int) -> list[Measurement]:
    """The measurements of one INI (the same for every INI, scaled by its timing)."""
    gap = idle_gap(layout)
    idle_cycles = idle_reads * gap + 4 * gap
    sat = cycles  # the trace CPU takes <= 1 request / cycle: never runs dry
    specs = [
        ("stream_read", TraceSpec("stream", sat), cycles),
        ("stream_write", TraceSpec("stream", sat, write_every=1), cycles),
        ("stream_mixed", TraceSpec("stream", sat, write_every=3), cycles),
        ("random_read", TraceSpec("random", sat, seed=seed), cycles),
        ("random_mixed", TraceSpec("random", sat, write_every=3, seed=seed), cycles),
        ("latency_idle_random", TraceSpec("random", idle_reads, gap=gap, seed=seed), idle_cycles),
        ("latency_idle_stream", TraceSpec("stream", idle_reads, gap=gap), idle_cycles),
    ]
    out = [Measurement(f, "trace", asdict(s), c) for f, s, c in specs]
    out.append(Measurement("builtin_stream", "builtin", {"stream": "stream"}, cycles))
    out.append(Measurement("builtin_random", "builtin", {"stream": "random"}, cycles))
    return out


# --------------------------------------------------------------------------- running


def sim_commit(sim: str, given: str | None) -> str:
    if given:
        return given
    here = Path(sim).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True
        )
        if out.returncode == 0:
            return out.stdout.strip()
    except OSError:
        pass
    return "unknown"


def _collect(stats: dict, layout: Layout) -> dict:
    chans = [stats[k] for k in sorted(stats, key=int)]
    reads = sum(c["num_reads_done"] for c in chans)
    writes = sum(c["num_writes_done"] for c in chans)
    bw = sum(c["average_bandwidth"] for c in chans)
    lat = (
        sum(c["average_read_latency"] * c["num_reads_done"] for c in chans) / reads
        if reads
        else float("nan")
    )
    cmds = sum(c.get("num_read_cmds", 0) + c.get("num_write_cmds", 0) for c in chans)
    hits = sum(c.get("num_read_row_hits", 0) + c.get("num_write_row_hits", 0) for c in chans)
    active = sum(1 for c in chans if c["num_reads_done"] + c["num_writes_done"] > 0)
    return {
        "reads_done": reads,
        "writes_done": writes,
        "bandwidth_GBps": bw,
        "active_channels": max(active, 1),
        "avg_read_latency_cycles": lat,
        "avg_read_latency_ns": lat * layout.tCK,
        "row_hit_rate": hits / cmds if cmds else float("nan"),
    }


def run_one(sim: str, ini: Path, layout: Layout, m: Measurement, workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [str(Path(sim).resolve()), str(ini.resolve()), "-c", str(m.cycles), "-o", str(workdir)]
    requests = ""
    if m.generator == "trace":
        spec = TraceSpec(**m.args)
        tpath = workdir.resolve() / "trace.txt"
        requests = write_trace(layout, spec, tpath)
        cmd += ["-t", str(tpath)]
    else:
        cmd += ["-s", m.args["stream"]]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{ini.name} {m.family}: rc={proc.returncode} {proc.stderr[-400:]}")
    with open(workdir / "dramsim3.json") as fh:
        stats = json.load(fh)
    res = _collect(stats, layout)
    if m.generator == "trace":
        res["active_channels"] = 1
    res["requests"] = requests
    res["wall_s"] = round(wall, 3)
    for name in ("trace.txt", "dramsim3epoch.json"):
        (workdir / name).unlink(missing_ok=True)
    return res


def row_for(layout: Layout, ini: Path, m: Measurement, res: dict, commit: str) -> dict:
    t = layout.timing
    peak = layout.peak_channel_GBps
    row = {
        "simulator": SIMULATOR,
        "sim_commit": commit,
        "config": ini.name,
        "config_dir": ini.parent.name,
        "generator": f"dse.validation.traces.dramsim3:{m.generator}",
        "generator_args": m.args_json(),
        "family": m.family,
        "cycles": m.cycles,
        "tCK_ns": layout.tCK,
        "protocol": layout.protocol,
        "channels": layout.channels,
        "ranks": layout.ranks,
        "bus_width_bits": layout.bus_width,
        "BL": layout.BL,
        "burst_cycles": layout.burst_cycle,
        "request_bytes": layout.request_bytes,
        "data_rate_MTps": round(layout.data_rate_MTps, 3),
        "peak_channel_GBps": round(peak, 6),
        "peak_GBps": round(peak * layout.channels, 6),
        "row_buf_policy": layout.row_buf_policy,
        "address_mapping": layout.address_mapping,
        "queue_structure": layout.queue_structure,
        "trans_queue_size": layout.trans_queue_size,
        "CL": t["CL"],
        "tRCD": t["tRCD"],
        "tRP": t["tRP"],
        "tRAS": t["tRAS"],
        "tCCD_S": t["tCCD_S"],
        "tCCD_L": t["tCCD_L"],
        "tFAW": t["tFAW"],
        "tRFC": t["tRFC"],
        "tREFI": t["tREFI"],
        **res,
    }
    row["bandwidth_per_channel_GBps"] = row["bandwidth_GBps"] / row["active_channels"]
    row["peak_fraction"] = row["bandwidth_per_channel_GBps"] / peak
    for k in ("bandwidth_GBps", "bandwidth_per_channel_GBps", "peak_fraction"):
        row[k] = round(row[k], 6)
    for k in ("avg_read_latency_cycles", "avg_read_latency_ns", "row_hit_rate"):
        row[k] = round(row[k], 4) if math.isfinite(row[k]) else ""  # no reads
    return row


def find_inis(dirs: list[str]) -> tuple[list[tuple[Path, Layout]], list[tuple[Path, str]]]:
    ok, skipped = [], []
    for d in dirs:
        for p in sorted(Path(d).glob("*.ini")):
            try:
                ok.append((p, parse_ini(p)))
            except ValueError as exc:
                skipped.append((p, str(exc)))
    return ok, skipped


@command
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sim", required=True, help="path to dramsim3main(.out)")
    ap.add_argument("--ini-dir", action="append", required=True, help="repeatable")
    ap.add_argument("--out", required=True)
    ap.add_argument("--cycles", type=int, default=200_000)
    ap.add_argument("--idle-reads", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--commit", default=None, help="DRAMsim3 commit (default: git of --sim)")
    ap.add_argument("--only", default=None, help="substring filter on INI names")
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args(argv)

    commit = sim_commit(a.sim, a.commit)
    inis, skipped = find_inis(a.ini_dir)
    if a.only:
        inis = [(p, lay) for p, lay in inis if a.only in p.name]
    for p, why in skipped:
        print(f"skip {p}: {why}", file=sys.stderr)
    work = Path(a.workdir or tempfile.mkdtemp(prefix="dramsim3_")).resolve()
    jobs = [(p, lay, m) for p, lay in inis for m in plan(lay, a.cycles, a.idle_reads, a.seed)]

    def go(i_job: tuple[int, tuple[Path, Layout, Measurement]]) -> dict:
        i, (p, lay, m) = i_job
        res = run_one(a.sim, p, lay, m, work / f"{i:05d}")
        row = row_for(lay, p, m, res, commit)
        print(
            f"{p.parent.name}/{p.name} {m.family}: {row['bandwidth_GBps']:.2f} GB/s "
            f"({row['peak_fraction']:.2f} of channel peak), lat "
            f"{row['avg_read_latency_ns']} ns [{res['wall_s']} s]",
            flush=True,
        )
        return row

    with ThreadPoolExecutor(max_workers=a.jobs) as ex:
        rows = list(ex.map(go, enumerate(jobs)))
    print(f"wrote {write_corpus(a.out, rows, COLUMNS)} rows to {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
