"""The audit: is this gradient right, why not, and what is the true one.

:func:`audit` runs every gradient method (continuous forward sensitivities with and without error control,
discrete forward mode with its controller variants, central finite differences) with every scheme and tolerance,
compares each with a verified reference, diagnoses the differences from the runs (loss floor, stiffness,
sensitivity growth, step-size control, convergence), gives a verdict per run and recommends the cheapest
accurate setting.  :func:`audit_sweep` runs many audits through any ``concurrent.futures.Executor``.
"""

import sys
import types

from ._audit import DEFAULT_SCHEMES, DEFAULT_TOLERANCES, AuditReport, audit, audit_sweep
from ._losses import (
    DataLoss, ExpressionLoss, IntegralLoss, TrajectoryLoss, fit_loss, loss_from_model_file, parse_loss,
)
from ._external import ExternalGradient, LossData, loss_data
from ._methods import DEFAULT_METHODS, GRADIENT_METHODS
from ._parameter_map import ParameterMap

__all__ = [
    "audit", "audit_sweep", "AuditReport", "TrajectoryLoss", "DataLoss", "IntegralLoss", "ExpressionLoss",
    "parse_loss", "loss_from_model_file", "fit_loss", "GRADIENT_METHODS", "DEFAULT_METHODS", "DEFAULT_SCHEMES",
    "DEFAULT_TOLERANCES", "ExternalGradient", "LossData", "loss_data", "ParameterMap",
]


class _CallableModule(types.ModuleType):
    """``symsens.audit`` is this package and, called, the function :func:`audit`: ``symsens.audit(model, loss)``
    and ``symsens.audit.TrajectoryLoss`` both work, and submodules stay importable."""

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return audit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
