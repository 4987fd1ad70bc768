"""Packaging: the project's metadata is in pyproject.toml; this file only lays out the
packages. The checkout keeps the configs (``conf/``) and studies (``sweeps/``) at the top,
where users edit and cite them; an installed package carries them as ``dse/conf`` and
``dse/sweeps`` (found by :mod:`dse.paths`)."""

from setuptools import find_namespace_packages, setup

conf = ["dse.conf", *(f"dse.conf.{p}" for p in find_namespace_packages(where="conf"))]
setup(
    packages=[
        *find_namespace_packages(include=["dse*", "hydra_plugins*"], exclude=["*__pycache__*"]),
        *conf,
        "dse.sweeps",
    ],
    package_dir={"dse.conf": "conf", "dse.sweeps": "sweeps"},
    package_data={
        "dse.workload.data": ["*.csv", "*.trace"],
        "dse.validation.data": ["*.csv"],
        **{p: ["*.yaml", "*.json", "*.jsonl"] for p in conf},
        "dse.sweeps": ["*.yaml", "*.py", "*.md"],
    },
)
