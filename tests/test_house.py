"""The house rules the code must keep (read from the source, not from memory of it):

- no import cycle between modules of ``desktop`` at module level;
- an import inside a function only with a comment saying why (it keeps torch, transformers,
  hivemind, web3 or Qt out of a process that must not load them; or it breaks nothing else);
- every package's ``__init__`` names each of its modules;
- every module imports on its own in a fresh interpreter.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "desktop"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _target(module: str, node: ast.ImportFrom) -> str | None:
    if not node.level:
        return node.module
    base = module.split(".")
    if MODULES[module].name != "__init__.py":
        base = base[:-1]
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, at_module_level: bool) -> list[tuple[ast.stmt, list[str]]]:
    """(statement, the desktop modules it names) for imports at (or below) module level."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, (ast.Import, ast.ImportFrom)) and in_function != at_module_level:
                if isinstance(child, ast.Import):
                    names = [a.name for a in child.names]
                else:
                    base = _target(module, child)
                    names = [base] + [f"{base}.{a.name}" for a in child.names] if base else []
                found.append((child, [n for n in names if n in MODULES]))
            visit(child, inside)

    visit(tree, False)
    return found


def test_no_import_cycle_at_module_level():
    graph = {m: {t for _, names in _imports(m, True) for t in names if t != m} for m in MODULES}
    # a package imports its own modules when it re-exports them: that is no cycle (Python loads
    # the package first), so edges from a package to its own submodules are left out
    graph = {m: {t for t in ts if not (MODULES[m].name == "__init__.py" and t.startswith(m + "."))}
             for m, ts in graph.items()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def strong(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
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
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in graph:
        if module not in index:
            strong(module)
    assert cycles == []


def test_imports_inside_functions_say_why():
    missing = []
    for module, path in sorted(MODULES.items()):
        lines = path.read_text(encoding="utf-8").splitlines()
        for node, _ in _imports(module, False):
            line = node.lineno - 1
            while line > 0 and (lines[line - 1].strip().startswith(("import ", "from ")) or not lines[line - 1].strip()):
                line -= 1  # the first import of a block (blank lines between groups) carries its comment
            said = "#" in lines[node.lineno - 1] or (line > 0 and "#" in lines[line - 1]) or "#" in lines[line]
            if not said:
                missing.append(f"{path.relative_to(ROOT)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert missing == [], "\n".join(missing)


def test_every_package_names_its_modules():
    unnamed = []
    for init in PACKAGE.rglob("__init__.py"):
        text = init.read_text(encoding="utf-8")
        for path in init.parent.iterdir():
            name = path.stem if path.suffix == ".py" else path.name
            if path.name in ("__init__.py", "__main__.py", "__pycache__") or not (
                    path.suffix == ".py" or (path / "__init__.py").is_file()):
                continue
            if name not in text:
                unnamed.append(f"{init.relative_to(ROOT)} does not name {name}")
    assert unnamed == []


@pytest.mark.slow
def test_every_module_imports_on_its_own():
    code = ("import importlib, sys\nfailed = []\nfor name in sys.argv[1:]:\n"
            "    try:\n        importlib.import_module(name)\n"
            "    except Exception as exc:\n        failed.append(f'{name}: {type(exc).__name__}: {exc}')\n"
            "print('\\n'.join(failed))\nsys.exit(1 if failed else 0)\n")
    names = sorted(m for m in MODULES if not m.endswith("__main__"))
    for start in range(0, len(names), 40):  # a fresh interpreter for each slice: import order varies
        done = subprocess.run([sys.executable, "-c", code, *names[start:start + 40][::-1]], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr[-2000:]
