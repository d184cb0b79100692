"""Vanishing and exploding gradients in stiff solvers: the Fronk–Petzold result reproduced, measured, extended.

* :func:`sweep`, :func:`measure`, :func:`closed_form`, :func:`exact` — the test equation ``y' = λ y``: measured
  sensitivities of the real integrators beside the closed forms and the exact ``t e^{λt}``;
* :func:`exponent_table` — fitted decay exponents of ``R'``, ``z R'`` and of the BDF dominant root;
* :func:`explicit_boundary` — amplification by explicit schemes at their stability boundary;
* :func:`diagnose` — a gradient of a user's model: local stiffness, predicted and measured attenuation;
* :func:`run_vanishing` — all of the test-equation study (what ``symsens vanishing`` runs);
* :func:`neural_gradient_study`, :func:`fit_study`, :func:`remedy_table` — the stiff neural ODE experiments
  (gradient error per scheme and stiffness; a two-parameter fit per gradient source; the remedies);
* :func:`reference_sensitivities` — the reference gradient (``symsens.reference`` or the documented stand-in).
"""

from ._diagnose import Diagnosis as Diagnosis
from ._diagnose import diagnose as diagnose
from ._explicit import explicit_boundary as explicit_boundary
from ._explicit import stability_boundary as stability_boundary
from ._fit import exponent_table as exponent_table
from ._fit import fit_exponent as fit_exponent
from ._reference import reference_sensitivities as reference_sensitivities
from ._reference import reference_source as reference_source
from ._report import VanishingReport as VanishingReport
from ._report import run_vanishing as run_vanishing
from ._testeq import SweepResult as SweepResult
from ._testeq import closed_form as closed_form
from ._testeq import exact as exact
from ._testeq import measure as measure
from ._testeq import sweep as sweep
from ._neuralfit import FitStudy as FitStudy
from ._neuralfit import fit_study as fit_study
from ._neural import neural_gradient_study as neural_gradient_study
from ._neural import remedy_table as remedy_table

__all__ = [
    "sweep", "measure", "closed_form", "exact", "SweepResult", "exponent_table", "fit_exponent",
    "explicit_boundary", "stability_boundary", "diagnose", "Diagnosis", "run_vanishing", "VanishingReport",
    "reference_sensitivities", "reference_source", "neural_gradient_study", "fit_study", "remedy_table",
    "FitStudy",
]
