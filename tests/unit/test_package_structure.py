"""The package's shape: no import cycle, no module over 400 lines, and the training
package's modules each importing only those before it in `training.LAYERS`.

Read from the source with `ast` (imports inside functions count too), so the test
needs neither TensorFlow nor data.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "tfrs_userlevel"
MAX_LINES = 400
TRAINING_LAYERS = ("artifacts", "train_config", "builders", "callbacks", "resume", "inputs",
                   "loop")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """The package's modules that `path` imports (`from a import b` counts as a.b when
    a.b is a module, else as a)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module not in known:
                continue
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in known else node.module)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(path, set(found)) - {name} for name, path in found.items()}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_planted_cycle():
    planted = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycle(planted) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_module_imports_itself_through_others():
    # A package's __init__ re-exporting its submodules is not an edge back: a submodule
    # importing a sibling does not go through its package's names.
    edges = {name: {t for t in targets if not name.startswith(t + ".")}
             for name, targets in graph().items()}
    found = cycle(edges)
    assert found is None, "import cycle: " + " -> ".join(found)


def test_no_module_is_longer_than_400_lines():
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_each_training_module_imports_only_the_ones_before_it():
    edges = graph()
    for position, layer in enumerate(TRAINING_LAYERS):
        name = f"tfrs_userlevel.training.{layer}"
        inside = {t.rsplit(".", 1)[1] for t in edges[name]
                  if t.startswith("tfrs_userlevel.training.")}
        assert inside <= set(TRAINING_LAYERS[:position]), (
            f"{name} imports {sorted(inside - set(TRAINING_LAYERS[:position]))}, which "
            "come after it")
        assert "tfrs_userlevel.training" not in edges[name], f"{name} imports its package"


def test_the_layer_order_is_the_one_the_package_declares():
    tree = ast.parse((PACKAGE / "training" / "__init__.py").read_text())
    declared = next(ast.literal_eval(n.value) for n in ast.walk(tree)
                    if isinstance(n, ast.Assign)
                    and any(getattr(t, "id", None) == "LAYERS" for t in n.targets))
    assert tuple(declared) == TRAINING_LAYERS
    assert {p.stem for p in (PACKAGE / "training").glob("*.py")} - {"__init__"} == set(
        TRAINING_LAYERS)
