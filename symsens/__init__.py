"""symsens: are the parameter gradients of your ODE model trustworthy, why not, and what is the true one?

The data flow is one way: model -> derive -> (codegen -> integrate) -> reference/audit -> report.

Every public name below is imported on first use (PEP 562 module ``__getattr__``), so ``import symsens`` costs
NumPy's import and milliseconds more, and a script pays only for what it touches: ``symsens.solve`` the
compiled-solver path, ``symsens.audit`` the audit and plotting, and SymPy is imported when a model's expressions
are built (a model whose summary is cached is loaded and solved with cached libraries without it).
``dir(symsens)``, ``from symsens import *`` and ``import symsens.<package>`` behave as if everything had been
imported eagerly.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

# NumPy comes with the package: every computation of symsens takes and returns NumPy arrays, so its import belongs
# to ``import symsens`` rather than to whichever call comes first.  SymPy, SciPy and matplotlib load on demand.
import numpy as _numpy  # noqa: F401

from ._errors import DerivationError as DerivationError
from ._errors import IntegrationError as IntegrationError
from ._errors import ModelError as ModelError
from ._errors import SchemeError as SchemeError
from ._errors import SymsensError as SymsensError

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time these come from __getattr__ below
    from . import audit as audit
    from ._gradient import GradientResult as GradientResult
    from ._gradient import TrueGradient as TrueGradient
    from ._gradient import gradient as gradient
    from ._gradient import objective as objective
    from ._gradient import true_gradient as true_gradient
    from .audit import AuditReport as AuditReport
    from .audit import audit_sweep as audit_sweep
    from .integrate import Solution as Solution
    from .integrate import solve as solve
    from .model import Model as Model
    from .model import examples as examples
    from .model import load_model as load_model
    from .reference import Reference as Reference
    from .reference import reference as reference

__version__ = "0.1.0"

__all__ = [
    "Model",
    "load_model",
    "examples",
    "SymsensError",
    "ModelError",
    "SchemeError",
    "DerivationError",
    "IntegrationError",
    "solve",
    "Solution",
    "reference",
    "Reference",
    "audit",
    "audit_sweep",
    "AuditReport",
    "gradient",
    "true_gradient",
    "objective",
    "GradientResult",
    "TrueGradient",
    "__version__",
]

# public name -> (module it lives in, attribute of that module; None: the module itself).  The solve path
# imports only what a solve needs (not the adjoint integrators, SciPy's integrate or the audit).
_LAZY: dict[str, tuple[str, str | None]] = {
    "Model": ("symsens.model._model", "Model"),
    "load_model": ("symsens.model._load", "load_model"),
    "examples": ("symsens.model._load", "examples"),
    "solve": ("symsens.integrate._solve", "solve"),
    "Solution": ("symsens.integrate._solution", "Solution"),
    "reference": ("symsens.reference", "reference"),
    "Reference": ("symsens.reference", "Reference"),
    "audit": ("symsens.audit", None),  # the package, callable as the function audit(model, loss, ...)
    "audit_sweep": ("symsens.audit", "audit_sweep"),
    "AuditReport": ("symsens.audit", "AuditReport"),
    "gradient": ("symsens._gradient", "gradient"),
    "true_gradient": ("symsens._gradient", "true_gradient"),
    "objective": ("symsens._gradient", "objective"),
    "GradientResult": ("symsens._gradient", "GradientResult"),
    "TrueGradient": ("symsens._gradient", "TrueGradient"),
}

# Subpackages reachable as attributes (``symsens.schemes.get_scheme``) without an explicit import, as they were
# when this package imported them eagerly.
_SUBPACKAGES = frozenset({
    "audit", "bridges", "cli", "codegen", "derive", "integrate", "model", "petab", "plotting", "reference", "schemes",
    "vanishing",
})

# Public names that are functions although a subpackage has the same name: ``symsens.reference`` is the function
# ``reference`` (the package is ``sys.modules["symsens.reference"]``), whichever is imported first.
_FUNCTIONS_OVER_PACKAGES = frozenset({"reference"})


def _resolve(name: str) -> Any:
    if name in _LAZY:
        module_name, attribute = _LAZY[name]
        module = importlib.import_module(module_name)
        return module if attribute is None else getattr(module, attribute)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Package(types.ModuleType):
    """This package's module type: resolves public names on first use and keeps function names over packages."""

    def __getattr__(self, name: str) -> Any:  # called only when normal lookup fails
        value = _resolve(name)
        # Stored in the namespace directly: ``setattr`` would go through ``__setattr__`` below.
        self.__dict__[name] = value
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        # The import system sets ``symsens.reference = <package>`` when it first loads the subpackage; the
        # public name is the function, so the package stays reachable through sys.modules only.
        if name in _FUNCTIONS_OVER_PACKAGES and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(self.__dict__) | set(_LAZY) | _SUBPACKAGES)


sys.modules[__name__].__class__ = _Package
