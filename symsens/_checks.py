"""Argument checks shared by the public entry points (solve, reference, audit): one wording for one mistake."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "time_span", "output_times", "STATUS_NAMES", "positive_number", "optional_positive_number", "step_count",
    "flag", "finite_vector", "parameter_values", "parameter_selection", "MAX_STEPS_LIMIT",
]

#: Status codes of the compiled integrators (symsens_solver.hpp's Status) and their names.
STATUS_NAMES: dict[int, str] = {
    0: "success",
    1: "step size underflow",
    2: "newton failure",
    3: "non-finite values",
    4: "too many steps",
    5: "bad input",
    6: "time budget exhausted",
}


def time_span(t_span: Any, default: tuple[float, float] | None) -> tuple[float, float]:
    """``t_span`` (or ``default``, a model's own span, when it is None) as two finite floats with t0 < t1."""
    if t_span is None:
        if default is None:
            raise ValueError("`t_span` is required: the model has no default time span")
        t_span = default
    try:
        if len(t_span) != 2:
            raise TypeError
        t0, t1 = float(t_span[0]), float(t_span[1])
    except (TypeError, ValueError):
        raise ValueError(f"`t_span` must be a pair (t0, t1), got {t_span!r}") from None
    if not (np.isfinite(t0) and np.isfinite(t1) and t1 > t0):
        raise ValueError(f"`t_span` must be two finite times with t0 < t1, got {t_span!r}")
    return t0, t1


def output_times(values: Any, name: str, t0: float | None = None, t1: float | None = None) -> np.ndarray:
    """``values`` as a 1-D float array of non-decreasing finite times, inside [t0, t1] when those are given.

    A single number is one time; an array of two or more dimensions is refused, not flattened.  Raises
    TypeError (not numbers) or ValueError (shape, order, range) naming the argument ``name`` and the problem.
    """
    if values is None or isinstance(values, (str, bytes)):
        raise TypeError(f"`{name}` must be a sequence of times, got {type(values).__name__} {values!r}")
    try:
        times = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a sequence of times (numbers), got {values!r}") from None
    if times.ndim > 1:
        # A (K, 1) or (1, K) array is not flattened silently: its shape says something else was meant.
        raise ValueError(f"`{name}` must be a 1-D sequence of times, got an array of shape {times.shape}")
    times = times.ravel()
    if times.size == 0:
        raise ValueError(f"`{name}` is empty")
    if not np.all(np.isfinite(times)):
        raise ValueError(f"`{name}` contains non-finite times")
    if np.any(np.diff(times) < 0):
        raise ValueError(f"`{name}` must be non-decreasing")
    if t0 is not None and t1 is not None and (times[0] < t0 or times[-1] > t1):
        raise ValueError(f"`{name}` must lie inside t_span [{t0}, {t1}], got [{times[0]}, {times[-1]}]")
    return times


#: The largest ``max_steps`` accepted: a C ``long`` must hold it plus one.
MAX_STEPS_LIMIT = 2**62


def _type_name(value: Any) -> str:
    return type(value).__name__


def _is_real_number(value: Any) -> bool:
    """A real number (anything ``float()`` takes: int, float, NumPy scalars, Fraction, Decimal, SymPy numbers)
    that is not a bool, a string or a container (True as a tolerance, "1e-6" or [1e-6] are mistakes)."""
    if value is None or isinstance(value, (bool, np.bool_, str, bytes, Sequence, Mapping, np.ndarray)):
        return False
    try:
        float(value)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def positive_number(value: Any, name: str) -> float:
    """``value`` as a positive finite float.

    TypeError when it is not a real number (None, a string, a bool, a sequence), ValueError when it is nan, inf,
    zero or negative; both name the argument.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes)):
        raise TypeError(f"`{name}` must be a single number, the same for every state (per-state values are not "
                        f"supported), got a sequence of length {len(value)}")
    if not _is_real_number(value):
        raise TypeError(f"`{name}` must be a positive finite number, got {_type_name(value)} {value!r}")
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"`{name}` must be a positive finite number, got {value!r}")
    return number


def optional_positive_number(value: Any, name: str) -> float | None:
    """None, or ``value`` as a positive finite float (see :func:`positive_number`)."""
    return None if value is None else positive_number(value, name)


def step_count(value: Any, name: str = "max_steps") -> int:
    """``value`` as an int in ``1 .. MAX_STEPS_LIMIT``; a whole float (``1e5``) is accepted, ``2.5`` is not.

    TypeError for a non-number (a string, a bool, None), ValueError for nan, a fraction or a count out of range.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if not _is_real_number(value):
        raise TypeError(f"`{name}` must be a whole number of steps, got {_type_name(value)} {value!r}")
    if not isinstance(value, (int, np.integer)):
        number = float(value)
        if not math.isfinite(number) or not number.is_integer():
            raise ValueError(f"`{name}` must be a whole number of steps, got {value!r}")
        value = int(number)
    count = int(value)
    if not 1 <= count <= MAX_STEPS_LIMIT:
        raise ValueError(f"`{name}` must be between 1 and 2**62, got {count}")
    return count


def flag(value: Any, name: str) -> bool:
    """``value`` as a bool; TypeError for anything but True/False (a string "no" would otherwise be true)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False, got {_type_name(value)} {value!r}")
    return bool(value)


def finite_vector(values: Any, length: int, name: str) -> np.ndarray:
    """``values`` as a float array of shape ``(length,)`` with every entry a finite real number.

    TypeError for entries that are not numbers (strings, None), ValueError for a wrong shape or a non-finite
    entry; both name the argument (and the index).
    """
    if isinstance(values, (str, bytes)) or values is None or isinstance(values, (Mapping, set)):
        raise TypeError(f"`{name}` must be a sequence of {length} numbers, got {_type_name(values)} {values!r}")
    raw = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    if raw.dtype == object or raw.dtype.kind in "USVb":
        for index, entry in enumerate(np.ravel(raw)):
            if not _is_real_number(entry):
                raise TypeError(f"`{name}` must contain numbers, got {_type_name(entry)} {entry!r} at index {index}")
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a sequence of {length} numbers, got {values!r}") from None
    if array.shape != (length,):
        raise ValueError(f"`{name}` must have length {length}, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        bad = int(np.flatnonzero(~np.isfinite(array))[0])
        raise ValueError(f"`{name}` contains a non-finite value ({array[bad]}) at index {bad}")
    return array


def parameter_values(model: Any, p: Any) -> np.ndarray:
    """All parameter values of ``model`` as floats: its nominal values (``p`` None), ``p`` itself (one finite
    number per parameter, in the model's order), or the nominal values updated by a ``{name: value}`` mapping.
    """
    names = tuple(model.parameter_names)
    if p is None:
        return np.array(model.parameter_values, dtype=float)
    if isinstance(p, Mapping):
        values = np.array(model.parameter_values, dtype=float)
        for key, value in p.items():
            if key not in names:
                raise ValueError(f"`p`: unknown parameter {key!r}{_did_you_mean(key, names)}")
            if not _is_real_number(value):
                raise TypeError(
                    f"`p`: the value of parameter {key!r} must be a number, got {_type_name(value)} {value!r}"
                )
            if not math.isfinite(float(value)):
                raise ValueError(f"`p`: parameter {key!r} is not finite ({value!r})")
            values[names.index(key)] = float(value)
        return values
    return finite_vector(p, len(names), "p")


def parameter_selection(model: Any, parameters: Any) -> tuple[str, ...]:
    """The names in ``parameters`` (all of the model's when None), each a parameter of ``model``, none twice."""
    if parameters is None:
        return tuple(model.parameter_names)
    if isinstance(parameters, str):
        raise ValueError("`parameters` must be a sequence of parameter names, not a string")
    try:
        chosen = tuple(parameters)
    except TypeError:
        raise TypeError(f"`parameters` must be a sequence of parameter names, got {_type_name(parameters)}") from None
    for name in chosen:
        if name not in model.parameter_names:
            raise ValueError(f"`parameters`: unknown parameter {name!r}{_did_you_mean(name, model.parameter_names)}")
    if len(set(chosen)) != len(chosen):
        raise ValueError("`parameters` lists a parameter twice")
    return chosen


def _did_you_mean(name: Any, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(name), list(known), n=3)
    return f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
