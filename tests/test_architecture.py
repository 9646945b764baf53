"""The package direction search_spaces <- latency_models <- nas holds, checked on the real imports."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {
    "search_spaces": {"search_spaces"},
    "latency_models": {"search_spaces", "latency_models"},
    "nas": {"search_spaces", "latency_models", "nas"},
}


def _project_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        found |= {n.split(".")[0] for n in names if n.split(".")[0] in ALLOWED}
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_only_flow_towards_nas(package):
    files = list((ROOT / package).rglob("*.py"))
    assert files
    for path in files:
        assert _project_imports(path) <= ALLOWED[package], path
