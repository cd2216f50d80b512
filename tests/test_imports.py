"""The package's import graph: no circles, and no module imports a layer above its own.

Layers, top to bottom (../shared/design.md): cli, dashboard → comparison, experiments, otel,
semantic → index, history → logs, providers, registry, template → costs, config, errors,
stats. Imports under `if TYPE_CHECKING:` are for type checkers only and are not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "promptlab"

LAYERS: dict[str, int] = {
    "cli": 4, "dashboard": 4, "__main__": 4, "_entry": 4,
    "comparison": 3, "experiments": 3, "otel": 3, "semantic": 3, "scaffold": 3,
    "index": 2, "history": 2,
    "logs": 1, "providers": 1, "registry": 1, "template": 1, "tracing": 1,
    "costs": 0, "config": 0, "errors": 0, "stats": 0, "_lazy": 0, "__init__": 5,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path) -> set[str]:
    """Every promptlab module `path` imports at run time (top level or inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking_block(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("promptlab"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if base.startswith("promptlab"):
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    found.add(candidate if _exists(candidate) else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(me)
    return found


def _exists(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").exists() or (PACKAGE / rel / "__init__.py").exists()


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py") if "data" not in p.relative_to(PACKAGE).parts[:1]}
    return {name: {i for i in imports_of(path) if i in modules} for name, path in modules.items()}


def top(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_import_circles() -> None:
    edges = graph()
    # Tarjan's strongly connected components: any component of two or more is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    # A package's __init__ re-exporting its own modules is not a circle of ideas.
    circles = [c for c in circles if not _only_package_reexport(c, edges)]
    assert circles == [], "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def _only_package_reexport(component: list[str], edges: dict[str, set[str]]) -> bool:
    packages = [m for m in component if (PACKAGE.parent / m.replace(".", "/") / "__init__.py").exists()]
    rest = [m for m in component if m not in packages]
    # Remove the package nodes; if what is left has no circle among itself, it was re-exports.
    for m in rest:
        for n in edges[m] & set(rest):
            if m in _reach(n, set(rest), edges):
                return False
    return bool(packages)


def _reach(start: str, allowed: set[str], edges: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        v = todo.pop()
        for w in edges[v] & allowed:
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def test_layers_point_down() -> None:
    bad = []
    for name, targets in graph().items():
        mine = LAYERS.get(top(name))
        assert mine is not None, f"{name}: add its top-level part to LAYERS in {__file__}"
        for target in targets:
            theirs = LAYERS.get(top(target))
            assert theirs is not None, f"{target}: add its top-level part to LAYERS"
            if top(target) != top(name) and theirs > mine and top(target) != "__init__":
                bad.append(f"{name} (layer {mine}) imports {target} (layer {theirs})")
    assert bad == [], "imports that point up a layer:\n" + "\n".join(sorted(bad))
