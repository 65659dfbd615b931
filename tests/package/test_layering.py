"""The package's layers (ARCHITECTURE.md): no import cycle, and every module importable alone.

The import graph is read from the source (every import statement, inside functions too; only
`if TYPE_CHECKING:` blocks are left out) of the installed package and of the generator, so a
lazy import that closes a loop is found as well (issue 14: runner -> tuning -> runner).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

w4a16_build = pytest.importorskip("w4a16_build", reason="w4a16_build is not importable")

PKG = Path(w4a16_build.__file__).resolve().parent
GEN = Path(__file__).resolve().parents[2] / "generator"


def modules(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.glob("*.py"))}


def _type_checking_only(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports(path: Path, package: str, names: set[str]) -> set[str]:
    """The modules of `package` (among `names`) that the file imports, anywhere in it."""
    found: set[str] = set()

    def visit(node):
        if isinstance(node, ast.If) and _type_checking_only(node):
            return
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 or node.module == package or (node.module or "").startswith(package + "."):
                base = (node.module or "") if node.level == 1 else node.module[len(package) + 1:]
                base = base.split(".")[0]
                if base:
                    found.add(base)
                else:  # from . import x, y: modules, or names of the package's __init__
                    found.update(a.name if a.name in names else "__init__" for a in node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith(package + "."):
                    found.add(a.name.split(".")[1])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m in names}


def graph(folder: Path, package: str) -> dict[str, set[str]]:
    mods = modules(folder)
    names = set(mods) | {"_C"}   # the compiled extension is a module too
    return {name: imports(path, package, names) - {name} for name, path in mods.items()}


def cycle(g: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(v):
        state[v] = 1
        stack.append(v)
        for w in sorted(g.get(v, ())):
            if state.get(w) == 1:
                return stack[stack.index(w):] + [w]
            if w not in state and (found := dfs(w)):
                return found
        stack.pop()
        state[v] = 2
        return None

    for v in sorted(g):
        if v not in state and (found := dfs(v)):
            return found
    return None


def test_cycle_finder_finds_a_loop():
    assert cycle({"runner": {"tuning"}, "tuning": {"runner"}}) == ["runner", "tuning", "runner"]
    assert cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("folder, package", [(PKG, "w4a16_build"), (GEN, "generator")], ids=["package", "generator"])
def test_import_graph_is_acyclic(folder, package):
    g = graph(folder, package)
    g.pop("__init__", None)   # the package's front door imports its layers, lazily, from above
    assert cycle(g) is None, f"import cycle: {' -> '.join(cycle(g))}"


def test_modules_do_not_import_through_the_package_front_door():
    """A module importing a name from `w4a16_build` itself goes through __init__'s lazy table,
    which hides which layer it depends on."""
    g = graph(PKG, "w4a16_build")
    assert [m for m, deps in g.items() if m != "__init__" and "__init__" in deps] == []


def test_the_layers_of_issue_14():
    g = graph(PKG, "w4a16_build")
    assert "runner" not in g["tuning"] and "runner" not in g["selection"] and "runner" not in g["kernels"]
    assert "tuning" not in g["selection"] and "selection" not in g["kernels"]
    assert {"kernels", "selection", "tuning"} <= g["runner"]
    assert not any(name.startswith("_") and name not in ("_ext",) for name in g["bench"])


def _import_alone(module: str, cwd: Path) -> tuple[str, int, str]:
    r = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=300,
                       cwd=cwd)
    return module, r.returncode, r.stderr[-2000:]


def test_each_module_imports_alone_in_a_fresh_interpreter(tmp_path):
    pytest.importorskip("torch", reason="PyTorch is not installed")
    names = [f"w4a16_build.{m}" for m in modules(PKG) if m not in ("__init__", "__main__")]
    names += [f"generator.{m}" for m in modules(GEN) if m not in ("__init__", "__main__")]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda m: _import_alone(m, GEN.parent), names))
    failed = [f"{m}: {err.strip().splitlines()[-1] if err.strip() else rc}" for m, rc, err in results if rc]
    assert not failed, "\n".join(failed)


def test_submodules_are_attributes_of_the_package_on_first_use():
    """`import w4a16_build; w4a16_build.kernels...` failed with AttributeError unless something
    had imported the submodule before (test_gemm_gpu.py failed on every case when run alone)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("torch", reason="PyTorch is not installed")
    root = Path(__file__).resolve().parents[2]
    code = "import w4a16_build; print(w4a16_build.selection.bucket_for(3), w4a16_build.kernels.FORCE_SM80_ENV)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(root / "python")})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["3", "W4A16_FORCE_SM80"]
    r = subprocess.run([sys.executable, "-c", "import w4a16_build; w4a16_build.no_such_thing"],
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(root / "python")})
    assert r.returncode != 0 and "has no attribute 'no_such_thing'" in r.stderr
    import w4a16_build

    pkg = root / "python" / "w4a16_build"
    assert {p.stem for p in pkg.glob("*.py") if not p.stem.startswith("_")} == set(w4a16_build._SUBMODULES)
