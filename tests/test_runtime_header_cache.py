"""The runtime header is kept in the kernel cache: an intact copy is read back, a damaged one is regenerated."""

from __future__ import annotations

from importlib import resources

import pytest

from symsens.codegen import _runtime


@pytest.fixture()
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path))
    return tmp_path


def _base() -> str:
    return resources.files("symsens.codegen").joinpath("runtime/symsens_runtime_base.hpp").read_text()


def test_cached_header_equals_the_generated_one_and_damage_is_detected(private_cache):
    base = _base()
    key = _runtime._header_key(base)
    generated = _runtime._generated_header(base)
    assert _runtime._cached_header(key) is None
    _runtime._store_header(key, generated)
    stored = private_cache / "runtime" / f"{key}.hpp"
    assert stored.is_file()
    assert _runtime._cached_header(key) == generated
    # A truncated or altered copy fails its checksum and is not used.
    text = stored.read_text()
    stored.write_text(text.replace("exprel_derivative_scalar_3", "exprel_derivative_scalar_X", 1))
    assert _runtime._cached_header(key) is None
    stored.write_text(text[: len(text) // 2])
    assert _runtime._cached_header(key) is None


def test_key_changes_with_the_base_header():
    base = _base()
    assert _runtime._header_key(base) != _runtime._header_key(base + "\n// changed\n")
    assert _runtime._header_key(base) == _runtime._header_key(base)
