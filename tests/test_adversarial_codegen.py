"""Adversarial tests of code generation, the kernel cache and the report: hostile model text, damaged and
unusable caches, killed and slow compilers, threads.

Every test uses a private cache (SYMSENS_CACHE_DIR), and the models are one-state models that compile in
about a second.  Nothing here asserts a duration; waits for processes to disappear are bounded polls.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote

import numpy as np
import pytest
import sympy as sp

import symsens
from symsens._once import cached_once
from symsens.codegen import CodegenError, build_library, compile_model, generate_model_source, write_standalone
from symsens.codegen import _build, _kernels, _runtime
from symsens.codegen._text import SAFE_CHARACTERS, file_stem, source_text

# Strings that have broken generated C/C++ elsewhere: comment terminators, preprocessor lines after a newline,
# trigraphs (??/ is a backslash), backslash-newline splices that pull the next line into a // comment, NUL,
# Unicode line and paragraph separators, quotes that end a string literal, bidirectional overrides.
HOSTILE = [
    "*/ int injected_by_name = 1; /*",
    "x\n#include </etc/passwd>\n",
    "??/\nint injected_trigraph;",
    "line splice \\\nint injected_splice;",
    "nul\0byte",
    "sep\u2028int injected_ls;\u2029para",
    '"); system("touch /tmp/pwned"); ("',
    "\u202etxt.exe",
    "// comment\r\n#define rhs evil",
    "%2A%2F already-encoded",
    "'single' \t tab",
]

_ALLOWED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~%") | set(SAFE_CHARACTERS)


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, private kernel cache for one test."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(directory))
    monkeypatch.delenv("SYMSENS_COMPILE_TIMEOUT", raising=False)
    return directory


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache shared by the tests that only need some compiled library (compiles once per module)."""
    return tmp_path_factory.mktemp("shared-kernel-cache")


def _tiny(name: str = "tiny", description: str = "") -> symsens.Model:
    return symsens.Model(states=["x"], parameters={"k": 1.5}, rhs=["-k*x"], initial_conditions=["2"], name=name,
                         description=description)


def _compiler_processes(marker: str) -> list[int]:
    """PIDs of live processes whose command line mentions ``marker`` (Linux /proc; zombies have none)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _wait_until(condition, what: str, limit: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """Poll ``condition`` until true; fail naming ``what`` if it never becomes true (a bound, not a timing)."""
    end = time.monotonic() + limit
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.1)


def _code_without_comments(text: str, directory: Path) -> str:
    """What the compiler sees of ``text`` once comments are gone (its own preprocessor, includes not expanded)."""
    path = directory / "strip.hpp"
    path.write_text(text)
    return subprocess.run(["c++", "-std=c++17", "-x", "c++", "-fpreprocessed", "-E", "-P", str(path)],
                          capture_output=True, text=True, check=True).stdout


_HOSTILE_WORDS = ("injected", "constructor", "pwned", "passwd", "evil", "system")


def _release(fifo: Path) -> None:
    """Unblock anything still reading ``fifo`` (so a failing test leaves no compiler waiting forever)."""
    try:
        descriptor = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # no reader: nothing is blocked
    os.write(descriptor, b"\n")
    os.close(descriptor)


# -- model text in generated source -------------------------------------------------------------------------
@pytest.mark.parametrize("text", HOSTILE)
def test_source_text_leaves_only_harmless_characters_and_round_trips(text: str) -> None:
    escaped = source_text(text)
    assert set(escaped) <= _ALLOWED
    for dangerous in ("*/", "/*", "//", "\\", "??", '"', "\n", "\r", "\0", "\u2028", "\u2029"):
        assert dangerous not in escaped
    assert unquote(escaped) == text


def test_source_text_survives_lone_surrogates() -> None:
    assert set(source_text("a\ud800b")) <= _ALLOWED


def test_hostile_names_in_the_standalone_export_stay_comments(tmp_path: Path) -> None:
    """The export of a model whose name and description are hostile compiles, defines only the C API, and no
    hostile text appears raw in any file."""
    name = " ".join(HOSTILE) + ' */ __attribute__((constructor)) static void run() { *(volatile int*)0 = 0; } /*'
    model = _tiny(name, description=name)
    files = write_standalone(model, tmp_path / "export")
    stem = files[-1].stem  # the sanitised identifier: the only form of the name that is code
    for path in files:
        text = path.read_text()
        assert "\0" not in text and "\u2028" not in text
        code = _code_without_comments(text, tmp_path).replace(stem, "")
        for word in _HOSTILE_WORDS:
            assert word not in code, (path.name, word)
        if path.suffix in (".h",) or path.name.endswith("_model.hpp"):
            assert text.isascii()
            assert source_text(name) in text  # the name is there, for the reader, escaped
    assert len(stem) <= 48 and stem.isidentifier()
    library = tmp_path / "export" / "libmodel.so"
    subprocess.run(["c++", "-std=c++17", "-shared", "-fPIC", "-fvisibility=hidden", "-Werror=trigraphs",
                    str(files[-1]), "-o", str(library)], check=True, capture_output=True)
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(library)], capture_output=True, text=True,
                             check=True).stdout
    exported = {line.split()[-1] for line in symbols.splitlines() if " T " in line}
    routines = {"n_states", "n_parameters", "n_sensitivity_parameters", "rhs", "jacobian", "parameter_jacobian",
                "augmented_rhs", "initial_conditions", "initial_sensitivities"}
    assert exported == {f"{stem}_{routine}" for routine in routines}
    import ctypes

    handle = ctypes.CDLL(str(library))  # a constructor planted by the name would crash here
    getattr(handle, f"{stem}_n_states").restype = ctypes.c_int
    assert getattr(handle, f"{stem}_n_states")() == 1


def test_generated_model_source_escapes_the_name(cache: Path, tmp_path: Path) -> None:
    name = HOSTILE[0] + HOSTILE[1] + HOSTILE[3]
    source = generate_model_source(_tiny(name))
    code = _code_without_comments(source.code, tmp_path)
    assert not any(word in code for word in _HOSTILE_WORDS)
    assert code.count("#include") == 1  # only the runtime header
    kernels = compile_model(_tiny(name))
    assert kernels.rhs(0.0, [2.0], [1.5])[0] == -3.0


def test_long_and_odd_model_names_give_short_distinct_file_names(tmp_path: Path) -> None:
    long_a, long_b = "a" * 300, "a" * 299 + "b"
    files = write_standalone(_tiny(long_a), tmp_path / "a")  # "File name too long" before
    assert all(len(path.name) < 80 for path in files)
    assert file_stem(long_a) != file_stem(long_b)
    assert len(file_stem(long_a)) <= 48
    assert file_stem("hodgkin-huxley") == "hodgkin_huxley"
    for odd in ["", "9lives", "__init__", "../../etc/passwd", "con", "é" * 5, "a\0b", "*/"]:
        stem = file_stem(odd)
        assert stem.isidentifier() and stem.isascii() and not stem.startswith("_") and "__" not in stem


def test_printer_refuses_non_finite_constants_and_foreign_temporary_names() -> None:
    from symsens.codegen import ConstantTable, CxxPrinter
    from symsens.codegen._assemble import _temporary_name

    x = sp.Symbol("x")
    constants = ConstantTable()
    CxxPrinter({x: "y[0]"}, constants).doprint(sp.Float("1e400") * x)  # beyond double
    with pytest.raises(CodegenError, match="not a finite"):
        constants.initialisers()
    for bad in ("a*/b", "x 1", "__x1", "t", "int", "x1\n#define"):
        with pytest.raises(CodegenError, match="plain identifier"):
            _temporary_name(sp.Symbol(bad))
    assert _temporary_name(sp.Symbol("J_0_3")) == "J_0_3"


# -- the cache: corruption, old formats, moves -------------------------------------------------------------
_CORRUPTION_SCRIPT = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    import symsens
    from symsens.codegen import compile_model
    model = symsens.Model(states=["x"], parameters={"k": 1.5}, rhs=["-k*x"], initial_conditions=["2"], name="tiny")
    kernels = compile_model(model)
    assert kernels.rhs(0.0, [2.0], [1.5])[0] == -3.0
    print(kernels.library_path)
""")


def _solve_in_subprocess(cache: Path) -> Path:
    """Compile-or-load and call the tiny model in a fresh process (a crash there fails the test, not pytest)."""
    result = subprocess.run([sys.executable, "-c", _CORRUPTION_SCRIPT], capture_output=True, text=True,
                            env={**os.environ, "SYMSENS_CACHE_DIR": str(cache)}, check=False)
    how = signal.Signals(-result.returncode).name if result.returncode < 0 else f"exit {result.returncode}"
    assert result.returncode == 0, f"the solve process ended with {how}:\n{result.stderr[-3000:]}"
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("damage", ["truncate", "overwrite", "delete-record"])
def test_damaged_cached_library_is_rebuilt(cache: Path, damage: str) -> None:
    library = _solve_in_subprocess(cache)
    original = library.read_bytes()
    if damage == "truncate":  # what made every later run die with a bus error inside dlopen
        library.write_bytes(original[: len(original) // 3])
    elif damage == "overwrite":  # same size, wrong bytes: a CodegenError that was never healed
        library.write_bytes(bytes(len(original)))
    else:  # a library from an older symsens: no recorded hash, and no current index entry
        library.with_suffix(".json").unlink()
        for entry in (cache / "index").glob("*.json"):
            entry.unlink()
    again = _solve_in_subprocess(cache)
    assert again == library
    assert _build.library_intact(again)
    assert json.loads(again.with_suffix(".json").read_text())["sha256"] == _build.library_sha256(again)


def test_load_library_refuses_a_library_damaged_after_the_check(cache: Path) -> None:
    sources = {"one.cpp": 'extern "C" __attribute__((visibility("default"))) int one() { return 1; }\n'}
    path = build_library(sources, "one.cpp")  # built and checked, not loaded in this process
    damaged = path.with_name("damaged.tmp")
    damaged.write_bytes(path.read_bytes()[:200])
    os.replace(damaged, path)  # a new file: truncating a library in place would hit this process's mapping
    with pytest.raises(CodegenError, match="damaged.*rebuilt on the next call"):
        _build.load_library(path)
    assert build_library(sources, "one.cpp") == path  # the next call rebuilds it
    assert _build.load_library(path).one() == 1


def test_old_format_index_entries_are_misses_and_are_rewritten(cache: Path) -> None:
    first = compile_model(_tiny())
    (entry_path,) = (cache / "index").glob("*.json")
    entry = json.loads(entry_path.read_text())
    assert entry["format"] == 2 and not Path(entry["library"]).is_absolute()
    # The format written by earlier versions: an absolute path and no hash.
    old = {k: v for k, v in entry.items() if k not in ("format", "sha256")}
    old["library"] = str(first.library_path)
    entry_path.write_text(json.dumps(old))
    assert _kernels._read_index(cache, entry_path.stem) is None
    again = compile_model(_tiny())
    assert again.library_path == first.library_path
    assert json.loads(entry_path.read_text())["format"] == 2
    for garbage in ("not json", "[]", '{"format": 2, "library": "/etc/passwd", "sha256": "0"}',
                    '{"format": 2, "library": "../x.so", "sha256": "0"}'):
        entry_path.write_text(garbage)
        assert _kernels._read_index(cache, entry_path.stem) is None
        assert compile_model(_tiny()).rhs(0.0, [1.0], [1.5])[0] == -1.5


def test_a_moved_cache_still_hits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path / "before"))
    compile_model(_tiny())
    (tmp_path / "before").rename(tmp_path / "after")
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(tmp_path / "after"))

    def no_generation(*args: object, **kwargs: object) -> None:
        raise AssertionError("the moved cache was not used")

    monkeypatch.setattr(_kernels, "generate_model_source", no_generation)
    kernels = compile_model(_tiny())
    assert kernels.library_path.is_relative_to(tmp_path / "after")


# -- unusable cache directories ----------------------------------------------------------------------------
def test_cache_dir_that_is_a_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    for value in (not_a_directory, not_a_directory / "below"):
        monkeypatch.setenv("SYMSENS_CACHE_DIR", str(value))
        with pytest.raises(CodegenError, match="SYMSENS_CACHE_DIR=.*is a file, not a directory.*Set SYMSENS_CACHE_DIR"):
            compile_model(_tiny())


def test_read_only_cache_falls_back_to_a_private_temporary_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(read_only))
    monkeypatch.setattr(_build, "_fallback_root", None)
    monkeypatch.setattr(_build, "_warned_roots", set())
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    read_only.chmod(0o555)
    if os.geteuid() == 0:  # root writes through permission bits; make the probe see what a user would
        real_probe = _build._probe_writable

        def probe(directory: Path) -> None:
            if directory == read_only:
                raise PermissionError(13, "Permission denied", str(directory))
            real_probe(directory)

        monkeypatch.setattr(_build, "_probe_writable", probe)
    try:
        with pytest.warns(_build.CacheWarning, match="(?s)not writable.*Set SYMSENS_CACHE_DIR"):
            kernels = compile_model(_tiny())
        assert kernels.library_path.is_relative_to(tmp_path / "tmp")
        assert kernels.rhs(0.0, [2.0], [1.5])[0] == -3.0
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # warned once per cache directory, and the fallback is reused
            assert compile_model(_tiny()).library_path == kernels.library_path
    finally:
        read_only.chmod(0o755)


def test_read_only_cache_with_the_library_is_used_without_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "prebuilt"
    monkeypatch.setenv("SYMSENS_CACHE_DIR", str(cache))
    first = compile_model(_tiny())

    def no_writes(directory: Path) -> None:
        raise AssertionError("a cache hit tried to write")

    monkeypatch.setattr(_build, "_probe_writable", no_writes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert compile_model(_tiny()).library_path == first.library_path


# -- compiler processes: timeouts, kills, stale build directories ----------------------------------------------
def test_compile_timeout_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYMSENS_COMPILE_TIMEOUT", raising=False)
    assert _build.compile_timeout(0) == 1800.0
    assert _build.compile_timeout(2_500_000) == 3 * 1800.0  # grows with the sources
    monkeypatch.setenv("SYMSENS_COMPILE_TIMEOUT", "none")
    assert _build.compile_timeout(10**9) is None
    monkeypatch.setenv("SYMSENS_COMPILE_TIMEOUT", "42.5")
    assert _build.compile_timeout(10**9) == 42.5
    for bad in ("soon", "-3", "nan"):
        monkeypatch.setenv("SYMSENS_COMPILE_TIMEOUT", bad)
        with pytest.raises(CodegenError, match="SYMSENS_COMPILE_TIMEOUT=.*number of seconds.*'none'"):
            _build.compile_timeout(0)


def test_timeout_kills_the_whole_compiler_process_group(cache: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    if not Path("/proc/self/cmdline").exists():
        pytest.skip("needs /proc to see the compiler's processes")
    fifo = tmp_path / "never-written.fifo"
    os.mkfifo(fifo)  # the compiler blocks opening it: a compile that never ends and uses no CPU
    monkeypatch.setenv("SYMSENS_COMPILE_TIMEOUT", "2")
    try:
        with pytest.raises(CodegenError, match="compiling hang.cpp timed out after 2 s.*SYMSENS_COMPILE_TIMEOUT"):
            build_library({"hang.cpp": f'#include "{fifo}"\n'}, "hang.cpp")
        _wait_until(lambda: not _compiler_processes(str(cache)), "compiler processes to end after the timeout")
        assert not list(cache.glob("*/.build-*"))
    finally:
        _release(fifo)


_KILL_SCRIPT = textwrap.dedent("""
    import sys
    from symsens.codegen import build_library
    build_library({"hang.cpp": '#include "' + sys.argv[1] + '"\\n'}, "hang.cpp")
""")


def test_killed_python_takes_its_compiler_along_and_leaves_no_build_directory(cache: Path, tmp_path: Path) -> None:
    if not Path("/proc/self/cmdline").exists():
        pytest.skip("needs /proc to see the compiler's processes")
    fifo = tmp_path / "never-written.fifo"
    os.mkfifo(fifo)
    python = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(fifo)],
                              env={**os.environ, "SYMSENS_CACHE_DIR": str(cache)})
    try:
        # cc1plus runs with the build directory in its command line once the compile has started.
        _wait_until(lambda: any("cc1plus" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                                for pid in _compiler_processes(str(cache))), "the compiler to start", limit=120)
        os.kill(python.pid, signal.SIGKILL)
        python.wait()
        _wait_until(lambda: not _compiler_processes(str(cache)), "the compiler to die with its parent")
        assert list(cache.glob("*/.build-*")), "the killed build left its directory (as expected)"
        # The next build removes the dead process's build directory.
        build_library({"ok.cpp": 'extern "C" int ok() { return 1; }\n'}, "ok.cpp")
        assert not list(cache.glob("*/.build-*"))
    finally:
        if python.poll() is None:
            python.kill()
        _release(fifo)


def test_stale_build_directories_are_cleaned(tmp_path: Path) -> None:
    shard = tmp_path / "ab"
    shard.mkdir()
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    dead = shard / f".build-abcdefgh-{_build._HOST}-{finished.pid}-xyz"
    alive = shard / f".build-abcdefgh-{_build._HOST}-{os.getppid()}-xyz"
    own = shard / f".build-abcdefgh-{_build._HOST}-{os.getpid()}-xyz"
    old_format = shard / ".build-abcdefgh-xyz"
    other_host_old = shard / f".build-abcdefgh-00000000-{finished.pid}-xyz"
    for directory in (dead, alive, own, old_format, other_host_old):
        directory.mkdir()
    day_and_more = time.time() - 2 * 24 * 3600
    os.utime(old_format, (day_and_more, day_and_more))
    os.utime(other_host_old, (day_and_more, day_and_more))
    _build._clean_stale_builds(tmp_path)
    assert sorted(p.name for p in shard.iterdir()) == sorted([alive.name, own.name])


# -- threads -------------------------------------------------------------------------------------------------
def test_cached_once_computes_each_key_once_under_threads() -> None:
    calls: list[int] = []
    started = threading.Event()
    release = threading.Event()

    @cached_once()
    def slow(key: int) -> list[int]:
        calls.append(key)
        started.set()
        release.wait()
        return [key]

    results: list[list[int]] = []
    threads = [threading.Thread(target=lambda: results.append(slow(1))) for _ in range(6)]
    threads[0].start()
    started.wait()
    for thread in threads[1:]:
        thread.start()
    release.set()
    for thread in threads:
        thread.join()
    assert calls == [1]
    assert all(r is results[0] for r in results)
    assert slow.cache_info().currsize == 1
    slow.cache_clear()
    assert slow(1) == [1] and calls == [1, 1]


def test_cached_once_does_not_cache_errors_and_evicts() -> None:
    attempts = {"n": 0}

    @cached_once(maxsize=2)
    def flaky(key: str) -> str:
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise ValueError("first attempt fails")
        return key * 2

    with pytest.raises(ValueError):
        flaky("a")
    assert flaky("a") == "aa" and flaky("a") == "aa" and attempts["n"] == 2
    flaky("b"), flaky("c")
    assert flaky.cache_info().currsize == 2

    @cached_once()
    def recursive(n: int) -> int:
        return recursive(n)

    with pytest.raises(RuntimeError, match="called itself"):
        recursive(1)


def test_threads_compile_the_same_model_on_a_cold_cache(cache: Path) -> None:
    """The load-test failure: several audit threads reach model_fingerprint -> runtime_header at once with
    SymPy's tables empty.  Every in-process cache is reset first; all threads must agree."""
    _runtime.runtime_header.cache_clear()
    _runtime.warm_sympy_tables.cache_clear()
    _build._compiler_identity.cache_clear()
    small = getattr(sp.factorial, "_small_factorials", None)
    if isinstance(small, list):
        small.clear()  # as in a fresh interpreter
    model = _tiny("threads")
    barrier = threading.Barrier(4)
    results: dict[int, tuple[str, str, str, float]] = {}
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait()
            fingerprint = _kernels.model_fingerprint(model, None, "kernels")
            kernels = compile_model(model)
            results[index] = (fingerprint, _runtime.runtime_header(), str(kernels.library_path),
                              float(kernels.rhs(0.0, [2.0], [1.5])[0]))
        except BaseException as error:  # noqa: BLE001 - reported below with its thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(results) == 4 and len(set(results.values())) == 1
    assert next(iter(results.values()))[3] == -3.0
    assert _runtime.runtime_header.cache_info().misses == 1


# -- the report ----------------------------------------------------------------------------------------------
def _fake_report(name: str) -> SimpleNamespace:
    row = {"method": "forward", "scheme": "tsit5", "rtol": 1e-6, "gradient": np.array([1.0]), "loss": 0.5,
           "relative_error": 1e-3, "absolute_error": 1e-3, "digits": 3.0, "steps": 10, "seconds": 0.01,
           "verdict": f"failed: {name}", "category": "failed"}
    return SimpleNamespace(
        model_name=name, loss_description=f"squared error of {name}", t_span=(0.0, 1.0), parameters=[name],
        parameter_values=[1.0], reference_gradient=np.array([1.0]), reference_digits=[15.0], target_digits=4,
        loss_at_nominal=0.5, reference_how=f"reference for {name}", recommendation={"text": f"use {name}"},
        results=[row], reference_exact=False, reference_verified=True,
        diagnostics={"sensitivity_growth": {"source": name, "initial_norm": 1.0, "final_norm": 2.0, "max_norm": 2.0,
                                            "time_of_max": 1.0, "growth_rate": 0.5}},
        timings={"total": 1.0, "compile": 0.1, "solves": 0.2, "reference": 0.3, "diagnosis": 0.4},
    )


@pytest.mark.parametrize("name", [
    "<script>alert(1)</script>", "**bold** _it_ `code` [link](javascript:alert(1)) ![img](x)",
    "a | b | c", "x\n# injected heading\n<img src=x onerror=alert(1)>", "&lt;entity&gt; \\*", "\ue000\ue001mark",
])
def test_report_markdown_and_html_escape_user_text(name: str) -> None:
    from symsens.audit._report import _build as build_document
    from symsens.audit._report import markdown_text, summary_table

    document = build_document(_fake_report(name), {})
    markdown = document.markdown()
    assert "<script" not in markdown and "<img" not in markdown and "](javascript" not in markdown
    assert "\n# injected" not in markdown and "\ue000" not in markdown and "\ue001" not in markdown
    assert markdown.count(markdown_text(name)) >= 5  # heading, loss, recommendation, parameter, verdict, ...
    for line in markdown.splitlines():
        if line.startswith("| ") and "failed" in line:
            assert line.count(" | ") == 9  # ten cells: no '|' of the name split a cell
    page = document.html(f"Gradient audit: {name}")
    assert "<script" not in page and "<img src=x" not in page and "<strong>bold</strong>" not in page
    terminal = summary_table(_fake_report(name))
    assert "\n# injected" not in terminal and "\ue000" not in terminal
