"""The import contract: dependencies point down (docs/ARCHITECTURE.md, "Layers").

Every ``import`` and ``from ... import`` statement of every module under src/scns is read with
``ast``, those inside functions (lazy imports) included, so a layering violation cannot hide
behind a deferred import. A module may import its own layer and the layers below it; the modules
of an *independent* layer may not import each other (the grid runner must not reach into reports).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "scns"

#: Top to bottom; each entry lists top-level names under ``scns`` (subpackage or module). ``scns``
#: is the package's own ``__init__`` (``__version__``; its exports load by name on first use).
LAYERS: list[tuple[set[str], bool]] = [  # (members, independent)
    ({"__main__", "cli", "commands"}, False),
    ({"train", "report", "api"}, True),
    ({"objectives"}, False),
    ({"losses", "sampling", "memory"}, False),
    ({"models", "data", "similarity"}, False),
    (
        {"config", "registry", "rundir", "runlock", "runinfo", "checkpoint", "dist", "provenance", "scns"},
        False,
    ),
    ({"errors"}, False),
]
RANK = {name: i for i, (members, _) in enumerate(LAYERS) for name in members}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module name) of every scns import in the file (or in ``source``, read as that
    file), at any depth of the tree. ``from scns import checkpoint`` names ``scns.checkpoint``;
    relative imports are resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "scns":  # from scns import x: x is a submodule, or a name of the root
                found += [(node.lineno, f"scns.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, module))
    return [(line, m) for line, m in found if m == "scns" or m.startswith("scns.")]


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else "scns"


MODULES = sorted(SRC.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    tops = {module_name(p).split(".")[1] for p in MODULES if module_name(p) != "scns"}
    assert tops <= set(RANK), f"place these in LAYERS (tests/test_layers.py): {sorted(tops - set(RANK))}"


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_imports_point_down(path: Path) -> None:
    here = top(module_name(path))
    members, independent = LAYERS[RANK[here]]
    upward = []
    for line, module in imported_modules(path):
        there = top(module)
        if RANK[there] < RANK[here] or (independent and there != here and there in members):
            upward.append(f"{path.relative_to(SRC.parent)}:{line} imports {module} ({here} -> {there})")
    assert not upward, "imports against the layers of docs/ARCHITECTURE.md:\n" + "\n".join(upward)


def test_the_contract_sees_lazy_and_relative_imports() -> None:
    """The parser itself: an import inside a function, ``from scns import x`` and a relative import
    all count (the file is never written; its source is given)."""
    path = SRC / "similarity" / "probe.py"
    source = "def f():\n    from scns.train.engine import Trainer\n    from scns import cli\n    from ..objectives import x\n"
    names = [m for _, m in imported_modules(path, source)]
    assert names == ["scns.train.engine", "scns.cli", "scns.objectives"]
    assert all(RANK[top(m)] < RANK["similarity"] for m in names)
