"""A thread-safe memoising decorator: each key is computed once, by one thread, while the others wait.

``functools.lru_cache`` is safe to *call* from several threads, but it does not stop them from computing the
same value at the same time: every thread that misses runs the function.  That is wasteful for expensive
values and wrong for functions that touch state which is not thread-safe (SymPy fills several tables lazily,
e.g. ``factorial._small_factorials``, and a second thread can read a half-filled table).  :func:`cached_once`
guarantees that for a given key the function body runs in one thread at a time and, once it has returned, never
again (until ``cache_clear``); other threads asking for the same key wait for that result.  Different keys are
computed concurrently.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple, TypeVar

__all__ = ["cached_once", "CacheInfo"]

F = TypeVar("F", bound=Callable[..., Any])


class CacheInfo(NamedTuple):
    hits: int
    misses: int
    maxsize: int | None
    currsize: int


_MARK = object()  # separates positional from keyword arguments in a key


def _make_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
    if not kwargs:
        return args if len(args) != 1 else (args[0],)
    return (*args, _MARK, *sorted(kwargs.items()))


def cached_once(maxsize: int | None = None) -> Callable[[F], F]:
    """Memoise a function of hashable arguments, computing each key exactly once even under threads.

    Guarantees
    ----------
    * For one key, the wrapped function runs in at most one thread at a time; threads that ask for a key
      being computed wait for that computation and get its result (they do not recompute it).
    * A result, once computed, is returned by every later call with the same key until it is evicted
      (``maxsize`` least recently used entries are kept; ``None`` keeps all) or ``cache_clear()`` is called.
    * An exception is not cached: it propagates to the thread that computed, and a waiting thread retries
      the computation itself.
    * Calls with different keys do not wait for each other (apart from a short bookkeeping lock).

    The wrapper has ``cache_clear()`` and ``cache_info()`` like ``functools.lru_cache``.  A call with the same
    key from inside the function itself (recursion) raises ``RuntimeError`` instead of deadlocking.
    """
    if maxsize is not None and maxsize < 1:
        raise ValueError(f"cached_once: maxsize must be None or at least 1, got {maxsize}")

    def decorate(function: F) -> F:
        results: OrderedDict[Hashable, Any] = OrderedDict()
        locks: dict[Hashable, threading.RLock] = {}
        guard = threading.Lock()  # protects `results`, `locks` and the counters; never held while computing
        stats = {"hits": 0, "misses": 0}

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = _make_key(args, kwargs)
            with guard:
                if key in results:
                    results.move_to_end(key)
                    stats["hits"] += 1
                    return results[key]
                lock = locks.setdefault(key, threading.RLock())
            with lock:
                with guard:  # computed by another thread while this one waited for the key's lock
                    if key in results:
                        results.move_to_end(key)
                        stats["hits"] += 1
                        return results[key]
                if getattr(_computing, "keys", None) is None:
                    _computing.keys = set()
                marker = (id(wrapper), key)
                if marker in _computing.keys:
                    raise RuntimeError(f"{function.__qualname__} called itself with the same arguments {key!r}")
                _computing.keys.add(marker)
                try:
                    value = function(*args, **kwargs)
                finally:
                    _computing.keys.discard(marker)
                with guard:
                    stats["misses"] += 1
                    results[key] = value
                    results.move_to_end(key)
                    if maxsize is not None:
                        while len(results) > maxsize:
                            results.popitem(last=False)
                    locks.pop(key, None)  # later callers find the result; a new lock is made after an eviction
                return value

        def cache_clear() -> None:
            with guard:
                results.clear()
                stats["hits"] = stats["misses"] = 0

        def cache_info() -> CacheInfo:
            with guard:
                return CacheInfo(stats["hits"], stats["misses"], maxsize, len(results))

        wrapper.cache_clear = cache_clear  # type: ignore[attr-defined]
        wrapper.cache_info = cache_info  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


_computing = threading.local()  # (wrapper, key) pairs being computed by the current thread
