"""Public names of a package imported on first use (PEP 562 module ``__getattr__`` and ``__dir__``)."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(package: str, names: Mapping[str, str],
               namespace: dict[str, Any]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose public names (``names``: name -> relative module
    defining it) are imported on first use and then kept in ``namespace`` (the package's ``globals()``), so
    ``dir()``, ``from package import *``, ``from package import name`` and ``package.submodule`` behave as if
    imported eagerly."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            # A submodule, reachable as an attribute as if the package had imported it.
            if not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}") is not None:
                return importlib.import_module(f"{package}.{name}")
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name], package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
