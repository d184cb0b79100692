"""Exact symbolic derivation: Jacobians, forward sensitivity equations, loss gradients, CSE, printing."""

from ._adjoint import AdjointSystem as AdjointSystem
from ._adjoint import adjoint_symbol as adjoint_symbol
from ._adjoint import adjoint_system as adjoint_system
from ._adjoint import adjoint_to_json_dict as adjoint_to_json_dict
from ._adjoint import adjoint_to_latex as adjoint_to_latex
from ._adjoint import adjoint_to_text as adjoint_to_text
from ._cse import CSEResult as CSEResult
from ._cse import common_subexpressions as common_subexpressions
from ._cse import operation_count as operation_count
from ._jacobian import derivative_matrix as derivative_matrix
from ._jacobian import initial_sensitivities as initial_sensitivities
from ._jacobian import jacobian as jacobian
from ._jacobian import parameter_jacobian as parameter_jacobian
from ._loss import Loss as Loss
from ._loss import LossGradient as LossGradient
from ._loss import integral_loss as integral_loss
from ._loss import least_squares as least_squares
from ._loss import loss_gradient as loss_gradient
from ._loss import pointwise_loss as pointwise_loss
from ._loss import quadrature_model as quadrature_model
from ._numeric import numpy_function as numpy_function
from ._printing import expression_string as expression_string
from ._printing import to_json_dict as to_json_dict
from ._printing import to_latex as to_latex
from ._printing import to_text as to_text
from ._sensitivity import SensitivitySystem as SensitivitySystem
from ._sensitivity import sensitivity_symbol as sensitivity_symbol
from ._sensitivity import sensitivity_system as sensitivity_system

__all__ = [
    "jacobian",
    "parameter_jacobian",
    "initial_sensitivities",
    "derivative_matrix",
    "sensitivity_system",
    "sensitivity_symbol",
    "SensitivitySystem",
    "adjoint_system",
    "adjoint_symbol",
    "AdjointSystem",
    "adjoint_to_text",
    "adjoint_to_latex",
    "adjoint_to_json_dict",
    "Loss",
    "LossGradient",
    "least_squares",
    "pointwise_loss",
    "integral_loss",
    "loss_gradient",
    "quadrature_model",
    "common_subexpressions",
    "operation_count",
    "CSEResult",
    "numpy_function",
    "to_text",
    "to_latex",
    "to_json_dict",
    "expression_string",
]
