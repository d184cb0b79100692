"""Importing the optional tools, with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from .._errors import SymsensError

__all__ = ["ToolUnavailableError", "require", "EXTRA_OF"]

#: Module -> the extra of symsens that installs it.
EXTRA_OF: dict[str, str] = {
    "jax": "jax", "jax.numpy": "jax", "diffrax": "jax",
    "casadi": "casadi",
    "torch": "torch", "torchdiffeq": "torch",
}


class ToolUnavailableError(SymsensError, ImportError):
    """An optional tool (JAX and diffrax, CasADi, PyTorch and torchdiffeq) is not installed.

    The message names the extra that installs it, e.g. ``pip install 'symsens[jax]'``.
    """


def require(module: str, what: str) -> ModuleType:
    """``import module``, or :class:`ToolUnavailableError` naming the extra of symsens that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        extra = EXTRA_OF.get(module, module.split(".")[0])
        raise ToolUnavailableError(
            f"{what} needs the Python package {module.split('.')[0]!r}, which cannot be imported ({error}); "
            f"install it with: pip install 'symsens[{extra}]'"
        ) from None
