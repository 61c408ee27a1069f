"""The module layering: one import circle only, autograd <-> ops (the engine's
Tensor methods call ops, ops build Tensors), and no other."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "minigen"


def import_graph():
    """module -> set of minigen modules it imports anywhere (also inside functions)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    edges.add(sub if sub in modules else node.module)
        graph[name] = {m for m in edges if m in modules and m != name}
    return graph


def circles(graph):
    """Every simple cycle once, as a list of modules starting at its smallest name."""
    found = []

    def walk(start, node, path):
        for nxt in sorted(graph[node]):
            if nxt == start:
                found.append(path)
            elif nxt > start and nxt not in path:
                walk(start, nxt, path + [nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return found


def test_the_only_import_circle_is_autograd_and_ops():
    graph = import_graph()
    assert "minigen.nn.init" in graph and "minigen.metrics" in graph  # the walk found the files
    assert circles(graph) == [["minigen.autograd", "minigen.ops"]]


def test_initialisers_know_no_layer():
    assert import_graph()["minigen.nn.init"] <= {"minigen.backend", "minigen.autograd"}


def test_circles_finds_a_circle_through_three_modules():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]
