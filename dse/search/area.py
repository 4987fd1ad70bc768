"""Silicon area and capacity-normalized cost of one PIM design point (search constraints).

:func:`area` is a pure JAX function of ONE :class:`~dse.point.DesignPoint` (batch it with
``jax.vmap``) and an :class:`AreaParams` pytree. It counts the parts of a PIM channel that
the design fields change, all in mm²:

* **DRAM array** ``banks · rows · row_bytes · 8 · cell_um2_per_bit / array_efficiency``:
  the bank area (cells plus their sense amplifiers, word-line drivers and decoders) that
  holds the channel's capacity;
* **MAC lanes** ``banks · lanes · mac_lane_mm2``;
* **buffers** ``(gbuf_bytes + banks · obuf_entries · out_bytes) · buffer_mm2_per_byte``:
  the channel's global (input) buffer and every bank's output-buffer entries;
* **dual row buffers** ``dual_rb_fraction · DRAM array`` when the point runs NeuPIMs-style
  NPU + PIM with dual row buffers (``policy.system == npu_pim`` and ``policy.dual_rb == 1``);
  the other system kinds never use a second row buffer, so none is charged.

Channel I/O, TSVs, the command decoder and the base (logic) die do not change with these
fields and are not modelled: totals are the design-dependent area, and the cost figure is
relative to the bank-array area of the same capacity (``cost_per_GB_rel = 1`` is a plain
DRAM of that capacity).

**Where the defaults come from** (details in each field's doc): Samsung's HBM-PIM
(FIMDRAM / Aquabolt-XL; Kwon et al., ISSCC 2021, paper 25.4; Lee et al., ISCA 2021) puts a
programmable computing unit (PCU) of 16 FP16 lanes, shared by two banks and clocked at
300 MHz, into each bank pair of a 20 nm HBM2 core die; the PCUs take the area of half the
cells, so a PIM die holds 4 Gb where the plain die holds 8 Gb (6 GB stacks = four 4 Gb PIM
dies + four 8 Gb dies). 32 PCUs × 16 lanes × 2 FLOP × 300 MHz × 4 PIM dies = 1.23 TFLOPS, the
published 1.2 TFLOPS per stack. The MAC-lane area is derived from that halving (see
:data:`HBM_PIM_ANCHOR`). SK hynix GDDR6-AiM (Lee et al., ISSCC 2022: 8 Gb, 16 BF16 MACs
per bank, 2 KB global buffer per channel), NeuPIMs (Heo et al., ASPLOS 2024: dual row
buffers per bank) and AttAcc (Park et al., ASPLOS 2024: 16 FP16 lanes per bank on HBM3)
describe the organisations the fields sweep; no area figure from them was available here, so
the buffer and dual-row-buffer defaults are marked as assumptions.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp

from dse._pytree import leaf, pytree_dataclass
from dse.policy import SystemKind

__all__ = ["AreaParams", "AREA_METRICS", "HBM_PIM_ANCHOR", "area", "param_info"]

#: Facts about the Samsung HBM-PIM die the MAC-lane default is derived from.
HBM_PIM_ANCHOR: dict[str, float] = {
    "process_nm": 20.0,  # Kwon et al., ISSCC 2021: "A 20nm 6GB Function-In-Memory DRAM"
    "plain_die_Gbit": 8.0,  # the HBM2 (Aquabolt) core die
    "pim_die_Gbit": 4.0,  # the PIM die: the PCUs take the area of half the cells
    "pcus_per_die": 32.0,  # 4 pseudo-channels x 16 banks / 2 banks per PCU
    "lanes_per_pcu": 16.0,  # 16-wide FP16 SIMD (256-bit) per PCU
    # 16 pseudo-channels per stack over 4 PIM dies. conf/pim/hbm2_samsung.yaml counts the 8
    # PCUs of a pseudo-channel as its `banks` (16 MiB rows x 1 KB each), so a pseudo-channel
    # holds 8 x 16 MiB = 1 Gb and a die 4 Gb, as published
    "pseudo_channels_per_die": 4.0,
    # buffer bytes of one die as conf/pim/hbm2_samsung.yaml models them: per pseudo-channel
    # gbuf_bytes 256 + 8 PCUs x obuf_entries 1 x out_bytes 32
    "buffer_bytes_per_die": 4.0 * (256.0 + 8.0 * 1.0 * 32.0),
}

_F_UM = HBM_PIM_ANCHOR["process_nm"] * 1e-3
#: 6F² cell at F = 20 nm (µm² per bit)
_CELL_UM2 = 6.0 * _F_UM * _F_UM
_ARRAY_EFF = 0.5
_BUFFER_MM2_PER_BYTE = 8.0e-5
_BITS_PER_GBIT = float(2**30)  # one Gb (gibibit) of cells
#: the bank area given up by the PIM die: half the 8 Gb die's bank array (mm²)
_FREED_MM2 = (
    (HBM_PIM_ANCHOR["plain_die_Gbit"] - HBM_PIM_ANCHOR["pim_die_Gbit"])
    * _BITS_PER_GBIT
    * _CELL_UM2
    / _ARRAY_EFF
    * 1e-6
)
_MAC_LANE_MM2 = (_FREED_MM2 - HBM_PIM_ANCHOR["buffer_bytes_per_die"] * _BUFFER_MM2_PER_BYTE) / (
    HBM_PIM_ANCHOR["pcus_per_die"] * HBM_PIM_ANCHOR["lanes_per_pcu"]
)


def _param(default: float, unit: str, doc: str, source: str, **limits: Any) -> Any:
    """A :func:`dse._pytree.leaf` field that also records its ``unit`` and ``source``."""
    f = leaf(f"{doc} ({unit})", default=default, **limits)
    return dataclasses.field(
        default=default, metadata={**f.metadata, "unit": unit, "source": source}
    )


@pytree_dataclass
class AreaParams:
    """Technology parameters of the area model; every field has a default, a unit and a
    source (``dataclasses.fields(AreaParams)[i].metadata["unit" | "source" | "doc"]``).

    The MAC-lane default follows from the others through the HBM-PIM anchor; change the cell
    density or the array efficiency and ``mac_lane_mm2`` keeps its value unless you derive
    it again (:data:`HBM_PIM_ANCHOR` holds the die facts).
    """

    cell_um2_per_bit: float = _param(
        _CELL_UM2,
        "um^2/bit",
        "DRAM cell area per bit: 6F^2 at F = 20 nm = 6 x 0.02^2 = 0.0024 um^2",
        "F = 20 nm: Kwon et al., ISSCC 2021 (25.4, 'A 20nm 6GB Function-In-Memory DRAM, "
        "Based on HBM2 ...'); 6F^2: the cell layout of commodity DRAM at the 20 nm node "
        "(Hwang et al., SSDM 2012, 'An overview and future challenges of high density DRAM "
        "for 20nm and beyond'). Derived, not a measured HBM2 figure.",
        low=0,
        low_open=True,
    )
    array_efficiency: float = _param(
        _ARRAY_EFF,
        "1",
        "fraction of a bank's area that is cells (the rest: sense amplifiers, sub-word-line "
        "drivers, row/column decoders)",
        "ASSUMPTION: no published array efficiency of the HBM2/HBM-PIM die was found; 0.5 is "
        "a round value to sweep. It scales the DRAM-array area and, through the anchor, the "
        "derived MAC-lane area alike.",
        low=0,
        low_open=True,
        high=1,
    )
    mac_lane_mm2: float = _param(
        _MAC_LANE_MM2,
        "mm^2/lane",
        "area of one MAC lane (multiplier + adder of the bank's SIMD MAC unit) with its share "
        "of the unit's control",
        "Derived from the HBM-PIM capacity halving (Kwon et al., ISSCC 2021; Lee et al., "
        "ISCA 2021): the PIM die holds 4 Gb instead of 8 Gb because its 32 PCUs x 16 FP16 "
        "lanes take the area of half the cells. Freed bank area = 4 x 2^30 bit x "
        "0.0024 um^2 / 0.5 = 20.62 mm^2; minus the die's buffers as conf/pim/hbm2_samsung "
        "models them (4 pseudo-channels x (256 + 8 x 32) B = 2048 B x 8e-5 mm^2/B = "
        "0.16 mm^2); over 512 lanes = 0.0399 mm^2 per lane. It inherits the two "
        "assumptions above (array efficiency, buffer area per byte).",
        low=0,
    )
    buffer_mm2_per_byte: float = _param(
        _BUFFER_MM2_PER_BYTE,
        "mm^2/byte",
        "area of one byte of global or output buffer (latch/register-file storage built "
        "in the DRAM process)",
        "ASSUMPTION: no published per-byte area of the HBM-PIM register files (GRF/SRF) or "
        "the AiM global buffer was found; 8e-5 mm^2/B = 10 um^2 per bit (about 4,000 DRAM "
        "cells) is an assumed round value for a latch bit built in a DRAM "
        "process. At the defaults buffers are under 1% of the HBM-PIM die's PIM logic.",
        low=0,
    )
    dual_rb_fraction: float = _param(
        0.05,
        "1",
        "area of a second (PIM) row buffer per bank, as a fraction of the bank-array area",
        "ASSUMPTION: NeuPIMs (Heo et al., ASPLOS 2024) proposes dual row buffers per bank "
        "but no area figure for them was available here; 0.05 (a second row of "
        "row-buffer latches and its isolation next to each bank's sense amplifiers) is an "
        "assumed value to sweep.",
        low=0,
    )


#: output name → (unit, description); the keys of the dict :func:`area` returns
AREA_METRICS: dict[str, tuple[str, str]] = {
    "dram_array_mm2": (
        "mm^2",
        "per channel: banks * rows * row_bytes * 8 * cell_um2_per_bit / array_efficiency",
    ),
    "mac_mm2": ("mm^2", "per channel: banks * lanes * mac_lane_mm2"),
    "buffer_mm2": (
        "mm^2",
        "per channel: (gbuf_bytes + banks * obuf_entries * out_bytes) * buffer_mm2_per_byte",
    ),
    "dual_rb_mm2": (
        "mm^2",
        "per channel: dual_rb_fraction * dram_array_mm2 when system = npu_pim and dual_rb = 1",
    ),
    "pim_logic_mm2": ("mm^2", "per channel: mac_mm2 + buffer_mm2 + dual_rb_mm2"),
    "channel_mm2": ("mm^2", "per channel: dram_array_mm2 + pim_logic_mm2"),
    "total_mm2": ("mm^2", "all channels: channels * channel_mm2"),
    "capacity_GB": ("GB", "channels * banks * rows * row_bytes / 1e9 (decimal GB)"),
    "mm2_per_GB": ("mm^2/GB", "total_mm2 / capacity_GB"),
    "cost_per_GB_rel": (
        "1",
        "silicon cost per GB relative to plain DRAM of the same capacity (cost ~ area): "
        "channel_mm2 / dram_array_mm2",
    ),
}


def area(p: Any, c: AreaParams) -> dict[str, Any]:
    """Area (mm²) and relative cost per GB of one design point.

    Parameters
    ----------
    p : DesignPoint
        One point (0-d leaves); reads ``hw.pim.channels``, ``banks``, ``lanes``,
        ``rows``, ``row_bytes``, ``gbuf_bytes``, ``obuf_entries``, ``out_bytes`` and
        ``policy.system``, ``policy.dual_rb``. Batch with ``jax.vmap(area, (0, None))``.
    c : AreaParams
        Technology parameters (defaults: see the class).

    Returns
    -------
    dict of str to float64 scalar
        The :data:`AREA_METRICS` keys. With ``A`` the DRAM-array area, ``M`` MAC, ``B``
        buffers and ``D`` dual-row-buffer area per channel:
        ``channel = A + M + B + D``, ``total = channels · channel``,
        ``cost_per_GB_rel = channel / A`` (1 for plain DRAM; the HBM-PIM die at the defaults
        gives about 2, its capacity halving).
    """
    pim, pol = p.hw.pim, p.policy
    f = jnp.float64
    banks = jnp.asarray(pim.banks, f)
    channels = jnp.asarray(pim.channels, f)
    cap_bytes = banks * jnp.asarray(pim.rows, f) * jnp.asarray(pim.row_bytes, f)
    dram = cap_bytes * 8.0 * c.cell_um2_per_bit / c.array_efficiency * 1e-6
    mac = banks * jnp.asarray(pim.lanes, f) * c.mac_lane_mm2
    buf_bytes = jnp.asarray(pim.gbuf_bytes, f) + banks * jnp.asarray(
        pim.obuf_entries, f
    ) * jnp.asarray(pim.out_bytes, f)
    buf = buf_bytes * c.buffer_mm2_per_byte
    dual = (pol.system == int(SystemKind.npu_pim)) & (pol.dual_rb == 1)
    drb = jnp.where(dual, c.dual_rb_fraction * dram, 0.0)
    logic = mac + buf + drb
    channel = dram + logic
    total = channels * channel
    cap_gb = channels * cap_bytes * 1e-9
    return {
        "dram_array_mm2": dram,
        "mac_mm2": mac,
        "buffer_mm2": buf,
        "dual_rb_mm2": drb,
        "pim_logic_mm2": logic,
        "channel_mm2": channel,
        "total_mm2": total,
        "capacity_GB": cap_gb,
        "mm2_per_GB": total / cap_gb,
        "cost_per_GB_rel": channel / dram,
    }


def param_info() -> dict[str, tuple[float, str, str, str]]:
    """Field name → ``(default, unit, doc, source)`` of :class:`AreaParams`."""
    return {
        fl.name: (fl.default, fl.metadata["unit"], fl.metadata["doc"], fl.metadata["source"])
        for fl in dataclasses.fields(AreaParams)
    }
