"""A model-level index in front of the library cache, and a per-model-object memo of loaded libraries.

The small generated libraries of a model (its transposed products, :mod:`symsens.codegen._vjp`; its second-order
kernels, :mod:`symsens.codegen._second_order`) are content-keyed by their C++ text, which takes SymPy to write.
An index entry ``<cache root>/<folder>/<fingerprint>.json`` (``fingerprint``: the model's and the parameter
selection's, :func:`symsens.codegen._kernels.model_fingerprint`) records which library was built for the model, with
its SHA-256, so that a later process loads it without running SymPy.  Each kind of library has its own folder.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Generic, TypeVar

from ..model._model import Model
from ._build import _read_roots, _suppress_os_error, _write_atomically, library_intact, library_sha256

__all__ = ["read_index", "write_index", "PerModel"]

_INDEX_FORMAT = 1


def _index_path(root: Path, folder: str, fingerprint: str) -> Path:
    return root / folder / f"{fingerprint}.json"


def read_index(folder: str, fingerprint: str, fields: tuple[str, ...] = ()) -> tuple[Path, dict[str, int]] | None:
    """The library recorded under ``folder`` for ``fingerprint`` if it is intact (its SHA-256 checked), with the
    integer ``fields`` recorded beside it; None when no cache root holds a usable entry."""
    for root in _read_roots():
        try:
            entry = json.loads(_index_path(root, folder, fingerprint).read_text())
            if not isinstance(entry, dict) or entry.get("format") != _INDEX_FORMAT:
                continue
            relative = Path(entry["library"])
            if relative.is_absolute() or ".." in relative.parts:
                continue
            path = root / relative
            if library_intact(path, str(entry["sha256"])):
                return path, {key: int(entry[key]) for key in fields}
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def write_index(folder: str, fingerprint: str, path: Path, fields: Mapping[str, int] | None = None) -> None:
    """Record the library ``path`` (``<root>/<shard>/<key>.so`` of the cache) for ``fingerprint`` under ``folder``,
    with ``fields``; an unwritable cache only costs the index (the next process regenerates the source)."""
    root = path.parent.parent
    entry = {"format": _INDEX_FORMAT, "library": path.relative_to(root).as_posix(), "sha256": library_sha256(path),
             **(fields or {})}
    target = _index_path(root, folder, fingerprint)
    with _suppress_os_error():
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(target, json.dumps(entry))


T = TypeVar("T")


class PerModel(Generic[T]):
    """``load(model, parameters)`` remembered per model object: a repeated call with the same model costs a
    dictionary lookup.  ``load``'s own cache is keyed by the model's value, whose hash walks every expression
    (milliseconds for a model with a thousand parameters, more than a compiled sweep itself); an entry is dropped
    when its model is collected."""

    def __init__(self, load: Callable[[Model, tuple[str, ...]], T]) -> None:
        self._load = load
        self._entries: dict[tuple[int, tuple[str, ...]], tuple[weakref.ref[Model], T]] = {}
        self._lock = threading.Lock()

    def __call__(self, model: Model, parameters: tuple[str, ...]) -> T:
        parameters = tuple(parameters)
        key = (id(model), parameters)
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and hit[0]() is model:
            return hit[1]
        value = self._load(model, parameters)

        def forget(_: object) -> None:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and entry[0]() is None:
                    del self._entries[key]

        with self._lock:
            self._entries[key] = (weakref.ref(model, forget), value)
        return value
