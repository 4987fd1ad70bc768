"""Cycles of one NeuPIMs/Newton PIM program on one HBM2-PIM channel, as NewtonSim issues it.

NewtonSim is NeuPIMs' PIM fork of DRAMsim3 (``extern/NewtonSim`` of ``casys-kaist/NeuPIMs``,
commit ``f299af3f``; mechanisms in docs/oracle/newton.md). A program is what
:mod:`dse.validation.traces.newton` issues: ``gwrites`` GWRITEs of the input vector, then
``tiles`` tiles (one DRAM row in every bank of the channel), each a ``P_HEADER`` and
``readres`` groups of ``n = comps / readres`` COMPs. ``single`` (Newton, one row buffer) issues
a group as ``n`` x ``COMP`` + ``READRES``; ``dual`` (NeuPIMs, a second PIM row buffer) as one
``COMPS_READRES(n)``. ``dram_reads`` ordinary reads to rank 0 of the same channel run alongside.
This module derives the cycle count from the simulator's issue rules, event by event in closed
form; nothing is fitted. All times are cycles of ``tCK``; the program starts at cycle 0.

Organisation: ``NR`` ranks x ``NBG`` bank groups x ``NBPG`` banks (``NB = NBG * NBPG`` banks
per rank, ``NALL = NR * NB``); ``burst = BL / data_rate`` (configuration.cc:160-175),
``rr_s = max(burst, tCCD_S)``, ``rr_l = max(burst, tCCD_L)`` (timing.cc:9-10),
``rtp = AL + tRTP`` (read -> precharge, timing.cc:18), ``read_delay = AL + CL + burst``
(configuration.cc:350), ``gw = (tCCD_S + tCCD_L) * 32`` (GWRITE occupancy, configuration.cc:352).
One command issues per cycle on the channel.

**GWRITEs** (timing.cc GWRITE rows; newton_command_queue.cc ``is_gwriting_``): each opens its
row (ACT), writes after ``tRCD`` and holds every PIM command until it is done ``gw`` later; the
next one precharges (``tRP``) and re-activates. The last is done at
``t_gw = 1 + tRCD + gw + (gwrites - 1) * (gw + tRP + tRCD)`` (the 1: the transaction enters
the command queue one cycle before it can issue). The first ``P_HEADER`` issues at ``t_gw``
(dual) or ``t_gw + 1`` (single: the GWRITE's row shares the buffer and is precharged first).

**A tile.** ``P_HEADER`` at ``ph``; its G_ACTs (one per rank and bank group) are spaced ``tFAW``
within a rank (timing.cc G_ACT -> G_ACT same rank) and the ranks interleave one cycle apart, so
the last G_ACT issues at ``ph + 1 + (NBG - 1) * tFAW + (NR - 1)`` and the first COMP ``tRCD``
later (G_ACT -> COMP ``tRCDRD``): ``f = ph + 1 + (NBG - 1) * tFAW + (NR - 1) + tRCD``.
The COMP stream from ``f`` to its last command is ``S``:

* single: COMP -> COMP and COMP <-> READRES ``rr_s``; the first COMP after a READRES holds the
  next READRES for ``6 * tCCD_S`` (adder-tree fill, channel_state.cc ``UpdateTimingForPIM``),
  so a group lasts ``G = max(6 * tCCD_S, n * rr_s)`` and ``S = (readres - 1) * (G + rr_s) + G``;
* dual: ``COMPS_READRES`` -> next ``d = rr_s * (max(n, 6) + 1)`` (channel_state.cc
  ``UpdateChannelTiming``), ``S = (readres - 1) * d``.

The next tile's ``P_HEADER`` must close the open row in all ``NALL`` banks first: precharges one
per cycle from ``rtp`` after the last command (COMP/READRES -> (PIM_)PRECHARGE = ``rtp``), so
``ph' = t_last + rtp + NALL``. The last result is back ``read_delay`` after the last
READRES/COMPS_READRES; ``pim_cycles = t_last + read_delay + 1`` (the driver counts the cycle
it pops the response).

**Refresh** (refresh.cc, rank-staggered): a refresh of rank ``(m - 1) mod NR`` becomes pending
at ``B_m = m * (tREFI // NR)``; it precharges that rank's ``NB`` banks (one per cycle, after
``rtp`` from the last PIM command; in dual mode the first refresh of rank 0 also closes the
GWRITE row in the normal buffer: one more precharge) and issues ``REFRESH`` ``tRP`` after the
last one, at ``R``; the rank's next G_ACT waits until ``R + tRFC``. A pending refresh goes
before any PIM command (controller ``ClockTick`` -> ``FinishRefresh``; the PIM queue is not
served while ``is_in_ref_``). A ``P_HEADER`` is admitted only if NewtonSim's estimate fits
before ``B_m`` (``CanMeetRefreshDeadline``, newton_command_queue.cc:263-282, evaluated the cycle
after the previous tile's last command, when the header reaches the head of the PIM queue):
``remain = B_m - t_chk - 1 > E`` with (channel_state.cc ``EstimatePIMOperationLatency``)
``E = n_pre * rtp + tFAW * (NR * NBG // 2 - 1) + tRCD + rr_s * max(comps, 6)
+ rr_l * (readres - 1)``, ``n_pre`` the banks with another row open (``NALL`` after the first
tile, 0 before it). Otherwise the PIM program waits for the refresh (``skip_pim_``); after it
the other ranks' banks are precharged (``NALL - NB`` cycles), ``ph = R + 1 + NALL - NB`` and
``f = max(ph + NR - 1, R + tRFC) + (NBG - 1) * tFAW + tRCD``. ``E`` undercounts long COMP
streams (it charges ``rr_l`` per READRES), so a refresh can also fall inside an admitted tile:
the command stream stops at the first command due at or after ``B_m``; the rank is precharged
from ``max(B_m, previous command + rtp)``, refreshed, re-activated, and the stopped command
issues at ``R + tRFC + (NBG - 1) * tFAW + tRCD``; the rest of the tile shifts by the same
amount. Tiles are issued in a ``lax.while_loop`` (state: time of the tile's last command and
the next refresh boundary).

**Ordinary reads** (``dram_reads``; the driver sends read ``i`` to bank ``i mod 16`` of rank 0,
column ``(i // 16) mod 16``, row ``20000 + i // 256``, all distinct): ``n_rd = dram_reads``
READ commands (:func:`read_commands`), each
``rr_s`` apart on the data bus; each bank row costs an ACT, four per ``tFAW`` window ``tRRD_S``
apart, READ ``tRCD`` after its ACT.

* single: no ordinary command enters the command queues while the PIM queue holds anything
  (newton_command_queue.cc ``WillAcceptCommand``), so the reads start after the last PIM
  command: rank 0's ``NB`` rows (left open by the PIM program) are precharged one per cycle
  from ``t_last + rtp``; with ``t_act = t_last + rtp + NB`` the last READ is at
  ``max(t_act + act_span, t_act + rr_s * (n_rd - 1)) + tRCD``, ``act_span =
  ((min(reads, NB) - 1) // 4) * tFAW + 3 * tRRD_S`` (four ACTs per tFAW window). A rank-0
  refresh boundary inside the phase stops it for ``NB + tRP + tRFC + tRCD``.
* dual: ordinary commands use the cycles the PIM queue leaves (neupims_command_queue.cc
  54-80) on the separate normal row buffers, from the start. The read stream
  ``1 + tRCD + rr_s * (n_rd - 1)`` is delayed by the command-bus cycles the PIM program
  takes (``NALL`` precharges before each later tile, one per G_ACT) and by ``tRTRS`` per
  COMPS_READRES (COMPS_READRES -> READ ``burst + tRTRS``, timing.cc); each rank-0 refresh
  stops it for ``NB + tRP + tRFC + tRCD``. The reads of the GWRITE's bank wait for its row:
  G_ACTs hold ACTs of their rank for ``tFAW`` and the precharges fill the bus between tiles,
  so the ACT issues inside the first tile only if its COMP stream outlasts that window
  (``S + rtp + tRCD + NR - 1 > tFAW``), else in the first wait for a refresh or when the PIM
  queue is empty.
* Not modelled: the row switch of each bank after 256 reads in dual mode, and ordinary
  reads re-activating rank 0 after a refresh hold the next G_ACTs (four-activation window),
  which slows the dual PIM program itself by up to 6 % in the corpus.

Timings NewtonSim takes that :class:`~dse.hw.pim.PimChannel` lacks are keyword parameters with
the value NewtonSim uses for the NeuPIMs INIs: ``ranks`` (configuration.cc ``CalculateSize``
from ``[system] channel_size``: 2), ``bankgroups``/``banks_per_group`` (INI
``[dram_structure]``: 4/4), ``tRTP_sim`` (INI ``[timing] tRTP``; the NeuPIMs INIs give only
``tRTP_L``/``tRTP_S``, which NewtonSim never reads, so configuration.cc:315's default 5),
``AL`` (``[timing] AL``, default 0), ``tRTRS`` (``[timing] tRTRS``, default 2,
configuration.cc:314). GWRITE occupancy and READRES latency are derived as above.
:func:`newton_params_from_ini` reads them from an INI.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dse.paths import CONF_DIR

__all__ = [
    "NEWTON_DEFAULTS",
    "PIPELINE_FILL",
    "evaluate_corpus_rows",
    "newton_params_from_ini",
    "program_cycles",
    "read_commands",
]

#: COMP pipeline (adder tree) fill in NewtonSim, in COMP slots: ``tCCD_S * 6`` after the first
#: COMP of a READRES group (channel_state.cc ``UpdateTimingForPIM``) and ``max(num_comps, 6)``
#: for a COMPS_READRES and in the refresh estimate (``UpdateChannelTiming``,
#: ``EstimatePIMOperationLatency``). A literal of the simulator's source, not a fit.
PIPELINE_FILL = 6

#: NewtonSim values of what a PimChannel does not carry (see the module docstring).
NEWTON_DEFAULTS: dict[str, int] = {
    "ranks": 2,
    "bankgroups": 4,
    "banks_per_group": 4,
    "tRTP_sim": 5,
    "AL": 0,
    "tRTRS": 2,
    "trans_queue": 32,
}

_REPO = Path(__file__).resolve().parents[2]
_PRESET = CONF_DIR / "pim" / "hbm2_neupims.yaml"
_CHANNEL_KEYS = (
    "tCK_ns",
    "data_rate",
    "BL",
    "CL",
    "tRCD",
    "tRP",
    "tRAS",
    "tCCD_S",
    "tCCD_L",
    "tRRD_S",
    "tRRD_L",
    "tFAW",
    "tRFC",
    "tREFI",
)


def _get(obj: Any, name: str) -> Any:
    return obj[name] if isinstance(obj, Mapping) else getattr(obj, name)


def _i(x: Any) -> jax.Array:
    return jnp.asarray(x).astype(jnp.int64)


def _cdiv(a, b):
    return -((-a) // b)


def read_commands(dram_reads, queued, lead):
    """READ commands the driver's ``dram_reads`` reads turn into: one each. The driver's
    addresses are distinct (16 banks x 16 columns per row, next row every 256 reads), so
    NewtonSim's merging of a read into a pending read of the same address (controller
    ``AddTransaction``, ``pending_rd_q_``) never applies. ``queued`` and ``lead`` are unused
    (kept for the call signature)."""
    del queued, lead
    return jnp.asarray(dram_reads, jnp.float64)


def _stream(single, n, rr, rr_s, tCCD_S):
    """(S, G, d): COMP stream length of a tile, single-mode group length and dual spacing."""
    G = jnp.maximum(PIPELINE_FILL * tCCD_S, n * rr_s)
    S_single = (rr - 1) * (G + rr_s) + G
    d = rr_s * (jnp.maximum(n, PIPELINE_FILL) + 1)
    S_dual = (rr - 1) * d
    return jnp.where(single, S_single, S_dual), G, d


def _first_stopped(single, f, B, n, G, d, rr_s):
    """Time of the first stream command due at or after ``B`` and of the command before it."""
    u = jnp.maximum(B - f, 0)
    # dual: COMPS_READRES at f + k d
    kk = _cdiv(u, d)
    orig_d = f + kk * d
    prev_d = orig_d - d
    # single: group g at f + g P: COMPs at + i rr_s (i < n), READRES at + G
    P = G + rr_s
    g = u // P
    w = u - g * P
    in_comps = w <= (n - 1) * rr_s
    in_rr = (~in_comps) & (w <= G)
    off = jnp.where(in_comps, _cdiv(w, rr_s) * rr_s, jnp.where(in_rr, G, P))
    prev = jnp.where(in_comps, off - rr_s, jnp.where(in_rr, (n - 1) * rr_s, G))
    orig_s = f + g * P + off
    prev_s = f + g * P + prev
    return jnp.where(single, orig_s, orig_d), jnp.where(single, prev_s, prev_d)


def _reads_refresh(last_read, start, m, refi, NR, on, stall):
    """Add the rank-0 refreshes whose boundary falls inside the read phase ``[start, ...]``:
    the reads stop while rank 0 is precharged, refreshed and re-activated (``stall``)."""
    for _ in range(2):  # a read phase spans at most two rank-0 boundaries here
        b0 = ((m - 1 + NR - 1) // NR) * NR + 1  # next boundary index of rank 0 at/after m
        B = b0 * refi
        hit = on & (B <= last_read) & (B >= start)
        last_read = last_read + jnp.where(hit, stall, 0)
        m = jnp.where(hit, b0 + 1, b0 + NR)
    return last_read


def program_cycles(prog: Mapping[str, Any], pim: Any, **params: Any) -> dict[str, jax.Array]:
    """Cycles of one PIM program (see the module docstring).

    ``prog``: ``tiles``, ``comps`` (per tile), ``readres`` (per tile, divides ``comps``),
    ``gwrites``, ``dram_reads``, ``mode`` (0/``"single"`` or 1/``"dual"``; scalars or
    arrays of one program). ``pim``: a :class:`~dse.hw.pim.PimChannel` or a mapping with its
    timing leaves (``data_rate``, ``BL``, ``CL``, ``tRCD``, ``tRP``, ``tCCD_S``, ``tCCD_L``,
    ``tRRD_S``, ``tFAW``, ``tRFC``, ``tREFI``). ``params`` override :data:`NEWTON_DEFAULTS`.
    Returns ``cycles`` (last response, PIM or read), ``pim_cycles`` (last PIM response),
    ``refreshes`` (refresh boundaries passed by ``cycles``) and ``read_cmds``; int64 except
    ``read_cmds``. Pure JAX: works under ``jax.vmap`` over programs and channels.
    """
    p = {**NEWTON_DEFAULTS, **params}
    mode = prog["mode"]
    if isinstance(mode, str):
        mode = {"single": 0, "dual": 1}[mode]
    dual = _i(mode) == 1
    single = ~dual
    tiles = _i(prog["tiles"])
    comps = _i(prog["comps"])
    rr = _i(prog["readres"])
    gwrites = _i(prog["gwrites"])
    reads = _i(prog.get("dram_reads", 0))

    NR, NBG, NBPG = _i(p["ranks"]), _i(p["bankgroups"]), _i(p["banks_per_group"])
    NB = NBG * NBPG
    NALL = NR * NB
    BL, CL = _i(_get(pim, "BL")), _i(_get(pim, "CL"))
    rate = jnp.asarray(_get(pim, "data_rate"), jnp.float64)
    burst = jnp.ceil(BL / rate).astype(jnp.int64)
    tRCD, tRP = _i(_get(pim, "tRCD")), _i(_get(pim, "tRP"))
    tCCD_S, tCCD_L = _i(_get(pim, "tCCD_S")), _i(_get(pim, "tCCD_L"))
    tRRD_S, tFAW = _i(_get(pim, "tRRD_S")), _i(_get(pim, "tFAW"))
    tRFC, tREFI = _i(_get(pim, "tRFC")), _i(_get(pim, "tREFI"))
    AL, tRTP, tRTRS = _i(p["AL"]), _i(p["tRTP_sim"]), _i(p["tRTRS"])

    rr_s = jnp.maximum(burst, tCCD_S)
    rr_l = jnp.maximum(burst, tCCD_L)
    rtp = AL + tRTP
    read_delay = AL + CL + burst
    gw = (tCCD_S + tCCD_L) * 32
    refi = jnp.maximum(tREFI // NR, 1)
    refresh_on = tRFC > 0
    gact_tail = (NBG - 1) * tFAW  # first -> last G_ACT of one rank

    n = comps // jnp.maximum(rr, 1)
    S, G, d = _stream(single, n, rr, rr_s, tCCD_S)
    est_core = tFAW * ((NR * NBG) // 2 - 1) + tRCD + rr_s * jnp.maximum(comps, PIPELINE_FILL)
    est_core = est_core + rr_l * (rr - 1)

    t_gw = jnp.where(
        gwrites > 0, 1 + tRCD + gw + jnp.maximum(gwrites - 1, 0) * (gw + tRP + tRCD), 1
    )
    big = jnp.int64(2**62)

    def refresh_done(B, m, last_cmd):
        """REFRESH issue time for boundary m pending at B, the rank's last command at last_cmd."""
        extra = (dual & (m == 1) & (gwrites > 0)).astype(jnp.int64)
        start = jnp.maximum(B, last_cmd + rtp)
        return start + extra + NB - 1 + tRP

    def body(state):
        k, t_last, m, gap = state
        first = k == 0
        t_chk = jnp.where(first, t_gw, t_last + 1)
        n_pre = jnp.where(first, 0, NALL)
        B = jnp.where(refresh_on, m * refi, big)
        E = n_pre * rtp + est_core
        fail = (B - t_chk - 1) <= E
        # admitted: precharge the previous rows, P_HEADER, G_ACTs, COMPs
        ph = jnp.where(first, t_gw + single.astype(jnp.int64), t_last + rtp + NALL)
        f_ok = ph + 1 + gact_tail + (NR - 1) + tRCD
        end_ok = f_ok + S
        hit = end_ok >= B
        orig, prev = _first_stopped(single, f_ok, B, n, G, d, rr_s)
        R_in = refresh_done(B, m, prev)
        restart = R_in + tRFC + gact_tail + tRCD
        end_hit = end_ok + jnp.maximum(restart - orig, 0)
        # refused: wait for the refresh, then the header
        R_w = refresh_done(B, m, t_last)
        ph_w = R_w + 1 + NALL - NB
        f_w = jnp.maximum(ph_w + NR - 1, R_w + tRFC) + gact_tail + tRCD
        end_w = f_w + S
        t_new = jnp.where(fail, end_w, jnp.where(hit, end_hit, end_ok))
        m_new = jnp.where(fail | hit, m + 1, m)
        gap = jnp.where(fail & (gap == big), t_chk, gap)
        return k + 1, t_new, m_new, gap

    def cond(state):
        return state[0] < tiles

    init = (jnp.int64(0), jnp.int64(0), jnp.int64(1), big)
    _, t_last, m, gap = jax.lax.while_loop(cond, body, init)
    pim_cycles = t_last + read_delay + 1

    # ordinary reads: READ commands, bank rows, ACT ramp (NB ACTs, four per tFAW)
    lead_s = rtp + NB + tRCD
    lead_d = 1 + tRCD
    rd_cmds = read_commands(
        reads,
        jnp.where(dual, 0, p["trans_queue"]).astype(jnp.float64),
        jnp.where(dual, lead_d, lead_s).astype(jnp.float64),
    )
    n_rd = jnp.ceil(rd_cmds).astype(jnp.int64)
    act_span = ((jnp.minimum(reads, NB) - 1) // 4) * tFAW + 3 * tRRD_S
    # single: the reads start when the PIM queue is empty; rank 0's NB open rows close first
    t_act = t_last + rtp + NB
    last_read_s = jnp.maximum(t_act + act_span, t_act + rr_s * (n_rd - 1)) + tRCD
    last_read_s = _reads_refresh(
        last_read_s, t_act, m, refi, NR, refresh_on, NB + tRP + tRFC + tRCD
    )
    # dual: from the start, alongside the PIM program; the command bus cycles the PIM
    # program takes in runs (NALL precharges before each later tile), its G_ACTs and the
    # COMPS_READRES -> READ turnaround (tRTRS) delay the read stream; the GWRITE bank's reads
    # wait for its row (ACT inside a tile only when the COMP stream outlasts the G_ACT tFAW
    # window, else in the first wait for a refresh or once the PIM queue is empty)
    busy = NALL * (tiles - 1) + NR * NBG * tiles + jnp.where(dual, tiles * rr, 0) * tRTRS
    bw_d = 1 + tRCD + rr_s * (n_rd - 1) + busy
    n0 = _cdiv(jnp.minimum(reads, 256), NB) + jnp.maximum(n_rd - 256, 0) // NB
    f0 = t_gw + 1 + gact_tail + (NR - 1) + tRCD
    window = S + rtp + tRCD + (NR - 1) > tFAW
    act0 = jnp.where(window, f0 - tRCD - (NR - 1) + tFAW, jnp.minimum(gap, t_last) + 1)
    last_read_d = jnp.maximum(bw_d, act0 + tRCD + rr_s * (n0 - 1))
    last_read_d = _reads_refresh(
        last_read_d, 0, jnp.int64(1), refi, NR, refresh_on, NB + tRP + tRFC + tRCD
    )
    last_read = jnp.where(dual, last_read_d, last_read_s)
    reads_done = jnp.where(reads > 0, last_read + read_delay + 1, 0)
    cycles = jnp.maximum(pim_cycles, reads_done)
    refreshes = jnp.where(refresh_on, cycles // refi, 0)
    return {
        "cycles": cycles,
        "pim_cycles": pim_cycles,
        "refreshes": refreshes,
        "read_cmds": rd_cmds,
    }


# ----------------------------------------------------------------------------------------------
# corpus evaluation


def _reference_root() -> Path:
    env = os.environ.get("DSE_REFERENCE")
    return Path(env) if env else (_REPO / ".." / "shared" / "reference").resolve()


def newton_params_from_ini(path: str | Path) -> dict[str, Any]:
    """Channel timing (``dse.hw.dram.pim_fields_from_ini``) plus the NewtonSim parameters of
    :data:`NEWTON_DEFAULTS`, as NewtonSim reads them from this INI."""
    from dse.hw.dram import pim_fields_from_ini, read_ini

    cfg = read_ini(path)
    out: dict[str, Any] = dict(pim_fields_from_ini(cfg))
    raw = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
    raw.read(path)

    def key(sec: str, name: str, default: int) -> int:
        try:
            return int(raw.get(sec, name))
        except (configparser.Error, ValueError):
            return default

    out.update(
        ranks=cfg.ranks,
        bankgroups=cfg.bankgroups,
        banks_per_group=cfg.banks_per_group,
        tRTP_sim=key("timing", "tRTP", NEWTON_DEFAULTS["tRTP_sim"]),
        AL=key("timing", "AL", NEWTON_DEFAULTS["AL"]),
        tRTRS=key("timing", "tRTRS", NEWTON_DEFAULTS["tRTRS"]),
        trans_queue=key("system", "trans_queue_size", NEWTON_DEFAULTS["trans_queue"]),
    )
    return out


def _preset_params() -> dict[str, Any]:
    import yaml

    with open(_PRESET) as fh:
        y = yaml.safe_load(fh)
    out = {k: y[k] for k in _CHANNEL_KEYS}
    nb = NEWTON_DEFAULTS["bankgroups"] * NEWTON_DEFAULTS["banks_per_group"]
    out.update({k: v for k, v in NEWTON_DEFAULTS.items()})
    out["ranks"] = max(int(y["banks"]) // nb, 1)
    return out


def _channel_for(config: str, cache: dict) -> dict[str, Any]:
    if config not in cache:
        path = _reference_root() / "pim" / "neupims" / config
        cache[config] = newton_params_from_ini(path) if path.exists() else _preset_params()
    return cache[config]


_PARAM_KEYS = tuple(NEWTON_DEFAULTS)


def evaluate_corpus_rows(rows, progress: Callable[[str], None] | None = None):
    """``rows`` of corpus_newton.csv with ``model`` ("pim_newton"), ``quantity`` ("cycles"),
    ``measured`` (the row's ``cycles``) and ``model_value`` added; every row in one
    ``jax.vmap`` call. Channel timing from the row's INI under ``$DSE_REFERENCE/pim/neupims``
    (default ``../shared/reference``), else the preset conf/pim/hbm2_neupims.yaml."""
    df = rows.copy()
    cache: dict[str, dict[str, Any]] = {}
    chans = [_channel_for(c, cache) for c in df["config"]]
    if progress:
        progress(f"pim_newton: {len(df)} rows, {len(cache)} channel configs")
    keys = _CHANNEL_KEYS + _PARAM_KEYS
    ch = {
        k: jnp.asarray(
            np.array([c[k] for c in chans]),
            jnp.float64 if k in ("tCK_ns", "data_rate") else jnp.int64,
        )
        for k in keys
    }
    prog = {
        "tiles": jnp.asarray(df["tiles"].to_numpy(np.int64)),
        "comps": jnp.asarray(df["comps"].to_numpy(np.int64)),
        "readres": jnp.asarray(df["readres"].to_numpy(np.int64)),
        "gwrites": jnp.asarray(df["gwrites"].to_numpy(np.int64)),
        "dram_reads": jnp.asarray(df["dram_reads"].to_numpy(np.int64)),
        "mode": jnp.asarray((df["mode"] == "dual").to_numpy(np.int64)),
    }

    def one(pr, c):
        extra = {k: c[k] for k in _PARAM_KEYS}
        return program_cycles(pr, c, **extra)

    res = jax.jit(jax.vmap(one))(prog, ch)
    df["model"] = "pim_newton"
    df["quantity"] = "cycles"
    df["measured"] = df["cycles"].astype(np.int64)
    df["model_value"] = np.asarray(res["cycles"], dtype=np.int64)
    df["model_pim_cycles"] = np.asarray(res["pim_cycles"], dtype=np.int64)
    if progress:
        progress("pim_newton: done")
    return df
