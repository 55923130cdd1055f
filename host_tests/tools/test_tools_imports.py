"""No import cycle between the host tools' modules (issue 11), counting imports inside
functions too: a lazy import that closes a cycle is still a cycle in the design."""

import ast

from conftest import ROOT
from fixtures.imports import cycles

PKG = ROOT / "tools" / "gasguard_tools"


def _graph():
    mods = {p.stem: p for p in PKG.glob("*.py") if p.stem != "__init__"}
    graph = {}
    for name, path in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    deps.add(node.module.split(".")[0])
                else:
                    deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gasguard_tools."):
                deps.add(node.module.split(".")[1])
        graph[name] = sorted(d for d in deps if d in mods and d != name)
    return graph


def test_no_import_cycles_in_the_host_tools():
    assert cycles(_graph()) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"]}) == [["a", "b", "c", "a"]]
