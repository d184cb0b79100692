"""Build and load: C++ sources -> a shared library in the per-user cache -> a ctypes handle.

Guarantees of the library cache (``cache_directory()``):

* **Content-keyed.**  The key is a SHA-256 of the sources, the compiler's identity (path and ``--version``),
  the flags and the symsens version, so any change rebuilds and nothing stale is ever loaded.
* **Concurrent use.**  A library is compiled in a private build directory and moved into place with
  ``os.replace`` while a per-key file lock is held, so processes and threads compiling the same sources all
  succeed and load the same complete file (the lock makes the others wait, then find the library).
* **Corruption.**  Each library's SHA-256 is recorded beside it (``<key>.json``) and checked before the
  library is returned for loading; a missing record (a cache written by an older symsens), a truncated or
  otherwise damaged library is rebuilt under the lock, never handed to ``dlopen`` (where a truncated file
  crashes the process with a bus error).
* **Kills.**  Each compiler runs in its own process group under a small guard process that kills the group
  when the Python process dies (Linux parent-death signal, else polling), and the whole group is killed on a
  timeout, so no ``c++``/``cc1plus`` outlives its build.  Build directories left by killed processes are
  removed by the next build (their owner's PID is dead, or they are older than a day).
* **Unusable cache directory.**  A read-only cache falls back to a private temporary directory with a
  :class:`CacheWarning` naming ``SYMSENS_CACHE_DIR``; ``SYMSENS_CACHE_DIR`` naming a file is a
  :class:`CodegenError` saying how to fix it.
* **Timeouts.**  Each compiler run is limited by ``SYMSENS_COMPILE_TIMEOUT`` (seconds, or ``none``); unset,
  the limit is generous and grows with the size of the sources (see :func:`compile_timeout`).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

# ``subprocess`` and ``signal`` are imported where a compiler is run: loading a cached library needs neither.

from .._once import cached_once
from .._errors import CodegenError

__all__ = [
    "Compiler", "find_compiler", "cache_directory", "build_library", "load_library", "DEFAULT_FLAGS",
    "CacheWarning", "compile_timeout", "library_sha256", "compile_count", "compiler_jobs",
]


class CacheWarning(UserWarning):
    """The kernel cache could not be used as configured; the message says what was done instead."""


# Hidden visibility: only the extern "C" entry points (marked SYMSENS_EXPORT) leave a library.  Without it,
# the static tables inside inline template functions (a model's constants) become process-wide unique
# symbols, and the second model loaded would silently read the first model's constants.
#
# -fno-gcse -fno-tree-pre: GCC's global common-subexpression and partial-redundancy passes are superlinear in
# the size of a function, and the generated model routines are large straight-line functions that CSE has
# already reduced.  Measured on the 13-state calcium neuron's Rodas4 driver with 13 sensitivity parameters:
# -O2 compiles in 105 s, -O2 with these two passes off in 24 s, and the solves run equally fast (plain
# 16 against 17 ms, forward 346 against 328 ms, discrete 445 against 454 ms).
#
# The two --param limits bound the alias-oracle walks of value numbering and dead-store elimination ("alias stmt
# walking" in -ftime-report, superlinear in a straight-line function's length; GCC's defaults are 1000 and 256).
# Measured on the 256-state Brusselator's BDF library with 3 sensitivity parameters: compiler CPU 26.7 -> 19.3 s
# (plain and forward unit) and 15.5 -> 9.9 s (discrete unit); solves equally fast (64 states: forward 3.5 against
# 3.6 ms, discrete 6.0 against 6.0 ms; calcium neuron Rodas4, 13 parameters: forward 173 against 181 ms).  The
# generated routines already hoist common subexpressions into temporaries, so few redundant loads remain to find.
#
# -ffp-contract=off: no multiply and add fused into one rounding.  GCC in ISO C++ mode does not fuse anyway, but
# Clang does by default where the target has FMA (aarch64); the solver, the replays of the discrete adjoints and
# the NumPy replays must round every product and sum alike to take the same decisions.
DEFAULT_FLAGS: tuple[str, ...] = (
    "-std=c++17", "-O2", "-fno-gcse", "-fno-tree-pre", "--param=sccvn-max-alias-queries-per-access=100",
    "--param=dse-max-alias-queries-per-store=32", "-fPIC", "-shared", "-fno-math-errno", "-fvisibility=hidden",
    "-fvisibility-inlines-hidden", "-ffp-contract=off",
)


@dataclass(frozen=True)
class Compiler:
    """A C++ compiler found on this machine: its path and the first line of ``--version``."""

    path: str
    version: str


def _run_version(path: str) -> str:
    """The first line of ``path --version`` (the path itself when the compiler prints nothing)."""
    import subprocess

    try:
        result = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CodegenError(f"the C++ compiler {path!r} could not be run: {error}") from error
    return (result.stdout or result.stderr).splitlines()[0] if (result.stdout or result.stderr) else path


def _compiler_stamp(path: str) -> str | None:
    """What identifies the compiler file behind ``path`` without running it: the path, the file it resolves
    to, and that file's device, inode, size, modification and change times.  Installing, upgrading or
    switching the compiler (alternatives, a new symlink target) changes it.  None when the file cannot be read.
    """
    try:
        resolved = os.path.realpath(path)
        info = os.stat(resolved)
    except OSError:
        return None
    return "\0".join(str(part) for part in (
        path, resolved, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns,
    ))


@cached_once(maxsize=8)
def _compiler_identity(path: str) -> str:
    """The first line of ``path --version``, remembered in the kernel cache per compiler file (see
    :func:`_compiler_stamp`).

    Running the compiler costs tens of milliseconds, more than everything else a cache hit does, so a
    process that only loads cached libraries reads the line recorded by the first process that ran it.  The
    record is only an input of cache keys: a missing, unreadable or unwritable one means running the compiler.
    """
    stamp = _compiler_stamp(path)
    record: Path | None = None
    if stamp is not None:
        try:
            record = cache_directory() / "compilers" / f"{hashlib.sha256(stamp.encode()).hexdigest()}.txt"
            text = record.read_text()
            if text and "\n" not in text and len(text) < 1000:
                return text
        except (OSError, UnicodeError, CodegenError):
            pass
    version = _run_version(path)
    if record is not None and "\n" not in version:
        with _suppress_os_error():
            record.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(record, version)
    return version


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


# -- the cache directory -----------------------------------------------------------------------------------
_CACHE_ENV = "SYMSENS_CACHE_DIR"


def cache_directory() -> Path:
    """Where compiled kernels live: ``$SYMSENS_CACHE_DIR`` or the per-user cache dir (platformdirs).

    Raises
    ------
    CodegenError
        ``SYMSENS_CACHE_DIR`` names an existing file (or a path through one) rather than a directory.
    """
    override = os.environ.get(_CACHE_ENV)
    if override:
        path = Path(override).expanduser()
        _check_not_a_file(path, f"{_CACHE_ENV}={override}")
        return path
    import platformdirs

    path = Path(platformdirs.user_cache_dir("symsens", appauthor=False)) / "kernels"
    _check_not_a_file(path, "the default kernel cache directory")
    return path


def _check_not_a_file(path: Path, what: str) -> None:
    for part in (path, *path.parents):
        if part.exists() or part.is_symlink():
            if not part.is_dir():
                raise CodegenError(
                    f"{what}: {part} is a file, not a directory, so compiled kernels cannot be cached there. "
                    f"Set {_CACHE_ENV} to a directory (it is created if missing), or unset it to use the "
                    "per-user cache directory."
                )
            return


_fallback_lock = threading.Lock()
_fallback_root: Path | None = None
_warned_roots: set[Path] = set()


def _probe_writable(directory: Path) -> None:
    """Create ``directory`` and a file in it, or raise the ``OSError`` that says why not.

    A real write, not ``os.access``: a read-only file system refuses even root, and root passes ``os.access``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=directory, prefix=".probe-")
    os.close(handle)
    os.unlink(name)


def _private_temporary_root() -> Path:
    """A per-user directory under the system temporary directory, reused by later processes of this user.

    It is only trusted when it is a real directory owned by this user and writable by no one else (anyone can
    create a name in /tmp; a library planted there would run in our process); otherwise a fresh ``mkdtemp``.
    """
    global _fallback_root
    with _fallback_lock:
        if _fallback_root is not None:
            return _fallback_root
        uid = os.getuid() if hasattr(os, "getuid") else 0
        candidate = Path(tempfile.gettempdir()) / f"symsens-kernels-{uid}"
        try:
            candidate.mkdir(mode=0o700, exist_ok=True)
            info = os.lstat(candidate)
            import stat

            trusted = stat.S_ISDIR(info.st_mode) and info.st_uid == uid and not info.st_mode & 0o022
        except OSError:
            trusted = False
        _fallback_root = candidate if trusted else Path(tempfile.mkdtemp(prefix="symsens-kernels-"))
        return _fallback_root


def _read_roots() -> list[Path]:
    """Cache roots to look in, in order: the configured one, then the fallback if this process made one."""
    roots = [cache_directory()]
    if _fallback_root is not None and _fallback_root not in roots:
        roots.append(_fallback_root)
    return roots


def _writable_root() -> Path:
    """The configured cache root if it can be written, else the private temporary root (with a warning)."""
    root = cache_directory()
    try:
        _probe_writable(root)
        return root
    except NotADirectoryError as error:  # a path component turned into a file meanwhile
        raise CodegenError(
            f"the kernel cache {root} cannot be created ({error}). Set {_CACHE_ENV} to a directory."
        ) from error
    except OSError as error:
        fallback = _private_temporary_root()
        _probe_writable(fallback)
        if root not in _warned_roots:
            _warned_roots.add(root)
            warnings.warn(
                f"the kernel cache {root} is not writable ({error.strerror or error}); compiling into "
                f"{fallback} instead. Set {_CACHE_ENV} to a writable directory (or make {root} writable) to "
                "keep compiled kernels in a place of your choice.",
                CacheWarning, stacklevel=4,
            )
        return fallback


# -- library records: the SHA-256 of every cached library ------------------------------------------------------
_RECORD_FORMAT = 2
_verified: dict[tuple[str, int, int, int], str] = {}  # (path, inode, size, mtime) -> sha256, this process
_verified_lock = threading.Lock()


def library_sha256(path: Path) -> str:
    """SHA-256 of a file; remembered per (path, inode, size, mtime) in this process, so an unchanged library is
    read once, and a library rewritten or truncated in place is hashed again."""
    info = os.stat(path)
    memo = (str(path), info.st_ino, info.st_size, info.st_mtime_ns)
    with _verified_lock:
        known = _verified.get(memo)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    with _verified_lock:
        _verified[memo] = value
    return value


def _record_path(library: Path) -> Path:
    return library.with_suffix(".json")


def _recorded_sha256(library: Path) -> str | None:
    """The hash recorded when ``library`` was built, or None (no record: a cache from an older symsens)."""
    try:
        record = json.loads(_record_path(library).read_text())
        if record.get("format") == _RECORD_FORMAT and isinstance(record.get("sha256"), str):
            return record["sha256"]
    except (OSError, ValueError, AttributeError):
        pass
    return None


def library_intact(library: Path, expected: str | None = None) -> bool:
    """Whether ``library`` exists and has the SHA-256 recorded for it (``expected``, else its record).

    False for a missing, truncated or modified library and for one without a record; callers rebuild then.
    """
    expected = expected or _recorded_sha256(library)
    if expected is None:
        return False
    try:
        return library_sha256(library) == expected
    except OSError:
        return False


def _write_atomically(path: Path, text: str) -> None:
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.replace(name, path)
    except BaseException:
        with _suppress_os_error():
            os.unlink(name)
        raise


class _suppress_os_error:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, value, traceback) -> bool:  # type: ignore[no-untyped-def]
        return kind is not None and issubclass(kind, OSError)


# -- compile timeout ---------------------------------------------------------------------------------------
_TIMEOUT_ENV = "SYMSENS_COMPILE_TIMEOUT"
_DEFAULT_TIMEOUT = 1800.0  # seconds per compiler run for up to a megabyte of sources, and per further megabyte


def compile_timeout(source_bytes: int = 0) -> float | None:
    """The time limit of one compiler run, in seconds (None: no limit).

    ``SYMSENS_COMPILE_TIMEOUT`` sets it: a number of seconds, or ``none`` (also ``0``, ``inf``) for no limit.
    Unset, it is 1800 s per started megabyte of sources, at least 1800 s: a 13-state model's solver compiles in
    about 25 s on an idle machine, and a loaded machine or a large model must not fail for being slow.

    Raises
    ------
    CodegenError
        The variable is set to something else.
    """
    text = os.environ.get(_TIMEOUT_ENV, "").strip()
    if not text:
        return _DEFAULT_TIMEOUT * max(1, math.ceil(source_bytes / 1_000_000))
    if text.lower() in ("none", "inf", "infinity", "0", "off", "no"):
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or math.isinf(value):
        raise CodegenError(
            f"{_TIMEOUT_ENV}={text!r} is not a time limit: set it to a number of seconds (e.g. 3600) or to "
            "'none' for no limit."
        )
    return value


def _timeout_text(timeout: float) -> str:
    return (f"timed out after {timeout:.0f} s (the limit of one compiler run; set {_TIMEOUT_ENV} to more seconds, "
            "or to 'none' for no limit, e.g. on a loaded machine)")


# -- running the compiler: own process group, dies with us ----------------------------------------------------
# The guard is a separate tiny Python process because setting the parent-death signal needs code between
# fork and exec, and ``preexec_fn`` is unsafe in a process with threads (the audit compiles from a thread
# pool): the forked child may deadlock on a lock another thread held.  The guard is single-threaded, leads
# its own process group (start_new_session), asks the kernel for SIGTERM when its parent dies (Linux), and
# polls its parent's PID elsewhere; on either it kills the whole group, i.e. the compiler driver and its
# cc1plus/as/ld children.  Timeouts kill the same group from our side.
_GUARD = r"""
import os, signal, subprocess, sys
parent = int(sys.argv[1])
def kill_group(*_):
    try:
        os.killpg(0, signal.SIGKILL)
    finally:
        os._exit(137)
signal.signal(signal.SIGTERM, kill_group)
signal.signal(signal.SIGHUP, kill_group)
if sys.platform.startswith("linux"):
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except Exception:
        pass
if os.getppid() != parent:
    kill_group()
child = subprocess.Popen(sys.argv[2:])
while True:
    try:
        code = child.wait(timeout=1.0)
        break
    except subprocess.TimeoutExpired:
        if os.getppid() != parent:
            kill_group()
sys.exit(code if code >= 0 else 128 - code)
"""


def _kill_group(process: subprocess.Popen) -> None:  # type: ignore[type-arg]
    import signal

    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        with _suppress_os_error():
            process.kill()


def _start_compiler(command: list[str]) -> subprocess.Popen:  # type: ignore[type-arg]
    """Start ``command`` under the guard, in a new process group led by the guard; output to one pipe."""
    import subprocess

    if sys.executable and os.name == "posix":
        argv = [sys.executable, "-I", "-S", "-c", _GUARD, str(os.getpid()), *command]
    else:  # no interpreter to run the guard with (embedded Python) or not POSIX: own group only
        argv = command
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=os.name == "posix")


def _finish(process: subprocess.Popen, deadline: float | None) -> tuple[int | None, str]:  # type: ignore[type-arg]
    """Wait for a started compiler; on timeout (returncode None) or any interruption, kill its whole group."""
    import subprocess

    try:
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        log, _ = process.communicate(timeout=remaining)
        return process.returncode, log or ""
    except subprocess.TimeoutExpired:
        _kill_group(process)
        process.communicate()
        return None, ""
    except BaseException:
        _kill_group(process)
        process.wait()
        raise


def compiler_jobs() -> int:
    """How many compilers run at once: the cores this process may use (``sched_getaffinity``, else
    ``os.cpu_count()``).  More would only share the same cores, and hold more memory at once."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _run_compilers(commands: list[tuple[str, list[str]]], compiler: Compiler, timeout: float | None) -> None:
    """Run the commands, at most :func:`compiler_jobs` at a time, in the order given (a unit starts as soon as
    a compiler finishes: the caller puts the longest first); raise CodegenError for the first that failed or
    timed out (all are stopped then).  ``timeout`` limits each run from its start."""
    import queue

    pending = list(commands)
    finished: queue.Queue[tuple[str, subprocess.Popen, tuple[int | None, str] | BaseException]] = queue.Queue()  # type: ignore[type-arg]
    running: dict[int, tuple[subprocess.Popen, threading.Thread]] = {}  # type: ignore[type-arg]
    jobs = compiler_jobs()

    def wait(what: str, process: subprocess.Popen, deadline: float | None) -> None:  # type: ignore[type-arg]
        try:
            finished.put((what, process, _finish(process, deadline)))
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            finished.put((what, process, error))

    failure: BaseException | None = None
    try:
        while running or (pending and failure is None):
            while pending and failure is None and len(running) < jobs:
                what, command = pending.pop(0)
                process = _start_compiler(command)
                deadline = None if timeout is None else time.monotonic() + timeout
                thread = threading.Thread(target=wait, args=(what, process, deadline), daemon=True)
                running[process.pid] = (process, thread)
                thread.start()
            try:
                what, process, result = finished.get(timeout=0.5)
            except queue.Empty:
                continue
            running.pop(process.pid)[1].join()
            if failure is not None:
                continue
            if isinstance(result, BaseException):
                failure = result
            elif result[0] is None:
                failure = CodegenError(f"compiling {what} {_timeout_text(timeout or 0.0)}")
            elif result[0] != 0:
                failure = CodegenError(f"compiling {what} failed ({compiler.path}, exit {result[0]}):\n{result[1][-4000:]}")
            if failure is not None:
                for other, _ in running.values():
                    _kill_group(other)
    except BaseException:
        for process, _ in running.values():
            _kill_group(process)
        for process, thread in running.values():
            thread.join()
        raise
    if failure is not None:
        raise failure


# -- stale build directories ------------------------------------------------------------------------------
_STALE_AGE = 24 * 3600.0  # seconds; no build runs this long without a timeout of that order
# The host name (``socket.gethostname()``, read without importing ``socket`` where ``os.uname`` has it).
_HOST = hashlib.sha256((os.uname().nodename if hasattr(os, "uname") else __import__("socket").gethostname())
                       .encode()).hexdigest()[:8]


def _build_prefix(key: str) -> str:
    # The owner's host and PID are in the name, so a later build can tell a killed build from a running one.
    return f".build-{key[:8]}-{_HOST}-{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _clean_stale_builds(root: Path, max_age: float = _STALE_AGE) -> None:
    """Remove build directories under ``root`` whose owner process is dead (same host) or that are older than
    ``max_age`` (any host, and older symsens versions, which did not record the owner)."""
    now = time.time()
    for directory in root.glob("*/.build-*"):
        parts = directory.name.split("-")
        stale = False
        if len(parts) >= 5 and parts[2] == _HOST and parts[3].isdigit():
            stale = int(parts[3]) != os.getpid() and not _pid_alive(int(parts[3]))
        try:
            stale = stale or now - directory.stat().st_mtime > max_age
        except OSError:
            continue
        if stale:
            shutil.rmtree(directory, ignore_errors=True)


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
    timeout: float | None = None,
) -> Path:
    """Compile ``sources[main]`` (with the other sources as headers beside it) into a cached shared library.

    Parameters
    ----------
    sources : mapping file name -> text
        Every file the build reads; all of them enter the cache key.
    main : str or sequence of str
        The translation unit(s) to compile (keys of ``sources``).  Several units are compiled concurrently
        (``-c``; at most :func:`compiler_jobs` at a time, in the order given) and linked into one library; an
        empty unit is left out.
    timeout : float, optional
        Seconds each compiler run may take; by default :func:`compile_timeout` of the sources' size.

    Returns
    -------
    Path of the shared library (already built by this or another process, or built now), whose SHA-256 has
    been checked against the one recorded when it was built.

    Raises
    ------
    CodegenError
        No compiler, the compiler failed (its output is in the message) or timed out (the message names
        ``SYMSENS_COMPILE_TIMEOUT``), or the cache directory is unusable (the message says how to fix it).
    """
    units = [main] if isinstance(main, str) else list(main)
    if not units:
        raise CodegenError("build_library: no translation unit given")
    for unit in units:
        if unit not in sources:
            raise CodegenError(f"build_library: main file {unit!r} is not among the sources")
    compiler = compiler or find_compiler()
    if timeout is None:
        timeout = compile_timeout(sum(len(text.encode()) for text in sources.values()))
    # Several units: the list of units is part of what is built (the same sources could be linked otherwise).
    key = _cache_key(sources, compiler, list(flags) + (["units:" + ",".join(units)] if len(units) > 1 else []))
    for root in _read_roots():
        target = root / key[:2] / f"{key}.so"
        if library_intact(target):
            return target
    root = _writable_root()
    directory = root / key[:2]
    target = directory / f"{key}.so"
    directory.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock, Timeout

    # Waiting for another process that compiles the same key: as long as its compiler runs may take, plus the link.
    wait = -1 if timeout is None else timeout * (len(units) + 2)
    try:
        with FileLock(str(directory / f"{key}.lock"), timeout=wait):
            if library_intact(target):  # another process finished while we waited
                return target
            _clean_stale_builds(root)
            _compile_into(target, sources, units, compiler, list(flags), timeout)
    except Timeout as error:
        raise CodegenError(
            f"waited {wait:.0f} s for another process compiling {target.name} (lock {error.lock_file}); "
            f"if no symsens process is running, delete the lock file; set {_TIMEOUT_ENV} to wait longer"
        ) from error
    return target


_compile_count = 0
_compile_count_lock = threading.Lock()


def compile_count() -> int:
    """How many libraries this process has compiled (cache hits do not count): what tests count to check that
    one library serves several uses, without timing anything."""
    return _compile_count


def _compile_into(target: Path, sources: Mapping[str, str], units: list[str], compiler: Compiler,
                  flags: list[str], timeout: float | None) -> None:
    """Compile in a private build directory beside ``target``, then move the library and its record in place.
    Called with the key's lock held."""
    global _compile_count
    with _compile_count_lock:
        _compile_count += 1
    key = target.stem
    # An empty unit (a part of the library with nothing to compile this time) would only cost a compiler start.
    units = [unit for unit in units if sources[unit].strip()] or units[:1]
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=_build_prefix(key)) as work:
        work_path = Path(work)
        for name, text in sources.items():
            (work_path / name).write_text(text)
        output = work_path / "library.so"
        if len(units) == 1:
            command = [compiler.path, *flags, "-I", str(work_path), str(work_path / units[0]), "-o", str(output)]
            _run_compilers([(units[0], command)], compiler, timeout)
        else:
            # Compile the units side by side, then link; "-shared" belongs to the link step only.
            compile_flags = [f for f in flags if f != "-shared"]
            objects = [work_path / f"{unit}.o" for unit in units]
            _run_compilers(
                [(unit, [compiler.path, *compile_flags, "-c", "-I", str(work_path), str(work_path / unit), "-o",
                         str(obj)]) for unit, obj in zip(units, objects)],
                compiler, timeout,
            )
            link = [compiler.path, *flags, *(str(obj) for obj in objects), "-o", str(output)]
            _run_compilers([("the library", link)], compiler, timeout)
        record = {"format": _RECORD_FORMAT, "sha256": library_sha256(output), "size": output.stat().st_size}
        os.replace(output, target)
        # The record follows the library: a reader that sees the new library with the old record (or none)
        # finds a mismatch, waits for this lock and then finds both.
        _write_atomically(_record_path(target), json.dumps(record))


def load_library(path: Path) -> ctypes.CDLL:
    """Load a shared library in process (``RTLD_LOCAL``: two models never see each other's symbols).

    A library of the cache is checked against its recorded SHA-256 first (cheap when already checked in this
    process and unchanged), so a damaged file is reported instead of crashing the process inside ``dlopen``.
    """
    path = Path(path)
    if _recorded_sha256(path) is not None and not library_intact(path):
        raise CodegenError(
            f"the compiled library {path} was damaged after it was built (its SHA-256 no longer matches the "
            "cache record); it is rebuilt on the next call, so run again"
        )
    try:
        return ctypes.CDLL(str(path), mode=getattr(os, "RTLD_LOCAL", 0))
    except OSError as error:
        raise CodegenError(f"could not load the compiled library {path}: {error}") from error
