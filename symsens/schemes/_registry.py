"""The catalogue: scheme names mapped lazily to their constructors.

Names are lower case with hyphens; collocation families count stages, not order (``radau-iia-3`` has
order 5).  Besides the fixed names listed by :func:`scheme_names`, three generated families are understood
for any stage count ``S``: ``gauss-S`` (S >= 1), ``radau-iia-S`` (S >= 1) and ``lobatto-iiic-S`` (S >= 2).
Multistep names (``bdfK``, ``abK``, ``amK``) are delegated to :mod:`symsens.schemes._multistep`, imported
only when such a name is asked for.

Construction is lazy (nothing is built at import) and cached: ``get_scheme(name) is get_scheme(name)``.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import re
from collections.abc import Callable
from typing import Any

from .._once import cached_once
from .._errors import SchemeError

__all__ = ["get_scheme", "scheme_names"]

# name -> (module, constructor, positional arguments); modules are imported on first use.
_FIXED: dict[str, tuple[str, str, tuple[int, ...]]] = {
    # explicit Runge-Kutta
    "euler": ("_explicit", "euler", ()),
    "heun": ("_explicit", "heun", ()),
    "rk4": ("_explicit", "rk4", ()),
    "bs3": ("_explicit", "bogacki_shampine3", ()),
    "dopri5": ("_explicit", "dormand_prince5", ()),
    "tsit5": ("_explicit", "tsitouras5", ()),
    "verner6": ("_explicit", "verner6", ()),
    "verner7": ("_explicit", "verner7", ()),
    # implicit Runge-Kutta
    "backward-euler": ("_implicit", "backward_euler", ()),
    "implicit-midpoint": ("_implicit", "implicit_midpoint", ()),
    "trapezoid": ("_implicit", "trapezoid", ()),
    "gauss-2": ("_collocation", "gauss", (2,)),
    "gauss-3": ("_collocation", "gauss", (3,)),
    "radau-iia-2": ("_collocation", "radau_iia", (2,)),
    "radau-iia-3": ("_collocation", "radau_iia", (3,)),
    "lobatto-iiic-2": ("_collocation", "lobatto_iiic", (2,)),
    "lobatto-iiic-3": ("_collocation", "lobatto_iiic", (3,)),
    "sdirk2": ("_implicit", "sdirk2", ()),
    "sdirk3-alexander": ("_implicit", "sdirk3_alexander", ()),
    "sdirk4": ("_implicit", "sdirk4", ()),
    "tr-bdf2": ("_implicit", "tr_bdf2", ()),
    "kvaerno3": ("_implicit", "kvaerno3", ()),
    "kvaerno4": ("_implicit", "kvaerno4", ()),
    "kvaerno5": ("_implicit", "kvaerno5", ()),
    # Rosenbrock
    "ros2": ("_rosenbrock", "ros2", ()),
    "ros3p": ("_rosenbrock", "ros3p", ()),
    "rodas3": ("_rosenbrock", "rodas3", ()),
    "rodas4": ("_rosenbrock", "rodas4", ()),
    "rodas5p": ("_rosenbrock", "rodas5p", ()),
}

# Exponential Rosenbrock methods (R(z) = exp(z), outside the rational analysis): reachable by name, not listed
# by scheme_names().
_EXPONENTIAL: dict[str, tuple[str, str, tuple[int, ...]]] = {
    "exprb-euler": ("_exponential", "exprb_euler", ()),
    "exprb32": ("_exponential", "exprb32", ()),
}

# Multistep catalogue: prefix -> (constructor in _multistep, listed step counts).
_MULTISTEP: dict[str, tuple[str, range]] = {
    "bdf": ("bdf", range(1, 7)),
    "ab": ("adams_bashforth", range(1, 5)),
    "am": ("adams_moulton", range(1, 5)),
}

# Generated one-step families: name prefix -> (constructor in _collocation, smallest stage count).
_FAMILIES: dict[str, tuple[str, int]] = {
    "gauss": ("gauss", 1),
    "radau-iia": ("radau_iia", 1),
    "lobatto-iiic": ("lobatto_iiic", 2),
}

_FAMILY_RE = re.compile(r"^(gauss|radau-iia|lobatto-iiic)-(\d+)$")
_MULTISTEP_RE = re.compile(r"^(bdf|ab|am)(\d+)$")


def scheme_names() -> tuple[str, ...]:
    """The named catalogue, in order: explicit RK, implicit RK, Rosenbrock, multistep.

    Generated families (``gauss-S``, ``radau-iia-S``, ``lobatto-iiic-S``) accept further stage counts.
    """
    multistep = tuple(f"{prefix}{k}" for prefix, (_, ks) in _MULTISTEP.items() for k in ks)
    return tuple(_FIXED) + multistep


def _call(module: str, constructor: str, *args: int) -> Any:
    function: Callable[..., Any] = getattr(importlib.import_module(f"{__package__}.{module}"), constructor)
    return function(*args)


def _unknown(name: str) -> SchemeError:
    candidates = list(scheme_names()) + [f"{prefix}-S" for prefix in _FAMILIES]
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return SchemeError(
        f"unknown scheme {name!r}{hint} (see symsens.schemes.scheme_names(); generated families: "
        "gauss-S, radau-iia-S for S >= 1, lobatto-iiic-S for S >= 2)"
    )


@cached_once()
def _build(name: str) -> Any:
    if name in _FIXED:
        module, constructor, args = _FIXED[name]
        return _call(module, constructor, *args)
    if name in _EXPONENTIAL:
        module, constructor, args = _EXPONENTIAL[name]
        return _call(module, constructor, *args)
    match = _FAMILY_RE.match(name)
    if match:
        prefix, stages = match.group(1), int(match.group(2))
        constructor, minimum = _FAMILIES[prefix]
        if stages < minimum:
            raise SchemeError(f"scheme {name!r}: {prefix} needs at least {minimum} stage(s), got {stages}")
        return _call("_collocation", constructor, stages)
    match = _MULTISTEP_RE.match(name)
    if match:
        prefix, steps = match.group(1), int(match.group(2))
        constructor, _ = _MULTISTEP[prefix]
        try:
            module = importlib.import_module(f"{__package__}._multistep")
        except ImportError as error:  # the multistep module is written separately
            raise SchemeError(f"scheme {name!r}: linear multistep methods are unavailable ({error})") from error
        return getattr(module, constructor)(steps)
    raise _unknown(name)


def get_scheme(name: str) -> Any:
    """The scheme object called ``name`` (case and surrounding blanks ignored).

    Returns a :class:`~symsens.schemes._tableau.ButcherTableau`, a
    :class:`~symsens.schemes._tableau.RosenbrockTableau` or a linear multistep method.  Raises
    :class:`~symsens._errors.SchemeError` for unknown names, listing the close matches.
    """
    if not isinstance(name, str):
        raise SchemeError(f"scheme name must be a string, got {type(name).__name__}")
    return _build(name.strip().lower())
