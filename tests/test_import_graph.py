"""The import graph of alerts/, storage/ and bot/: no cycles (function-level imports included), layers respected."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("alerts", "storage", "bot")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, modules: dict[str, Path]) -> set[str]:
    """Return the riskon modules a module imports when it runs: top level and inside functions, not for types only."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:  # `if TYPE_CHECKING: ... else: ...` runs the else branch
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                # `from pkg import submodule` depends on the submodule; `from module import name` on the module.
                if submodule in modules:
                    found.add(submodule)
                elif node.module in modules:
                    found.add(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    """Map every riskon module to the riskon modules it imports at run time."""
    modules = _modules()
    return {name: _imports(ast.parse(path.read_text(), str(path)), modules) - {name}
            for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return groups


def test_the_checker_finds_a_cycle_through_a_function_level_import():
    source = {"bot.a": "from bot.b import x\n", "bot.b": "def f():\n    from bot.a import y\n",
              "bot.c": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.a import z\n"}
    modules = dict.fromkeys(source, Path())
    graph = {name: _imports(ast.parse(text), modules) for name, text in source.items()}
    assert graph == {"bot.a": {"bot.b"}, "bot.b": {"bot.a"}, "bot.c": set()}
    assert cycles(graph) == [["bot.a", "bot.b"]]


def test_no_module_imports_itself_back_even_inside_a_function():
    assert cycles(import_graph()) == []


def test_alerts_and_storage_never_import_bot():
    graph = import_graph()
    wrong = {name: sorted(t for t in targets if t.split(".")[0] == "bot")
             for name, targets in graph.items() if name.split(".")[0] in ("alerts", "storage")}
    assert {name: targets for name, targets in wrong.items() if targets} == {}


def test_the_runtime_seam_is_a_leaf():
    assert import_graph()["bot.seams"] == set()
