"""Turning exact expressions into NumPy callables (the pure-Python evaluation path).

SymPy's ``lambdify`` writes Python source from the *expression tree* (never from user text), with the
model language's special functions (``exprel`` and its derivatives) mapped to their stable NumPy
implementations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy as sp

from ..model._functions import NUMPY_FUNCTIONS

__all__ = ["numpy_function"]

_MODULES: list[Any] = [NUMPY_FUNCTIONS, {"Heaviside": lambda x, h0=0.5: np.heaviside(x, h0)}, "numpy"]


def numpy_function(expressions: Sequence[sp.Expr], arguments: Sequence[sp.Symbol]) -> Callable[..., np.ndarray]:
    """A function ``F(*arrays) -> ndarray`` of shape ``(len(expressions), *broadcast shape)``.

    Arguments broadcast against each other; constant expressions are broadcast to the common shape so the
    result is always a dense float array.
    """
    expressions = [sp.sympify(e) for e in expressions]
    compiled = sp.lambdify(list(arguments), expressions, modules=_MODULES, cse=True)

    def evaluate(*values: Any) -> np.ndarray:
        arrays = [np.asarray(v, dtype=float) for v in values]
        shape = np.broadcast_shapes(*(a.shape for a in arrays)) if arrays else ()
        with np.errstate(all="ignore"):
            results = compiled(*arrays)
        return np.stack([np.broadcast_to(np.asarray(r, dtype=float), shape) for r in results]) if results else np.empty((0, *shape))

    return evaluate
