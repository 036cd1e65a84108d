"""The import graph of src/tf4ctr: no arrow from a lower layer to a higher one, no circle.

Every import counts, at module top or inside a function, except those under
``if TYPE_CHECKING:`` (never run). docs/ARCHITECTURE.md describes the layers.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "tf4ctr"

#: Each top-level module or subpackage of tf4ctr, by layer from the ground up; a module may
#: import from its own layer's other members only where listed in ALLOWED_SIDEWAYS.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "_lazy", "_env", "registry"),
    ("fileio", "progress"),
    ("rundir",),
    ("config",),
    ("data",),
    ("nn",),
    ("framework",),
    ("models",),
    ("train",),
    ("run",),
    ("export", "serving", "server", "experiments", "api", "demo", "tune"),
    ("cli",),
    ("__main__",),
]
#: imports inside one layer (a DAG of their own, checked by the circle test)
ALLOWED_SIDEWAYS = {
    ("fileio", "errors"),
    ("experiments", "export"),
    ("demo", "api"),
    ("tune", "experiments"),
    ("server", "export"),
    ("server", "serving"),
}
LEVEL = {name: i for i, names in enumerate(LAYERS) for name in names}


def _module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skipped


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    modules = {_module_name(p, src): p for p in (src / "tf4ctr").rglob("*.py")}
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _type_checking_nodes(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                # ``from pkg import sub`` imports the module pkg.sub; a plain name, pkg itself
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    for a in node.names
                ]
            else:
                continue
            edges[name] |= {t for t in targets if t in modules and t != name}
    return edges


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "tf4ctr"


def test_every_top_level_module_has_a_layer():
    tops = {_top(_module_name(p)) for p in PACKAGE.rglob("*.py")} - {"tf4ctr"}
    assert tops <= set(LEVEL), f"give these a layer in LAYERS: {sorted(tops - set(LEVEL))}"


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    upward = []
    for source, targets in edges.items():
        a = _top(source)
        for target in targets:
            b = _top(target)
            if a == b or a == "tf4ctr" or b == "tf4ctr":
                continue  # inside one package (the circle test), or the package's own face
            if LEVEL[b] > LEVEL[a] or (LEVEL[b] == LEVEL[a] and (a, b) not in ALLOWED_SIDEWAYS):
                upward.append(f"{source} -> {target}")
    return sorted(upward)


def test_no_import_from_a_lower_layer_to_a_higher_one():
    edges = import_graph()
    print(f"{sum(map(len, edges.values()))} imports between {len(edges)} modules checked")
    upward = upward_imports(edges)
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_no_circle():
    edges = import_graph()
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                circles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    assert not circles, "\n".join(" -> ".join(c) for c in circles)


def test_scoring_and_export_do_not_import_experiments():
    edges = import_graph()
    seen, todo = set(), ["tf4ctr.run.scoring", "tf4ctr.export"]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(edges.get(module, ()))
    assert not {m for m in seen if m.startswith("tf4ctr.experiments")}


def test_the_checker_sees_an_upward_arrow_inside_a_function(tmp_path):
    pkg = tmp_path / "tf4ctr"
    (pkg / "run").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "run" / "__init__.py").write_text("")
    (pkg / "run" / "scoring.py").write_text("def f():\n    from tf4ctr.experiments import keys\n")
    (pkg / "experiments").mkdir()
    (pkg / "experiments" / "__init__.py").write_text("")
    (pkg / "experiments" / "keys.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tf4ctr.cli import x\n"
    )
    (pkg / "cli.py").write_text("")
    edges = import_graph(tmp_path)
    assert upward_imports(edges) == ["tf4ctr.run.scoring -> tf4ctr.experiments.keys"]


def test_no_file_over_600_lines_and_no_function_over_120():
    """Issue 29's bounds, kept: a module that outgrows them has more than one job."""
    too_long = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(SRC)
        if text.count("\n") > 600:
            too_long.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > 120:
                    too_long.append(f"{name}:{node.lineno} {node.name}: {length} lines")
    assert not too_long, too_long
