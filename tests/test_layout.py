"""The import rules import-linter cannot express, checked on the source: no underscore name is imported
across modules, and imports inside functions only defer a heavy third-party package (never rzero_lib).
The layers and the absence of cycles are import-linter's contracts (`make lint`, pyproject.toml)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rzero_lib"
# Third-party packages worth deferring: each costs far more than a millisecond to import, or may be absent.
HEAVY = {"torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers", "vllm", "deepspeed",
         "numpy", "pyarrow", "scipy", "sympy", "pandas", "matplotlib", "math_verify", "papermill", "nbformat", "nbconvert",
         "jupyter_client", "ipywidgets", "IPython", "tqdm", "requests", "jupytext", "traitlets"}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _function_imports(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import):
                    yield from ((inner, alias.name) for alias in inner.names)
                elif isinstance(inner, ast.ImportFrom):
                    yield inner, ("." * inner.level) + (inner.module or "")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_underscore_name_is_imported_across_modules(path):
    tree = ast.parse(path.read_text())
    crossing = [f"line {node.lineno}: {alias.name} from {node.module}"
                for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert not crossing, crossing


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_function_level_imports_only_defer_heavy_packages(path):
    tree = ast.parse(path.read_text())
    bad = [f"line {node.lineno}: {name}" for node, name in _function_imports(tree)
           if name.startswith(".") or name.split(".")[0] not in HEAVY]
    assert not bad, f"imports inside functions must be of {sorted(HEAVY)} only: {bad}"


def test_no_module_imports_a_private_module_attribute():
    """`module._name` attribute access on an rzero_lib module imported under a name (e.g. `A._ratio`)."""
    offenders = []
    for path in _modules():
        tree = ast.parse(path.read_text())
        aliases = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                   and (node.module or "").startswith("rzero_lib") for alias in node.names}
        aliases |= {(alias.asname or alias.name).split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, ast.Import) for alias in node.names if alias.name.startswith("rzero_lib")}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.value.id}.{node.attr}")
    assert not offenders, offenders


def test_import_contracts_hold():
    """import-linter's contracts (layers, no cycles, a torch-free algorithm layer) on the installed checkout."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    if not lint_imports.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    out = subprocess.run([str(lint_imports)], cwd=PACKAGE.parent, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
