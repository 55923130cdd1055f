"""No import cycle between the host tools' modules, subpackages included (issue 11), counting
imports inside functions too: a lazy import that closes a cycle is still a cycle in the design."""

import ast

from conftest import ROOT
from fixtures.imports import cycles

PKG = ROOT / "tools" / "gasguard_tools"


def _graph():
    """{module: [gasguard_tools modules it imports]}, dotted names, the subpackages
    (notify, notify.channels) included; `from . import x` counts as importing x when x is a
    module, else its package."""
    mods = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        mods[".".join(parts[:-1] if is_pkg else parts)] = (p, is_pkg)
    graph = {}
    for name, (path, is_pkg) in mods.items():
        here = name.split(".") if is_pkg else name.split(".")[:-1]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[:len(here) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for a in node.names:
                    sub = target + "." + a.name
                    deps.add(sub if sub in mods else target)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
        graph[name] = sorted(d for d in deps if d in mods and d != name)
    return graph


def test_no_import_cycles_in_the_host_tools():
    assert cycles(_graph()) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"]}) == [["a", "b", "c", "a"]]


def test_the_cycle_finder_sees_the_tools_graph():
    g = _graph()
    assert "gasguard_tools.runtime" in g["gasguard_tools.benchkit"]
    # the subpackages are in the graph, relative imports one and two levels up resolved
    assert "gasguard_tools.notify.store" in g["gasguard_tools.notify.service"]
    assert "gasguard_tools.notify.channels" in g["gasguard_tools.notify.channels.mail"]
    assert "gasguard_tools.schemas" in g["gasguard_tools.notify.ingest"]
    assert "gasguard_tools.benchkit" in g["gasguard_tools.notify.pgserver"]
