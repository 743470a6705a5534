"""The public API is written against the backend interface only."""

from __future__ import annotations

import ast
from pathlib import Path

import runbase.api

FORBIDDEN = ("runbase.store", "runbase.sdk", "runbase.server", "runbase.cli", "runbase.backend.")
ALLOWED = ("runbase.backend.base",)


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_api_imports_no_store_sdk_or_backend_implementation():
    package = Path(runbase.api.__file__).parent
    for module in sorted(package.glob("*.py")):
        for name in imported_modules(module):
            if name in ALLOWED or name == "runbase.backend":
                continue
            assert not name.startswith(FORBIDDEN), f"{module.name} imports {name}"
