"""The audit's reference is cached on disk by content.

* A second audit of the same model, loss and point reads the cache: the reference function is not called
  (counted, not timed), and every number of the report equals the fresh one bit for bit.
* A changed parameter point, loss grid, number of digits or model equation is a miss.
* A corrupted, truncated or foreign entry is ignored and recomputed; an unverified run is never stored; writers
  racing on one key leave a readable entry.
* The cached gradient is the closed form: for ``y' = -k y``, ``y(0) = y0`` fitted to its own trajectory at
  other parameters, ``dL/dk = sum_i 2 (y(t_i) - d_i) (-t_i y(t_i))``, ``dL/dy0 = sum_i 2 (y(t_i) - d_i) e^{-k t_i}``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from symsens import Model
from symsens.audit import TrajectoryLoss, audit
from symsens.audit import _reference, _reference_cache

K, Y0 = 0.7, 2.0
GRID = (0.5, 1.0, 2.0, 3.0)
OPTIONS: dict[str, Any] = dict(schemes=["tsit5"], tolerances=[1e-8], methods=["forward"], reference_digits=8)


def decay() -> Model:
    return Model(["y"], {"k": K, "y0": Y0}, ["-k*y"], ["y0"], t_span=(0.0, 3.0), name="decay")


def fit(k_data: float = 0.8) -> TrajectoryLoss:
    return TrajectoryLoss(grid=GRID, data_parameters={"k": k_data})


@pytest.fixture()
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """A private reference cache, and a record of every real reference run."""
    monkeypatch.setattr(_reference_cache, "reference_cache_directory", lambda: tmp_path / "references")
    record: list[tuple[Any, ...]] = []
    real = _reference._run_reference

    def counted(*args: Any) -> Any:
        record.append(args)
        return real(*args)

    monkeypatch.setattr(_reference, "_run_reference", counted)
    return record


def _same_report(a: Any, b: Any) -> None:
    assert np.array_equal(a.reference_gradient, b.reference_gradient)
    assert np.array_equal(a.reference_digits, b.reference_digits)
    assert a.loss_at_nominal == b.loss_at_nominal and a.reference_verified == b.reference_verified
    for row_a, row_b in zip(a.results, b.results, strict=True):
        assert row_a["digits"] == row_b["digits"] and row_a["relative_error"] == row_b["relative_error"]
    assert np.array_equal(a._references[0].error_bound, b._references[0].error_bound)


def test_second_audit_reads_the_cache_and_equals_the_fresh_one(calls: list[tuple[Any, ...]], tmp_path: Path) -> None:
    model = decay()
    first = audit(model, fit(), **OPTIONS)
    assert len(calls) == 2  # the loss's reference at p and the data's at the data parameters
    assert len(list((tmp_path / "references").glob("*.npz"))) == 2
    second = audit(model, fit(), **OPTIONS)
    assert len(calls) == 2, "the second audit recomputed the reference"
    assert "read from the reference cache" in second.reference_how
    _same_report(first, second)
    fresh = audit(model, fit(), use_cache=False, **OPTIONS)
    assert len(calls) == 4
    _same_report(fresh, second)

    # Independent: the closed form of the exact solution.
    t = np.array(GRID)
    y, data = Y0 * np.exp(-K * t), Y0 * np.exp(-0.8 * t)
    exact = np.array([np.sum(2 * (y - data) * (-t * y)), np.sum(2 * (y - data) * np.exp(-K * t))])
    np.testing.assert_allclose(second.reference_gradient, exact, rtol=1e-7)
    assert second.loss_at_nominal == pytest.approx(float(np.sum((y - data) ** 2)), rel=1e-7)


def test_changed_point_loss_digits_or_model_misses(calls: list[tuple[Any, ...]]) -> None:
    model = decay()
    audit(model, fit(), **OPTIONS)
    assert len(calls) == 2
    audit(model, fit(), p={"k": 0.75}, **OPTIONS)  # another point misses; the data (made at k = 0.8) hit
    assert len(calls) == 3 and calls[-1][2][0] == 0.75
    audit(model, fit(0.9), **OPTIONS)  # other data parameters: the run at p hits, the data run misses
    assert len(calls) == 4 and calls[-1][2][0] == 0.9
    audit(model, TrajectoryLoss(grid=GRID[:-1], data_parameters={"k": 0.8}), **OPTIONS)  # another grid
    assert len(calls) == 6
    audit(model, fit(), **{**OPTIONS, "reference_digits": 9})
    assert len(calls) == 8
    other = Model(["y"], {"k": K, "y0": Y0}, ["-k*y + 0*k"], ["y0"], t_span=(0.0, 3.0), name="decay")
    same = Model(["y"], {"k": K, "y0": Y0}, ["-k*y"], ["y0"], t_span=(0.0, 3.0), name="decay")
    key = _reference_cache.reference_key
    args = ((0.0, 3.0), np.array([K, Y0]), np.array(GRID), ("k", "y0"), 8, True)
    assert key(same, *args) == key(model, *args)
    assert key(Model(["y"], {"k": K, "y0": Y0}, ["-k*y - k*y/1000"], ["y0"], t_span=(0.0, 3.0), name="decay"),
               *args) != key(model, *args)
    assert key(model, *args) != key(model, *args[:3], ("k",), 8, True)
    assert key(model, *args) != key(model, *args[:5], False)
    assert key(other, *args) == key(model, *args)  # SymPy reduces 0*k: the same equation, the same reference


def test_corrupted_entries_are_recomputed(calls: list[tuple[Any, ...]], tmp_path: Path) -> None:
    model = decay()
    first = audit(model, fit(), **OPTIONS)
    files = sorted((tmp_path / "references").glob("*.npz"))
    assert len(files) == 2
    blob = files[0].read_bytes()
    damaged = bytearray(blob)
    damaged[-20] ^= 0xFF  # one flipped bit-pattern in the arrays: the checksum no longer matches
    files[0].write_bytes(bytes(damaged))
    other = files[1].read_bytes()
    files[1].write_bytes(other[: len(other) // 2])  # truncated
    again = audit(model, fit(), **OPTIONS)
    assert len(calls) == 4
    _same_report(first, again)
    # Rewritten intact: the next audit reads both.
    audit(model, fit(), **OPTIONS)
    assert len(calls) == 4
    for garbage in (b"", b"not json\n", b'{"format": 1}\n' + blob):
        files[0].write_bytes(garbage)
        assert _reference_cache.read_reference(files[0].stem, np.array(GRID)) is None


def test_only_verified_runs_are_stored_and_racing_writers_leave_a_readable_entry(
        calls: list[tuple[Any, ...]], tmp_path: Path) -> None:
    times = np.array([1.0, 2.0])
    run = SimpleNamespace(y=np.ones((2, 1)), y_error=np.zeros((2, 1)), sensitivities=np.full((2, 1, 1), 3.0),
                          sensitivity_error=np.zeros((2, 1, 1)), verified=False, message="m")
    assert not _reference_cache.write_reference("a" * 64, times, run)
    assert not list((tmp_path / "references").glob("*"))
    run.verified = True
    threads = [threading.Thread(target=_reference_cache.write_reference, args=("b" * 64, times, run)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cached = _reference_cache.read_reference("b" * 64, times)
    assert cached is not None and cached.verified
    assert np.array_equal(cached.sensitivities, run.sensitivities) and np.array_equal(cached.y, run.y)
    assert _reference_cache.read_reference("b" * 64, np.array([1.0, 2.5])) is None  # other output times
    assert [p.name for p in (tmp_path / "references").iterdir()] == ["b" * 64 + ".npz"]  # no temporary left


def test_cli_no_cache_reaches_audit(monkeypatch: pytest.MonkeyPatch) -> None:
    import symsens.audit
    from symsens.cli import main

    seen: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def fake(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(symsens.audit, "audit", fake)
    for flags, expected in (([], True), (["--no-cache"], False)):
        with pytest.raises(Stop):
            main(["audit", "--example", "stiff-linear", "--quiet", *flags])
        assert seen["use_cache"] is expected


def test_an_unusable_cache_directory_only_costs_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setattr(_reference_cache, "reference_cache_directory", lambda: blocker / "references")
    report = audit(decay(), fit(), **OPTIONS)
    assert report.reference_verified and "read from the reference cache" not in report.reference_how
    assert blocker.read_text() == "not a directory"
