"""A small name -> factory registry, so a config string builds an object.

Every pluggable family (models, samplers, losses, similarity sources, objectives) keeps one
``Registry`` and registers its factories with ``@registry.register("name")``.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import warnings
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from scns.errors import ScnsError

T = TypeVar("T")


class UnknownNameError(ScnsError, KeyError, ValueError):
    """Raised when a name is not registered; the message lists the valid choices."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """Maps names to factories returning ``T``.

    Example::

        MODELS = Registry("model")

        @MODELS.register("resnet8")
        def resnet8(num_classes: int) -> nn.Module: ...

        model = MODELS.build("resnet8", num_classes=10)
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str | None = None) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering a factory under ``name`` (default: the function's name)."""

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            key = name or factory.__name__
            if key in self._factories and self._factories[key] is not factory:
                warnings.warn(
                    f"{self.kind} '{key}' registered twice; the later definition wins", stacklevel=2
                )
            self._factories[key] = factory
            return factory

        return decorator

    def get(self, name: str) -> Callable[..., T]:
        """The factory for ``name``; raises ``UnknownNameError`` listing valid names."""
        try:
            return self._factories[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.kind} '{name}'.{hint} Valid choices: {', '.join(self.names())}"

    def build(self, name: str, **kwargs: Any) -> T:
        """Call the factory registered as ``name`` with ``kwargs``."""
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __len__(self) -> int:
        return len(self._factories)


def import_submodules(package: str, path: Iterable[str]) -> list[str]:
    """Import every module of ``package`` (its ``__path__``), so that each registers what it defines:
    a new model family, sampler, loss or similarity source is one new file, named nowhere else.
    Returns the imported module names."""
    names = sorted(info.name for info in pkgutil.iter_modules(list(path)))
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names
