"""The devices around the PIM: the host (GPU, NPU or CENT's near-memory units), the links
between devices, and the PIM's energy per command (DESIGN.md §4.6, §4.9).

A host op costs ``max(FLOPs / (peak · efficiency), bytes / (bandwidth · mem_eff)) +
launch_ns`` (a roofline with per-op-class efficiencies). Presets with their sources are in
``conf/host/``. The defaults here are those of ``conf/host/a100_80gb.yaml``.
"""

from __future__ import annotations

from dse._pytree import leaf, pytree_dataclass

__all__ = ["Host", "Links", "PimEnergy"]


@pytree_dataclass
class Host:
    tflops: float = leaf(
        "peak dense fp16/bf16 matrix throughput of one device (TFLOP/s)",
        low=0,
        low_open=True,
        default=312.0,
    )
    vector_tflops: float = leaf(
        "peak fp16 vector (non-matrix) throughput: norms, softmax, activations (TFLOP/s)",
        low=0,
        low_open=True,
        default=78.0,
    )
    mem_GBps: float = leaf("device memory bandwidth (GB/s)", low=0, low_open=True, default=2039.0)
    mem_GB: float = leaf("device memory capacity (GB)", low=0, default=80.0)
    gemm_eff: float = leaf(
        "fraction of peak reached by GEMMs (QKV, O, FFN, LM head)",
        low=0,
        low_open=True,
        high=1,
        default=0.7,
    )
    attn_eff: float = leaf(
        "fraction of peak reached by attention (score, softmax, context)",
        low=0,
        low_open=True,
        high=1,
        default=0.5,
    )
    mem_eff: float = leaf(
        "fraction of memory bandwidth reached by streaming ops",
        low=0,
        low_open=True,
        high=1,
        default=0.8,
    )
    launch_ns: float = leaf("fixed cost of one kernel launch (ns)", low=0, default=4000.0)
    active_W: float = leaf("device power while busy (W)", low=0, default=400.0)
    idle_W: float = leaf("device power while waiting inside a step (W)", low=0, default=90.0)
    standby_W: float = leaf(
        "device power with no work scheduled (W; between requests in serving)",
        low=0,
        default=60.0,
    )
    base_W: float = leaf(
        "rest of the node per device: CPU, NIC, storage, fans (W)", low=0, default=0.0
    )
    mem_pJ_per_bit: float = leaf(
        "energy per bit of device-memory traffic (pJ/bit)", low=0, default=3.9
    )


@pytree_dataclass
class Links:
    host_GBps: float = leaf(
        "host link carrying offloaded attention's q/k/v and outputs (GB/s; PCIe 5.0 x16: 64)",
        low=0,
        low_open=True,
        default=64.0,
    )
    host_latency_ns: float = leaf("host link latency per transfer (ns)", low=0, default=2000.0)
    host_pJ_per_bit: float = leaf(
        "host link energy (pJ/bit; LLMServingSim's link block: 4)", low=0, default=4.0
    )
    dev_GBps: float = leaf(
        "device-to-device link for TP all-reduce and PP hand-off (GB/s per direction; "
        "A100 NVLink3: 300)",
        low=0,
        low_open=True,
        default=300.0,
    )
    dev_latency_ns: float = leaf("device link latency per ring step (ns)", low=0, default=3000.0)
    dev_pJ_per_bit: float = leaf("device link energy (pJ/bit)", low=0, default=1.3)


@pytree_dataclass
class PimEnergy:
    """Per-command energies of one PIM channel. Defaults: DRAMSim3's power model on its
    ``HBM2_8Gb_x128.ini`` (VDD 1.2 V, IDD0 65, IDD2N 40, IDD3N 55, IDD4R 390 mA, tRAS 34,
    tRP 14 ns): ACT = VDD·(IDD0·tRC − IDD3N·tRAS − IDD2N·tRP) = 828 pJ, a 64-byte read
    burst = VDD·(IDD4R − IDD3N)·BL/2 = 804 pJ, background VDD·IDD3N = 66 mW."""

    act_pJ: float = leaf("one bank's ACT + PRE (pJ)", low=0, default=828.0)
    rd_pJ_per_byte: float = leaf(
        "external read/write, array to pins (pJ per byte; 804 pJ / 64 B)", low=0, default=12.6
    )
    mac_pJ_per_byte: float = leaf(
        "all-bank MAC: column access into the bank's MAC unit and the multiply-accumulate "
        "(pJ per operand byte; the array part of a read without the I/O, about half)",
        low=0,
        default=6.3,
    )
    bg_mW: float = leaf("background power per channel (mW)", low=0, default=66.0)
