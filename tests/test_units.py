"""Units in the model language, on figure axes, and the data-vs-fit panel of the audit report.

* ``[units]`` in a model file and ``Model(..., units=...)``: parsed, validated (unknown names, empty, too long,
  control characters, not a string, the time given twice are errors naming the entry and its line), written
  back by ``dumps_model``; equality and pickling keep them; the compiled-kernel cache key ignores them.
* The built-in Hodgkin–Huxley and calcium-neuron models carry their units, the same as their model files.
* Figures label axes with units (checked on the Matplotlib axes' label text, not on pixels); the data-vs-fit
  panel draws the data and the model, keeps its legend off the axes, and never puts a zero on a log axis.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import symsens
from symsens import Model
from symsens._errors import ModelError
from symsens.model import loads_model
from symsens.model._file import dumps_model
from symsens.plotting._audit import axis_label, data_fit_figure, steps_figure

BASE = """[model]
name = "decay"
t_span = [0.0, 3.0]

[parameters]
k = 0.7
y0 = 2.0

[states]
y = "y0"

[intermediates]
rate = "k*y"

[equations]
y = "-rate"

[outputs]
signal = "10*y"
"""


def with_units(body: str) -> str:
    return BASE + "\n[units]\n" + body + "\n"


def test_units_are_read_checked_and_written_back() -> None:
    model = loads_model(with_units('time = "s"\ny = "mol/L"\nk = "1/s"\nrate = "mol/L/s"\nsignal = "mV"'))
    assert dict(model.units) == {"t": "s", "y": "mol/L", "k": "1/s", "rate": "mol/L/s", "signal": "mV"}
    assert model.label("y") == "y (mol/L)" and model.label("y0") == "y0" and model.unit("t") == "s"
    again = loads_model(dumps_model(model))
    assert again == model and dict(again.units) == dict(model.units)
    assert pickle.loads(pickle.dumps(model)) == model and hash(pickle.loads(pickle.dumps(model))) == hash(model)
    plain = loads_model(BASE)
    assert plain.units == {} and plain != model  # units are part of what a model is...
    assert loads_model(BASE) == plain and hash(loads_model(BASE)) == hash(plain)

    from symsens.codegen._kernels import _compute_model_digest

    assert _compute_model_digest(plain) == _compute_model_digest(model)  # ...but never of its compiled code
    # The time variable by its own name; a state called `time` is a state.
    named = loads_model(BASE.replace('t_span', 'time = "tau"\nt_span') + '\n[units]\ntau = "h"\n')
    assert dict(named.units) == {"tau": "h"}


@pytest.mark.parametrize("body, message", [
    ('yy = "mol"\nkk = "1/s"', r"decay\.toml:2\d: \[units\] names 'yy', 'kk', which are not .* \(did you mean 'y'"),
    ('y = ""', r"\[units\] the unit of 'y' is empty"),
    ('y = " mol"', r"leading or trailing spaces"),
    ('y = "mol\\u0007"', r"control or invisible character U\+0007"),
    ('y = "mol\\nL"', r"U\+000A"),
    (f'y = "{"m" * 33}"', r"33 characters long; a unit has at most 32"),
    ("y = 3", r"the unit of 'y' must be a string, got an integer 3"),
    ('time = "s"\nt = "s"', r"the time variable 't' twice"),
])
def test_bad_units_are_refused_with_file_line_and_name(body: str, message: str) -> None:
    with pytest.raises(ModelError, match=message) as error:
        loads_model(with_units(body), source="decay.toml")
    assert error.value.line is not None and error.value.line > 20


def test_units_given_in_python_are_checked() -> None:
    model = Model(["V"], {"g": 1.0}, ["-g*V"], [1], units={"time": "ms", "V": "mV"})
    assert dict(model.units) == {"t": "ms", "V": "mV"}
    with pytest.raises(ModelError, match=r"unknown name 'Vm' .*did you mean 'V'"):
        Model(["V"], {"g": 1.0}, ["-g*V"], [1], units={"Vm": "mV"})
    with pytest.raises(ModelError, match=r"the unit of 'V' must be a string"):
        Model(["V"], {"g": 1.0}, ["-g*V"], [1], units={"V": 1})
    # with_parameter_values keeps them
    assert dict(model.with_parameter_values({"g": 2.0}).units) == dict(model.units)


def test_builtin_neurons_carry_their_units() -> None:
    for name in ("hodgkin-huxley", "calcium-neuron"):
        builtin = symsens.load_model(name)
        from_file = symsens.load_model(str(Path(__file__).resolve().parent.parent / "examples" / "models" / f"{name}.toml"))
        assert dict(builtin.units) == dict(from_file.units) and builtin.units == from_file.units
        assert builtin.label("t") == "t (ms)" and builtin.label("V") == "V (mV)"
    hh = symsens.load_model("hodgkin-huxley")
    assert hh.unit("g_Na") == "mS/cm^2" and hh.unit("I_ext") == "uA/cm^2" and hh.unit("m") is None
    assert symsens.load_model("calcium-neuron").unit("Ca") == "uM"


def _report(series: dict) -> SimpleNamespace:
    return SimpleNamespace(model_name="m$x", _series={"units": {"t": "ms", "V": "mV", "Ca": "uM"}, "time_name": "t",
                                                     **series})


def test_figures_label_axes_with_units_and_keep_zero_off_log_axes() -> None:
    t = np.linspace(0.0, 10.0, 50)
    t_data = t[::5]
    V, Ca = -60 + 10 * np.sin(t), 1e-3 * np.exp(t)  # Ca spans more than three decades and is positive
    fit = {"names": ("V", "Ca", "n"), "t": t, "t_data": t_data, "source": "observed",
           "model": np.column_stack([V, Ca, np.zeros_like(t)]),
           "data": np.column_stack([V[::5] + 1, Ca[::5] * 1.1, np.zeros_like(t_data)])}
    figure = data_fit_figure(_report({"data_fit": fit}))
    axes = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_xlabel() for ax in axes] == ["t (ms)"] * 3
    assert [ax.get_ylabel() for ax in axes] == ["V (mV)", "Ca (uM)", "n"]
    assert [ax.get_yscale() for ax in axes] == ["linear", "log", "linear"]  # V < 0, n == 0: linear
    assert all(ax.get_legend() is None for ax in axes) and len(figure.legends) == 1  # legend off the data
    assert np.array_equal(axes[1].lines[1].get_xdata(), t_data)
    assert "m\\$x" in figure._suptitle.get_text()  # a `$` in a name is shown, not read as mathematical text
    assert data_fit_figure(_report({})) is None

    steps = {"scheme": "tsit5", "rtol": 1e-3, "nominal": np.array([0.0, 1.0, 3.0]),
             "discrete-tangent-norm": np.array([0.0, 0.5, 1.5, 3.0])}
    ax = steps_figure(_report({"steps": [steps]})).axes[0]
    assert ax.get_xlabel() == "t (ms)" and ax.get_ylabel() == "step size h (ms)"
    assert axis_label("x", None) == "x" and axis_label("cost", "$") == "cost (\\$)"


def test_audit_report_embeds_the_data_vs_fit_panel(tmp_path: Path) -> None:
    from symsens.audit import audit

    model = Model(["y"], {"k": 0.7, "y0": 2.0}, ["-k*y"], ["y0"], t_span=(0.0, 3.0), name="decay",
                  units={"time": "s", "y": "mol/L"})
    report = audit(model, schemes=["tsit5"], tolerances=[1e-8], methods=["forward"])  # the default fit
    fit = report._series["data_fit"]
    # The data are the exact solution at k, y0 x 1.05; the drawn model is the solve at the audited point.
    np.testing.assert_allclose(fit["data"][:, 0], 2.1 * np.exp(-0.735 * fit["t_data"]), rtol=1e-8)
    np.testing.assert_allclose(fit["model"][:, 0], 2.0 * np.exp(-0.7 * fit["t"]), rtol=1e-6)
    written = report.write(tmp_path)
    assert Path(written["data_fit"]).name == "data_fit.png" and Path(written["data_fit"]).stat().st_size > 1000
    html = Path(written["html"]).read_text(encoding="utf-8")
    assert re.search(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}" data-file="data_fit.png"', html)
    assert "data_fit.png" in Path(written["markdown"]).read_text(encoding="utf-8")
    from symsens.plotting._audit import audit_figures

    figure = audit_figures(report)["data_fit"]
    assert figure.axes[0].get_xlabel() == "t (s)" and figure.axes[0].get_ylabel() == "y (mol/L)"


def test_solution_figure_labels_time_and_states_with_units() -> None:
    from sympy import Rational as R

    from symsens.plotting import solution_figure

    model = Model(["V", "n"], {"g": 1.0}, ["-g*V", "-n"], [1, R("0.01")], t_span=(0.0, 1.0), name="two",
                  units={"time": "ms", "V": "mV"})
    solution = symsens.solve(model, (0.0, 1.0), method="dopri5", backend="numpy")
    ax = solution_figure(solution, units=model.units, time_name=model.time.name).axes[0]
    assert ax.get_xlabel() == "t (ms)"
    # V is 100 times n's range: n is drawn on a second axis, V (with its unit) on the first
    assert [line.get_label() for line in ax.lines] == ["V (mV)"] and ax.get_ylabel() == "V (mV)"
    assert solution_figure(solution).axes[0].get_xlabel() == "t"
