"""Design points, status bits, and the single config → point path.

A :class:`DesignPoint` is a tree of frozen dataclasses (``hw``, ``workload``, ``policy``);
a batch is the same tree with a leading axis on every leaf. :func:`from_config` is the only
way a composed Hydra config becomes a point: it checks every value against its field's range
and reports a bad one as a :class:`~dse.errors.ConfigError` naming where it came from.

Infeasible points are data: models return a ``status`` integer whose bits are named in
:data:`STATUS_BITS`; :func:`decode_status` turns it into a readable column.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from enum import Enum, IntEnum
from typing import Any

import numpy as np

from dse._pytree import is_static, iter_fields, leaf_dtype, pytree_dataclass
from dse.errors import ConfigError
from dse.hw.pim import Hardware
from dse.policy import Policy
from dse.workload.gemv import Gemv

__all__ = [
    "DesignPoint",
    "ADVISORY",
    "STATUS_BITS",
    "decode_status",
    "is_feasible",
    "flag_invalid",
    "from_config",
    "field_info",
    "Provenance",
    "GROUP_PACKAGES",
    "override_for",
]


@pytree_dataclass
class DesignPoint:
    hw: Hardware
    workload: Gemv
    policy: Policy


#: status bit → name. A point whose status has no bit set but the advisory ones is feasible.
STATUS_BITS: dict[int, str] = {
    1 << 0: "bad_parameter",  # a parameter outside its physical range (e.g. from a sampler)
    1 << 1: "gbuf_too_small",  # the global buffer cannot hold one column of input
    1 << 2: "refresh_starved",  # tRFC >= tREFI: refresh leaves no time for work
    1 << 3: "capacity_exceeded",  # the weights do not fit in the banks' rows
    1 << 4: "requests_rejected",  # serving: a request can never fit the KV capacity
    1 << 5: "iteration_limit",  # serving: the simulation stopped before every request ended
    1 << 6: "unmapped",  # the chosen mapping has no PIM program for this kernel
    1 << 7: "nonfinite",  # a metric came out NaN or infinite (parameters past float range)
    1 << 8: "overflow",  # a metric came out negative (int64 arithmetic wrapped)
    # advisory: the point is feasible and its metrics are kept, but they describe less than
    # was asked for
    1 << 9: "batch_limited",  # fewer decode requests admitted than workload.batch asked for
}
STATUS_CODE = {name: bit for bit, name in STATUS_BITS.items()}
#: status bits that leave a point feasible (its metrics stand; the status says what differs)
ADVISORY = STATUS_CODE["batch_limited"]


def is_feasible(status: Any) -> Any:
    """Points whose status has no bit but the advisory ones (:data:`ADVISORY`)."""
    return (status & ~ADVISORY) == 0


def flag_invalid(metrics: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``metrics`` of a batch of points with the arithmetic checked: a point whose float
    metrics include NaN or an infinity gets ``nonfinite``, one with a negative metric gets
    ``overflow`` (every model's times, counts, sizes, fractions, rates and energies are
    non-negative, so a negative value is int64 arithmetic that wrapped, or a quantity
    derived from it); other statuses are kept."""
    if "status" not in metrics:
        return metrics
    status = np.asarray(metrics["status"], dtype=np.int64)
    n = status.shape[0]
    nonfinite = np.zeros(n, bool)
    wrapped = np.zeros(n, bool)
    for name, v in metrics.items():
        v = np.asarray(v)
        if name == "status" or v.ndim == 0 or v.shape[0] != n or v.dtype.kind not in "iuf":
            continue
        flat = v.reshape(n, -1)
        if v.dtype.kind == "f":
            nonfinite |= ~np.isfinite(flat).all(axis=1)
        with np.errstate(invalid="ignore"):
            wrapped |= (flat < 0).any(axis=1)
    status = (
        status
        | np.where(nonfinite, STATUS_CODE["nonfinite"], 0)
        | np.where(wrapped, STATUS_CODE["overflow"], 0)
    )
    return {**metrics, "status": status}


def decode_status(status: np.ndarray) -> np.ndarray:
    """Status integers → strings: ``"ok"`` or the set bits' names joined with ``|``."""
    status = np.asarray(status, dtype=np.int64)
    out = np.full(status.shape, "ok", dtype=object)
    for code in np.unique(status):
        if code == 0:
            continue
        names = "|".join(n for b, n in STATUS_BITS.items() if code & b)
        out[status == code] = names or f"unknown_{code}"
    return out


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    path: str
    owner: type
    field: dataclasses.Field
    static: bool

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(object) if self.static else leaf_dtype(self.owner, self.field.name)

    @property
    def doc(self) -> str:
        return self.field.metadata.get("doc", "")

    @property
    def choices(self) -> Any:
        return self.field.metadata.get("choices")

    @property
    def has_default(self) -> bool:
        return self.field.default is not dataclasses.MISSING

    def expected(self) -> str:
        """Human description of an allowed value."""
        md = self.field.metadata
        ch = self.choices
        if self.static:
            return f"one of {list(ch)}" if ch else "a value"
        if isinstance(ch, type) and issubclass(ch, IntEnum):
            return f"one of {[m.name for m in ch]}"
        kind = "an integer" if self.dtype.kind == "i" else "a number"
        low, high = md.get("low"), md.get("high")
        if low is not None:
            kind += f" {'>' if md.get('low_open') else '>='} {low:g}"
        if high is not None:
            kind += f" <= {high:g}"
        return kind

    def check(self, value: Any, source: str) -> Any:
        """Cast ``value`` to this field's type or raise a ConfigError."""
        ch = self.choices
        if self.static:
            if isinstance(value, Enum):
                value = value.name
            if ch and value not in ch:
                raise ConfigError(source, self.path, self.expected(), value)
            return value
        if isinstance(ch, type) and issubclass(ch, IntEnum):
            name = value.name if isinstance(value, Enum) else value
            if isinstance(name, str) and name in ch.__members__:
                return np.int64(ch[name].value)
            raise ConfigError(source, self.path, self.expected(), value)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ConfigError(source, self.path, self.expected(), value)
        if abs(value) > sys.float_info.max or not math.isfinite(float(value)):
            raise ConfigError(source, self.path, self.expected(), value)
        if self.dtype.kind == "i":
            if float(value) != int(value):
                raise ConfigError(source, self.path, self.expected(), value)
            value = int(value)
            if not np.iinfo(self.dtype).min <= value <= np.iinfo(self.dtype).max:
                raise ConfigError(
                    source, self.path, f"{self.expected()} that fits {self.dtype}", value
                )
        md = self.field.metadata
        low, high = md.get("low"), md.get("high")
        if low is not None and (value < low or (md.get("low_open") and value == low)):
            raise ConfigError(source, self.path, self.expected(), value)
        if high is not None and value > high:
            raise ConfigError(source, self.path, self.expected(), value)
        return self.dtype.type(value)


def field_info(cls: type = DesignPoint) -> dict[str, FieldInfo]:
    """Dotted path → :class:`FieldInfo` for every leaf and static field of ``cls``."""
    return {p: FieldInfo(p, owner, f, is_static(f)) for p, owner, f in iter_fields(cls)}


#: config group → the package its files fill
GROUP_PACKAGES = {
    "pim": "hw.pim",
    "host": "hw.host",
    "workload": "workload",
    "policy": "policy",
    "space": "space",
}
_OPTIONAL_HW = ("module", "host", "link", "energy")


def _with_llm(node: Mapping[str, Any], prov: Provenance) -> Mapping[str, Any]:
    """A workload node whose ``hf_config`` names a Hugging Face ``config.json``: its shape
    fields filled from that file (``llm`` becomes ``custom``); a command-line override of a
    shape field still wins."""
    path = node.get("hf_config") if isinstance(node, Mapping) else None
    if not path:
        return node
    from dse.workload.llm import from_hf_config

    fields = from_hf_config(path).workload_fields()  # its errors name the file and key
    fields = {
        k: v for k, v in fields.items() if override_for(f"workload.{k}", prov.overrides) is None
    }
    return {**node, **fields, "llm": "custom"}


def override_for(key: str, overrides: Sequence[str]) -> str | None:
    """The most specific command-line override that sets ``key`` (or a node above or below it).

    An override of a config group (``space=single``) selects a file: it sets the group's
    name only, not the values in the file.
    """
    best: tuple[int, str] | None = None
    for ov in overrides if key else ():
        name = ov.split("=", 1)[0].lstrip("+~")
        if name.lstrip("/") in GROUP_PACKAGES:
            hit = name.lstrip("/") == key
        else:
            hit = (
                name == key
                or key.startswith((name + ".", name + "["))
                or name.startswith(key + ".")
            )
        if hit and (best is None or len(name) > best[0]):
            best = (len(name), ov)
    return best[1] if best is not None else None


@dataclasses.dataclass(frozen=True)
class Provenance:
    """Where config values came from, to name the file in error messages.

    ``group_files`` maps a config package (``"hw.pim"``) to the file that filled it;
    ``overrides`` are the command-line overrides; ``primary`` is the primary config (or study)
    file and ``primary_keys`` the dotted keys it sets itself.
    """

    group_files: Mapping[str, str] = dataclasses.field(default_factory=dict)
    overrides: tuple[str, ...] = ()
    primary: str = "config"
    primary_keys: frozenset[str] = frozenset()

    def source_of(self, key: str) -> str:
        """The command-line override, else the primary file, else the group file that set
        ``key``."""
        ov = override_for(key, self.overrides)
        if ov is not None:
            return f"command line override '{ov}'"
        node = re.sub(r"\[\d+\]$", "", key)
        if any(
            node == k or node.startswith(k + ".") or k.startswith(node + ".")
            for k in self.primary_keys
        ):
            return self.primary
        best = ""
        for package in self.group_files:
            if (key == package or key.startswith(package + ".")) and len(package) > len(best):
                best = package
        return self.group_files[best] if best else self.primary


def from_config(
    cfg: Mapping[str, Any],
    provenance: Provenance | None = None,
    loader: Callable[[Mapping[str, Any], Provenance], Mapping[str, Any]] | None = None,
) -> DesignPoint:
    """Build one :class:`DesignPoint` of numpy scalars from a composed config.

    ``cfg`` holds ``hw.pim``, ``workload`` and ``policy`` nodes whose keys are the point's
    field names (extra descriptive keys such as ``name``/``source`` are ignored). ``loader``
    may fill ``hw.pim`` from an INI file first (see :func:`dse.hw.dram.pim_fields_from_ini`).
    """
    prov = provenance or Provenance()
    pim_cfg = dict(_node(cfg, "hw.pim", prov))
    if loader is not None:
        pim_cfg.update(loader(pim_cfg, prov))
    hw = cfg.get("hw") if isinstance(cfg, Mapping) else None
    nodes: dict[str, Mapping[str, Any]] = {"hw.pim": pim_cfg}
    for sub in _OPTIONAL_HW:  # optional hardware nodes: every field has a default
        node = hw.get(sub) if isinstance(hw, Mapping) else None
        nodes[f"hw.{sub}"] = node if isinstance(node, Mapping) else {}
    nodes["workload"] = _with_llm(_node(cfg, "workload", prov), prov)
    nodes["policy"] = _node(cfg, "policy", prov)
    values: dict[str, Any] = {}
    for path, info in field_info().items():
        package, _, name = path.rpartition(".")
        node = nodes[package]
        if (name not in node or node[name] is None) and info.has_default:
            values[path] = info.check(info.field.default, prov.source_of(path))
            continue
        if name not in node or node[name] is None or node[name] == "???":
            raise ConfigError(prov.source_of(path), path, info.expected() + " (missing)")
        values[path] = info.check(node[name], prov.source_of(path))
    return build_point(values)


def build_point(values: Mapping[str, Any], cls: type = DesignPoint) -> Any:
    """Assemble a (possibly batched) point from a complete dotted-path → value mapping."""
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        sub = [p for p in values if p.split(".", 1)[0] == f.name]
        if len(sub) == 1 and sub[0] == f.name:
            kwargs[f.name] = values[f.name]
        else:
            hint = _subtree_type(cls, f.name)
            kwargs[f.name] = build_point({p.split(".", 1)[1]: values[p] for p in sub}, hint)
    return cls(**kwargs)


def _subtree_type(cls: type, name: str) -> type:
    import typing

    return typing.get_type_hints(cls)[name]


def _node(cfg: Mapping[str, Any], path: str, prov: Provenance) -> Mapping[str, Any]:
    node: Any = cfg
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node or node[part] is None:
            raise ConfigError(prov.primary, path, "a config node (choose a preset group)")
        node = node[part]
    if not isinstance(node, Mapping):
        raise ConfigError(prov.source_of(path), path, "a mapping of parameters", node)
    return node
