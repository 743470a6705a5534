"""The layering of DESIGN.md, the public surface, and the schema on both databases."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_mock_engine

import runbase
from runbase.store import schema

PACKAGE = Path(runbase.__file__).parent
# What each layer may import from runbase (besides itself and the shared leaf modules).
ALLOWED = {
    "store": set(),
    "backend": {"store"},
    "sdk": {"backend"},
    "api": {"backend"},
    "server": {"backend"},
    "cli": {"sdk", "api", "backend", "server", "demo"},
}
SHARED = {"errors", "settings", "names", "documents", "checks", "fields", "columnar"}


def runbase_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "runbase" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layers_import_only_downwards(layer):
    paths = list((PACKAGE / layer).rglob("*.py")) or [PACKAGE / f"{layer}.py"]
    for path in paths:
        if not path.exists():
            continue
        upward = runbase_imports(path) - ALLOWED[layer] - SHARED - {layer}
        assert not upward, f"{path.relative_to(PACKAGE)} imports {sorted(upward)}"


def test_public_surface_is_pinned():
    assert sorted(runbase.__all__) == sorted([
        "Api", "CommError", "Run", "RunbaseError", "__version__", "config", "finish", "init",
        "log", "run", "save", "summary", "sweep",
    ])  # fmt: skip
    for name in runbase.__all__:
        if name not in ("run", "summary"):
            assert getattr(runbase, name) is not None


def test_schema_compiles_for_postgresql():
    statements: list[str] = []
    engine: Any = create_mock_engine(
        "postgresql+psycopg://",
        lambda sql, *a, **k: statements.append(str(sql.compile(dialect=engine.dialect))),
    )
    schema.metadata.create_all(engine, checkfirst=False)
    ddl = "\n".join(statements)
    assert "CREATE TABLE runs" in ddl and "JSONB" in ddl and "CREATE TABLE history" in ddl


@pytest.mark.parametrize("module", ["errors", "settings", "names", "documents", "checks", "fields"])
def test_shared_modules_import_no_layer(module):
    assert runbase_imports(PACKAGE / f"{module}.py") <= SHARED


def test_import_runbase_loads_no_database_code():
    code = (
        "import sys, runbase; runbase.Api; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'psycopg')"
        " or m.startswith('runbase.store')))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"
