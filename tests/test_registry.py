"""Registries: names resolve to factories, unknown names list the choices, and a package's modules
register themselves when the package is imported (a new sampler or source is one file)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from scns.registry import Registry, UnknownNameError, import_submodules


def test_unknown_name_lists_the_choices():
    things: Registry[int] = Registry("thing")
    things.register("one")(lambda: 1)
    things.register("two")(lambda: 2)
    assert things.build("two") == 2
    with pytest.raises(UnknownNameError, match="one, two"):
        things.get("tree")


def test_a_new_module_in_a_package_registers_itself(tmp_path: Path, monkeypatch):
    package = tmp_path / "plugins_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            from scns.registry import Registry, import_submodules
            PLUGINS = Registry("plugin")
            import_submodules(__name__, __path__)
            """
        )
    )
    for name in ("alpha", "beta"):  # each file registers itself; __init__ names neither
        (package / f"{name}.py").write_text(
            f"from plugins_pkg import PLUGINS\n@PLUGINS.register('{name}')\ndef make():\n    return '{name}'\n"
        )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        import plugins_pkg

        assert plugins_pkg.PLUGINS.names() == ["alpha", "beta"]
        assert import_submodules("plugins_pkg", plugins_pkg.__path__) == ["alpha", "beta"]
    finally:
        for mod in [m for m in sys.modules if m.startswith("plugins_pkg")]:
            del sys.modules[mod]


def test_the_shipped_registries_hold_every_module_of_their_package():
    from scns.losses import LOSSES
    from scns.sampling import SAMPLERS
    from scns.similarity import SIMILARITY_SOURCES

    assert {"uniform", "class_topk", "sample_topk", "mixture"} <= set(SAMPLERS.names())
    assert {"glove", "wordnet", "text", "hierarchy", "prototypes", "confusion", "teacher"} <= set(
        SIMILARITY_SOURCES.names()
    )
    assert {"nce", "infonce", "kd"} <= set(LOSSES.names())
