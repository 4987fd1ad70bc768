"""No import cycles among dse's modules.

Every module under ``dse/`` and ``hydra_plugins/`` is parsed with :mod:`ast` (nothing is
imported), and each import statement anywhere in it (module level, inside functions, classes
or ``try`` blocks: a function-level import that closes a loop is still a cycle) becomes an
edge from the module to the project module it names:

* ``import dse.a.b`` -> ``dse.a.b``;
* ``from dse.a import b`` -> ``dse.a.b`` when that is a module, else ``dse.a`` (``b`` is a
  name defined there); relative imports are resolved against the importing module.

Edges are the explicit import statements only. Python also runs every parent package's
``__init__`` before a submodule (``import dse.errors`` runs ``dse/__init__.py`` first), but
counting those implicit imports would make every package whose ``__init__`` re-exports its
own submodules cyclic (``dse/__init__`` imports ``dse.cli``, which imports ``dse.errors``),
so they are left out. Imports whose name is only known at run time
(``importlib.import_module(name)``) are not edges either.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dse", "hydra_plugins")


def module_files() -> dict[str, Path]:
    """Dotted module name -> source file, for every ``.py`` under the project packages."""
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute name of ``from {'.' * level}{name} import ...`` inside ``module``."""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def imports_of(module: str, path: Path, modules: set[str]) -> dict[str, int]:
    """The project modules ``module``'s import statements name, each with the line of its
    first import."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    out: dict[str, int] = {}

    def add(target: str, line: int) -> None:
        if target in modules and target != module:
            out.setdefault(target, line)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _resolve_relative(module, is_package, node.level, node.module)
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(sub if sub in modules else base, node.lineno)
    return out


def import_graph() -> tuple[dict[str, dict[str, int]], dict[str, Path]]:
    files = module_files()
    names = set(files)
    return {m: imports_of(m, p, names) for m, p in files.items()}, files


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One cycle ``[a, b, ..., a]`` of the graph, or None."""
    try:
        graphlib.TopologicalSorter({m: set(deps) for m, deps in graph.items()}).prepare()
    except graphlib.CycleError as err:
        # CycleError's args[1] is the cycle with its first node repeated at the end, in
        # dependency order (each node is imported by the one after it): reverse it so each
        # node imports the next
        return list(reversed(err.args[1]))
    return None


def describe(cycle: list[str], graph: dict[str, dict[str, int]], files: dict[str, Path]) -> str:
    steps = []
    for a, b in zip(cycle, cycle[1:], strict=False):
        where = files[a].relative_to(ROOT)
        steps.append(f"  {a} imports {b} ({where}:{graph[a][b]})")
    return "import cycle " + " -> ".join(cycle) + ":\n" + "\n".join(steps)


def test_graph_covers_the_package():
    graph, files = import_graph()
    assert "dse" in graph and "dse.cli" in graph and "hydra_plugins.dse_searchpath" in graph
    assert len(files) > 50
    # edges of each kind: a module-level import, `from pkg import module`, and an import
    # inside a function
    assert "dse.errors" in graph["dse.cli"]
    assert "dse.report.analysis" in graph["dse.report.builder"]
    assert "dse.report.builder" in graph["dse.report.cli"]  # inside a function
    # parent packages' __init__ are not implicit edges
    assert "dse" not in graph["dse.errors"]


def test_find_cycle_names_the_loop():
    graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}}
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    for x, y in zip(cycle, cycle[1:], strict=False):
        assert y in graph[x]
    assert find_cycle({"a": {"b": 1}, "b": {}}) is None


def test_resolves_imports(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(
        "import dse.a.b\n"
        "from dse.a import b, name\n"
        "from dse import c\n"
        "def f():\n"
        "    from . import d\n"
        "    from .e import thing\n"
        "import numpy\n"
    )
    mods = {"dse", "dse.a", "dse.a.b", "dse.c", "dse.x", "dse.x.d", "dse.x.e"}
    assert imports_of("dse.x.m", src, mods) == {
        "dse.a.b": 1,
        "dse.a": 2,
        "dse.c": 3,
        "dse.x.d": 5,
        "dse.x.e": 6,
    }
    init = tmp_path / "__init__.py"
    init.write_text("from . import d\nfrom .. import c\n")
    assert imports_of("dse.x", init, mods) == {"dse.x.d": 1, "dse.c": 2}


def test_no_import_cycles():
    graph, files = import_graph()
    cycle = find_cycle(graph)
    if cycle is not None:
        pytest.fail(describe(cycle, graph, files), pytrace=False)
