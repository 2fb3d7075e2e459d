"""The learning core stays framework-free: it imports the standard library, River, NumPy,
pydantic, orjson and itself; nothing of Faust, FastAPI, aiokafka or the rest of streamlearn."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[3] / "streams" / "learning"
ALLOWED = {"river", "numpy", "pydantic", "orjson", "msgspec"} | set(sys.stdlib_module_names)


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_the_core_imports_nothing_of_the_frameworks() -> None:
    modules = sorted(CORE.glob("*.py"))
    assert len(modules) > 10
    foreign = {
        f"{path.name}: {name}"
        for path in modules
        for name in imported(path)
        if name.split(".")[0] not in ALLOWED and not name.startswith("streams.learning")
    }
    assert not foreign, foreign
