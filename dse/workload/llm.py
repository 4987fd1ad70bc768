"""Decoder-only LLM shapes for the system-iteration model (DESIGN.md §4.7).

An :class:`LlmShape` holds the sizes one decoder layer's kernels need (layers, hidden,
query and KV heads, head dim, FFN width, vocabulary) and derives weight and KV-cache sizes
from them. Shapes come from presets in ``conf/workload/model/<name>.yaml``
(:func:`load_preset`) or from a Hugging Face ``config.json`` (:func:`from_hf_config`).

Parameter count (no norms, biases or positional embeddings)::

    per layer = hidden*q_dim (Q) + 2*hidden*kv_dim (K, V) + q_dim*hidden (O)
              + (3 if gated_ffn else 2) * hidden*ffn
    params    = layers * per layer + vocab*hidden * (1 if tied_embeddings else 2)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from enum import IntEnum
from pathlib import Path
from typing import Any

import yaml

from dse.errors import ConfigError, parse_json, read_input
from dse.paths import CONF_DIR
from dse.workload.dtype import DTYPE_BYTES

__all__ = [
    "GATED_MODEL_TYPES",
    "Llm",
    "SHAPE_COLUMNS",
    "layer_params",
    "param_count",
    "shape_table",
    "PRESET_DIR",
    "LlmShape",
    "from_hf_config",
    "load_preset",
    "presets",
]

#: one YAML file per model preset
PRESET_DIR = CONF_DIR / "workload" / "model"

_SIZE_FIELDS = ("layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab")


@dataclasses.dataclass(frozen=True)
class LlmShape:
    """Sizes of a dense decoder-only transformer (element counts, not bytes)."""

    name: str
    layers: int  # decoder layers
    hidden: int  # model (residual stream) width
    heads: int  # query heads
    kv_heads: int  # key/value heads (== heads for MHA, 1 for MQA)
    head_dim: int  # elements per head
    ffn: int  # FFN intermediate width
    vocab: int  # vocabulary size (rows of the embedding)
    gated_ffn: bool  # SwiGLU-style gate, up, down (3 matrices) vs up, down (2)
    source: str  # where the numbers come from
    tied_embeddings: bool = False  # LM head shares the embedding matrix

    def __post_init__(self) -> None:
        where = f"LlmShape {self.name!r}"
        for f in _SIZE_FIELDS:
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(where, f, "an integer >= 1", v)
        for f in ("gated_ffn", "tied_embeddings"):
            if not isinstance(getattr(self, f), bool):
                raise ConfigError(where, f, "true or false", getattr(self, f))
        if self.heads % self.kv_heads:
            raise ConfigError(
                where,
                "heads",
                f"a multiple of kv_heads ({self.kv_heads}) for grouped-query attention",
                self.heads,
            )

    @property
    def q_dim(self) -> int:
        """Width of the concatenated query heads (elements)."""
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """Width of the concatenated K (or V) heads (elements)."""
        return self.kv_heads * self.head_dim

    @property
    def gqa_group(self) -> int:
        """Query heads sharing one KV head (1 = MHA)."""
        return self.heads // self.kv_heads

    @property
    def params_per_layer(self) -> int:
        """Weights of one decoder layer: Q, K, V, O projections and the FFN."""
        return layer_params(
            self.hidden, self.kv_heads, self.gqa_group, self.head_dim, self.ffn, int(self.gated_ffn)
        )

    @property
    def params(self) -> int:
        """All weights: decoder layers, token embedding and (unless tied) the LM head."""
        f = self.workload_fields()
        return param_count(**{k: f[k] for k in SHAPE_COLUMNS})

    def workload_fields(self) -> dict[str, int]:
        """This shape as the fields of a workload node (``heads`` = KV heads, ``g`` = query
        heads per KV head, ``d`` = head dim)."""
        return {
            "layers": self.layers,
            "hidden": self.hidden,
            "heads": self.kv_heads,
            "g": self.gqa_group,
            "d": self.head_dim,
            "ffn": self.ffn,
            "vocab": self.vocab,
            "gated_ffn": int(self.gated_ffn),
            "tied_embeddings": int(self.tied_embeddings),
        }

    def weight_bytes(self, dtype_bytes: float | str) -> float:
        """Bytes of all weights at ``dtype_bytes`` per element (a number or a dtype name)."""
        return self.params * _dtype_bytes(dtype_bytes)

    def kv_bytes_per_token(self, dtype_bytes: float | str) -> float:
        """KV-cache bytes one token adds: ``2 (K, V) * layers * kv_dim * dtype_bytes``."""
        return 2 * self.layers * self.kv_dim * _dtype_bytes(dtype_bytes)


def layer_params(hidden, kv_heads, g, d, ffn, gated_ffn):
    """Weights of one decoder layer (Q, K, V, O and 2 or 3 FFN matrices); plain arithmetic,
    so integers and arrays alike (``gated_ffn`` 0 or 1)."""
    q_dim, kv_dim = kv_heads * g * d, kv_heads * d
    return 2 * hidden * q_dim + 2 * hidden * kv_dim + (2 + gated_ffn) * hidden * ffn


def param_count(layers, hidden, heads, g, d, ffn, vocab, gated_ffn, tied_embeddings):
    """All weights of a shape given as :data:`SHAPE_COLUMNS` (``heads`` = KV heads): layers,
    token embedding and, unless tied, the LM head; integers or arrays."""
    embed = vocab * hidden * (2 - tied_embeddings)
    return layers * layer_params(hidden, heads, g, d, ffn, gated_ffn) + embed


def _dtype_bytes(dtype_bytes: float | str) -> float:
    if isinstance(dtype_bytes, str):
        if dtype_bytes not in DTYPE_BYTES:
            raise ConfigError("", "dtype", f"one of {sorted(DTYPE_BYTES)}", dtype_bytes)
        return DTYPE_BYTES[dtype_bytes]
    if isinstance(dtype_bytes, bool) or not dtype_bytes > 0:
        raise ConfigError("", "dtype_bytes", "a number of bytes > 0", dtype_bytes)
    return dtype_bytes


# ------------------------------------------------------------------------------------------
# presets
# ------------------------------------------------------------------------------------------


def presets() -> list[str]:
    """Names of the presets in :data:`PRESET_DIR`."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str) -> LlmShape:
    """The shape in ``conf/workload/model/<name>.yaml``."""
    names = presets()
    if name not in names:
        raise ConfigError(str(PRESET_DIR), "model", f"one of {names}", name)
    path = PRESET_DIR / f"{name}.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(str(path), "", f"valid YAML ({e})".replace("\n", " ")) from None
    fields = [f.name for f in dataclasses.fields(LlmShape)]
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", f"a mapping with keys {fields}", type(data).__name__)
    missing = [f for f in fields if f not in data and f != "tied_embeddings"]
    unknown = sorted(set(data) - set(fields))
    if missing or unknown:
        key = ", ".join(missing or unknown)
        what = "missing" if missing else "unknown key(s)"
        raise ConfigError(str(path), key, f"the keys {fields} ({what})")
    try:
        return LlmShape(**data)
    except ConfigError as e:
        raise ConfigError(str(path), e.key, e.expected, e.got) from None


# ------------------------------------------------------------------------------------------
# Hugging Face config.json
# ------------------------------------------------------------------------------------------

#: accepted config.json keys per field, first present wins (Llama/Qwen/Mistral, GPT-2/GPT-J,
#: GPT-NeoX, OPT, Falcon, BLOOM names)
_HF_KEYS: dict[str, tuple[str, ...]] = {
    "layers": ("num_hidden_layers", "n_layer", "num_layers", "n_layers"),
    "hidden": ("hidden_size", "n_embd", "d_model", "model_dim"),
    "heads": ("num_attention_heads", "n_head", "num_heads", "n_heads"),
    "kv_heads": ("num_key_value_heads", "num_kv_heads", "n_kv_heads"),
    "head_dim": ("head_dim", "kv_channels"),
    "ffn": ("intermediate_size", "n_inner", "ffn_dim", "ffn_hidden_size"),
    "vocab": ("vocab_size", "n_vocab", "padded_vocab_size"),
}

#: ``model_type`` values whose FFN is gated (gate, up, down: SwiGLU/GeGLU)
GATED_MODEL_TYPES = frozenset(
    {"llama", "qwen", "qwen2", "qwen3", "mistral", "mixtral", "gemma", "gemma2", "phi3", "olmo"}
)
#: ``model_type`` values whose FFN width defaults to ``4 * hidden`` when the config omits it
_FFN_4X_MODEL_TYPES = frozenset(
    {"gpt2", "gptj", "gpt_neo", "gpt_neox", "codegen", "gpt_bigcode", "falcon", "bloom"}
)
#: ``model_type`` values whose transformers config class defaults ``tie_word_embeddings``
#: to false (transformers' base ``PretrainedConfig`` defaults it to true)
_UNTIED_MODEL_TYPES = frozenset(
    {"llama", "qwen", "qwen2", "qwen3", "mistral", "mixtral", "gptj", "gpt_neox", "phi3", "olmo"}
)
_GATED_ACTS = frozenset({"silu", "swiglu", "swish"})


def from_hf_config(
    path_or_dict: str | os.PathLike | Mapping[str, Any], name: str | None = None
) -> LlmShape:
    """The shape a Hugging Face ``config.json`` describes (a file, its folder, or a dict).

    Field names of the Llama/Qwen2/Mistral family and of GPT-2/GPT-J/GPT-NeoX/OPT are
    understood (:data:`_HF_KEYS`). Defaults: ``kv_heads = heads``, ``head_dim = hidden /
    heads``, ``ffn = 4 * hidden`` for GPT-2-style models, ``tied_embeddings`` as the
    transformers config class of that ``model_type`` defaults it. ``gated_ffn`` is true for
    a gated ``model_type`` (:data:`GATED_MODEL_TYPES`) or, for an unknown one, a SiLU
    ``hidden_act``. Mixture-of-experts configs are rejected (a dense shape cannot hold them).
    ``name`` defaults to ``_name_or_path``, the file's folder name, or ``model_type``.

    Raises ConfigError (a ValueError) naming the file, the key(s) and what was expected.
    """
    if isinstance(path_or_dict, Mapping):
        src, cfg, folder = "config dict", dict(path_or_dict), None
    else:
        path = Path(path_or_dict)
        if path.is_dir():
            path = path / "config.json"
        src, folder = str(path), path.parent.name
        cfg = parse_json(read_input(path, "Hugging Face config.json"), src)
        if not isinstance(cfg, dict):
            raise ConfigError(src, "", "a JSON object", type(cfg).__name__)

    model_type = str(cfg.get("model_type", "")).lower()
    used: dict[str, str] = {}

    def lookup(field: str) -> int | None:
        for key in _HF_KEYS[field]:
            if cfg.get(key) is not None:
                v = cfg[key]
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise ConfigError(src, key, "an integer >= 1", v)
                used[field] = key
                return v
        return None

    for key in ("num_local_experts", "num_experts", "n_routed_experts"):
        if isinstance(cfg.get(key), int) and cfg[key] > 1:
            raise ConfigError(src, key, "a dense model (mixture-of-experts is not modelled)")

    found = {f: lookup(f) for f in _HF_KEYS}
    if found["ffn"] is None and found["hidden"] is not None:
        if model_type in _FFN_4X_MODEL_TYPES or "n_inner" in cfg:
            found["ffn"], used["ffn"] = 4 * found["hidden"], "4 * hidden"
    missing = [f for f in ("layers", "hidden", "heads", "ffn", "vocab") if found[f] is None]
    if missing:
        keys = "; ".join(f"{f} as one of {'/'.join(_HF_KEYS[f])}" for f in missing)
        raise ConfigError(src, ", ".join(_HF_KEYS[f][0] for f in missing), f"to be set: {keys}")
    if model_type == "qwen":
        # Qwen(-1)'s intermediate_size counts gate and up together (QWenMLP: w1, w2 are
        # intermediate_size // 2 wide)
        found["ffn"] //= 2

    heads = found["heads"]
    kv_heads = found["kv_heads"]
    if kv_heads is None:
        kv_heads = 1 if cfg.get("multi_query") else heads
    if heads % kv_heads:
        raise ConfigError(
            src,
            used.get("kv_heads", "multi_query"),
            f"a divisor of {used['heads']} ({heads}) for grouped-query attention",
            kv_heads,
        )
    head_dim = found["head_dim"]
    if head_dim is None:
        if found["hidden"] % heads:
            raise ConfigError(
                src, "head_dim", f"set, since {used['hidden']} is not a multiple of {heads} heads"
            )
        head_dim = found["hidden"] // heads

    if model_type in GATED_MODEL_TYPES:
        gated = True
    elif model_type in _FFN_4X_MODEL_TYPES or model_type == "opt":
        gated = False
    else:
        gated = str(cfg.get("hidden_act", cfg.get("activation_function", ""))) in _GATED_ACTS
    tied = cfg.get("tie_word_embeddings", model_type not in _UNTIED_MODEL_TYPES)
    if not isinstance(tied, bool):
        raise ConfigError(src, "tie_word_embeddings", "true or false", tied)

    if name is None:
        name = str(cfg.get("_name_or_path") or folder or model_type or "hf_model")
    try:
        return LlmShape(
            name=name,
            layers=found["layers"],
            hidden=found["hidden"],
            heads=heads,
            kv_heads=kv_heads,
            head_dim=head_dim,
            ffn=found["ffn"],
            vocab=found["vocab"],
            gated_ffn=gated,
            tied_embeddings=tied,
            source=src,
        )
    except ConfigError as e:
        raise ConfigError(src, used.get(e.key, e.key), e.expected, e.got) from None


#: integer code of each preset in a workload's ``llm`` leaf; ``custom`` (0) means the
#: workload node's own shape fields
Llm = IntEnum("Llm", ["custom", *presets()], start=0)  # type: ignore[misc]

#: columns of :func:`shape_table`, in order
SHAPE_COLUMNS = (
    "layers",
    "hidden",
    "heads",
    "g",
    "d",
    "ffn",
    "vocab",
    "gated_ffn",
    "tied_embeddings",
)


def shape_table() -> list[list[int]]:
    """One row of :data:`SHAPE_COLUMNS` per :data:`Llm` code (row 0, custom, is zeros)."""
    rows = [[0] * len(SHAPE_COLUMNS)]
    for name in presets():
        f = load_preset(name).workload_fields()
        rows.append([f[c] for c in SHAPE_COLUMNS])
    return rows
