"""The module layering: every import is one the table in the package docstring
(minigen/__init__.py) allows, and the one import circle is autograd <-> ops (the
engine's Tensor methods call ops, ops build Tensors)."""

import ast
import re
import textwrap
from fnmatch import fnmatch
from pathlib import Path

import minigen

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


def import_table(doc):
    """The "Who may import whom" table of ``doc``: [(module globs, allowed globs)], in
    order. A row whose first column is empty, or follows one that ends in a comma,
    continues the one above; "(...)" is a remark; "nothing of minigen" allows none."""
    lines = doc[doc.index("Who may import whom") :].splitlines()
    rules = [i for i, line in enumerate(lines) if re.fullmatch(r"=+ +=+", line)]
    column = lines[rules[0]].index(" =") + 1
    rows = []  # [left text, right text]
    for line in lines[rules[1] + 1 : rules[2]]:
        left, right = line[:column].strip(), line[column:].strip()
        if left and not (rows and rows[-1][0].endswith(",")):
            rows.append(["", ""])
        rows[-1][0] += f" {left}"
        rows[-1][1] += f" {right}"

    def names(text):
        text = re.sub(r"\([^)]*\)", "", text).replace("nothing of minigen", "")
        return [name for name in re.split(r"[,\s]+", text) if name]

    return [(names(left), names(right)) for left, right in rows]


def short(module):
    return module.removeprefix("minigen.") if module != "minigen" else "minigen"


def test_every_import_is_one_the_table_in_the_package_docstring_allows():
    table = import_table(minigen.__doc__)
    graph = import_graph()
    for module, imports in graph.items():
        rows = [
            allowed for globs, allowed in table if any(fnmatch(short(module), g) for g in globs)
        ]
        assert rows, f"{short(module)} has no row in the import table of minigen/__init__.py"
        for imported in imports:
            assert any(fnmatch(short(imported), g) for g in rows[0]), (
                f"{short(module)} imports {short(imported)}, which its row of the import table "
                f"does not allow: {', '.join(rows[0])}"
            )
    modules = {short(m) for m in graph}
    for globs, _ in table:  # and no row is stale
        for g in globs:
            assert any(fnmatch(m, g) for m in modules), (
                f"the import table names {g}: no such module"
            )


def test_the_table_reader_reads_continued_rows_and_refuses_an_import_outside_its_row():
    doc = textwrap.dedent("""\
        Who may import whom:

        ====  ==========
        what  may import
        ====  ==========
        a, b  c, d (a remark)
              e
        c,    nothing of minigen
        d
        ====  ==========
        """)
    assert import_table(doc) == [(["a", "b"], ["c", "d", "e"]), (["c", "d"], [])]


def test_the_training_loop_and_the_command_line_name_no_model():
    """train.py and __main__.py ask the models (minigen/models/base.py's hooks); no
    string or name in their code (docstrings aside) is a model's or a part's."""
    from minigen.models import MODELS

    words = set(MODELS) | {part.name for cls, _ in MODELS.values() for part in cls.parts}
    words |= {cls.__name__ for cls, _ in MODELS.values()}
    for module in ("train.py", "__main__.py"):
        tree = ast.parse((PACKAGE / module).read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) not in docstrings:
                    found = [w for w in words if w in node.value]
                    assert not found, f"{module} names {found} in {node.value!r}"
            elif isinstance(node, (ast.Name, ast.Attribute)):
                name = node.id if isinstance(node, ast.Name) else node.attr
                assert name not in words, f"{module} uses the name {name}"
