"""Every import points down: a module may import its own layer or lower ones, never a higher one,
and the SMDL engine and the baselines never import each other; nor may imports form a cycle.

Layers, lowest first (the first matching prefix decides a module's layer):

0 io        submodular_attribution.common          shared I/O and formats
1 regions   submodular_attribution.regions, utils   region divisions
2 models    scorers, adapters, architectures, the embedded image/audio/detection defaults, the task
            registry and shared front-end flags
3 methods   the SMDL engine (submodular_attribution.*)  |  baseline_attribution.*
4 analysis  visualization.*  <  evals.*             (evals may draw figures, figures never evaluate)
5 apps      submodular_attribution.apps, the package's public face, SAM_mask_generate
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("submodular_attribution", "baseline_attribution", "evals", "visualization")
TOP_MODULES = ("utils", "SAM_mask_generate")

# (prefix, rank, family): rank orders the layers; within rank 3 and 4 the family keeps the
# engine from the baselines, and evals above visualization.
LAYERS: list[tuple[str, float, str]] = [
    ("submodular_attribution.common", 0, "io"),
    ("submodular_attribution.regions", 1, "regions"),
    ("utils", 1, "regions"),
    ("submodular_attribution.models", 2, "models"),
    ("submodular_attribution.adapters", 2, "models"),
    ("submodular_attribution.shapes", 2, "models"),
    ("submodular_attribution.audio", 2, "models"),
    ("submodular_attribution.archs", 2, "models"),
    ("submodular_attribution.detection", 2, "models"),
    ("submodular_attribution.class_names", 2, "models"),
    ("submodular_attribution.families", 2, "models"),
    ("submodular_attribution.tasks", 2, "models"),
    ("submodular_attribution.frontend", 2, "models"),
    ("submodular_attribution.apps", 5, "apps"),
    ("SAM_mask_generate", 5, "apps"),
    ("baseline_attribution", 3, "baselines"),
    ("visualization", 4.0, "visualization"),
    ("evals", 4.5, "evals"),
    ("submodular_attribution", 3, "engine"),
]


def layer_of(module: str) -> tuple[float, str]:
    if module == "submodular_attribution":  # the package's public face re-exports from every layer
        return 5, "apps"
    for prefix, rank, family in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return rank, family
    raise AssertionError(f"{module}: no layer assigned; add it to LAYERS")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> list[Path]:
    files = [ROOT / f"{name}.py" for name in TOP_MODULES]
    for package in PACKAGES:
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def imports_of(path: Path) -> set[str]:
    """Project modules imported anywhere in the file (function-level imports included)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
                # "from . import x": x may be a submodule
                names = [f"{stem}.{a.name}" for a in node.names] if node.module is None else [stem]
            else:
                names = [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] in (*PACKAGES, *TOP_MODULES):
                found.add(name)
    return found


def resolve(name: str, known: set[str]) -> str:
    """The longest known module that ``name`` is or lies in (``pkg.mod.func`` → ``pkg.mod``)."""
    while name not in known and "." in name:
        name = name.rpartition(".")[0]
    return name


def import_graph() -> dict[str, set[str]]:
    files = source_files()
    known = {module_name(f) for f in files}
    return {module_name(f): {resolve(n, known) for n in imports_of(f)} - {module_name(f)} for f in files}


def allowed(importer: str, imported: str) -> bool:
    (rank_a, family_a), (rank_b, family_b) = layer_of(importer), layer_of(imported)
    if {family_a, family_b} == {"engine", "baselines"}:
        return False
    return rank_b < rank_a or (rank_b == rank_a and family_a == family_b)


def test_every_module_has_a_layer():
    for module in import_graph():
        layer_of(module)


def test_imports_point_down():
    upward = [f"{a} imports {b}" for a, targets in import_graph().items() for b in sorted(targets)
              if not allowed(a, b)]
    assert not upward, "upward or sideways imports:\n" + "\n".join(upward)


def test_no_import_cycles():
    graph = import_graph()
    # The package's public face imports its own submodules; every other package __init__ is
    # plain. Edges from a package to its own submodules are part of importing it, not cycles.
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checker_catches_a_violation():
    assert not allowed("submodular_attribution.engine", "baseline_attribution.base")
    assert not allowed("baseline_attribution.base", "submodular_attribution.search")
    assert not allowed("visualization.overlay", "evals.auc")
    assert not allowed("submodular_attribution.common.results", "submodular_attribution.regions")
    assert not allowed("submodular_attribution.search", "evals.auc")
    assert allowed("evals.benchmark", "visualization.overlay")
    assert allowed("baseline_attribution.base", "submodular_attribution.models")
    assert allowed("submodular_attribution.apps.demo", "evals.benchmark")
