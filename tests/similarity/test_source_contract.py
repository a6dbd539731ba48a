"""Every registered similarity source keeps the spec contract; swept over the registry, so a new
source is covered without editing this file (what each source computes is tested in its own file)."""

from __future__ import annotations

import inspect

import pytest

from scns.similarity import SIMILARITY_SOURCES, SimilarityError
from scns.similarity.registry import _SPEC_ARGS, build_source, parse_spec, spec_help


def test_the_registry_holds_the_documented_sources() -> None:
    names = SIMILARITY_SOURCES.names()
    assert {"confusion", "glove", "hierarchy", "prototypes", "teacher", "text", "wordnet"} <= set(names)
    assert names == sorted(names)


@pytest.mark.parametrize("name", SIMILARITY_SOURCES.names())
def test_every_source_parses_its_spec_and_names_its_options(name: str) -> None:
    params = inspect.signature(SIMILARITY_SOURCES.get(name)).parameters
    options = [p for p in params if p != "context"]
    assert parse_spec(name) == (name, {})
    spec_arg = _SPEC_ARGS.get(name)
    assert (f"{name}:{spec_arg.upper()}" if spec_arg else name) in spec_help().split(", ")
    if spec_arg is None:  # no ':ARG': saying one is an error that shows the plain spec
        with pytest.raises(SimilarityError, match=f"takes no ':ARG'.*write just '{name}'"):
            parse_spec(f"{name}:x")
    else:  # ':ARG' fills an option the factory really takes
        assert spec_arg in options
        assert parse_spec(f"{name}:x") == (name, {spec_arg: "x"})
    # an unknown option is refused before the factory runs, listing the valid ones
    with pytest.raises(SimilarityError, match=rf"'{name}' has no option 'no_such_option'; valid options: "):
        build_source(name, no_such_option=1)
