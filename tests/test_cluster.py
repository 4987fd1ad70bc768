"""LLMServingSim cluster configs (dse.serving.cluster) and per-request CSVs (dse.serving.csvout)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dse.config import CONF_DIR
from dse.errors import ConfigError
from dse.serving.cluster import BUILTIN_PIM, read_cluster
from dse.serving.csvout import COLUMNS, HEADER, read_requests_csv, write_requests_csv
from tests.conftest import REFERENCE, reference_params

EXAMPLE = CONF_DIR / "serving" / "single_node_pim_instance.json"
LSS_PIM = REFERENCE / "pim" / "llmservingsim"
OUTPUTS = REFERENCE / "llmservingsim" / "example_outputs"
EXAMPLE_CSVS = sorted(OUTPUTS.glob("*.csv"))


def _need(path: Path) -> Path:
    """A reference file (the tests reading them are marked ``reference``, skipped where
    $DSE_REFERENCE is absent): a missing one in a present directory is a broken checkout."""
    assert path.exists(), f"{path} missing (set DSE_REFERENCE to the reference/ folder)"
    return path


def _example() -> dict:
    return json.loads(EXAMPLE.read_text())


def _write(tmp_path: Path, cfg: dict | str, name: str = "cluster.json") -> Path:
    d = tmp_path / "cluster"
    d.mkdir(exist_ok=True)
    p = d / name
    p.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
    return p


# --------------------------------------------------------------------------------------
# the example cluster config
# --------------------------------------------------------------------------------------


def test_example_config_overrides():
    c = read_cluster(EXAMPLE)
    assert c.groups == {"host": "rtx_pro_6000", "pim": "ddr4_3200_llmservingsim"}
    assert c.ini_path is None and c.hf_config is None
    assert (c.model_name, c.llm, c.hardware) == (
        "meta-llama/Llama-3.1-8B",
        "llama3_1_8b",
        "RTXPRO6000",
    )
    assert (c.num_nodes, c.num_instances, c.instance) == (1, 1, (0, 0))
    assert c.pim_config == "DDR4_8GB_3200_pim" and c.pd_type is None
    assert c.overrides == {
        "hw.host.mem_GB": 96.0,
        "hw.host.mem_GBps": 1597.0,
        "policy.tp": 1,
        "policy.pp": 1,
        "workload.llm": "llama3_1_8b",
        "hw.link.dev_GBps": 16.0,
        "hw.link.dev_latency_ns": 20000.0,
        # 512 GB of 8 GB DDR4 PIM DIMMs, one PIM channel each (LLMServingSim pim-channels)
        "hw.pim.channels": 64,
        "hw.link.host_GBps": 64 * 25.6,
        "hw.link.host_latency_ns": 13.86,
        # the power block
        "hw.host.active_W": 600.0,
        "hw.host.idle_W": 35.0,
        "hw.host.standby_W": 300.0,
        "hw.host.base_W": 60 + 10 + 20 + 2 * 5,
        "hw.host.mem_pJ_per_bit": 6.0,
        "hw.link.host_pJ_per_bit": 4.0,
        "hw.energy.bg_mW": 623.0,  # DDR4_8GB_3200_pim.ini [other] idle_power
    }


def test_example_config_composes():
    """The Hydra overrides build a base point holding every override."""
    from dse._pytree import get_path
    from dse.cli import _compose, build
    from dse.workload.llm import Llm

    c = read_cluster(EXAMPLE)
    cfg, prov = _compose([*c.hydra_overrides(), "space=single"])
    _, base, _ = build(cfg, prov)
    assert cfg.hw.host.name == "rtx_pro_6000" and cfg.hw.pim.name == "ddr4_3200_llmservingsim"
    for key, value in c.overrides.items():
        got = get_path(base, key)
        want = Llm[value].value if key == "workload.llm" else value
        assert float(got) == pytest.approx(want), key
    assert float(base.hw.pim.tCK_ns) == 0.63  # the preset's timings are kept


@pytest.mark.reference
def test_builtin_pim_constants_match_llmservingsim_inis():
    """BUILTIN_PIM's idle power, DIMM size, channel bandwidth and read latency are what
    LLMServingSim's PIMModel derives from its four INIs."""
    from dse.serving.cluster import _user_spec

    files = sorted(_need(LSS_PIM).glob("*.ini"))
    assert len(files) == 4
    for f in files:
        key = f.stem.lower().removesuffix("_pim")
        want = BUILTIN_PIM[key]
        got = _user_spec(f)
        assert got.idle_mW == want.idle_mW, f.name
        assert got.dimm_GB == want.dimm_GB, f.name
        assert got.ch_GBps == pytest.approx(want.ch_GBps), f.name
        assert got.read_ns == pytest.approx(want.read_ns), f.name
        assert (CONF_DIR / "pim" / f"{want.preset}.yaml").exists()


@pytest.mark.parametrize(
    "name", ["DDR4_8GB_3200", "ddr4_8gb_3200_pim", "DDR4_8GB_3200_pim.ini", "HBM2_1GB_2000_pim"]
)
def test_builtin_pim_spellings(tmp_path, name):
    cfg = _example()
    cfg["nodes"][0]["cpu_mem"]["pim_config"] = name
    c = read_cluster(_write(tmp_path, cfg))
    hbm = name.startswith("HBM2")
    assert c.groups["pim"] == ("hbm2_llmservingsim" if hbm else "ddr4_3200_llmservingsim")
    assert c.overrides["hw.pim.channels"] == (512 if hbm else 64)
    assert c.overrides["hw.energy.bg_mW"] == (160.0 if hbm else 623.0)


def test_no_pim_config(tmp_path):
    cfg = _example()
    del cfg["nodes"][0]["cpu_mem"]["pim_config"]
    c = read_cluster(_write(tmp_path, cfg))
    assert "pim" not in c.groups and c.ini_path is None
    assert "hw.pim.channels" not in c.overrides and "hw.energy.bg_mW" not in c.overrides
    assert c.overrides["hw.link.host_GBps"] == 256.0  # cpu_mem.mem_bw
    assert c.overrides["hw.link.host_latency_ns"] == 0.0
    assert not any(o.startswith("pim=") for o in c.hydra_overrides())


# --------------------------------------------------------------------------------------
# user PIM INIs
# --------------------------------------------------------------------------------------


def _lpddr5(tmp_path: Path, rel: str) -> Path:
    src = _need(LSS_PIM / "LPDDR5_2GB_6400_pim.ini")
    dst = tmp_path / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)
    return dst


@pytest.mark.reference
@pytest.mark.parametrize(
    "rel",
    ["pim/MyLP5.ini", "pim/MyLP5/MyLP5.ini", "pim/MyLP5/lpddr5_device.ini"],
    ids=["flat", "dir-same-name", "dir-single-ini"],
)
def test_user_ini_layouts(tmp_path, rel):
    ini = _lpddr5(tmp_path, rel)
    cfg = _example()
    cfg["nodes"][0]["cpu_mem"]["pim_config"] = "MyLP5"
    c = read_cluster(_write(tmp_path, cfg))
    assert c.ini_path == str(ini.resolve())
    assert c.groups == {"host": "rtx_pro_6000"}
    assert c.overrides["hw.energy.bg_mW"] == 71.0  # the file's [other] idle_power
    assert c.overrides["hw.pim.channels"] == 512 // 2
    assert c.overrides["hw.link.host_GBps"] == pytest.approx(256 * 16 / 8 * 6400 / 1000)
    assert f"hw.pim.ini={ini.resolve()}" in c.hydra_overrides()


@pytest.mark.reference
def test_user_ini_in_cwd_configs_pim(tmp_path, monkeypatch):
    """LLMServingSim's own layout: configs/pim/<name>.ini under the working directory."""
    ini = _lpddr5(tmp_path, "work/configs/pim/MyLP5.ini")
    cfg = _example()
    cfg["nodes"][0]["cpu_mem"]["pim_config"] = "MyLP5"
    monkeypatch.chdir(tmp_path / "work")
    c = read_cluster(_write(tmp_path, cfg))
    assert c.ini_path == str(ini.resolve())


@pytest.mark.reference
def test_user_ini_composes(tmp_path):
    """hw.pim.ini fills the INI's timings; the DIMM count still sets the channels."""
    from dse.cli import _compose, build

    ini = _lpddr5(tmp_path, "pim/MyLP5.ini")
    cfg = _example()
    cfg["nodes"][0]["cpu_mem"]["pim_config"] = "MyLP5"
    c = read_cluster(_write(tmp_path, cfg))
    conf, prov = _compose([*c.hydra_overrides(), "space=single"])
    _, base, _ = build(conf, prov)
    assert conf.hw.pim.name == "MyLP5" and conf.hw.pim.ini == str(ini.resolve())
    assert float(base.hw.pim.tCK_ns) == 0.3125
    assert int(base.hw.pim.CL) == 34
    assert int(base.hw.pim.channels) == 256
    assert float(base.hw.energy.bg_mW) == 71.0


# --------------------------------------------------------------------------------------
# other mappings
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hardware,preset",
    [
        ("A100", "a100_80gb"),
        ("a100-80gb", "a100_80gb"),
        ("A100_40GB", "a100_40gb"),
        ("H100", "h100"),
        ("A6000", "a6000"),
        ("rtx pro 6000", "rtx_pro_6000"),
    ],
)
def test_hardware_presets(tmp_path, hardware, preset):
    cfg = _example()
    cfg["nodes"][0]["instances"][0]["hardware"] = hardware
    del cfg["nodes"][0]["power"]  # its npu block names RTXPRO6000 only
    assert read_cluster(_write(tmp_path, cfg)).groups["host"] == preset


@pytest.mark.parametrize(
    "model,preset",
    [
        ("meta-llama/Llama-3.1-8B", "llama3_1_8b"),
        ("meta-llama/Meta-Llama-3.1-70B-Instruct", "llama3_1_70b"),
        ("meta-llama/Llama-2-7b-hf", "llama2_7b"),
        ("meta-llama/Llama-2-13b-chat-hf", "llama2_13b"),
        ("Qwen/Qwen1.5-7B", "qwen1_5_7b"),
        ("gpt3-7b", "gpt3_7b"),
        ("GPT3-175B", "gpt3_175b"),
    ],
)
def test_model_presets(tmp_path, model, preset):
    cfg = _example()
    cfg["nodes"][0]["instances"][0]["model_name"] = model
    c = read_cluster(_write(tmp_path, cfg))
    assert c.llm == preset and c.overrides["workload.llm"] == preset


def test_hf_config_instead_of_a_preset(tmp_path):
    cfg = _example()
    cfg["nodes"][0]["instances"][0]["model_name"] = "mistralai/Mistral-7B-v0.1"
    hf = tmp_path / "config.json"
    c = read_cluster(_write(tmp_path, cfg), hf_config=hf)
    assert c.llm == "custom" and "workload.llm" not in c.overrides
    assert f"workload.hf_config={hf.resolve()}" in c.hydra_overrides()


@pytest.mark.parametrize(
    "inst,tp,pp",
    [
        ({"tp_size": 2}, 2, 1),
        ({"tp_size": 2, "pp_size": 2}, 2, 2),
        ({"num_npus": 4, "pp_size": 2}, 2, 2),
        ({"num_npus": 4, "tp_size": 2}, 2, 2),
        ({}, 1, 1),
    ],
)
def test_parallelism(tmp_path, inst, tp, pp):
    cfg = _example()
    i = cfg["nodes"][0]["instances"][0]
    del i["tp_size"]
    i.update(inst)
    c = read_cluster(_write(tmp_path, cfg))
    assert (c.overrides["policy.tp"], c.overrides["policy.pp"]) == (tp, pp)


def test_several_nodes_and_instances(tmp_path):
    cfg = _example()
    node = cfg["nodes"][0]
    second = copy.deepcopy(node["instances"][0])
    second["npu_mem"]["mem_bw"] = 1000
    node["instances"].append(second)
    node["num_instances"] = 2
    other = copy.deepcopy(node)
    other["instances"][0]["tp_size"] = 4
    cfg["nodes"].append(other)
    cfg["num_nodes"] = 2
    path = _write(tmp_path, cfg)
    c = read_cluster(path)
    assert (c.num_nodes, c.num_instances) == (2, 4)
    assert read_cluster(path, instance=(0, 1)).overrides["hw.host.mem_GBps"] == 1000.0
    assert read_cluster(path, instance=(1, 0)).overrides["policy.tp"] == 4
    with pytest.raises(ConfigError, match=r"key 'nodes\[1\]\.instances'"):
        read_cluster(path, instance=(1, 2))
    with pytest.raises(ConfigError, match="key 'nodes'"):
        read_cluster(path, instance=(2, 0))


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------


def _set(path: str, value):
    def edit(cfg):
        *parents, last = path.split(".")
        node = cfg
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value
        return cfg

    return edit


_DELETE = object()
I0 = "nodes.0.instances.0"


@pytest.mark.parametrize(
    "edit,key,words",
    [
        (None, "", "valid JSON"),
        (_set("nodes", _DELETE), "nodes", "a list of nodes"),
        (_set(f"{I0}.hardware", "TPUv9"), "nodes[0].instances[0].hardware", "RTXPRO6000"),
        (
            _set(f"{I0}.model_name", "acme/Giant-1T"),
            "nodes[0].instances[0].model_name",
            "hf_config",
        ),
        (
            _set("nodes.0.cpu_mem.pim_config", "NoSuchPIM"),
            "nodes[0].cpu_mem.pim_config",
            "DDR4_8GB_3200_pim",
        ),
        (_set(f"{I0}.npu_mem.mem_bw", -1), "nodes[0].instances[0].npu_mem.mem_bw", "> 0"),
        (_set(f"{I0}.tp_size", "1"), "nodes[0].instances[0].tp_size", "an integer >= 1"),
        (_set(f"{I0}.npu_mem", _DELETE), "nodes[0].instances[0].npu_mem", "missing"),
        (_set("num_nodes", 2), "num_nodes", "number of entries in nodes"),
        (_set("nodes.0.num_instances", 3), "nodes[0].num_instances", "number of entries"),
        (_set("link_bw", _DELETE), "link_bw", "missing"),
        (_set("link_latency", True), "link_latency", "a number >= 0"),
        (_set("nodes.0.cpu_mem.mem_size", 4), "nodes[0].cpu_mem.mem_size", "PIM DIMM"),
        (
            _set("nodes.0.power.npu.RTXPRO6000.active_power", "600W"),
            "nodes[0].power.npu.RTXPRO6000.active_power",
            "a number",
        ),
        (_set(f"{I0}.pd_type", "both"), "nodes[0].instances[0].pd_type", "prefill"),
    ],
    ids=[
        "not-json",
        "missing-nodes",
        "unknown-hardware",
        "unknown-model",
        "unknown-pim-config",
        "negative-mem-bw",
        "string-tp-size",
        "missing-npu-mem",
        "num-nodes-mismatch",
        "num-instances-mismatch",
        "missing-link-bw",
        "bool-link-latency",
        "no-whole-dimm",
        "bad-power",
        "bad-pd-type",
    ],
)
def test_bad_cluster_config(tmp_path, edit, key, words):
    text = '{"num_nodes": 1,\n "nodes": [,]}' if edit is None else json.dumps(edit(_example()))
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        read_cluster(path)
    err = info.value
    msg = str(err)
    assert err.source == str(path) and msg.startswith(f"{path}: ")
    assert err.key == key
    if key:
        assert f"key '{key}'" in msg
    assert words in msg
    if edit is None:
        assert "line 2" in msg
    assert "\n" not in msg


def test_unknown_pim_config_names_the_places_looked(tmp_path):
    cfg = _example()
    cfg["nodes"][0]["cpu_mem"]["pim_config"] = "NoSuchPIM"
    path = _write(tmp_path, cfg)
    with pytest.raises(ConfigError) as info:
        read_cluster(path)
    msg = str(info.value)
    assert str(tmp_path / "pim" / "NoSuchPIM.ini") in msg
    assert str(tmp_path / "pim" / "NoSuchPIM" / "NoSuchPIM.ini") in msg
    assert "configs/pim/NoSuchPIM.ini" in msg


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="an existing cluster config"):
        read_cluster(tmp_path / "nope.json")


# --------------------------------------------------------------------------------------
# per-request CSV
# --------------------------------------------------------------------------------------


@pytest.mark.reference
def test_header_is_llmservingsims():
    assert EXAMPLE_CSVS, "no shipped example CSVs"
    for f in map(_need, EXAMPLE_CSVS):
        assert f.read_bytes().split(b"\r\n", 1)[0] == HEADER.encode()


@pytest.mark.reference
@pytest.mark.parametrize(
    "name", reference_params([p.name for p in EXAMPLE_CSVS], [p.name for p in EXAMPLE_CSVS])
)
def test_example_csv_round_trip(tmp_path, name):
    src = _need(OUTPUTS / name)
    frame = read_requests_csv(src)
    assert list(frame.columns) == list(COLUMNS) and len(frame) == 10
    assert all(len(itl) == out - 1 for itl, out in zip(frame.ITL, frame.output, strict=True))
    assert (frame.latency == frame.end_time - frame.arrival).all()
    out = write_requests_csv(tmp_path / "out" / name, frame)
    assert out.read_bytes() == src.read_bytes()
    as_dict = {c: frame[c].to_numpy() for c in COLUMNS}  # a dict of arrays writes the same
    assert write_requests_csv(tmp_path / name, as_dict).read_bytes() == src.read_bytes()


def test_csv_short_outputs_and_rounding(tmp_path):
    rows = {
        "instance_id": [0, 0, 1],
        "request_id": np.array([2, 0, 1]),
        "model": ["m/a", "m/a", "m,b"],
        "input": [5, 6, 7],
        "output": [1, 2, 3],
        "arrival": [0, 10, 20],
        "end_time": [100.0, 200.4, 300],
        "latency": [100, 190, 280],
        "queuing_delay": [0, 0, 0],
        "TTFT": [100, 90, 80],
        "TPOT": [0, 100, 100],
        "ITL": [[], np.array([100]), [99, 101]],
    }
    path = write_requests_csv(tmp_path / "r.csv", rows)
    lines = path.read_bytes().split(b"\r\n")
    assert lines[0] == HEADER.encode() and lines[-1] == b""
    # csv.writer quotes only fields holding a comma: [] and [x] stay bare, as in LLMServingSim
    assert lines[1] == b"0,2,m/a,5,1,0,100,100,0,100,0,[]"
    assert lines[2] == b"0,0,m/a,6,2,10,200,190,0,90,100,[100]"
    assert lines[3] == b'1,1,"m,b",7,3,20,300,280,0,80,100,"[99, 101]"'
    back = read_requests_csv(path)
    assert back.request_id.tolist() == [2, 0, 1]  # the order given
    assert back.ITL.tolist() == [[], [100], [99, 101]]
    assert back.model.tolist() == ["m/a", "m/a", "m,b"]


@pytest.mark.reference
def test_csv_write_is_atomic(tmp_path, monkeypatch):
    src = _need(OUTPUTS / "example_single_run.csv")
    frame = read_requests_csv(src)
    path = tmp_path / "r.csv"
    write_requests_csv(path, frame)
    bad = frame.copy()
    bad.loc[5, "TTFT"] = float("nan")
    with pytest.raises(ValueError, match="TTFT"):
        write_requests_csv(path, bad)
    assert path.read_bytes() == src.read_bytes()  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]  # no temporary left
    with pytest.raises(ValueError, match="missing column"):
        write_requests_csv(tmp_path / "x.csv", frame.drop(columns=["ITL"]))
    assert not (tmp_path / "x.csv").exists()

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr("dse.serving.csvout.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_requests_csv(path, frame.iloc[:3])
    assert path.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]


def test_read_bad_csv(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text(HEADER + '\r\n0,1,m,2,3,4,5,6,7,8,9,"[1, x]"\r\n')
    with pytest.raises(ConfigError, match=r"bad.csv:2: key 'ITL'"):
        read_requests_csv(p)
    p.write_text("instance,request\r\n")
    with pytest.raises(ConfigError, match="header"):
        read_requests_csv(p)
