"""Integration schemes with their exact analysis: one frozen coefficient object per method.

The same object feeds the exact stability analysis here and the generated integrators in
``symsens.integrate``, so the method that ran is the method analysed.

Catalogue: :func:`get_scheme` (names such as ``"tsit5"``, ``"radau-iia-3"``, ``"rodas4"``, ``"bdf3"``,
generated families ``"gauss-S"``, ``"radau-iia-S"``, ``"lobatto-iiic-S"``) and :func:`scheme_names`.
Analysis: free functions taking a scheme and returning SymPy objects.
"""

from ._analysis import R_infinity as R_infinity
from ._analysis import e_polynomial as e_polynomial
from ._analysis import has_stiff_decay as has_stiff_decay
from ._analysis import is_A_stable as is_A_stable
from ._analysis import is_L_stable as is_L_stable
from ._analysis import stability_function as stability_function
from ._analysis import stability_order as stability_order
from ._analysis import stability_polynomials as stability_polynomials
from ._collocation import gauss as gauss
from ._collocation import lobatto_iiic as lobatto_iiic
from ._collocation import radau_iia as radau_iia
from ._decay import cauchy_bound as cauchy_bound
from ._decay import decay_asymptotics as decay_asymptotics
from ._decay import exact_sensitivity as exact_sensitivity
from ._decay import n_step_sensitivity as n_step_sensitivity
from ._decay import one_step_sensitivity as one_step_sensitivity
from ._decay import sensitivity_ratio as sensitivity_ratio
from ._decay import stability_derivative as stability_derivative
from ._multistep import LinearMultistepMethod as LinearMultistepMethod
from ._multistep import adams_bashforth as adams_bashforth
from ._multistep import adams_moulton as adams_moulton
from ._multistep import bdf as bdf
from ._multistep import rho as rho
from ._multistep import sigma as sigma
from ._multistep_analysis import lmm_a_alpha_angle as a_alpha_angle
from ._multistep_analysis import lmm_boundary_locus as boundary_locus
from ._multistep_analysis import lmm_dominant_root as dominant_root
from ._multistep_analysis import lmm_is_zero_stable as is_zero_stable
from ._multistep_analysis import lmm_root_decay as root_decay
from ._order import order as order
from ._order import stage_order as stage_order
from ._registry import get_scheme as get_scheme
from ._registry import scheme_names as scheme_names
from ._tableau import ButcherTableau as ButcherTableau
from ._tableau import RosenbrockTableau as RosenbrockTableau

__all__ = [
    "get_scheme",
    "scheme_names",
    "ButcherTableau",
    "RosenbrockTableau",
    "LinearMultistepMethod",
    "gauss",
    "radau_iia",
    "lobatto_iiic",
    "bdf",
    "adams_bashforth",
    "adams_moulton",
    "stability_function",
    "stability_polynomials",
    "e_polynomial",
    "is_A_stable",
    "is_L_stable",
    "R_infinity",
    "has_stiff_decay",
    "stability_order",
    "order",
    "stage_order",
    "decay_asymptotics",
    "stability_derivative",
    "one_step_sensitivity",
    "n_step_sensitivity",
    "exact_sensitivity",
    "sensitivity_ratio",
    "cauchy_bound",
    "rho",
    "sigma",
    "is_zero_stable",
    "boundary_locus",
    "a_alpha_angle",
    "dominant_root",
    "root_decay",
]
