"""The house rules of the package, checked on its source: folders by stage, data flowing one way, Make knowing the code.

- Every import inside ``densenet_interp`` (module level *and* inside functions) goes to the same stage or one
  below it: foundation -> phantom -> data -> models -> explain -> evaluate -> app / experiments -> commands -> cli.
  No circle, not even through a lazy import.
- The README's module map lists exactly the modules of the tree.
- Every table and figure target of the Makefile lists, as prerequisites, exactly the library modules its notebook
  imports (transitively, lazy imports included), so editing a module re-renders what it affects and nothing else.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lib"
PACKAGE = "densenet_interp"

# Stage of each top-level name of the package; an import may only go to the same rank or a lower one.
STAGES = {
    "__init__": 0,
    "errors": 0,
    "paths": 0,
    "progress": 0,
    "profiles": 0,
    "phantom": 1,
    "data": 2,
    "models": 3,
    "explain": 4,
    "evaluate": 5,
    "app": 6,
    "experiments": 6,
    "commands": 7,
    "cli": 8,
}


def module_files() -> dict[str, Path]:
    """``{dotted module name: file}`` for every module of the package (packages as their ``__init__``)."""
    found = {}
    for path in sorted((LIB / PACKAGE).rglob("*.py")):
        parts = path.relative_to(LIB).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(source: str, module: str, is_package: bool, modules: set[str]) -> set[str]:
    """The package modules that ``source`` imports anywhere (functions included), as dotted names."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node)
            # `from package import module` names a module; `from module import name` names the module
            names = [f"{target}.{alias.name}" for alias in node.names] + [target]
        else:
            continue
        for name in names:
            if name.split(".")[0] != PACKAGE:
                continue
            while name and name not in modules:  # `densenet_interp.x.func` -> `densenet_interp.x`
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    names = set(files)
    return {
        name: imports_of(path.read_text(), name, path.name == "__init__.py", names) - {name}
        for name, path in files.items()
    }


def with_parents(names: set[str]) -> set[str]:
    """Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` too."""
    out = set(names)
    for name in names:
        parts = name.split(".")
        out |= {".".join(parts[:i]) for i in range(1, len(parts))}
    return out


def closure(start: set[str], graph: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), list(with_parents(start))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += with_parents(graph.get(name, set())) - seen
    return seen


def stage(name: str) -> int:
    parts = name.split(".")
    return STAGES[parts[1]] if len(parts) > 1 else STAGES["__init__"]


# ---------------------------------------------------------------------------------------------------------------
def test_every_top_level_name_has_a_stage():
    top = {path.stem if path.is_file() else path.name for path in (LIB / PACKAGE).iterdir()}
    top = {name for name in top if not name.startswith(("_", ".")) or name == "__init__"}
    top = {
        name for name in top if (LIB / PACKAGE / name).is_dir() or (LIB / PACKAGE / f"{name}.py").is_file()
    }
    assert top <= set(STAGES), f"give {sorted(top - set(STAGES))} a stage in STAGES (and in the README map)"


def test_imports_never_go_up_a_stage():
    upward = [
        f"{name} (stage {stage(name)}) imports {target} (stage {stage(target)})"
        for name, targets in import_graph().items()
        for target in targets
        if stage(target) > stage(name)
    ]
    assert upward == []


def test_the_import_graph_has_no_circle():
    graph = import_graph()
    state: dict[str, int] = {}
    circles = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                circles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert circles == []


def test_the_readme_module_map_matches_the_tree():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Module map", 1)[1].split("\n## ", 1)[0]
    rows = "\n".join(line for line in section.splitlines() if line.startswith("|"))
    listed = set(re.findall(r"`((?:[a-z_]+/)*[a-z_]+\.py)`", rows))
    tree = {str(path.relative_to(LIB / PACKAGE)) for path in module_files().values()}
    tree = {name for name in tree if not name.endswith("__init__.py")}
    assert listed == tree, (
        f"missing from the map: {sorted(tree - listed)}; not in the tree: {sorted(listed - tree)}"
    )


# ---------------------------------------------------------------------------------------------------------------
# Make knows the code
def notebook_imports(path: Path, modules: set[str]) -> set[str]:
    cells = json.loads(path.read_text())["cells"]
    source = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
    source = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    return imports_of(source, "__notebook__", False, modules)


def make_variable(name: str) -> list[str]:
    result = subprocess.run(
        ["make", "--no-print-directory", "-s", f"print-{name}"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


NOTEBOOK_CODE = {
    "00_data_exploration": "CODE_00",
    "30_evaluation": "CODE_30",
    "40_case_figure": "CODE_40",
    "50_localisation": "CODE_50",
    "90_explorer": "CODE_90",
}


@pytest.mark.parametrize("notebook", sorted(NOTEBOOK_CODE))
def test_make_lists_exactly_the_code_a_notebook_runs(notebook):
    graph = import_graph()
    files = module_files()
    needed = closure(notebook_imports(ROOT / "notebooks" / f"{notebook}.ipynb", set(files)), graph)
    expected = {str(files[name].relative_to(ROOT)) for name in needed}
    declared = set(make_variable(NOTEBOOK_CODE[notebook]))
    assert declared == expected, (
        f"{NOTEBOOK_CODE[notebook]} lacks {sorted(expected - declared)} and lists {sorted(declared - expected)} "
        "that the notebook does not run"
    )


@pytest.mark.parametrize("command, variable", [("shortcut", "CODE_SHORTCUT"), ("seeds", "CODE_SEEDS")])
def test_make_lists_the_code_of_the_commands_it_runs(command, variable):
    graph = import_graph()
    files = module_files()
    needed = closure({f"{PACKAGE}.commands.{command}"}, graph)
    expected = {str(files[name].relative_to(ROOT)) for name in needed}
    assert set(make_variable(variable)) == expected


def test_trainings_and_data_are_order_only_on_code():
    """A refactor must never retrain: models, the stand-in and the phantom list no code as a normal prerequisite."""
    database = subprocess.run(
        ["make", "-pnq", "PROFILE=mini", "reproduce"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    rules = {}
    for match in re.finditer(r"^([^\s#:][^:\n]*):(?!=)([^\n|]*)(?:\|([^\n]*))?$", database, re.M):
        rules.setdefault(match.group(1).strip(), []).append(match.group(2).split())
    expensive = [
        t for t in rules if t.endswith(("model.keras", "backbone.weights.h5", "MURA-v1.1/.complete"))
    ]
    assert len(expensive) >= 6, f"expected the model, stand-in and data rules, found {expensive}"
    for target in expensive:
        normal = [p for prereqs in rules[target] for p in prereqs]
        code = [p for p in normal if p.endswith((".py", ".ipynb"))]
        assert code == [], f"{target} would rebuild when {code} change"


def _imported_names(source: str):
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith(PACKAGE):
            for alias in node.names:
                yield node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE):
                    yield alias.name, None


def test_benchmarks_and_notebooks_import_only_what_exists():
    """Scripts that no unit test imports (benchmarks, notebooks) still name existing modules and attributes."""
    import importlib

    sources = {path: path.read_text() for path in sorted((ROOT / "benchmarks").glob("*.py"))}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        sources[path] = "\n".join(
            line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))
        )
    missing = []
    for path, source in sources.items():
        for module, name in _imported_names(source):
            try:
                imported = importlib.import_module(module)
            except ImportError as exc:
                missing.append(f"{path.name}: {module} ({exc})")
                continue
            if name is not None and not hasattr(imported, name):
                try:
                    importlib.import_module(f"{module}.{name}")
                except ImportError:
                    missing.append(f"{path.name}: {module}.{name}")
    assert missing == []
