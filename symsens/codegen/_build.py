"""Build and load: C++ sources -> a shared library in the per-user cache -> a ctypes handle.

The cache key is a SHA-256 of the sources, the compiler's identity (path and ``--version``), the flags and
the symsens version, so any change rebuilds and nothing stale is ever loaded.  Writes are atomic: the
library is compiled in a private temporary directory and moved into place with ``os.replace`` while a
per-key file lock is held, so concurrent processes compiling the same model both succeed and load the same
file (the lock makes the second one wait and then find the library).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ._printer import CodegenError

__all__ = ["Compiler", "find_compiler", "cache_directory", "build_library", "load_library", "DEFAULT_FLAGS"]

# Hidden visibility: only the extern "C" entry points (marked SYMSENS_EXPORT) leave a library.  Without it,
# the static tables inside inline template functions (a model's constants) become process-wide unique
# symbols, and the second model loaded would silently read the first model's constants.
#
# -fno-gcse -fno-tree-pre: GCC's global common-subexpression and partial-redundancy passes are superlinear in
# the size of a function, and the generated model routines are large straight-line functions that CSE has
# already reduced.  Measured on the 13-state calcium neuron's Rodas4 driver with 13 sensitivity parameters:
# -O2 compiles in 105 s, -O2 with these two passes off in 24 s, and the solves run equally fast (plain
# 16 against 17 ms, forward 346 against 328 ms, discrete 445 against 454 ms).
DEFAULT_FLAGS: tuple[str, ...] = (
    "-std=c++17", "-O2", "-fno-gcse", "-fno-tree-pre", "-fPIC", "-shared", "-fno-math-errno", "-fvisibility=hidden",
    "-fvisibility-inlines-hidden",
)


@dataclass(frozen=True)
class Compiler:
    """A C++ compiler found on this machine: its path and the first line of ``--version``."""

    path: str
    version: str


@lru_cache(maxsize=4)
def _compiler_identity(path: str) -> str:
    try:
        result = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CodegenError(f"the C++ compiler {path!r} could not be run: {error}") from error
    return (result.stdout or result.stderr).splitlines()[0] if (result.stdout or result.stderr) else path


def find_compiler() -> Compiler:
    """The C++ compiler to use: ``$CXX`` if set, else the first of ``c++``, ``g++``, ``clang++`` on PATH.

    Raises
    ------
    CodegenError
        When none is found, naming what was looked for and the way on without one (``backend="numpy"``).
    """
    candidates = [os.environ["CXX"]] if os.environ.get("CXX") else ["c++", "g++", "clang++"]
    for name in candidates:
        path = shutil.which(name)
        if path:
            return Compiler(path, _compiler_identity(path))
    looked = ", ".join(candidates)
    raise CodegenError(
        f"no C++ compiler found (looked for {looked} on PATH). Install one (e.g. `apt-get install g++`) "
        "or use the pure NumPy/SciPy path with backend=\"numpy\", which needs no compiler."
    )


def cache_directory() -> Path:
    """Where compiled kernels live: ``$SYMSENS_CACHE_DIR`` or the per-user cache dir (platformdirs)."""
    override = os.environ.get("SYMSENS_CACHE_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("symsens", appauthor=False)) / "kernels"


def _cache_key(sources: Mapping[str, str], compiler: Compiler, flags: Sequence[str]) -> str:
    from .. import __version__

    digest = hashlib.sha256()
    for part in (__version__, compiler.path, compiler.version, " ".join(flags)):
        digest.update(part.encode())
        digest.update(b"\0")
    for name in sorted(sources):
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(sources[name].encode())
        digest.update(b"\0")
    return digest.hexdigest()


def build_library(
    sources: Mapping[str, str],
    main: str | Sequence[str],
    *,
    flags: Sequence[str] = DEFAULT_FLAGS,
    compiler: Compiler | None = None,
    timeout: float = 600.0,
) -> Path:
    """Compile ``sources[main]`` (with the other sources as headers beside it) into a cached shared library.

    Parameters
    ----------
    sources : mapping file name -> text
        Every file the build reads; all of them enter the cache key.
    main : str or sequence of str
        The translation unit(s) to compile (keys of ``sources``).  Several units are compiled concurrently
        (``-c``) and linked into one library.

    Returns
    -------
    Path of the shared library (already built by this or another process, or built now).

    Raises
    ------
    CodegenError
        No compiler, or the compiler failed (its output is in the message).
    """
    units = [main] if isinstance(main, str) else list(main)
    if not units:
        raise CodegenError("build_library: no translation unit given")
    for unit in units:
        if unit not in sources:
            raise CodegenError(f"build_library: main file {unit!r} is not among the sources")
    compiler = compiler or find_compiler()
    # Several units: the list of units is part of what is built (the same sources could be linked otherwise).
    key = _cache_key(sources, compiler, list(flags) + (["units:" + ",".join(units)] if len(units) > 1 else []))
    directory = cache_directory() / key[:2]
    target = directory / f"{key}.so"
    if target.exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    with FileLock(str(directory / f"{key}.lock"), timeout=timeout):
        if target.exists():  # another process finished while we waited
            return target
        with tempfile.TemporaryDirectory(dir=directory, prefix=f".build-{key[:8]}-") as work:
            work_path = Path(work)
            for name, text in sources.items():
                (work_path / name).write_text(text)
            output = work_path / "library.so"
            start = time.perf_counter()
            if len(units) == 1:
                command = [compiler.path, *flags, "-I", str(work_path), str(work_path / units[0]), "-o", str(output)]
                _run_compiler(command, units[0], compiler, timeout)
            else:
                # Compile the units side by side, then link; "-shared" belongs to the link step only.
                compile_flags = [f for f in flags if f != "-shared"]
                processes = []
                for unit in units:
                    obj = work_path / f"{unit}.o"
                    command = [compiler.path, *compile_flags, "-c", "-I", str(work_path), str(work_path / unit),
                               "-o", str(obj)]
                    processes.append((unit, obj, subprocess.Popen(command, stdout=subprocess.PIPE,
                                                                  stderr=subprocess.STDOUT, text=True)))
                failure = None
                for unit, _, process in processes:
                    try:
                        log, _ = process.communicate(timeout=timeout)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        failure = failure or CodegenError(f"compiling {unit} timed out after {timeout:.0f} s")
                        continue
                    if process.returncode != 0 and failure is None:
                        failure = CodegenError(f"compiling {unit} failed ({compiler.path}, exit "
                                               f"{process.returncode}):\n{(log or '')[-4000:]}")
                if failure is not None:
                    raise failure
                link = [compiler.path, *flags, *(str(obj) for _, obj, _ in processes), "-o", str(output)]
                _run_compiler(link, "the library", compiler, timeout)
            (work_path / "build-seconds").write_text(f"{time.perf_counter() - start:.3f}")
            os.replace(output, target)
    return target


def _run_compiler(command: list[str], what: str, compiler: Compiler, timeout: float) -> None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as error:
        raise CodegenError(f"compiling {what} timed out after {timeout:.0f} s") from error
    if result.returncode != 0:
        log = (result.stderr or result.stdout)[-4000:]
        raise CodegenError(f"compiling {what} failed ({compiler.path}, exit {result.returncode}):\n{log}")


def load_library(path: Path) -> ctypes.CDLL:
    """Load a shared library in process (``RTLD_LOCAL``: two models never see each other's symbols)."""
    try:
        return ctypes.CDLL(str(path), mode=getattr(os, "RTLD_LOCAL", 0))
    except OSError as error:
        raise CodegenError(f"could not load the compiled library {path}: {error}") from error
