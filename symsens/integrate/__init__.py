"""Integrators: compiled C++ (scalar-generic: plain, continuous forward, discrete forward mode) and NumPy/SciPy.

Names are imported on first use (module ``__getattr__``): ``symsens.solve`` needs neither the adjoint
integrators nor SciPy's ``integrate``, so a solve does not pay for importing them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:
    from ._adjoint import ADJOINT_VARIANTS as ADJOINT_VARIANTS
    from ._adjoint import AdjointRun as AdjointRun
    from ._adjoint import adjoint_gradient as adjoint_gradient
    from ._solution import Solution as Solution
    from ._solution import SolverStats as SolverStats
    from ._solve import SENSITIVITY_MODES as SENSITIVITY_MODES
    from ._solve import solve as solve

__all__ = [
    "solve", "Solution", "SolverStats", "SENSITIVITY_MODES", "adjoint_gradient", "AdjointRun", "ADJOINT_VARIANTS",
]

# public name -> the submodule defining it
_LAZY: dict[str, str] = {
    "solve": "._solve", "SENSITIVITY_MODES": "._solve", "Solution": "._solution", "SolverStats": "._solution",
    "adjoint_gradient": "._adjoint", "AdjointRun": "._adjoint", "ADJOINT_VARIANTS": "._adjoint",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
