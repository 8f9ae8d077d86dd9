"""One back-off: no module but bot/backoff.py doubles its own retry pause (issue 12: three formulas became one)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
THE_ONE = REPO / "bot" / "backoff.py"


def _doubles(node: ast.AST) -> bool:
    """Say whether an expression is a doubling pause: `2 ** n` or `min(x * 2, cap)`."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return isinstance(node.left, ast.Constant) and node.left.value == 2
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "min" and node.args:
        first = node.args[0]
        return isinstance(first, ast.BinOp) and isinstance(first.op, ast.Mult) and any(
            isinstance(side, ast.Constant) and side.value == 2 for side in (first.left, first.right))
    return False


def test_only_bot_backoff_doubles_a_retry_pause():
    found = []
    for package in ("alerts", "storage", "bot"):
        for path in sorted((REPO / package).rglob("*.py")):
            if path == THE_ONE:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if _doubles(node):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
    assert not found, "retry pauses must come from bot/backoff.py's backoff_seconds:\n" + "\n".join(found)


def test_the_check_sees_a_doubling_written_either_way():
    written = ["0.05 * 2 ** attempt", "min(delay * 2, 10.0)", "min(2 * delay, cap)"]
    assert all(any(_doubles(node) for node in ast.walk(ast.parse(text))) for text in written)
    assert not any(_doubles(node) for node in ast.walk(ast.parse("sum((x - mean) ** 2 for x in a)")))
