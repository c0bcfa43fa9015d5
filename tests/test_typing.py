"""The typed seams stay typed: ``Any`` in the signatures of mtl_cluster's functions is counted, and may not grow.

Many modules import torch, pandas, rich or submitit inside functions (the CLIs start fast), and their signatures
used to say ``Any`` for those objects. They now name the real types through ``if TYPE_CHECKING:`` imports
(``PlanRow``, ``ClusterProfile``, ``RunStatus``...), TypedDicts for the records with fixed keys (summary.json,
checkpoints, the launch's and the trainer's progress events) and ``object``/``Mapping[str, object]`` where any
value will do. What is left is mostly parsed JSON/YAML read field by field (``dict[str, Any]``).
"""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "mtl_cluster"

ANY_IN_SIGNATURES_MAX = 80
"""The count when the seams were typed (206 before). Lower it when you remove more; never raise it: a new
signature names its real type (under ``if TYPE_CHECKING:`` when the module defers the import) or ``object``."""


def _any_nodes(annotation: ast.expr | None) -> int:
    """``Any`` / ``typing.Any`` anywhere in one annotation (``dict[str, Any]`` counts one; a quoted one too)."""
    if annotation is None:
        return 0
    n = 0
    for node in ast.walk(annotation):
        if isinstance(node, ast.Name) and node.id == "Any" or isinstance(node, ast.Attribute) and node.attr == "Any":
            n += 1
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):   # a forward reference
            try:
                n += _any_nodes(ast.parse(node.value, mode="eval").body)
            except SyntaxError:
                pass
    return n


def _signature_anys(tree: ast.AST) -> int:
    """``Any`` in the parameter and return annotations of every function and method (nested ones included)."""
    n = 0
    for f in ast.walk(tree):
        if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = f.args
            params = [*a.posonlyargs, *a.args, *a.kwonlyargs, *([a.vararg] if a.vararg else []),
                      *([a.kwarg] if a.kwarg else [])]
            n += sum(_any_nodes(p.annotation) for p in params) + _any_nodes(f.returns)
    return n


def any_in_signatures() -> dict[str, int]:
    """module path (relative to mtl_cluster/) -> its count, for the modules that have one."""
    counts = {str(p.relative_to(PKG)): _signature_anys(ast.parse(p.read_text(encoding="utf-8")))
              for p in sorted(PKG.rglob("*.py"))}
    return {k: v for k, v in counts.items() if v}


def test_the_counter_counts_what_it_says() -> None:
    src = ("from typing import Any\nimport typing\n"
           "def f(a: Any, *args: Any, b: dict[str, Any] | None = None, **kw: typing.Any) -> list[Any]: ...\n"
           "class C:\n    def m(self, x: 'Mapping[str, Any]') -> None:\n        def inner(y: Any) -> object: ...\n"
           "def g(a: object, b: Mapping[str, object]) -> None:\n    v: Any = 1\n")
    assert _signature_anys(ast.parse(src)) == 7


def test_any_in_signatures_does_not_grow() -> None:
    counts = any_in_signatures()
    total = sum(counts.values())
    worst = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:8])
    assert total <= ANY_IN_SIGNATURES_MAX, (
        f"{total} Any in function signatures under mtl_cluster/ (at most {ANY_IN_SIGNATURES_MAX}): name the real "
        f"type (an `if TYPE_CHECKING:` import keeps a deferred import deferred) or object; most: {worst}")
