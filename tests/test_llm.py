"""LLM shapes (dse.workload.llm): presets against published sizes and NeuPIMs' model configs,
the Hugging Face config.json reader, and the errors bad input gets."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from dse.workload.llm import PRESET_DIR, LlmShape, from_hf_config, load_preset, presets
from tests.conftest import REFERENCE

# preset -> (published parameter count in billions, where the figure is published).
# Counts here leave out norms, biases and learned positional embeddings, which are < 0.5 %
# of any of these models, so 3 % covers rounding of the published figure.
PUBLISHED: dict[str, tuple[float, str]] = {
    "llama3_1_8b": (8.03, "Llama-3.1-8B model card / HF safetensors total"),
    "llama3_1_70b": (70.6, "Llama-3.1-70B model card / HF safetensors total"),
    "llama2_7b": (6.74, "Llama 2 paper (Touvron et al. 2023) / HF safetensors total"),
    "llama2_13b": (13.0, "Llama 2 paper / HF safetensors total (13.0B)"),
    "llama2_70b": (69.0, "Llama 2 paper / HF safetensors total (69.0B)"),
    "qwen1_5_7b": (7.72, "Qwen1.5-7B HF safetensors total (7.7B)"),
    "qwen1_5_72b": (72.3, "Qwen1.5-72B HF safetensors total (72.3B)"),
    "gpt3_7b": (6.7, "GPT-3 paper Table 2.1 (GPT-3 6.7B)"),
    "gpt3_13b": (13.0, "GPT-3 paper Table 2.1 (GPT-3 13B)"),
    "gpt3_30b": (30.0, "OPT paper Table 1 (OPT-30B), the shape NeuPIMs' GPT3-30B uses"),
    "gpt3_175b": (175.0, "GPT-3 paper Table 2.1 (GPT-3 175B)"),
}
REL_TOL = 0.03

NEUPIMS = REFERENCE / "pim" / "neupims"


def test_every_preset_has_a_published_size():
    assert sorted(PUBLISHED) == presets()


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_preset_loads_and_matches_published_size(name):
    shape = load_preset(name)
    assert shape.name == name
    assert shape.source, "every preset names its source"
    text = (PRESET_DIR / f"{name}.yaml").read_text()
    assert text.startswith("#"), "a preset starts with a comment citing its source"
    billions, where = PUBLISHED[name]
    assert shape.params / 1e9 == pytest.approx(billions, rel=REL_TOL), where
    assert shape.q_dim == shape.heads * shape.head_dim
    assert shape.gqa_group * shape.kv_heads == shape.heads


@pytest.mark.parametrize("name", [n for n in sorted(PUBLISHED) if n.startswith("gpt3_")])
def test_gpt3_params_follow_the_closed_form(name):
    """GPT-style layer (MHA, d_ff = 4 d, two FFN matrices): 12 d^2 per layer (Kaplan et al.
    2020, Table 1), plus one tied vocab x d embedding."""
    s = load_preset(name)
    assert (s.q_dim, s.kv_dim, s.ffn) == (s.hidden, s.hidden, 4 * s.hidden)
    assert not s.gated_ffn and s.tied_embeddings
    assert s.params == 12 * s.layers * s.hidden**2 + s.vocab * s.hidden


def test_llama3_1_8b_derived_sizes():
    s = load_preset("llama3_1_8b")
    assert (s.q_dim, s.kv_dim, s.gqa_group) == (4096, 1024, 4)
    assert s.kv_bytes_per_token(2) == 131_072 == 2 * 32 * 8 * 128 * 2
    assert s.kv_bytes_per_token("bf16") == 131_072
    assert s.weight_bytes(2) == 2 * s.params
    assert s.weight_bytes("int8") == s.params


# ------------------------------------------------------------------------------------------
# NeuPIMs model configs
# ------------------------------------------------------------------------------------------


def _neupims_models() -> dict[str, dict]:
    files = sorted(NEUPIMS.glob("configs_model_configs_gpt3-*.json"))
    assert files, f"no model configs in {NEUPIMS}"
    out = {}
    for f in files:
        size = f.stem.removeprefix("configs_model_configs_gpt3-").lower()
        out[f"gpt3_{size}"] = json.loads(f.read_text())
    return out


@pytest.mark.reference
def test_neupims_model_configs_agree_with_gpt3_presets():
    """Every field a NeuPIMs model config shares with a preset agrees. ``model_n_layer`` is 1
    in all of them (NeuPIMs simulates one layer and scales), so layers are not compared;
    ``model_params_b`` is a nominal size, the count rounded to whole billions."""
    models = _neupims_models()
    assert sorted(models) == sorted(n for n in presets() if n.startswith("gpt3_"))
    for name, cfg in models.items():
        s = load_preset(name)
        got = {
            "model_n_head": s.heads,
            "model_n_embd": s.hidden,
            "model_vocab_size": s.vocab,
            "model_params_b": round(s.params / 1e9),
        }
        want = {k: cfg[k] for k in got}
        assert got == want, name
        assert cfg["model_n_embd"] // cfg["model_n_head"] == s.head_dim, name


# ------------------------------------------------------------------------------------------
# Hugging Face config.json
# ------------------------------------------------------------------------------------------

LLAMA31_8B = {  # meta-llama/Llama-3.1-8B config.json
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 128000,
    "eos_token_id": 128001,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "initializer_range": 0.02,
    "intermediate_size": 14336,
    "max_position_embeddings": 131072,
    "mlp_bias": False,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.43.0.dev0",
    "use_cache": True,
    "vocab_size": 128256,
}

GPT2 = {  # openai-community/gpt2 config.json (abridged: no dropout / task fields)
    "activation_function": "gelu_new",
    "architectures": ["GPT2LMHeadModel"],
    "model_type": "gpt2",
    "n_ctx": 1024,
    "n_embd": 768,
    "n_head": 12,
    "n_inner": None,
    "n_layer": 12,
    "n_positions": 1024,
    "vocab_size": 50257,
}

QWEN15_7B = {  # Qwen/Qwen1.5-7B config.json (abridged)
    "architectures": ["Qwen2ForCausalLM"],
    "hidden_act": "silu",
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "model_type": "qwen2",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 32,
    "tie_word_embeddings": False,
    "vocab_size": 151936,
}

OPT_30B = {  # facebook/opt-30b config.json (abridged)
    "activation_function": "relu",
    "ffn_dim": 28672,
    "hidden_size": 7168,
    "model_type": "opt",
    "num_attention_heads": 56,
    "num_hidden_layers": 48,
    "vocab_size": 50272,
}


def _write(tmp_path, cfg: dict | str, folder: str = "model") -> str:
    d = tmp_path / folder
    d.mkdir(exist_ok=True)
    p = d / "config.json"
    p.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
    return p


def _same_shape(a: LlmShape, b: LlmShape) -> bool:
    return dataclasses.replace(a, name=b.name, source=b.source) == b


def test_hf_llama3_1_8b_round_trips_to_the_preset(tmp_path):
    p = _write(tmp_path, LLAMA31_8B, "Llama-3.1-8B")
    shape = from_hf_config(p)
    assert shape.name == "Llama-3.1-8B" and shape.source == str(p)
    assert _same_shape(shape, load_preset("llama3_1_8b"))
    assert from_hf_config(p.parent) == shape, "a model folder reads its config.json"
    assert _same_shape(from_hf_config(LLAMA31_8B), shape), "a parsed dict works too"
    assert from_hf_config(LLAMA31_8B, name="x").name == "x"


@pytest.mark.parametrize(
    "cfg,preset,changes",
    [
        (QWEN15_7B, "qwen1_5_7b", {}),
        # OPT-30B is the shape of NeuPIMs' GPT3-30B, with OPT's own vocabulary
        (OPT_30B, "gpt3_30b", {"vocab": 50272}),
    ],
)
def test_hf_configs_match_presets(cfg, preset, changes):
    want = dataclasses.replace(load_preset(preset), **changes)
    assert _same_shape(from_hf_config(cfg), want)


def test_hf_gpt2_style(tmp_path):
    shape = from_hf_config(_write(tmp_path, GPT2, "gpt2"))
    want = LlmShape(
        name="gpt2",
        layers=12,
        hidden=768,
        heads=12,
        kv_heads=12,
        head_dim=64,
        ffn=3072,
        vocab=50257,
        gated_ffn=False,
        tied_embeddings=True,
        source=str(tmp_path / "gpt2" / "config.json"),
    )
    assert shape == want
    # GPT-2 small: 124M with biases, norms and 1024 x 768 positional embeddings (~0.9M)
    assert shape.params / 1e6 == pytest.approx(124.4, rel=REL_TOL)


def test_hf_other_families():
    gptj = {"model_type": "gptj", "n_layer": 28, "n_embd": 4096, "n_head": 16}
    gptj |= {"n_inner": None, "vocab_size": 50400}  # EleutherAI/gpt-j-6b
    s = from_hf_config(gptj)
    assert (s.ffn, s.head_dim, s.gated_ffn, s.tied_embeddings) == (16384, 256, False, False)
    assert s.params / 1e9 == pytest.approx(6.05, rel=REL_TOL)  # GPT-J 6B: 6,053,381,344

    # Qwen(-1): intermediate_size counts gate and up together (QWen-7B: 22016 -> 11008)
    qwen = {"model_type": "qwen", "num_hidden_layers": 32, "hidden_size": 4096}
    qwen |= {"num_attention_heads": 32, "intermediate_size": 22016, "vocab_size": 151936}
    qwen |= {"kv_channels": 128}
    s = from_hf_config(qwen)
    assert (s.ffn, s.gated_ffn, s.tied_embeddings) == (11008, True, False)

    mqa = {"model_type": "falcon", "num_hidden_layers": 32, "hidden_size": 4544}
    mqa |= {"num_attention_heads": 71, "multi_query": True, "vocab_size": 65024}
    s = from_hf_config(mqa)
    assert (s.kv_heads, s.gqa_group, s.head_dim, s.ffn) == (1, 71, 64, 4 * 4544)


# ------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------


def test_hf_not_json(tmp_path):
    p = _write(tmp_path, '{"hidden_size": 4096,')
    with pytest.raises(ValueError, match=r"config\.json.*valid JSON"):
        from_hf_config(p)
    with pytest.raises(ValueError, match=r"model/config\.json.*JSON object"):
        from_hf_config(_write(tmp_path, "[1, 2]"))
    with pytest.raises(ValueError, match=r"nowhere/config\.json.*an existing"):
        from_hf_config(tmp_path / "nowhere" / "config.json")


@pytest.mark.parametrize("key", ["num_hidden_layers", "hidden_size", "vocab_size"])
def test_hf_missing_key(tmp_path, key):
    cfg = {k: v for k, v in LLAMA31_8B.items() if k != key}
    p = _write(tmp_path, cfg)
    with pytest.raises(ValueError, match=rf"{re.escape(str(p))}.*{key}") as e:
        from_hf_config(p)
    assert "Traceback" not in str(e.value) and "\n" not in str(e.value)


def test_hf_missing_ffn_names_the_key_and_alternatives(tmp_path):
    cfg = {k: v for k, v in LLAMA31_8B.items() if k != "intermediate_size"}
    with pytest.raises(ValueError, match=r"config\.json.*intermediate_size.*n_inner"):
        from_hf_config(_write(tmp_path, cfg))


def test_hf_heads_not_divisible_by_kv_heads(tmp_path):
    p = _write(tmp_path, LLAMA31_8B | {"num_key_value_heads": 5})
    with pytest.raises(ValueError, match=r"config\.json.*num_key_value_heads.*divisor"):
        from_hf_config(p)


@pytest.mark.parametrize("value", ["4096", 4096.5, 0, True, None])
def test_hf_bad_value(tmp_path, value):
    p = _write(tmp_path, LLAMA31_8B | {"hidden_size": value})
    with pytest.raises(ValueError, match=r"config\.json.*hidden_size"):
        from_hf_config(p)


def test_hf_mixture_of_experts_is_rejected():
    cfg = LLAMA31_8B | {"model_type": "mixtral", "num_local_experts": 8}
    with pytest.raises(ValueError, match=r"num_local_experts.*mixture-of-experts"):
        from_hf_config(cfg)


def test_shape_validation_names_the_field():
    good = dataclasses.asdict(load_preset("llama3_1_8b"))
    with pytest.raises(ValueError, match=r"'layers'.*>= 1.*got 0"):
        LlmShape(**good | {"layers": 0})
    with pytest.raises(ValueError, match=r"'heads'.*multiple of kv_heads \(5\)"):
        LlmShape(**good | {"kv_heads": 5})
    with pytest.raises(ValueError, match=r"'ffn'.*integer"):
        LlmShape(**good | {"ffn": 14336.0})
    with pytest.raises(ValueError, match=r"'gated_ffn'.*true or false"):
        LlmShape(**good | {"gated_ffn": "yes"})
    with pytest.raises(ValueError, match=r"dtype_bytes"):
        load_preset("llama3_1_8b").weight_bytes(0)


def test_unknown_preset_lists_the_names():
    with pytest.raises(ValueError, match=r"model.*llama3_1_8b.*got 'llama4'"):
        load_preset("llama4")
    with pytest.raises(ValueError) as e:
        load_preset("../model/llama3_1_8b")
    assert all(n in str(e.value) for n in presets())
