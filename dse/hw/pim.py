"""PIM channel parameters (DESIGN.md §4.1–4.2).

One PIM channel: a DRAM channel whose ``banks`` each carry a MAC unit of ``lanes``
multipliers, fed one column access (``col_bytes``) per all-bank MAC command, with a
channel-level global buffer (GBuf) for the input vector and per-bank output registers.
All timings are integer clock cycles of ``tCK_ns`` and keep their JEDEC names.
"""

from __future__ import annotations

from enum import IntEnum

from dse._pytree import leaf, pytree_dataclass
from dse.hw.host import Host, Links, PimEnergy

__all__ = ["Hardware", "MacPlacement", "Module", "PimChannel"]


class MacPlacement(IntEnum):
    """Where the MAC units sit (AttAcc's three designs): ``bank`` one per bank (AiM, Newton,
    AttAcc_bank), ``bankgroup`` one per bank group (AttAcc_BG), ``buffer`` on the HBM buffer
    die, one per pseudo-channel (AttAcc_buffer)."""

    bank = 0
    bankgroup = 1
    buffer = 2


@pytree_dataclass
class PimChannel:
    # clock and external interface
    tCK_ns: float = leaf(
        "clock period (ns); every *_cycles/t* field counts these", low=0, low_open=True
    )
    data_rate: float = leaf(
        "data-bus transfers per tCK (2 for DDR; data_rate_MT/s * tCK / 1000)", low=0, low_open=True
    )
    bus_width_bits: int = leaf("external data-bus width of one channel (bits)", low=1)
    # organisation
    channels: int = leaf("PIM channels working on the kernel in parallel", low=1)
    banks: int = leaf("banks per channel with a MAC unit, active in all-bank mode", low=1)
    lanes: int = leaf("multipliers per bank MAC unit", low=1)
    col_bytes: int = leaf("bytes per column access (one all-bank MAC operand per bank)", low=1)
    row_bytes: int = leaf("bytes per bank row (row-buffer size)", low=1)
    rows: int = leaf("rows per bank", low=1)
    gbuf_bytes: int = leaf("global (input) buffer bytes per channel", low=0)
    out_bytes: int = leaf("bytes read out per bank per output value (OutReg entry)", low=1)
    # JEDEC timing (cycles of tCK)
    BL: int = leaf("burst length", low=1)
    CL: int = leaf("CAS latency (cycles)", low=0)
    tRCD: int = leaf("ACT to READ/WRITE (cycles)", low=0)
    tRCD_mac: int = leaf(
        "ACT to first all-bank MAC (cycles; AiM uses a longer tRCD for MAC)", low=0
    )
    tRP: int = leaf("PRE to ACT (cycles)", low=0)
    tRAS: int = leaf("ACT to PRE (cycles)", low=0)
    tRTP: int = leaf("READ (or last MAC) to PRE (cycles)", low=0)
    tWR: int = leaf("write recovery (cycles)", low=0)
    tCCD_S: int = leaf("column to column, different bank group (cycles)", low=0)
    tCCD_L: int = leaf("column to column, same bank group (cycles)", low=0)
    tCCD_mac: int = leaf("all-bank MAC to all-bank MAC spacing (cycles)", low=1)
    tRRD_S: int = leaf("ACT to ACT, different bank group (cycles)", low=0)
    tRRD_L: int = leaf("ACT to ACT, same bank group (cycles)", low=0)
    tFAW: int = leaf("four-activation window (cycles)", low=0)
    tRFC: int = leaf("refresh cycle time (cycles); 0 disables refresh", low=0)
    tREFI: int = leaf("refresh interval (cycles)", low=1)
    # command-level timing (dse.hw.pim_commands); 0 = inherit where noted
    tCWL: int = leaf("CAS write latency (cycles)", low=0, default=4)
    tWPRE: int = leaf("write preamble (cycles; read-to-write turnaround)", low=0, default=1)
    tWTR_S: int = leaf("write to read, different bank group (cycles)", low=0, default=4)
    tWTR_L: int = leaf("write to read, same bank group (cycles)", low=0, default=8)
    tRCD_wr: int = leaf("ACT to WRITE (cycles; 0 = tRCD)", low=0, default=0)
    tRC: int = leaf("ACT to ACT, same bank (cycles; 0 = tRAS + tRP)", low=0, default=0)
    tRCD_af: int = leaf(
        "ACT to all-bank activation function AF16 (cycles; 0 = tRCD_mac)", low=0, default=0
    )
    tRCD_ewmul: int = leaf(
        "ACT to all-bank element-wise multiply (cycles; 0 = tRCD_mac)", low=0, default=0
    )
    tRCD_rdcp: int = leaf("ACT to bank-to-GBuf copy (cycles; 0 = tRCD_mac)", low=0, default=0)
    tRCD_wrcp: int = leaf("ACT to GBuf-to-bank copy (cycles; 0 = tRCD_mac)", low=0, default=0)
    tMOD: int = leaf(
        "register/array access mode switch (cycles; AiM's TMOD before register reads and "
        "writes, WR_GB/WR_BIAS/RD_MAC, after array commands and back; 0 = none)",
        low=0,
        default=0,
    )
    CL_reg: int = leaf("read latency of the MAC/AF result registers (cycles)", low=0, default=0)
    CWL_reg: int = leaf("write latency of the MAC registers (cycles)", low=0, default=1)
    CWL_gb: int = leaf("write latency of the global buffer (cycles)", low=0, default=1)
    mac_placement: int = leaf(
        "where the MAC units sit (MacPlacement): 0 one per bank, 1 one per bank group, 2 on the "
        "buffer die (one per pseudo-channel)",
        low=0,
        high=2,
        default=0,
    )
    # buffering of the command pipeline (dse.models.pim_kernel); defaults are a conventional
    # AiM/Newton channel: one output register per bank, single-ported, blocking readout
    obuf_entries: int = leaf(
        "output-buffer entries per bank (1 = a single OutReg)", low=1, default=1
    )
    dual_port: int = leaf(
        "1: GBuf/OBuf are dual-ported (transfers may touch them while MACs run); 0: not",
        low=0,
        high=1,
        default=0,
    )
    blocking_readout: int = leaf(
        "1: RD-OUT holds the MAC pipeline until its data is out (CL + bursts); 0: background",
        low=0,
        high=1,
        default=1,
    )
    host_share: float = leaf(
        "npu_pim with dual row buffers: fraction of a channel's ordinary (host) bandwidth left "
        "while the channel runs PIM commands (the PIM's commands go first on the command bus); "
        "1: no contention",
        low=0,
        low_open=True,
        high=1,
        default=1.0,
    )


@pytree_dataclass
class Module:
    """A PIM module's hub (GPRs and an extra processing unit) and the links between modules
    (DESIGN.md §4.4); the defaults are assumptions meant to be swept."""

    hub_GBps: float = leaf(
        "hub GPR transfer bandwidth for partial-sum reduction (GB/s)",
        low=0,
        low_open=True,
        default=64.0,
    )
    epu_Gops: float = leaf("hub EPU additions per ns", low=0, low_open=True, default=32.0)
    hub_latency_ns: float = leaf("fixed cost of one hub reduction (ns)", low=0, default=50.0)
    link_GBps: float = leaf(
        "module-to-module link bandwidth (GB/s; CXL x16 ~64)", low=0, low_open=True, default=64.0
    )
    link_latency_ns: float = leaf(
        "module-to-module link latency per transfer (ns; CENT CXL ~180)", low=0, default=180.0
    )
    link_pJ_per_bit: float = leaf(
        "module-to-module link energy (pJ/bit; CXL/PCIe-class SerDes)", low=0, default=5.0
    )
    link_flit_bytes: int = leaf(
        "bytes on the module link per flit (CXL 3 port-based-routing flit: 256)", low=1, default=256
    )
    link_payload_bytes: int = leaf(
        "payload bytes per flit (CXL 3 PBR flit: 3 x 64-B messages = 192)", low=1, default=192
    )


@pytree_dataclass
class Hardware:
    pim: PimChannel
    module: Module
    host: Host
    link: Links
    energy: PimEnergy
