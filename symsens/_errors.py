"""Exception types of symsens.

Every error names the problem and, where there is one, the place (file, line, name).
"""

from __future__ import annotations

__all__ = ["SymsensError", "ModelError", "SchemeError", "DerivationError", "IntegrationError", "CodegenError"]


class SymsensError(Exception):
    """Base class of all errors raised by symsens."""


class ModelError(SymsensError, ValueError):
    """A model definition is malformed: bad syntax, unknown symbol, missing equation, bad value.

    Attributes
    ----------
    problem : str
        What is wrong, in one sentence.
    source : str or None
        The model file (or ``"<string>"``) the problem was found in.
    line : int or None
        1-based line number in ``source`` where known.
    name : str or None
        The offending name or token.
    """

    def __init__(
        self,
        problem: str,
        *,
        source: str | None = None,
        line: int | None = None,
        name: str | None = None,
    ) -> None:
        self.problem = problem
        self.source = source
        self.line = line
        self.name = name
        where = ""
        if source is not None:
            where = f"{source}:{line}: " if line is not None else f"{source}: "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(where + problem)


class SchemeError(SymsensError, ValueError):
    """A scheme is malformed (inconsistent tableau) or unknown."""


class DerivationError(SymsensError, ValueError):
    """A symbolic derivation was asked for something it cannot do (e.g. a loss in unknown symbols)."""


class IntegrationError(SymsensError, RuntimeError):
    """An integration failed: step size underflow, Newton divergence, non-finite values, too many steps.

    Attributes
    ----------
    status : str
        One of ``"step size underflow"``, ``"newton failure"``, ``"non-finite values"``, ``"too many steps"``.
    t : float or None
        The time at which it happened.
    """

    def __init__(self, message: str, *, status: str = "failed", t: float | None = None) -> None:
        self.status = status
        self.t = t
        super().__init__(message)


class CodegenError(SymsensError):
    """Code generation or compilation failed; the message says which step and why.

    Defined here rather than beside the printer so that loading a cached library, which may fail with it,
    imports no SymPy; ``symsens.codegen.CodegenError`` is this class."""
