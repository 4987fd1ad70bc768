"""Structured-config schemas (Hydra/OmegaConf) generated from the design-point dataclasses.

The schema of every config group mirrors the fields of the pytree it fills, so a typo'd key
or a wrongly typed value fails when Hydra composes the config, before any evaluation.
Integer-coded choices appear in configs by name (``policy.io: overlap``).
"""

from __future__ import annotations

import dataclasses
import enum
import secrets
import typing
from dataclasses import field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from dse._pytree import is_static
from dse.hw.host import Host, Links, PimEnergy
from dse.hw.pim import Module, PimChannel
from dse.paths import CONF_DIR, SWEEPS_DIR
from dse.policy import Policy
from dse.workload.gemv import Gemv

__all__ = [
    "CONF_DIR",
    "SWEEPS_DIR",
    "Config",
    "Sampler",
    "register_configs",
]


_ENUMS: dict[tuple[str, ...], type[enum.Enum]] = {}


def _choice_enum(name: str, members: tuple[str, ...]) -> type[enum.Enum]:
    if members not in _ENUMS:
        _ENUMS[members] = enum.Enum(name, {m: m for m in members})  # type: ignore[misc]
    return _ENUMS[members]


def _schema_from(cls: type, name: str, extra: list[tuple[str, Any, Any]]) -> type:
    """A config dataclass with ``extra`` descriptive fields then one field per point field."""
    hints = typing.get_type_hints(cls)
    spec: list[tuple[str, Any, Any]] = [(n, t, field(default=d)) for n, t, d in extra]
    for f in dataclasses.fields(cls):
        choices = f.metadata.get("choices")
        if is_static(f):
            typ: Any = _choice_enum(f"{name}_{f.name}", choices) if choices else hints[f.name]
            default = typ[f.default] if choices else f.default
        elif isinstance(choices, type) and issubclass(choices, enum.Enum):
            typ = _choice_enum(f"{name}_{f.name}", tuple(choices.__members__))
            default = MISSING if f.default is dataclasses.MISSING else typ[f.default]
        else:
            typ = hints[f.name]
            default = MISSING if f.default is dataclasses.MISSING else f.default
        spec.append((f.name, typ, field(default=default)))
    return dataclasses.make_dataclass(name, spec)


PimConfig = _schema_from(
    PimChannel,
    "PimConfig",
    [
        ("name", str, MISSING),
        ("source", str, ""),
        ("ini", typing.Optional[str], None),  # noqa: UP045 (OmegaConf needs Optional)
    ],
)
ModuleConfig = _schema_from(Module, "ModuleConfig", [])
HostConfig = _schema_from(Host, "HostConfig", [("name", str, "a100_80gb"), ("source", str, "")])
LinksConfig = _schema_from(Links, "LinksConfig", [])
EnergyConfig = _schema_from(PimEnergy, "EnergyConfig", [])
GemvConfig = _schema_from(
    Gemv,
    "GemvConfig",
    [("name", str, "gemv"), ("hf_config", typing.Optional[str], None)],  # noqa: UP045
)
PolicyConfig = _schema_from(Policy, "PolicyConfig", [("name", str, "default")])


class Sampler(enum.Enum):
    grid = "grid"
    random = "random"
    sobol = "sobol"
    lhs = "lhs"


@dataclasses.dataclass
class HwConfig:
    pim: PimConfig = MISSING  # type: ignore[valid-type]
    module: ModuleConfig = field(default_factory=ModuleConfig)  # type: ignore[valid-type]
    host: HostConfig = field(default_factory=HostConfig)  # type: ignore[valid-type]
    link: LinksConfig = field(default_factory=LinksConfig)  # type: ignore[valid-type]
    energy: EnergyConfig = field(default_factory=EnergyConfig)  # type: ignore[valid-type]


@dataclasses.dataclass
class SpaceConfig:
    name: str = "single"
    sampler: Sampler = Sampler.grid
    n: int = 1024  # points per static combination for random / sobol / lhs
    seed: int = 0
    axes: dict[str, Any] = field(default_factory=dict)
    constraints: list[str] = field(default_factory=list)
    shard: int = 0  # this job evaluates slice `shard` of `num_shards` disjoint slices
    num_shards: int = 1


@dataclasses.dataclass
class OutputConfig:
    csv: bool = False  # also write points.csv
    plot: bool = True  # write the trade-off PNG
    top: int = 8  # rows in the printed best-points table
    x: str = ""  # trade-off plot axes (dotted columns); empty picks a default
    y: str = ""  # empty: the model's objective when x is given
    color: str = ""  # empty: the model's first categorical metric
    dir: typing.Optional[str] = None  # noqa: UP045  write here instead of the Hydra run dir
    timeline: bool = True  # system models: Gantt chart of the best point's first layers
    objective: bool = False  # return the best point's objective to Hydra (Optuna's sweeper)


@dataclasses.dataclass
class SyntheticConfig:
    n: int = 1000  # requests
    rate: float = 10.0  # Poisson arrivals, requests/s
    seed: int = 0
    input_dist: str = "sharegpt"  # dse.workload.lengths.LengthDist name
    output_dist: typing.Optional[str] = None  # noqa: UP045  None: the input trace's pairs
    input_len: int = 512  # fixed input length
    output_len: int = 128  # fixed output length


@dataclasses.dataclass
class ServingConfig:
    """model=serving: the trace and the simulation's settings."""

    dataset: typing.Optional[str] = None  # noqa: UP045  LLMServingSim JSONL or NeuPIMs CSV
    neupims_output_toks: int = 128  # output length for a NeuPIMs CSV trace
    cluster: typing.Optional[str] = None  # noqa: UP045  LLMServingSim cluster config JSON
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    slots: int = 0  # request slots (0: policy.max_num_seqs)
    max_skip: int = 256  # steps one event interval may cover
    slo_ttft_ms: float = 1000.0
    slo_tpot_ms: float = 100.0


@dataclasses.dataclass
class Config:
    study: str = "default"
    model: str = "pim_gemv"
    hw: HwConfig = field(default_factory=HwConfig)
    workload: GemvConfig = MISSING  # type: ignore[valid-type]
    policy: PolicyConfig = MISSING  # type: ignore[valid-type]
    space: SpaceConfig = field(default_factory=SpaceConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    search: dict[str, Any] = field(default_factory=dict)  # python -m dse.search (conf/search/)
    chunk_size: int = 262144  # design points per compiled call (the last chunk is padded)
    resume: bool = False  # continue the newest unfinished run of the same config
    devices: int = 0  # local devices the design-point axis is sharded over (0: all)
    progress: bool = True


def register_configs() -> None:
    """Register the schemas with Hydra's ConfigStore (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="dse_schema", node=Config)
    # ${dse.run_id:}: a short token that makes a run directory's name unique among runs
    # started in the same second (two sweeps, two cluster jobs). Cached on the config like
    # Hydra's ${now:}, so a multirun's jobs, pickled to other processes, share it.
    if not OmegaConf.has_resolver("dse.run_id"):
        OmegaConf.register_new_resolver("dse.run_id", lambda: secrets.token_hex(2), use_cache=True)
