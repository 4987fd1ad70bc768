"""A DRAM channel's external interface: streaming / random bandwidth and idle read latency.

Closed forms (random reads: a cycle-level scheduler), from the timing and organisation
parameters of one channel (the fields :class:`~dse.hw.dram.DramConfig` holds plus the DRAMsim3
``[system]`` queue keys), of what DRAMsim3 (umd-memsys/DRAMsim3 at 29817593) measures on one
channel: sustained sequential and random read bandwidth, mixed read/write bandwidth with bus
turnaround, and the mean read latency of unloaded reads. Every function takes an
:class:`InterfaceParams` whose fields may be Python numbers, NumPy arrays or JAX arrays (float64
with ``jax_enable_x64``); results are NumPy floats for numbers and JAX arrays otherwise, so the
model can be swept, ``vmap``-ed and differentiated. Ground truth and measurements:
docs/oracle/dramsim3.md; agreement: :func:`evaluate_corpus_rows` and the "Model agreement"
section there.

Cycle counts are clock cycles of ``tCK``; ``burst`` is DRAMsim3's ``burst_cycle`` (BL/2 DDR,
LPDDR, HBM; BL/4 GDDR5; BL/8 GDDR5X; BL/16 GDDR6; configuration.cc:126-135). A request moves
``request_bytes = bus_width/8 * BL``; the interface peak is ``request_bytes / (burst tCK)``.

Mechanisms and equations (DRAMsim3 file:line in src/):

* **Column-to-column spacing** (timing.cc:13-30): two reads to the same bank group are
  ``rr_L = max(burst, tCCD_L)`` apart, to another bank group ``rr_S = max(burst, tCCD_S)``,
  to another rank ``burst + tRTRS``. ``bankgroup_enable = false`` (all GDDR INIs) folds the
  banks into one group and replaces every ``_L`` by ``_S`` (timing.cc:59-70).
* **Streaming read** (:func:`stream_read_GBps`). A sequential stream fills one row (``R``
  requests: the ``co`` field, ``log2(columns) - log2(BL)`` bits after DRAMsim3's GDDR x BL /
  HBM x 2 column scaling, configuration.cc:141-150, 347-403) and then moves to the next value
  of the address field just above ``co`` (``bg`` for DDR4/LPDDR/GDDR's ``rochrababgco``, ``ba``
  for HBM's ``rorabgbachco``). Alone in one bank group it runs at ``1/rr_L``. Two bank
  groups interleave at ``max(2 rr_S, rr_L)`` per pair, so the stream speeds up while the
  controller sees requests of the next bank group. The look-ahead is the queue structure:
  ``ScheduleTransaction`` (controller.cc:197-224) moves the *first* transaction whose
  per-bank command queue (``cmd_queue_size``, command_queue.cc:113-130) has room, so the read
  queue (``trans_queue_size``) holds only requests blocked behind full command queues. The
  next group's first request reaches its (empty) command queue once the requests still
  pending for the old group fit in ``W = trans_queue_size + cmd_queue_size * k``, ``k`` the
  banks those pending requests span (``k = 1`` when ``R >= W``, e.g. DDR4's 128-request
  rows and 8-deep queues: W = 40; ``k = 2`` for HBM's 32-request rows: W = 48). The new bank
  then needs ``t_open = tRCD`` (``+ tRP`` when it still holds an older row, i.e. when the
  stream comes back to it, after ``R x banks x ranks`` requests, within a refresh interval)
  plus two scheduling cycles, during which the old group issues ``n_open = ceil(t_open /
  rr_L)`` more reads, so ``d = W - n_open`` reads of the old group (and as many of the new)
  are served interleaved. Per group run of
  ``G`` requests (``R`` times the rows before the bank group changes)::

      cycles(G) = G rr_L - d max(0, 2 rr_L - max(rr_L, 2 rr_S)),   d = min(W - n_open, G/2)

  (measured on DDR4_8Gb_x8_3200: 37 interleaved reads per 128-read row, 728 cycles per row,
  exactly this). The round-robin over command queues (command_queue.cc:36-54) alternates the
  two banks. Refresh (refresh.cc:12-22, controller.cc:71-73) blocks the active rank ``tRFC``
  once per ``tREFI``: bandwidth ``x (1 - tRFC/tREFI)``.
* **Random read** (:func:`random_read_GBps`): one activation per request (rows are large, hit
  rate ~0). The rate bounds (activation windows ``4/tFAW`` per rank, GDDR's ``32/t32AW``,
  ``tRRD``, ``tRC`` over the banks, the data bus ``1/burst``, the command bus) are not reached:
  banks idle while others hold several requests, a READ loses its command slot to an ACT, a
  refresh closes rows whose READ had not issued. No closed form holds these without a fitted
  combination, so the controller itself runs cycle by cycle (:mod:`dse.hw.dram_scheduler`:
  read queue, per-bank command queues, round-robin issue, timing table, staggered refresh).
* **Mixed read/write** (:func:`mixed_GBps`): writes wait in ``write_buffer_`` and drain in a
  batch once the buffer is full (controller.cc:197-204), ``trans_queue_size`` writes at a
  time; each batch costs one read->write turnaround ``RL + burst - WL + tRTRS`` and one
  write->read turnaround ``WL + burst + tWTR`` (timing.cc:16, 23-26). Reads and writes
  otherwise move at the streaming or random rate. DRAMsim3 counts a write done when it is
  buffered (controller.cc:162-176), in steady state the same rate.
* **Idle read latency** (:func:`idle_read_latency_ns`), from the controller accepting the
  read to its data (controller.cc:53): row hit ``CL + AL + burst + 1``, closed bank
  ``+ tRCD``, row conflict ``+ tRP + tRCD`` (open page; close page issues READ_PRECHARGE,
  controller.cc:269-277, so every read sees a closed bank). Refresh: a rank refreshes every
  ``tREFI``, all its rows are precharged (``tRP``) and it is blocked ``tRFC``; a read arriving
  in that window ``w = tRP + tRFC`` (probability ``w/tREFI``) waits ``w/2`` on average and
  then finds its bank closed. Sequential reads (pattern ``"stream"``) are row hits except
  the first of each row and the first after each refresh of their rank (``gap/tREFI`` of
  them). Random reads find their bank closed unless it was activated since its rank's last
  refresh: with accesses to one bank ``gap N`` cycles apart (``N`` banks in the channel),
  ``P(open) = 1 - (x^-1)(1 - e^-x)``, ``x = tREFI/(gap N)``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from dse.hw.dram import DramConfig, read_ini
from dse.process import command

__all__ = [
    "InterfaceParams",
    "interface_params",
    "peak_GBps",
    "stream_read_GBps",
    "stream_write_GBps",
    "random_read_GBps",
    "mixed_GBps",
    "idle_read_latency_cycles",
    "idle_read_latency_ns",
    "refresh_factor",
    "evaluate_corpus_rows",
    "MODEL_NAME",
    "IDLE_GAP_CYCLES",
    "IN_SCOPE_FAMILIES",
]

#: Short name in the corpus's ``model`` column.
MODEL_NAME = "dram_interface"
#: Default spacing of unloaded reads (cycles); the corpus's idle traces use 150.
IDLE_GAP_CYCLES = 150.0
#: Corpus families the model claims (see :func:`evaluate_corpus_rows`).
IN_SCOPE_FAMILIES = (
    "stream_read",
    "random_read",
    "latency_idle_stream",
    "latency_idle_random",
)

#: DRAMsim3 configuration.cc defaults of the [system]/[timing] keys DramConfig does not hold.
_SYSTEM_DEFAULTS = {
    "system.address_mapping": "chrobabgraco",
    "system.queue_structure": "PER_BANK",
    "system.row_buf_policy": "OPEN_PAGE",
    "system.cmd_queue_size": "16",
    "system.trans_queue_size": "32",
    "system.refresh_policy": "RANK_LEVEL_STAGGERED",
    "timing.trtrs": "2",
    "timing.trcdrd": "24",
    "timing.trtp": "5",
    "timing.tppd": "0",
    "timing.t32aw": "330",
    "dram_structure.hbm_dual_cmd": "true",
}


class InterfaceParams(NamedTuple):
    """One channel's interface parameters, in clock cycles (a JAX pytree).

    Numeric fields may be numbers or arrays of one shape. The address-mapping-derived
    integers (``rows_per_group_run``) come from the INI's ``address_mapping`` string.
    """

    tCK_ns: Any
    request_bytes: Any
    burst: Any
    ranks: Any
    bankgroups: Any
    banks_per_group: Any
    reads_per_row: Any  #: requests per row (2**width of the ``co`` field)
    rows_per_group_run: Any  #: rows a sequential stream visits before the bank group changes
    AL: Any
    CL: Any
    CWL: Any
    tRCD: Any
    tRCD_rd: Any  #: ACT->READ: ``tRCDRD`` on GDDR/HBM, ``tRCD - AL`` otherwise (timing.cc:43-49)
    tRP: Any
    tRAS: Any
    tCCD_S: Any
    tCCD_L: Any
    tRRD_S: Any
    tRRD_L: Any
    tFAW: Any
    t32AW: Any  #: 32-activation window; ``inf`` where it does not apply (non-GDDR)
    tRTRS: Any
    tRTP: Any  #: READ->PRE (DRAMsim3 reads ``tRTP``, default 5)
    tPPD: Any  #: PRE->PRE in a rank (GDDR and LPDDR4 only, else 0)
    tWTR_S: Any
    tWTR_L: Any
    tRFC: Any
    tREFI: Any
    trans_queue: Any  #: ``trans_queue_size``: read queue / write buffer entries
    cmd_queue: Any  #: ``cmd_queue_size`` per command queue
    per_bank_queues: Any  #: 1.0 for ``PER_BANK``, 0.0 for ``PER_RANK``
    open_page: Any  #: 1.0 for ``OPEN_PAGE``, 0.0 for ``CLOSE_PAGE``
    dual_cmd: Any  #: 1.0 when a row and a column command may issue in one cycle (HBM)

    @property
    def banks(self):
        return self.bankgroups * self.banks_per_group


def _xp(*values: Any):
    """jax.numpy if any value is a JAX array (or tracer), else numpy."""
    for v in values:
        if type(v).__module__.startswith(("jax", "jaxlib")):
            import jax.numpy as jnp

            return jnp
    return np


def _ns(p: InterfaceParams):
    return _xp(*p)


def _ilog2(x: int) -> int:
    """DRAMsim3's LogBase2: floor(log2(x)), 0 for x <= 1."""
    return max(int(x), 1).bit_length() - 1


def interface_params(cfg: DramConfig, *, hbm_column_prefetch: bool = True) -> InterfaceParams:
    """Extract :class:`InterfaceParams` from a DRAMsim3-format :class:`DramConfig`.

    ``hbm_column_prefetch``: stock DRAMsim3 doubles HBM columns (configuration.cc:149), which
    doubles the requests per row and the page size used to derive the rank count; NeuPIMs'
    NewtonSim does not. The corpus was measured with stock DRAMsim3, hence the default.
    """
    raw = {k.lower(): v for k, v in cfg.raw.items()}

    def get(key: str) -> str:
        v = raw.get(key.lower(), "")
        return (v or _SYSTEM_DEFAULTS[key]).strip()

    def geti(key: str) -> int:
        text = get(key).split()[0]
        try:
            return int(float(text))
        except ValueError:
            return int(_SYSTEM_DEFAULTS[key])

    proto = cfg.protocol.upper()
    gddr, hbm = proto.startswith("GDDR"), proto.startswith("HBM")
    columns = cfg.columns * (cfg.BL if gddr else 1) * (2 if hbm and hbm_column_prefetch else 1)
    reads_per_row = 1 << max(_ilog2(columns) - _ilog2(cfg.BL), 0)
    # ranks as DRAMsim3's CalculateSize (configuration.cc:44-61), with its column scaling
    devices = max(cfg.bus_width // cfg.device_width, 1)
    page = columns * cfg.device_width // 8
    megs_per_rank = page * (cfg.rows // 1024) // 1024 * cfg.banks * devices
    ranks = (
        1
        if megs_per_rank <= 0 or megs_per_rank > cfg.channel_size_MB
        else (cfg.channel_size_MB // megs_per_rank)
    )
    # rows a stream visits before the bank group changes: the fields above ``co`` in the
    # mapping (channel excluded: a channel-local stream), lowest first
    mapping = get("system.address_mapping")
    tokens = [mapping[i : i + 2] for i in range(0, len(mapping), 2)]
    widths = {
        "ra": _ilog2(ranks),
        "bg": _ilog2(cfg.bankgroups),
        "ba": _ilog2(cfg.banks_per_group),
        "ro": _ilog2(cfg.rows),
        "ch": 0,
        "co": 0,
    }
    above = [t for t in reversed(tokens) if t not in ("co", "ch")]
    run = 1
    for t in above:
        if t == "bg":
            break
        run <<= widths.get(t, 0)
    if cfg.bankgroups <= 1:
        run = 1 << 30  # one bank group: never changes
    f = float
    return InterfaceParams(
        tCK_ns=f(cfg.tCK_ns),
        request_bytes=f(cfg.bus_width // 8 * cfg.BL),
        burst=f(cfg.burst_cycles),
        ranks=f(ranks),
        bankgroups=f(cfg.bankgroups),
        banks_per_group=f(cfg.banks_per_group),
        reads_per_row=f(reads_per_row),
        rows_per_group_run=f(run),
        AL=f(cfg.AL),
        CL=f(cfg.CL),
        CWL=f(cfg.CWL),
        tRCD=f(cfg.tRCD),
        tRCD_rd=f(geti("timing.trcdrd")) if (gddr or hbm) else f(cfg.tRCD - cfg.AL),
        tRP=f(cfg.tRP),
        tRAS=f(cfg.tRAS),
        tCCD_S=f(cfg.tCCD_S),
        tCCD_L=f(cfg.tCCD_L),
        tRRD_S=f(cfg.tRRD_S),
        tRRD_L=f(cfg.tRRD_L),
        tFAW=f(cfg.tFAW),
        t32AW=f(geti("timing.t32aw")) if gddr else math.inf,
        tRTRS=f(geti("timing.trtrs")),
        tRTP=f(geti("timing.trtp")),
        tPPD=f(geti("timing.tppd")) if (gddr or proto == "LPDDR4") else 0.0,
        tWTR_S=f(cfg.tWTR_S),
        tWTR_L=f(cfg.tWTR_L),
        tRFC=f(cfg.tRFC),
        tREFI=f(cfg.tREFI),
        trans_queue=f(geti("system.trans_queue_size")),
        cmd_queue=f(geti("system.cmd_queue_size")),
        per_bank_queues=0.0 if get("system.queue_structure").upper() == "PER_RANK" else 1.0,
        open_page=0.0 if get("system.row_buf_policy").upper() == "CLOSE_PAGE" else 1.0,
        dual_cmd=1.0
        if hbm and get("dram_structure.hbm_dual_cmd").lower() in ("true", "1", "yes", "on")
        else 0.0,
    )


# --------------------------------------------------------------------------- helpers


def _col_spacing(p: InterfaceParams):
    """(rr_S, rr_L): read-to-read spacing to another / the same bank group (cycles)."""
    xp = _ns(p)
    rr_s = xp.maximum(p.burst, p.tCCD_S)
    rr_l = xp.where(p.bankgroups > 1, xp.maximum(p.burst, p.tCCD_L), rr_s)
    return rr_s, rr_l


def peak_GBps(p: InterfaceParams):
    """Interface peak of one channel: one request per burst (GB/s = bytes/ns)."""
    return p.request_bytes / (p.burst * p.tCK_ns)


def refresh_factor(p: InterfaceParams):
    """Fraction of time a rank is not blocked by refresh: ``1 - tRFC/tREFI``."""
    xp = _ns(p)
    return xp.clip(1.0 - p.tRFC / p.tREFI, 0.0, 1.0)


def stream_cycles_per_request(p: InterfaceParams):
    """Mean cycles per request of a sequential read stream, refresh excluded."""
    xp = _ns(p)
    rr_s, rr_l = _col_spacing(p)
    R = p.reads_per_row
    # look-ahead: read queue + the command queues of the banks the pending requests span
    k = xp.where(p.per_bank_queues > 0, 1.0, 0.0)
    win = p.trans_queue + p.cmd_queue * xp.maximum(k, 1.0 - k)
    for _ in range(3):  # k = number of rows the window spans (fixed point, converges fast)
        k_new = xp.where(p.per_bank_queues > 0, xp.ceil(win / R), 1.0)
        win = p.trans_queue + p.cmd_queue * k_new
    G = R * p.rows_per_group_run  # requests per bank-group run
    # does the stream return to a bank before its rank refreshed? then it finds a row open
    revisit = R * p.banks * p.ranks * rr_l
    p_open = xp.clip(1.0 - revisit / p.tREFI, 0.0, 1.0)
    t_open = p.tRCD + p.tRP * p_open * p.open_page + 2.0
    n_open = xp.ceil(t_open / rr_l)
    d = xp.clip(win - n_open, 0.0, G / 2.0)
    gain = xp.maximum(2.0 * rr_l - xp.maximum(rr_l, 2.0 * rr_s), 0.0)
    cycles = G * rr_l - d * gain
    return xp.maximum(cycles / G, p.burst)


def stream_read_GBps(p: InterfaceParams):
    """Sustained sequential read bandwidth of one channel (GB/s)."""
    return p.request_bytes / (stream_cycles_per_request(p) * p.tCK_ns) * refresh_factor(p)


def stream_write_GBps(p: InterfaceParams):
    """Sequential write bandwidth: the same column spacing as reads (timing.cc:27-28)."""
    return stream_read_GBps(p)


def random_cycles_per_request(p: InterfaceParams):
    """Mean cycles per request of saturating uniformly random reads, refresh included.

    Runs DRAMsim3's controller cycle by cycle (:mod:`dse.hw.dram_scheduler`).
    """
    from dse.hw.dram_scheduler import random_read_cycles

    return random_read_cycles(p)


def random_read_GBps(p: InterfaceParams):
    """Sustained random read bandwidth of one channel (GB/s), refresh included."""
    return p.request_bytes / (random_cycles_per_request(p) * p.tCK_ns)


def mixed_GBps(p: InterfaceParams, write_fraction, pattern: str = "stream", random_cycles=None):
    """Bandwidth of a read/write mix (GB/s): batched write drains with bus turnarounds.

    ``write_fraction`` in [0, 1]; ``pattern`` ``"stream"`` or ``"random"``
    (``random_cycles``: :func:`random_cycles_per_request` of ``p`` where already computed).
    Writes drain in batches of ``trans_queue_size``; each batch pays read->write and
    write->read turnaround.
    """
    xp = _xp(*p, write_fraction)
    f = xp.clip(xp.asarray(write_fraction, dtype=float), 0.0, 1.0)
    if pattern == "stream":
        per = stream_cycles_per_request(p) / refresh_factor(p)  # refresh included
    elif pattern == "random":
        per = random_cycles_per_request(p) if random_cycles is None else random_cycles
    else:
        raise ValueError(f"pattern must be 'stream' or 'random', not {pattern!r}")
    rl, wl = p.AL + p.CL, p.AL + p.CWL
    r2w = rl + p.burst - wl + p.tRTRS
    w2r = wl + p.burst + (p.tWTR_S + p.tWTR_L) / 2.0
    turn = xp.maximum(r2w, 0.0) + w2r
    batch = p.trans_queue
    # per request: its own service time + the turnaround of its share of a batch
    has_both = xp.where((f > 0) & (f < 1), 1.0, 0.0)
    cyc = per + has_both * f * turn / batch / refresh_factor(p)
    return p.request_bytes / (cyc * p.tCK_ns)


def idle_read_latency_cycles(p: InterfaceParams, pattern: str = "random", gap=IDLE_GAP_CYCLES):
    """Mean latency of unloaded reads (cycles, acceptance to data), refresh included.

    ``pattern``: ``"hit"``, ``"closed"``, ``"conflict"`` (one row-buffer state, no refresh),
    ``"stream"`` (consecutive addresses) or ``"random"`` (uniform addresses), the last two
    with reads ``gap`` cycles apart.
    """
    xp = _xp(*p, gap)
    hit = p.AL + p.CL + p.burst + 1.0
    closed = hit + p.tRCD
    conflict = closed + p.tRP
    hit_op = xp.where(p.open_page > 0, hit, closed)
    conflict_op = xp.where(p.open_page > 0, conflict, closed)
    if pattern == "hit":
        return hit_op
    if pattern == "closed":
        return closed
    if pattern == "conflict":
        return conflict_op
    # blocked window: precharge + refresh, and a read whose column command has not issued
    # when the refresh becomes pending (it arrived up to tRCD earlier) waits too
    w = p.tRP + p.tRFC + p.tRCD
    p_ref = xp.clip(w / p.tREFI, 0.0, 1.0)
    if pattern == "stream":
        f_row = 1.0 / p.reads_per_row
        f_first = xp.clip(gap / p.tREFI, 0.0, 1.0)
        f_miss = xp.clip(f_row + f_first, 0.0, 1.0)
        normal = hit_op + f_miss * (closed - hit_op)
    elif pattern == "random":
        x = p.tREFI / (gap * p.banks * p.ranks)
        p_open = 1.0 - (1.0 - xp.exp(-x)) / x
        normal = closed + p_open * (conflict_op - closed)
    else:
        raise ValueError(f"unknown pattern {pattern!r}")
    return p_ref * (w / 2.0 + closed) + (1.0 - p_ref) * normal


def idle_read_latency_ns(p: InterfaceParams, pattern: str = "random", gap=IDLE_GAP_CYCLES):
    """:func:`idle_read_latency_cycles` in ns."""
    return idle_read_latency_cycles(p, pattern, gap) * p.tCK_ns


# --------------------------------------------------------------------------- corpus


#: Why the families outside :data:`IN_SCOPE_FAMILIES` are reported but not claimed.
OUT_OF_SCOPE_REASONS = {
    "stream_write": "writes count as done when buffered (controller.cc:162-176): acceptance,"
    " not interface, bandwidth",
    "stream_mixed": "writes count as done when buffered: acceptance bandwidth",
    "random_mixed": "writes count as done when buffered: acceptance bandwidth",
    "builtin_stream": "DRAMsim3's own generator, <= 1 request per cycle over all channels:"
    " CPU-bound",
    "builtin_random": "DRAMsim3's own generator, <= 1 request per cycle over all channels:"
    " CPU-bound",
}

_BANDWIDTH_FAMILIES = {
    "stream_read": lambda p: stream_read_GBps(p),
    "random_read": lambda p: random_read_GBps(p),
    "stream_write": lambda p: stream_write_GBps(p),
    "stream_mixed": lambda p: mixed_GBps(p, 1.0 / 3.0, "stream"),
    "random_mixed": lambda p: mixed_GBps(p, 1.0 / 3.0, "random"),
    "builtin_stream": lambda p: mixed_GBps(p, 1.0 / 3.0, "stream"),
    "builtin_random": lambda p: mixed_GBps(p, 1.0 / 3.0, "random"),
}


def _reference_root() -> Path:
    env = os.environ.get("DSE_REFERENCE")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "reference"


def _ini_path(root: Path, config: str, config_dir: str) -> Path:
    for sub in (config_dir, f"pim/{config_dir}", "."):
        cand = root / sub / config
        if cand.is_file():
            return cand
    return root / config_dir / config


def _write_fraction(generator_args: Any) -> float:
    import json

    try:
        every = int(json.loads(generator_args).get("write_every", 0))
    except (TypeError, ValueError, AttributeError):
        return 1.0 / 3.0
    return 0.0 if every <= 0 else 1.0 / every


def evaluate_corpus_rows(rows, progress: Callable[[str], None] | None = None):
    """Model values for DRAMsim3 corpus rows, in long form.

    One output row per input row with the input's columns plus ``model`` (``dram_interface``),
    ``quantity`` (``bandwidth_GBps``, per channel, compared with
    ``bandwidth_per_channel_GBps``; ``avg_read_latency_ns`` for the ``latency_idle_*``
    families), ``measured``, ``model_value`` and ``scope`` (``"in"`` for
    :data:`IN_SCOPE_FAMILIES`, else ``"out: <reason>"``). The INI of a row is
    ``$DSE_REFERENCE/<config_dir>/<config>`` (``pim/<config_dir>`` for the PIM INIs; default
    ``../shared/reference`` beside the repository); where it is absent the model value is NaN.
    """
    import pandas as pd

    root = _reference_root()
    cache: dict[tuple[str, str], InterfaceParams | None] = {}
    out = rows.copy()
    quantity, measured, value, scope = [], [], [], []
    for _, r in rows.iterrows():
        key = (str(r["config"]), str(r["config_dir"]))
        if key not in cache:
            path = _ini_path(root, *key)
            try:
                cache[key] = interface_params(read_ini(path)) if path.is_file() else None
            except Exception as exc:  # noqa: BLE001 - a bad INI is reported, not fatal
                if progress:
                    progress(f"{path}: {exc}")
                cache[key] = None
            if progress:
                progress(f"{key[1]}/{key[0]}: {'ok' if cache[key] else 'absent'}")
    # the random-read scheduler runs once, on every configuration a random family needs
    need = sorted(
        {
            (str(r["config"]), str(r["config_dir"]))
            for _, r in rows.iterrows()
            if "random" in str(r["family"]) and not str(r["family"]).startswith("latency")
        }
        - {k for k, v in cache.items() if v is None}
    )
    rand: dict[tuple[str, str], float] = {}
    if need:
        from dse.hw.dram_scheduler import random_read_cycles

        stacked = InterfaceParams(
            *(np.array(f) for f in zip(*(cache[k] for k in need), strict=True))
        )
        rand = dict(zip(need, random_read_cycles(stacked).tolist(), strict=True))
    for _, r in rows.iterrows():
        fam = str(r["family"])
        key = (str(r["config"]), str(r["config_dir"]))
        p = cache[key]
        if fam.startswith("latency_idle"):
            quantity.append("avg_read_latency_ns")
            measured.append(float(r["avg_read_latency_ns"]))
            pattern = "stream" if fam.endswith("stream") else "random"
            gap = IDLE_GAP_CYCLES
            try:
                import json

                gap = float(json.loads(r["generator_args"]).get("gap", gap))
            except (TypeError, ValueError, AttributeError):
                pass
            value.append(float(idle_read_latency_ns(p, pattern, gap)) if p else math.nan)
        else:
            quantity.append("bandwidth_GBps")
            measured.append(float(r["bandwidth_per_channel_GBps"]))
            if p is None:
                value.append(math.nan)
            elif fam in ("stream_mixed", "random_mixed"):
                pat = fam.split("_")[0]
                f = _write_fraction(r["generator_args"])
                value.append(float(mixed_GBps(p, f, pat, random_cycles=rand.get(key))))
            elif fam == "random_read":
                value.append(float(p.request_bytes / (rand[key] * p.tCK_ns)))
            elif fam == "builtin_random":
                value.append(float(mixed_GBps(p, 1.0 / 3.0, "random", random_cycles=rand[key])))
            else:
                fn = _BANDWIDTH_FAMILIES.get(fam)
                value.append(float(fn(p)) if fn else math.nan)
        scope.append(
            "in"
            if fam in IN_SCOPE_FAMILIES
            else "out: " + OUT_OF_SCOPE_REASONS.get(fam, "family not modelled")
        )
    out["model"] = MODEL_NAME
    out["quantity"] = quantity
    out["measured"] = measured
    out["model_value"] = value
    out["scope"] = scope
    return pd.DataFrame(out)


def _family_group(config: str, config_dir: str) -> str:
    proto = config.split("_", 1)[0]
    return f"{proto} ({config_dir})"


def agreement_table(evaluated) -> str:
    """Markdown: MAPE and worst |error| per INI family and corpus family (in-scope rows)."""
    import pandas as pd

    e = evaluated[evaluated["model_value"].notna()].copy()
    e["err"] = (e["model_value"] - e["measured"]) / e["measured"]
    e["group"] = [_family_group(c, d) for c, d in zip(e["config"], e["config_dir"], strict=True)]
    lines = []
    fams = list(IN_SCOPE_FAMILIES) + [f for f in OUT_OF_SCOPE_REASONS if f in set(e["family"])]
    for fam in fams:
        s = e[e["family"] == fam]
        if s.empty:
            continue
        tag = "" if fam in IN_SCOPE_FAMILIES else " (out of scope)"
        lines += [f"\n**{fam}** ({s['quantity'].iloc[0]}){tag}\n", "| INIs | n | MAPE | worst |"]
        lines.append("|---|---|---|---|")
        g = s.groupby("group")["err"]
        agg = pd.DataFrame(
            {
                "n": g.size(),
                "mape": g.apply(lambda x: x.abs().mean()),
                "worst": g.apply(lambda x: x.loc[x.abs().idxmax()]),
            }
        )
        for name, r in agg.iterrows():
            lines.append(f"| {name} | {int(r.n)} | {r.mape:.1%} | {r.worst:+.1%} |")
        lines.append(
            f"| all | {len(s)} | {s['err'].abs().mean():.1%} | "
            f"{s['err'].loc[s['err'].abs().idxmax()]:+.1%} |"
        )
    return "\n".join(lines)


@command
def main(argv: list[str] | None = None) -> int:
    """``python -m dse.hw.dram_interface [corpus.csv]``: print the agreement tables."""
    import sys

    import pandas as pd

    args = sys.argv[1:] if argv is None else argv
    path = (
        Path(args[0])
        if args
        else Path(__file__).resolve().parents[1] / ("validation/data/corpus_dramsim3.csv")
    )
    print(agreement_table(evaluate_corpus_rows(pd.read_csv(path))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
