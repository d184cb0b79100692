"""mpmath's working precision, changed safely from several threads.

mpmath keeps its precision in one process-wide context (``mpmath.mp``): ``mpmath.workdps`` in one thread changes
the precision another thread is computing at, and restores it under that thread's feet (a polynomial root finder
that started at 140 digits finishes at 15 and does not converge).  Every precision change in symsens goes through
:func:`mpmath_precision`, which holds one re-entrant lock for the duration.  mpmath computes in Python under the
GIL, so serialising these sections costs no parallelism; compiled solves, which release the GIL, are unaffected.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import mpmath

__all__ = ["mpmath_precision"]

_LOCK = threading.RLock()


@contextmanager
def mpmath_precision(*, dps: int | None = None, prec: int | None = None) -> Iterator[None]:
    """Hold the process-wide mpmath lock and work at ``dps`` decimal digits or ``prec`` bits (give one, or
    neither to hold the lock at the current precision); nested uses in one thread are allowed."""
    if dps is not None and prec is not None:
        raise ValueError("give `dps` or `prec`, not both")
    with _LOCK:
        if dps is not None:
            with mpmath.workdps(dps):
                yield
        elif prec is not None:
            with mpmath.workprec(prec):
                yield
        else:
            yield
