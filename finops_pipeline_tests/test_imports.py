"""The package's module graph: no import cycles among module-level imports, and a core without providers."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "finops_pipeline"
CORE = ("catalog", "charts", "config", "dashboard", "delivery_sensor", "diagnosis", "display", "lake", "marts", "pulls", "refresh",
        "schema", "status", "throttle", "tls")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports() -> dict[str, set[str]]:
    """Module -> the package modules it imports when it is imported (not inside functions or TYPE_CHECKING)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found |= {t for t in targets if t in modules}
        # Importing a submodule imports its packages first.
        for target in list(found):
            parts = target.split(".")
            found |= {".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in modules}
        graph[name] = found - {name}
    return graph


def test_no_import_cycles() -> None:
    graph = top_level_imports()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1 and not (node.startswith(target + ".") or target == "finops_pipeline"):
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert not cycles, cycles


def test_the_core_imports_no_provider_code() -> None:
    graph = top_level_imports()
    for name in CORE:
        providers = {t for t in graph[f"finops_pipeline.{name}"] if t.startswith("finops_pipeline.defs")}
        assert not providers, (name, providers)
