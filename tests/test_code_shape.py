"""The code's shape, read from the source: every import (those inside functions too) follows
the dependency rule of docs/architecture.md, no module imports itself back through others,
no private name crosses a module, and functions and modules stay a size a reader can hold.

tests/test_layout.py checks what importing a room really loads; this file reads every
``import`` statement, so an import made only when a function runs is checked as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Installed package name of each source folder (pyproject.toml, [tool.setuptools] package-dir).
FOLDERS = {"signgen": "signgen", "poses": "signgen.poses", "video": "signgen.video", "cli": "signgen.cli"}
LEAVES = {"signgen", "signgen.errors", "signgen.atomic", "signgen.files", "signgen.config", "signgen.configs"}
# What each part may import beyond itself and the leaves: cli -> rooms -> poses -> video.
ALLOWED = {
    "cli": {"models", "pipelines", "training", "corpora", "evaluation", "demo", "poses", "video"},
    "evaluation": {"models", "pipelines", "corpora", "poses", "video"},
    "demo": {"pipelines", "poses", "video"},
    "training": {"models", "corpora", "poses", "video"},
    "pipelines": {"models", "poses", "video"},
    "models": {"poses", "video"},
    "corpora": {"poses", "video"},
    "poses": {"video"},
    "video": set(),
}
MAX_FUNCTION_LINES = 60
MAX_PARAMETERS = 8
MAX_MODULE_LINES = 500


def source_files() -> dict[str, Path]:
    """Module name -> file, for every module of the installed package."""
    modules = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if folder == "signgen" and parts[0] in ("assets",):
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


MODULES = source_files()
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def part_of(module: str) -> str | None:
    """The part of the dependency rule a module belongs to (None: a leaf)."""
    if module in LEAVES or module.startswith(tuple(leaf + "." for leaf in LEAVES if leaf != "signgen")):
        return None
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else None


def imported_modules(name: str) -> set[str]:
    """The signgen modules ``name`` imports anywhere in its source."""
    found = set()
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in MODULES else node.module)
    return {module for module in found if module.split(".")[0] == "signgen"}


def test_the_source_is_found():
    assert "signgen.pipelines.pipeline" in MODULES and "signgen.poses.warp" in MODULES and "signgen.cli.render" in MODULES


# ``signgen.load_pipeline``: the package root loads the pipeline when that name is asked for.
ROOT_LAZY = {"signgen.pipelines.pipeline"}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_import_follows_the_dependency_rule(name):
    own = part_of(name)
    allowed = ALLOWED.get(own, set()) | {own}
    if own is None:  # a leaf imports only leaves
        allowed = set()
    imports = imported_modules(name) - (ROOT_LAZY if name == "signgen" else set())
    wrong = sorted(m for m in imports if part_of(m) is not None and part_of(m) not in allowed)
    assert not wrong, f"{name} imports {wrong}"


def test_no_module_imports_itself_back_through_others():
    graph = {name: {m for m in imported_modules(name) if m in MODULES and m != name} for name in MODULES}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for child in sorted(graph[node]):
            if state.get(child) == 1:
                cycles.append(trail[trail.index(child):] + [child] if child in trail else [node, child])
            elif child not in state:
                visit(child, trail + [child])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    # A package's __init__ importing its own modules lazily is not a cycle of design.
    cycles = [cycle for cycle in cycles if not any(MODULES[m].name == "__init__.py" for m in cycle)]
    assert not cycles, f"import cycles: {cycles[:5]}"


def own_private_names(tree: ast.AST) -> set[str]:
    """Private attributes a module's own classes set (``self._x = ...``): another instance of
    the same class may read them (``other._x`` in a merge)."""
    return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name) and node.value.id == "self" and node.attr.startswith("_")}


def private_uses(name: str) -> list[str]:
    """Private names of another module that ``name`` uses: ``from m import _x``, or
    ``obj._x`` on anything but ``self``/``cls`` (a private attribute of another object)."""
    uses = []
    own = own_private_names(TREES[name])
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.ImportFrom) and node.module:
            uses += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")) and node.attr not in own:
                uses.append(f"{ast.unparse(owner)}.{node.attr}")
    return uses


# Private names of other libraries that signgen has to reach (no public way): diffusers'
# list of compatible schedulers, argparse's sub-command action (its type for annotations).
FOREIGN_PRIVATE = {"_get_compatibles", "_SubParsersAction"}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_private_name_crosses_a_module(name):
    uses = [use for use in private_uses(name) if use.rsplit(".", 1)[1] not in FOREIGN_PRIVATE]
    assert not uses, f"{name} uses private names of other modules: {uses}"


def test_benchmarks_use_no_private_name_of_signgen():
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("signgen"):
                assert not [a.name for a in node.names if a.name.startswith("_")], f"{path.name} imports private names"
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                assert node.attr in FOREIGN_PRIVATE, f"{path.name} uses {ast.unparse(node)}"


def parameter_count(function: ast.FunctionDef) -> int:
    arguments = function.args
    names = [a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs]
    count = len(names) + bool(arguments.vararg) + bool(arguments.kwarg)
    return count - (1 if names and names[0] in ("self", "cls") else 0)


def is_config_init(function: ast.FunctionDef) -> bool:
    """A diffusers ``@register_to_config __init__``: its parameters are the saved config's
    fields (as a render's ``__call__`` takes the render settings), so they may be many."""
    return function.name == "__init__" and any(ast.unparse(d).endswith("register_to_config") for d in function.decorator_list)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_functions_and_modules_stay_small(name):
    source = MODULES[name].read_text(encoding="utf-8")
    assert source.count("\n") <= MAX_MODULE_LINES, f"{name} has {source.count(chr(10))} lines"
    for node in ast.walk(TREES[name]):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{name}.{node.name} has {length} lines"
            if node.name != "__call__" and not is_config_init(node):
                assert parameter_count(node) <= MAX_PARAMETERS, f"{name}.{node.name} takes {parameter_count(node)} parameters"
