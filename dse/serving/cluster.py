"""LLMServingSim cluster configs (``--cluster-config``) as design-point overrides (DESIGN.md §5).

:func:`read_cluster` reads one LLMServingSim cluster JSON and returns a :class:`Cluster`:
the Hydra group choices (``host``, ``pim``), design-point field overrides and, through
:meth:`Cluster.hydra_overrides`, the same as command-line overrides for ``python -m dse``
(or :func:`dse.cli._compose`). Every problem is a :class:`~dse.errors.ConfigError` naming
the file, the JSON path of the key (``nodes[0].instances[0].npu_mem.mem_bw``) and what was
expected; a file that is not JSON names the line and column.

One instance is read: ``instance=(node, inst)`` picks it (default the first); the counts of
nodes and instances are recorded. ``num_nodes`` and ``nodes[n].num_instances`` must match
the lists, as LLMServingSim requires.

Mapping (LLMServingSim key → design point; units as LLMServingSim's: GB, GB/s, ns, W, pJ/bit):

* ``nodes[n].instances[i].hardware`` → the ``host`` preset: ``RTXPRO6000`` → rtx_pro_6000,
  ``A100``/``A100_80GB`` → a100_80gb, ``A100_40GB`` → a100_40gb, ``H100`` → h100,
  ``A6000`` → a6000 (case and ``-``/``_``/spaces ignored; :data:`HARDWARE`).
* ``npu_mem.mem_size`` → ``hw.host.mem_GB``; ``npu_mem.mem_bw`` → ``hw.host.mem_GBps``.
  Both are required; ``npu_mem.mem_latency`` is not modelled (the roofline has none).
* ``tp_size`` → ``policy.tp``; ``pp_size`` → ``policy.pp``; as LLMServingSim resolves them:
  ``num_npus = tp_size * pp_size``, a missing one inferred from the others (``pp_size``
  defaults to 1, all missing means one NPU).
* ``model_name`` → ``workload.llm``: the part after the last ``/`` compared with the presets
  of ``conf/workload/model/`` ignoring case and separators, with a leading ``Meta-`` and
  trailing ``-hf``/``-chat``/``-instruct``/``-base`` dropped (``meta-llama/Llama-3.1-8B`` →
  llama3_1_8b, ``Llama-2-7b-hf`` → llama2_7b, ``Qwen1.5-7B`` → qwen1_5_7b). Another model
  needs its Hugging Face ``config.json``: ``read_cluster(..., hf_config=path)`` (the
  ``workload.hf_config`` override) instead.
* ``nodes[n].cpu_mem.pim_config`` → the ``pim`` preset for LLMServingSim's four shipped
  INIs (:data:`BUILTIN_PIM`: ``DDR4_8GB_3200_pim`` → ddr4_3200_llmservingsim,
  ``HBM2_1GB_2000_pim`` → hbm2_llmservingsim, ``LPDDR4X_2GB_4266_pim`` →
  lpddr4x_llmservingsim, ``LPDDR5_2GB_6400_pim`` → lpddr5_llmservingsim; with or without
  ``_pim`` and ``.ini``, any case). Any other name is a user INI, looked for as
  ``<config dir>/../pim/<name>.ini``, ``<config dir>/../pim/<name>/<name>.ini``, the only
  ``.ini`` in ``<config dir>/../pim/<name>/``, then the same three under
  ``./configs/pim/`` (LLMServingSim's repository ships flat files, its documentation
  describes directories); a path to an existing file is taken as it is. A user INI
  becomes ``hw.pim.ini=<absolute path>`` (timings from :func:`dse.hw.dram.pim_fields_from_ini`;
  the pim group keeps the study's choice for the fields an INI does not set) and
  ``hw.pim.name=<its stem>``. No ``pim_config``: no pim group is chosen.
* PIM channels: LLMServingSim puts one PIM channel on each DIMM and has
  ``cpu_mem.mem_size // dimm_size`` of them (``pim-channels`` of its memory config;
  ``dimm_size`` = the INI's ``channel_size``, raised to one rank when a rank is larger, as
  its ``PIMModel`` computes it) → ``hw.pim.channels`` (512 GB of 8 GB DDR4 DIMMs: 64).
  ``cpu_mem.mem_size`` is required with a ``pim_config``.
* The host↔PIM link: LLMServingSim models the node's CPU memory as remote memory with
  ``cpu_mem.mem_bw``/``mem_latency``, which it replaces, when attention is offloaded, by the
  PIM model's: ``channels * bus_width/8 * data_rate/1000`` GB/s and ``CL * tCK`` ns →
  ``hw.link.host_GBps``/``hw.link.host_latency_ns`` (DDR4 preset: 64 × 25.6 = 1638.4 GB/s,
  13.86 ns). Without a ``pim_config``, ``cpu_mem.mem_bw``/``mem_latency`` when given.
* ``link_bw`` (GB/s) and ``link_latency`` (ns) at the top level are LLMServingSim's
  NPU-to-NPU network (ASTRA-Sim's topology, charged to TP all-reduces and PP hand-offs) →
  ``hw.link.dev_GBps``/``hw.link.dev_latency_ns``. Both are required, as in LLMServingSim.
* ``nodes[n].power`` → :func:`dse.hw.host.from_llmservingsim_power` (``hw.host.active_W``,
  ``idle_W``, ``standby_W``, ``base_W``, ``mem_pJ_per_bit``, ``hw.link.host_pJ_per_bit``),
  with the PIM INI's ``[other] idle_power`` (mW per DIMM, i.e. per PIM channel, which
  LLMServingSim multiplies by the DIMM count) as ``hw.energy.bg_mW``. The built-in INIs'
  values are :data:`BUILTIN_PIM` constants; a user INI's is read from the file.
  ``standby_duration`` has no field and is ignored.

Not mapped: ``pd_type`` (recorded), ``cpu_mem`` without PIM beyond the link, ``cxl_mem``,
placement rules. Attention offloading is LLMServingSim's ``--enable-attn-offloading`` flag,
not part of the cluster config, so ``policy.system`` is left to the caller.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dse.errors import ConfigError, parse_json, read_input

__all__ = ["BUILTIN_PIM", "Cluster", "HARDWARE", "PimSpec", "read_cluster"]

#: normalised LLMServingSim ``hardware`` label (lower case, no ``-``/``_``/spaces) → host preset
HARDWARE: dict[str, str] = {
    "rtxpro6000": "rtx_pro_6000",
    "a100": "a100_80gb",
    "a10080gb": "a100_80gb",
    "a10040gb": "a100_40gb",
    "h100": "h100",
    "a6000": "a6000",
    "rtxa6000": "a6000",
}


@dataclasses.dataclass(frozen=True)
class PimSpec:
    """What a cluster config needs of one LLMServingSim PIM INI."""

    preset: str | None  # conf/pim/ preset, None for a user INI
    idle_mW: float | None  # [other] idle_power: one DIMM (one PIM channel)
    dimm_GB: float  # PIMModel.ch_capacity: channel_size (MB) / 1024, at least one rank
    ch_GBps: float  # PIMModel.ch_bw: bus_width / 8 * data_rate / 1000
    read_ns: float  # PIMModel.read_latency: CL * tCK


#: LLMServingSim's four shipped PIM INIs (casys-kaist/LLMServingSim configs/pim/*.ini; copies
#: in ../shared/reference/pim/llmservingsim/), keyed by file stem without ``_pim``, lower case.
#: idle_mW is each file's ``[other] idle_power``; dimm_GB, ch_GBps and read_ns follow
#: LLMServingSim's PIMModel from ``[system] channel_size, bus_width``, ``[other] data_rate``,
#: ``[timing] CL, tCK`` (tests/test_cluster.py recomputes them from the files).
BUILTIN_PIM: dict[str, PimSpec] = {
    # DDR4_8GB_3200_pim.ini: idle_power 623 mW; channel_size 8192 MB; 64 bit x 3200 MT/s;
    # CL 22 x tCK 0.63 ns
    "ddr4_8gb_3200": PimSpec("ddr4_3200_llmservingsim", 623.0, 8.0, 25.6, 22 * 0.63),
    # HBM2_1GB_2000_pim.ini: idle_power 160 mW; channel_size 1024 MB; 128 bit x 2000 MT/s;
    # CL 14 x tCK 1 ns
    "hbm2_1gb_2000": PimSpec("hbm2_llmservingsim", 160.0, 1.0, 32.0, 14 * 1.0),
    # LPDDR4X_2GB_4266_pim.ini: idle_power 70 mW; channel_size 2048 MB; 16 bit x 4266 MT/s;
    # CL 36 x tCK 0.468 ns
    "lpddr4x_2gb_4266": PimSpec("lpddr4x_llmservingsim", 70.0, 2.0, 8.532, 36 * 0.468),
    # LPDDR5_2GB_6400_pim.ini: idle_power 71 mW; channel_size 2048 MB; 16 bit x 6400 MT/s;
    # CL 34 x tCK 0.3125 ns
    "lpddr5_2gb_6400": PimSpec("lpddr5_llmservingsim", 71.0, 2.0, 12.8, 34 * 0.3125),
}
_BUILTIN_NAMES = [
    "DDR4_8GB_3200_pim",
    "HBM2_1GB_2000_pim",
    "LPDDR4X_2GB_4266_pim",
    "LPDDR5_2GB_6400_pim",
]
_MODEL_SUFFIXES = frozenset({"hf", "chat", "instruct", "base"})
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_./:+\-@%]+$")


@dataclasses.dataclass(frozen=True)
class Cluster:
    """One instance of an LLMServingSim cluster config, as design-point overrides."""

    source: str  # the cluster config file
    overrides: dict[str, object]  # design-point field path -> value
    groups: dict[str, str]  # Hydra config group -> preset: "host", and "pim" for a built-in
    ini_path: str | None  # a user PIM INI (absolute), None for a built-in or no PIM
    model_name: str  # as in the file, e.g. "meta-llama/Llama-3.1-8B"
    llm: str  # conf/workload/model/ preset, "custom" with hf_config
    hardware: str  # as in the file, e.g. "RTXPRO6000"
    num_nodes: int
    num_instances: int  # instances over all nodes
    instance: tuple[int, int] = (0, 0)  # (node, instance in the node) read
    pim_config: str | None = None  # as in the file
    pd_type: str | None = None  # "prefill", "decode" or None
    hf_config: str | None = None  # a Hugging Face config.json (absolute) for the shape

    def hydra_overrides(self) -> list[str]:
        """The cluster as Hydra command-line overrides: group choices first, then the INI
        and model file, then every field override (sorted)."""
        out = [f"{group}={name}" for group, name in self.groups.items()]
        if self.ini_path is not None:
            out.append(f"hw.pim.ini={_hydra_value(self.ini_path)}")
            out.append(f"hw.pim.name={_hydra_value(Path(self.ini_path).stem)}")
        if self.hf_config is not None:
            out.append(f"workload.hf_config={_hydra_value(self.hf_config)}")
        out += [f"{k}={_hydra_value(v)}" for k, v in sorted(self.overrides.items())]
        return out


def _hydra_value(v: object) -> str:
    """A value in Hydra's override grammar (strings quoted unless plainly safe)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v)
    if _SAFE_VALUE.match(s) and s.lower() not in ("true", "false", "null"):
        return s
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------


def read_cluster(
    path: str | os.PathLike,
    *,
    instance: tuple[int, int] = (0, 0),
    hf_config: str | os.PathLike | None = None,
) -> Cluster:
    """Read ``path`` (an LLMServingSim cluster JSON); see the module docstring for the
    mapping. ``instance`` = (node index, instance index within the node). ``hf_config``: a
    Hugging Face ``config.json`` giving the model's shape instead of a preset (the
    ``model_name`` is then only recorded). Raises ConfigError."""
    source = str(path)
    cfg = parse_json(read_input(path, "cluster config (JSON)"), source)
    r = _Reader(source)
    cfg = r.mapping(cfg, "", "a JSON object (LLMServingSim cluster config)")

    nodes = r.get(cfg, "nodes", "", list, "a list of nodes")
    num_nodes = r.integer(cfg, "num_nodes", "", low=1)
    if num_nodes != len(nodes):
        raise ConfigError(
            source, "num_nodes", f"the number of entries in nodes ({len(nodes)})", num_nodes
        )
    if not (isinstance(instance, tuple) and len(instance) == 2):
        raise ConfigError(source, "instance", "a (node, instance) pair of indexes", instance)
    n_idx, i_idx = instance
    total_instances = 0
    for n, node in enumerate(nodes):
        node = r.mapping(node, f"nodes[{n}]", "a mapping (one node)")
        insts = r.get(node, "instances", f"nodes[{n}]", list, "a list of instances")
        count = r.integer(node, "num_instances", f"nodes[{n}]", low=1)
        if count != len(insts):
            raise ConfigError(
                source,
                f"nodes[{n}].num_instances",
                f"the number of entries in nodes[{n}].instances ({len(insts)})",
                count,
            )
        total_instances += count
    if isinstance(n_idx, bool) or not isinstance(n_idx, int) or not 0 <= n_idx < len(nodes):
        raise ConfigError(
            source, "nodes", f"a node index in 0..{len(nodes) - 1} (instance=(node, inst))", n_idx
        )
    node = nodes[n_idx]
    npath = f"nodes[{n_idx}]"
    insts = node["instances"]
    if isinstance(i_idx, bool) or not isinstance(i_idx, int) or not 0 <= i_idx < len(insts):
        raise ConfigError(
            source,
            f"{npath}.instances",
            f"an instance index in 0..{len(insts) - 1} (instance=(node, inst))",
            i_idx,
        )
    ipath = f"{npath}.instances[{i_idx}]"
    inst = r.mapping(insts[i_idx], ipath, "a mapping (one instance)")

    overrides: dict[str, object] = {}
    groups: dict[str, str] = {}

    # the device and its memory
    hardware = r.get(inst, "hardware", ipath, str, "a hardware name")
    groups["host"] = _host_preset(source, f"{ipath}.hardware", hardware)
    npu_mem = r.get(inst, "npu_mem", ipath, dict, "a mapping with mem_size, mem_bw")
    overrides["hw.host.mem_GB"] = r.number(npu_mem, "mem_size", f"{ipath}.npu_mem", low=0)
    overrides["hw.host.mem_GBps"] = r.number(
        npu_mem, "mem_bw", f"{ipath}.npu_mem", low=0, low_open=True
    )
    if "mem_latency" in npu_mem:
        r.number(npu_mem, "mem_latency", f"{ipath}.npu_mem", low=0)
    tp, pp = _parallelism(r, inst, ipath)
    overrides["policy.tp"] = tp
    overrides["policy.pp"] = pp
    pd_type = inst.get("pd_type")
    if pd_type not in (None, "prefill", "decode"):
        raise ConfigError(source, f"{ipath}.pd_type", "'prefill', 'decode' or null", pd_type)

    # the model
    model_name = r.get(inst, "model_name", ipath, str, "a model name")
    hf_path: str | None = None
    if hf_config is not None:
        hf_path = str(Path(hf_config).resolve())
        llm = "custom"
    else:
        llm = _llm_preset(source, f"{ipath}.model_name", model_name)
        overrides["workload.llm"] = llm

    # the network between NPUs
    overrides["hw.link.dev_GBps"] = r.number(cfg, "link_bw", "", low=0, low_open=True)
    overrides["hw.link.dev_latency_ns"] = r.number(cfg, "link_latency", "", low=0)

    # CPU memory, PIM
    cpu_mem = node.get("cpu_mem", {})
    if cpu_mem is None:
        cpu_mem = {}
    cpu_mem = r.mapping(cpu_mem, f"{npath}.cpu_mem", "a mapping")
    pim_name = cpu_mem.get("pim_config")
    ini_path: str | None = None
    spec: PimSpec | None = None
    if pim_name is not None:
        key = f"{npath}.cpu_mem.pim_config"
        if not isinstance(pim_name, str) or not pim_name.strip():
            raise ConfigError(source, key, "the name of a PIM INI", pim_name)
        spec, ini_path = _pim_spec(source, key, pim_name)
        if spec.preset is not None:
            groups["pim"] = spec.preset
        mem_size = r.number(cpu_mem, "mem_size", f"{npath}.cpu_mem", low=0, low_open=True)
        dimms = math.floor(mem_size / spec.dimm_GB + 1e-9)
        if dimms < 1:
            raise ConfigError(
                source,
                f"{npath}.cpu_mem.mem_size",
                f"at least one {spec.dimm_GB:g} GB PIM DIMM of {pim_name} (GB)",
                cpu_mem["mem_size"],
            )
        overrides["hw.pim.channels"] = dimms
        overrides["hw.link.host_GBps"] = round(dimms * spec.ch_GBps, 9)
        overrides["hw.link.host_latency_ns"] = round(spec.read_ns, 9)
        for k in ("mem_bw", "mem_latency"):  # checked, then replaced as LLMServingSim does
            if k in cpu_mem:
                r.number(cpu_mem, k, f"{npath}.cpu_mem", low=0)
    else:
        if "mem_bw" in cpu_mem:
            overrides["hw.link.host_GBps"] = r.number(
                cpu_mem, "mem_bw", f"{npath}.cpu_mem", low=0, low_open=True
            )
        if "mem_latency" in cpu_mem:
            overrides["hw.link.host_latency_ns"] = r.number(
                cpu_mem, "mem_latency", f"{npath}.cpu_mem", low=0
            )

    # power
    if node.get("power") is not None:
        from dse.hw.host import from_llmservingsim_power

        power = r.mapping(node["power"], f"{npath}.power", "a mapping")
        if spec is not None and spec.idle_mW is not None:
            power = {**power, "pim_idle_mW": spec.idle_mW}
        try:
            fields = from_llmservingsim_power(power, hardware, source=source, channels=1)
        except ConfigError as e:
            raise ConfigError(source, f"{npath}.{e.key}", e.expected, e.got) from None
        overrides.update(fields)

    return Cluster(
        source=source,
        overrides=overrides,
        groups=groups,
        ini_path=ini_path,
        model_name=model_name,
        llm=llm,
        hardware=hardware,
        num_nodes=num_nodes,
        num_instances=total_instances,
        instance=(n_idx, i_idx),
        pim_config=pim_name,
        pd_type=pd_type,
        hf_config=hf_path,
    )


class _Reader:
    """Typed access to JSON values; every failure names the file and the JSON path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def mapping(self, v: Any, path: str, expected: str) -> dict:
        if not isinstance(v, dict):
            raise ConfigError(self.source, path, expected, _short(v))
        return v

    def get(self, node: Mapping, key: str, path: str, typ: type, expected: str) -> Any:
        where = f"{path}.{key}" if path else key
        if key not in node or node[key] is None:
            raise ConfigError(self.source, where, f"{expected} (missing)")
        v = node[key]
        if not isinstance(v, typ) or (typ is str and not v.strip()):
            raise ConfigError(self.source, where, expected, _short(v))
        return v

    def number(
        self, node: Mapping, key: str, path: str, *, low: float, low_open: bool = False
    ) -> float:
        where = f"{path}.{key}" if path else key
        what = f"a number {'>' if low_open else '>='} {low:g}"
        if key not in node or node[key] is None:
            raise ConfigError(self.source, where, f"{what} (missing)")
        v = node[key]
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float))
            or not math.isfinite(v)
            or v < low
            or (low_open and v == low)
        ):
            raise ConfigError(self.source, where, what, _short(v))
        return float(v)

    def integer(self, node: Mapping, key: str, path: str, *, low: int) -> int:
        where = f"{path}.{key}" if path else key
        what = f"an integer >= {low}"
        if key not in node or node[key] is None:
            raise ConfigError(self.source, where, f"{what} (missing)")
        v = node[key]
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ConfigError(self.source, where, what, _short(node[key]))
        return v


def _parallelism(r: _Reader, inst: Mapping, ipath: str) -> tuple[int, int]:
    """(tp, pp) from ``tp_size``, ``pp_size``, ``num_npus`` as LLMServingSim resolves them."""
    given = {
        k: r.integer(inst, k, ipath, low=1)
        for k in ("tp_size", "pp_size", "num_npus")
        if inst.get(k) is not None
    }
    pp = given.get("pp_size", 1)
    npus = given.get("num_npus")
    tp = given.get("tp_size")
    if tp is None:
        if npus is None:
            return 1, pp
        if npus % pp:
            raise ConfigError(r.source, f"{ipath}.num_npus", f"a multiple of pp_size ({pp})", npus)
        return npus // pp, pp
    if npus is not None and npus != tp * pp:
        if "pp_size" in given or npus % tp:
            raise ConfigError(
                r.source, f"{ipath}.num_npus", f"tp_size * pp_size ({tp} * {pp})", npus
            )
        pp = npus // tp
    return tp, pp


def _short(v: Any) -> Any:
    """A value small enough for a one-line message."""
    if isinstance(v, dict):
        return f"a mapping with keys {sorted(map(str, v))[:8]}"
    if isinstance(v, list):
        return f"a list of {len(v)}"
    return v


def _norm(s: str) -> str:
    return re.sub(r"[\s_\-]+", "", s).lower()


def _host_preset(source: str, key: str, hardware: str) -> str:
    preset = HARDWARE.get(_norm(hardware))
    if preset is None:
        names = ["RTXPRO6000", "A100", "A100_80GB", "A100_40GB", "H100", "A6000"]
        raise ConfigError(source, key, f"one of {names} (case, '-', '_' ignored)", hardware)
    return preset


def _model_key(name: str) -> str:
    tokens = [t for t in re.split(r"[^0-9a-z]+", name.lower()) if t]
    if len(tokens) > 1 and tokens[0] == "meta":
        tokens = tokens[1:]
    while len(tokens) > 1 and tokens[-1] in _MODEL_SUFFIXES:
        tokens = tokens[:-1]
    return "".join(tokens)


def _llm_preset(source: str, key: str, model_name: str) -> str:
    from dse.workload.llm import presets

    names = presets()
    want = _model_key(model_name.rsplit("/", 1)[-1])
    for name in names:
        if _model_key(name) == want:
            return name
    raise ConfigError(
        source,
        key,
        f"a model with a preset in conf/workload/model/ ({', '.join(names)}); for another "
        "model give its Hugging Face config.json (workload.hf_config=<path>, "
        "read_cluster(..., hf_config=<path>))",
        model_name,
    )


# --------------------------------------------------------------------------------------
# PIM INIs
# --------------------------------------------------------------------------------------


def _builtin_key(name: str) -> str:
    stem = name.strip()
    if stem.lower().endswith(".ini"):
        stem = stem[:-4]
    stem = stem.lower()
    if stem.endswith("_pim"):
        stem = stem[:-4]
    return stem


def _pim_spec(source: str, key: str, name: str) -> tuple[PimSpec, str | None]:
    """The built-in preset, or a user INI found near the cluster config (its absolute path)."""
    builtin = BUILTIN_PIM.get(_builtin_key(name))
    if builtin is not None:
        return builtin, None
    stem = name.strip()
    if stem.lower().endswith(".ini"):
        stem = stem[:-4]
    config_dir = Path(source).resolve().parent
    places: list[Path] = []
    for base in (config_dir.parent / "pim", Path.cwd() / "configs" / "pim"):
        places += [base / f"{stem}.ini", base / stem / f"{stem}.ini", base / stem / "*.ini"]
    direct = (
        [config_dir / name.strip(), Path(name.strip())] if name.lower().endswith(".ini") else []
    )
    found: Path | None = None
    for p in direct + places:
        if p.name == "*.ini":
            inis = sorted(p.parent.glob("*.ini")) if p.parent.is_dir() else []
            if len(inis) == 1:
                found = inis[0]
                break
        elif p.is_file():
            found = p
            break
    if found is None:
        looked = ", ".join(str(p) for p in direct + places)
        raise ConfigError(
            source,
            key,
            f"a built-in PIM config ({', '.join(_BUILTIN_NAMES)}) or a DRAMSim3 INI at one "
            f"of: {looked}",
            name,
        )
    return _user_spec(found), str(found.resolve())


def _user_spec(path: Path) -> PimSpec:
    """A user INI's PimSpec, computed as LLMServingSim's PIMModel does (errors name the
    INI file and its key)."""
    from dse.hw.dram import read_ini

    cfg = read_ini(path)
    devices = cfg.bus_width / cfg.device_width
    page_bytes = cfg.columns * cfg.device_width / 8
    megs_per_rank = page_bytes * (cfg.rows / 1024) / 1024 * cfg.banks * devices
    channel_MB = max(float(cfg.channel_size_MB), megs_per_rank)  # at least one rank
    return PimSpec(
        preset=None,
        idle_mW=cfg.idle_power_mW,
        dimm_GB=channel_MB / 1024,
        ch_GBps=cfg.bus_width / 8 * cfg.data_rate_MTps / 1000,
        read_ns=cfg.CL * cfg.tCK_ns,
    )
