"""Integrators: compiled C++ (scalar-generic: plain, continuous forward, discrete forward mode) and NumPy/SciPy."""

from ._solution import Solution as Solution
from ._solution import SolverStats as SolverStats
from ._solve import SENSITIVITY_MODES as SENSITIVITY_MODES
from ._solve import solve as solve

__all__ = ["solve", "Solution", "SolverStats", "SENSITIVITY_MODES"]
