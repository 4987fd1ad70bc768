"""The devices around the PIM: the host (GPU, NPU or CENT's near-memory units), the links
between devices, and the PIM's energy per command (DESIGN.md §4.6, §4.9).

A host op costs ``max(FLOPs / (peak · efficiency), bytes / (bandwidth · mem_eff)) +
launch_ns`` (a roofline with per-op-class efficiencies). Presets with their sources are in
``conf/host/``. The defaults here are those of ``conf/host/a100_80gb.yaml``.
"""

from __future__ import annotations

from dse._pytree import leaf, pytree_dataclass

__all__ = ["Host", "Links", "PimEnergy", "from_llmservingsim_power"]


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
    spad_bytes: int = leaf(
        "on-chip scratchpad a GEMM's tiles are staged in (bytes): a GEMM is cut into tiles of "
        "at most half of it (double buffering) by halving its largest dimension, each tile's "
        "loads before its compute, so time = max(load, compute) + min(load, compute) / tiles "
        "(NeuPIMs' NPU); 0: loads wholly hidden under compute (the roofline)",
        low=0,
        default=0,
    )
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
    sample_ns: float = leaf(
        "host sampling of each generated token (ns; a machine after the last pipeline stage; "
        "0: not modelled)",
        low=0,
        default=0.0,
    )
    sfm_ns_per_score: float = leaf(
        "softmax of decode attention scores on these units, per score (ns; 0: part of the "
        "attention kernel)",
        low=0,
        default=0.0,
    )
    sfm_ns_per_head: float = leaf(
        "softmax's scalar tail per query head and token (ns; 0: part of the attention kernel)",
        low=0,
        default=0.0,
    )
    pim_issue_per_ns: float = leaf(
        "PIM instructions this host hands to the memory controllers per ns, over all channels "
        "together, channel after channel (NeuPIMs' npu+pim baseline: one per NPU cycle); "
        "counted for programs dse builds instruction by instruction (policy.mapping=neupims "
        "with request-level placement); 0: unbounded",
        low=0,
        default=0.0,
    )
    channels: int = leaf(
        "pim_only: PIM channels one set of these units serves (a CENT CXL device's 32); a "
        "pipeline stage on fewer (hw.pim.channels) shares them with channels // hw.pim.channels "
        "stages in lockstep, its vector work and operand staging that many times as long; "
        "0: the stage's own",
        low=0,
        default=0,
    )
    rope_ns_per_elem: float = leaf(
        "pim_only: rotary embedding per q/k element on these units (ns; 0: not modelled)",
        low=0,
        default=0.0,
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


def from_llmservingsim_power(
    power: dict, hardware: str, source: str = "power", channels: int = 1
) -> dict[str, float]:
    """Design-point fields from an LLMServingSim node's ``power`` block (cluster config).

    ``npu.<hardware>``'s ``active_power``/``idle_power``/``standby_power`` (W) →
    ``hw.host.active_W``/``idle_W``/``standby_W``; ``base_node_power`` plus the CPU's
    ``idle_power`` and the NICs' and storage devices' idle power → ``hw.host.base_W``;
    ``link.energy_per_bit`` (pJ/bit) → ``hw.link.host_pJ_per_bit``; ``dram.energy_per_bit``
    → ``hw.host.mem_pJ_per_bit``. A PIM INI's ``[other] idle_power`` (mW, the whole device)
    is spread over ``channels`` as ``hw.energy.bg_mW`` when given in ``power["pim_idle_mW"]``.
    Missing blocks keep the defaults; a malformed value raises ConfigError naming the key."""
    from dse.errors import ConfigError

    def num(node: dict, key: str, where: str) -> float | None:
        if key not in node:
            return None
        v = node[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ConfigError(source, f"{where}.{key}", "a number >= 0", v)
        return float(v)

    def block(node: dict, key: str) -> dict:
        v = node.get(key, {})
        if not isinstance(v, dict):
            raise ConfigError(source, key, "a mapping", v)
        return v

    if not isinstance(power, dict):
        raise ConfigError(source, "power", "a mapping", power)
    out: dict[str, float] = {}
    npus = block(power, "npu")
    if npus:
        if hardware not in npus:
            raise ConfigError(source, "power.npu", f"an entry for {hardware!r}", sorted(npus))
        npu = npus[hardware]
        if not isinstance(npu, dict):
            raise ConfigError(source, f"power.npu.{hardware}", "a mapping", npu)
        for key, field in (
            ("active_power", "hw.host.active_W"),
            ("idle_power", "hw.host.idle_W"),
            ("standby_power", "hw.host.standby_W"),
        ):
            v = num(npu, key, f"power.npu.{hardware}")
            if v is not None:
                out[field] = v
    base = num(power, "base_node_power", "power") or 0.0
    cpu = block(power, "cpu")
    base += num(cpu, "idle_power", "power.cpu") or 0.0
    for key, count in (("nic", "num_nics"), ("storage", "num_devices")):
        b = block(power, key)
        idle = num(b, "idle_power", f"power.{key}") or 0.0
        n = num(b, count, f"power.{key}")
        base += idle * (1.0 if n is None else n)
    out["hw.host.base_W"] = base
    link = block(power, "link")
    v = num(link, "energy_per_bit", "power.link")
    if v is not None:
        out["hw.link.host_pJ_per_bit"] = v
    v = num(power, "pim_idle_mW", "power")
    if v is not None:
        out["hw.energy.bg_mW"] = v / max(channels, 1)
    dram = block(power, "dram")
    v = num(dram, "energy_per_bit", "power.dram")
    if v is not None:
        out["hw.host.mem_pJ_per_bit"] = v
    return out
