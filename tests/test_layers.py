"""The layer rules the docstrings state, checked on the import graph and the source (not claimed). A module's layer
is its package: ``launch/``, ``collect/``, ``cli/``, ``datacheck/``, ``train/``; the ground floor is the top-level
modules (config, yamlio, errors, fsio, tasks, datasets, states, rundir, runlock, signals, hubcache).

- ``train/`` (the job) imports no launch, collect or CLI module: it runs on a compute node alone;
- ``collect/`` imports nothing of ``launch/``, ``cli/`` or ``train/``;
- the ground floor imports nothing from any package: only the ground floor;
- only ``cli/`` prints or exits; ``tasks.py``, ``datasets.py``, ``config.py``, ``hubcache.py`` and all of ``collect/`` never import
  torch (the launcher and the collector start fast and run where torch is not); nor does ``runlock.py`` (the run
  folder lock: plain os/fcntl, usable by any tool), nor ``datacheck/`` (mtl-data check and the launch
  preflight's dataset counts), nor ``launch/journal.py``, nor ``launch/accounting.py`` (sacct's GPU-hours for
  mtl-collect --cost).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "mtl_cluster"


def _modules() -> dict[str, Path]:
    return {".".join(p.relative_to(PKG).with_suffix("").parts): p for p in PKG.rglob("*.py")}


MODULES = _modules()
_PACKAGES = {n.rsplit(".", 1)[0] for n in MODULES if n.endswith(".__init__")}   # launch, train, train.data, ...
GROUND = {n for n in MODULES if "." not in n and n != "__init__"}   # the top-level modules; each package is a room


def _room(name: str) -> set[str]:
    """The modules of one package (``launch`` -> launch.*, its __init__ included)."""
    return {n for n in MODULES if n.startswith(name + ".")}


LAUNCH, COLLECT, CLI, DATACHECK, TRAIN = (_room(r) for r in ("launch", "collect", "cli", "datacheck", "train"))
NO_TORCH = {"tasks", "datasets", "config", "hubcache", "yamlio", "errors", "runlock", "launch.journal", "launch.accounting",
            *DATACHECK, *COLLECT}


def _imports(path: Path, name: str) -> set[str]:
    """Absolute names of what a module imports (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join(["mtl_cluster", *base, *(node.module.split(".") if node.module else [])]) \
                if node.level else (node.module or "")
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def _internal(imports: set[str]) -> set[str]:
    """The package's modules (and packages) among ``imports``, named as in MODULES: ``launch.grid``, ``launch``."""
    out = set()
    for i in imports:
        parts = i.split(".")[1:] if i.startswith("mtl_cluster.") else []
        out |= {".".join(parts[:k]) for k in range(1, len(parts) + 1)} & (MODULES.keys() | _PACKAGES)
    return out


# train/__main__.py is ``python -m mtl_cluster.train``: the job's command line, an adapter onto cli/train.py.
@pytest.mark.parametrize("name", sorted(n for n in TRAIN if n != "train.__main__"))
def test_the_job_imports_no_launch_collect_or_cli_code(name: str) -> None:
    bad = _internal(_imports(MODULES[name], name)) & (LAUNCH | COLLECT | CLI | {"launch", "collect", "cli"})
    assert not bad, f"mtl_cluster/{name}.py imports {sorted(bad)}"


@pytest.mark.parametrize("name", sorted(COLLECT))
def test_the_collect_side_imports_nothing_of_the_launch_side(name: str) -> None:
    bad = _internal(_imports(MODULES[name], name)) & (LAUNCH | CLI | TRAIN | {"launch", "cli", "train"})
    assert not bad, f"mtl_cluster/{name}.py imports {sorted(bad)}"


@pytest.mark.parametrize("name", sorted(GROUND))
def test_the_ground_floor_imports_only_the_ground_floor(name: str) -> None:
    bad = _internal(_imports(MODULES[name], name)) - GROUND
    assert not bad, f"mtl_cluster/{name}.py imports {sorted(bad)}"


@pytest.mark.parametrize("name", sorted(LAUNCH))
def test_the_launch_side_imports_the_ground_floor_and_the_data_check_only(name: str) -> None:
    bad = _internal(_imports(MODULES[name], name)) - GROUND - LAUNCH - DATACHECK - {"launch", "datacheck"}
    assert not bad, f"mtl_cluster/{name}.py imports {sorted(bad)}"


@pytest.mark.parametrize("name", sorted(DATACHECK))
def test_the_data_check_imports_the_ground_floor_and_the_dataset_readers_only(name: str) -> None:
    readers = {n for n in TRAIN if n.startswith("train.data")} | {"train", "train.data"}
    bad = _internal(_imports(MODULES[name], name)) - GROUND - DATACHECK - readers - {"datacheck"}
    assert not bad, f"mtl_cluster/{name}.py imports {sorted(bad)}"


@pytest.mark.parametrize("name", sorted(NO_TORCH))
def test_light_modules_do_not_import_torch(name: str) -> None:
    heavy = {i for i in _imports(MODULES[name], name) if i.split(".")[0] in ("torch", "torchvision", "submitit")}
    assert not heavy, f"mtl_cluster/{name}.py imports {sorted(heavy)}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n not in CLI))
def test_only_the_cli_and_ui_print_or_exit(name: str) -> None:
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            called = f.id if isinstance(f, ast.Name) else f"{getattr(f.value, 'id', '?')}.{f.attr}" \
                if isinstance(f, ast.Attribute) else ""
            if called in ("print", "exit", "quit", "sys.exit", "os._exit"):
                calls.append(f"{called} at line {node.lineno}")
    assert not calls, f"mtl_cluster/{name}.py: {calls}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n != "states"))
def test_run_states_are_named_not_spelled(name: str) -> None:
    """Run states live in states.py: no module compares with, or writes, a state as a bare string."""
    from mtl_cluster.states import State
    words = {s.value for s in State}
    found = []
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare):
            parts = [node.left, *node.comparators]
            parts += [e for p in parts if isinstance(p, (ast.Tuple, ast.List, ast.Set)) for e in p.elts]
            found += [f"line {node.lineno}: {p.value!r}" for p in parts
                      if isinstance(p, ast.Constant) and p.value in words]
        elif isinstance(node, ast.keyword) and node.arg == "state" and isinstance(node.value, ast.Constant):
            found.append(f"state={node.value.value!r}")
    assert not found, f"mtl_cluster/{name}.py: {found}"


def _graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports, at the top or inside a function (a deferred import is still
    an arrow a reader follows)."""
    out: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        deps = set()
        for imported in _imports(path, name):
            parts = imported.split(".")[1:] if imported.startswith("mtl_cluster.") else []
            for k in range(len(parts), 0, -1):
                if ".".join(parts[:k]) in MODULES:
                    deps.add(".".join(parts[:k]))
                    break
        out[name] = deps - {name} - {n for n in deps if name.startswith(n + ".")}
    return out


def test_no_import_circles() -> None:
    """No module reaches itself through its imports (deferred ones included): the layers read one way."""
    graph = _graph()
    circles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    circles.append(" -> ".join([*path, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    assert not circles, sorted(set(circles))[:5]


def test_no_private_name_is_imported_across_modules() -> None:
    """A leading underscore means "this module's own": another module that needs it gets a public name."""
    bad = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("mtl_cluster")):
                bad += [f"{name} imports {node.module}.{a.name}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")]
    assert not bad, bad
