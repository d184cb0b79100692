"""A model's summary: everything a solve with cached compiled libraries needs to know of a model, as plain data.

A :class:`ModelSummary` holds the names, nominal values, time span and units of a model and the three facts of
its equations that the compiled-library cache keys are made of (:func:`symsens.codegen._kernels.model_facts`):
the SHA-256 of its canonical equations, whether it is autonomous and the size of its right-hand side.  It is
written to the disk cache, keyed by the exact text the model was loaded from, by the first process that computes
those facts; a later process loading the same text gets a model that answers every question of the solve path
from the summary and builds its SymPy expressions only when something asks for them (:class:`symsens.Model`,
"A model made from its summary").  No SymPy here: this module is what makes that possible.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ModelSummary", "ModelOrigin"]

_FORMAT = 1


@dataclass(frozen=True)
class ModelOrigin:
    """Where a model was loaded from, for building its expressions later and for recognising equal models.

    ``kind`` is ``"toml"`` or ``"sbml"`` (``text`` is the file's text, ``source`` its path for messages) or
    ``"builtin"`` (``text`` is the registry name); ``key`` is the SHA-256 of the kind, the text and the code
    that reads it (:func:`symsens.codegen._summaries.summary_key`): two models with the same key have the same
    equations.  ``parameter_values`` are the nominal values the text gives (a model's values can be replaced,
    :meth:`symsens.model.Model.with_parameter_values`; its summary keeps the text's)."""

    kind: str
    text: str
    source: str
    key: str
    parameter_values: tuple[float, ...]


@dataclass(frozen=True)
class ModelSummary:
    """The plain data of a model (see the module docstring); built from a model and its facts or read back
    from its JSON text, never half-valid: :meth:`from_json` returns None for anything malformed."""

    name: str
    description: str
    time: str
    states: tuple[str, ...]
    parameters: tuple[str, ...]
    parameter_values: tuple[float, ...]
    intermediates: tuple[str, ...]
    outputs: tuple[str, ...]
    t_span: tuple[float, float] | None
    units: tuple[tuple[str, str], ...]
    digest: str
    autonomous: bool
    rhs_nodes: int

    @classmethod
    def of(cls, model: Any, facts: Any, parameter_values: tuple[float, ...]) -> ModelSummary:
        """The summary of a built ``model`` with its ``facts`` (:class:`symsens.codegen._kernels.ModelFacts`) and
        the nominal ``parameter_values`` its text gives."""
        return cls(
            name=model.name, description=model.description, time=model.time.name, states=model.state_names,
            parameters=model.parameter_names, parameter_values=tuple(parameter_values),
            intermediates=tuple(symbol.name for symbol, _ in model.intermediates), outputs=model.output_names,
            t_span=model.t_span, units=tuple(model.units.items()), digest=facts.digest,
            autonomous=facts.autonomous, rhs_nodes=facts.rhs_nodes,
        )

    def to_json(self) -> str:
        """The summary as JSON with a SHA-256 of its own content, so a damaged file is noticed."""
        payload = asdict(self)
        body = json.dumps(payload, sort_keys=True, ensure_ascii=True)
        return json.dumps({"format": _FORMAT, "summary": payload,
                           "sha256": hashlib.sha256(body.encode()).hexdigest()}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelSummary | None:
        """The summary written by :meth:`to_json`, or None when the text is not one (another format, a
        checksum that does not match, a field of the wrong type)."""
        try:
            entry = json.loads(text)
            if not isinstance(entry, dict) or entry.get("format") != _FORMAT:
                return None
            payload = entry["summary"]
            body = json.dumps(payload, sort_keys=True, ensure_ascii=True)
            if hashlib.sha256(body.encode()).hexdigest() != entry["sha256"]:
                return None
            return cls._checked(payload)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return None

    @classmethod
    def _checked(cls, payload: dict[str, Any]) -> ModelSummary | None:
        def names(value: Any) -> tuple[str, ...]:
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise TypeError("a list of names")
            return tuple(value)

        def real(value: Any) -> float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise TypeError("a finite number")
            return float(value)

        if set(payload) != set(cls.__dataclass_fields__):
            return None
        strings = ("name", "description", "time", "digest")
        if not all(isinstance(payload[key], str) for key in strings):
            return None
        values = tuple(real(v) for v in payload["parameter_values"])
        parameters = names(payload["parameters"])
        span = payload["t_span"]
        if span is not None and (not isinstance(span, list) or len(span) != 2):
            return None
        t_span = None if span is None else (real(span[0]), real(span[1]))
        units = tuple((str(k), str(v)) for k, v in payload["units"] if isinstance(k, str) and isinstance(v, str))
        if len(units) != len(payload["units"]) or not isinstance(payload["autonomous"], bool):
            return None
        nodes = payload["rhs_nodes"]
        if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 0 or len(values) != len(parameters):
            return None
        states = names(payload["states"])
        if not states:
            return None
        return cls(name=payload["name"], description=payload["description"], time=payload["time"], states=states,
                   parameters=parameters, parameter_values=values, intermediates=names(payload["intermediates"]),
                   outputs=names(payload["outputs"]), t_span=t_span, units=units, digest=payload["digest"],
                   autonomous=payload["autonomous"], rhs_nodes=nodes)
