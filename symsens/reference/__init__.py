"""Reference solutions and forward sensitivities with verified digits.

:func:`reference` integrates a model and ``dy/dp`` on a ladder of independent high-order runs in extended
precision (double-double C++, or mpmath at any precision) and reports every value with the number of
significant digits two runs verify.  See ``docs/reference.md``.
"""

from ._reference import FAST_MAX_DIGITS as FAST_MAX_DIGITS
from ._reference import Reference as Reference
from ._reference import ReferenceRun as ReferenceRun
from ._reference import reference as reference
from ._tableau import CollocationTableau as CollocationTableau
from ._tableau import collocation_tableau as collocation_tableau

__all__ = ["reference", "Reference", "ReferenceRun", "FAST_MAX_DIGITS", "collocation_tableau", "CollocationTableau"]
