"""The package's shape: module-level imports form no circle, and the upper floors import downward only."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ferlab"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_imports() -> dict[str, set[str]]:
    """``module -> ferlab modules it imports at module level`` (imports inside functions are lazy on purpose)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.parse(path.read_text()).body:
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = [f"{node.module}.{a.name}" for a in node.names]  # ``from pkg import submodule``
                names = [s for s in subs if s in modules] or [node.module]
            found |= {n for n in names if n in modules and n != name}
        graph[name] = found
    return graph


def test_no_import_circle():
    graph = module_imports()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in graph[node]:
            assert state.get(nxt) != 1, "import circle: " + " -> ".join(path[path.index(nxt) :] + [nxt])
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node)


def test_the_core_does_not_import_the_scale_out_layer():
    graph = module_imports()
    core = [
        m for m in graph if m.startswith(("ferlab.search", "ferlab.metrics")) or m in ("ferlab.render", "ferlab.cppn")
    ]
    for module in core:
        assert not {m for m in graph[module] if m.startswith(("ferlab.workers", "ferlab.tracking", "ferlab.study"))}, (
            module
        )


def test_study_code_reads_mlflow_only_through_tracking():
    for path in (PACKAGE / "study").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {m for m in imported if m.split(".")[0] == "mlflow" or m.startswith("ferlab.search")}, path.name
