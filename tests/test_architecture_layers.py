"""The project's layers, checked on its source: no import runs up the layers, and no module circle.

Top to bottom, each layer importing only those below it (and itself):

    gradeproject (settings, urls)
    notifications, accounts, health
    batches
    templates_app
    grading
    core (the shared kit)

Every import counts, also those inside functions: a lazy import is still a
dependency a reader has to know about. Only imports under `if TYPE_CHECKING:`
are left out: they never run, and a type named for the reader is no dependency.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# App -> rank; a module may import apps of a higher rank, or its own app.
LAYERS = {
    "gradeproject": 0,
    "notifications": 1,
    "accounts": 1,
    "health": 1,
    "batches": 2,
    "templates_app": 3,
    "grading": 4,
    "core": 5,
}


def project_modules() -> dict[str, Path]:
    modules = {}
    for app in LAYERS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports_of(path: Path, module: str, known: dict[str, Path]) -> set[str]:
    """The project modules one file imports, resolved to the longest known module name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    resolved = set()
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module:
            resolved.add(name)
    return resolved


def _runtime_nodes(tree: ast.AST):
    """Every node, except the bodies of `if TYPE_CHECKING:` blocks."""
    pending = [tree]
    while pending:
        node = pending.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_graph() -> dict[str, set[str]]:
    known = project_modules()
    return {module: imports_of(path, module, known) for module, path in known.items()}


def app_of(module: str) -> str:
    return module.split(".")[0]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in graph.items():
        for target in targets:
            source_app, target_app = app_of(module), app_of(target)
            if source_app != target_app and LAYERS[target_app] <= LAYERS[source_app]:
                found.append(f"{module} -> {target}")
    return sorted(found)


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_runs_up_the_layers():
    assert upward_imports(import_graph()) == []


def test_no_modules_import_each_other_in_a_circle():
    assert circles(import_graph()) == []


def test_the_kit_imports_no_app_of_the_project():
    graph = import_graph()
    assert {t for m, ts in graph.items() if app_of(m) == "core" for t in ts if app_of(t) != "core"} == set()


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"grading.a": {"batches.b"}, "batches.b": set()}, ["grading.a -> batches.b"]),
        ({"health.a": {"notifications.b"}, "notifications.b": set()}, ["health.a -> notifications.b"]),
        ({"batches.a": {"grading.b", "core.c"}, "grading.b": set(), "core.c": set()}, []),
    ],
)
def test_the_layer_check_names_each_upward_import(graph, expected):
    assert upward_imports(graph) == expected


def test_the_circle_check_finds_a_lazy_import_circle(tmp_path):
    graph = {"batches.models": {"batches.tasks"}, "batches.tasks": {"batches.models"}, "core.x": set()}
    assert circles(graph) == [["batches.models", "batches.tasks"]]
