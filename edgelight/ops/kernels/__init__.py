"""Build-on-first-use native ExecuTorch kernels for the edgelight ops.

``load_native_kernels()`` configures and builds this folder's CMake project against the installed
executorch wheel (its CMake package and ``libexecutorch.so``) into a cache directory keyed by the
sources, the executorch version and the machine, then dlopens the library with RTLD_GLOBAL: its static
initializers register ``edgelight::*.out`` kernels in the registry that ``executorch.runtime`` uses.

Cache: ``<root>/<key>``, root = ``$EDGELIGHT_KERNELS_DIR`` if set, else ``~/.cache/edgelight/kernels``.
"""

import ctypes
import fcntl
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from edgelight.errors import StepError

SOURCE_DIR = Path(__file__).resolve().parent
LIB_NAME = "libedgelight_kernels.so" if sys.platform != "darwin" else "libedgelight_kernels.dylib"
MIN_CMAKE = (3, 28)
_loaded: Path | None = None


class NativeKernelsError(StepError):
    """The native kernels could not be built or loaded (the message says why, in one line)."""


def _sources() -> list[Path]:
    # what the library is built from (tests/ only feeds the test and bench executables)
    return [SOURCE_DIR / "CMakeLists.txt"] + sorted(p for p in (SOURCE_DIR / "src").glob("*") if p.suffix in {".h", ".cpp"})


def _executorch_version() -> str:
    try:
        return metadata.version("executorch")
    except metadata.PackageNotFoundError as err:
        raise NativeKernelsError("executorch is not installed; pip install executorch==1.5.1") from err


def executorch_prefix() -> Path:
    """<site-packages>/executorch, the root of the wheel's CMake package."""
    import importlib.util

    spec = importlib.util.find_spec("executorch")
    if spec is None or not spec.submodule_search_locations:
        raise NativeKernelsError("executorch is not installed; pip install executorch==1.5.1")
    root = Path(list(spec.submodule_search_locations)[0])
    if not (root / "share" / "cmake" / "executorch-config.cmake").exists():
        raise NativeKernelsError(f"the executorch wheel at {root} ships no CMake package (needs executorch >= 1.5)")
    return root


def cache_dir() -> Path:
    """<root>/<key>: root is $EDGELIGHT_KERNELS_DIR or ~/.cache/edgelight/kernels; the key changes with the
    sources, the executorch version and the machine, so a stale library is never loaded."""
    digest = hashlib.sha256()
    for path in _sources():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(f"{_executorch_version()}|{platform.machine()}|{sys.platform}".encode())
    root = os.environ.get("EDGELIGHT_KERNELS_DIR") or Path.home() / ".cache" / "edgelight" / "kernels"
    return Path(root).expanduser() / digest.hexdigest()[:16]


def find_cmake() -> str:
    """A cmake >= 3.28: the one next to this interpreter (pip install cmake) first, then PATH."""
    candidates = [Path(sys.executable).parent / "cmake", shutil.which("cmake")]
    seen = []
    for cand in candidates:
        if not cand or not Path(cand).exists():
            continue
        out = subprocess.run([str(cand), "--version"], capture_output=True, text=True).stdout
        match = re.search(r"version (\d+)\.(\d+)", out)
        if match and (int(match[1]), int(match[2])) >= MIN_CMAKE:
            return str(cand)
        seen.append(f"{cand} ({match[0] if match else 'unknown version'})")
    found = f"; found {', '.join(seen)}" if seen else ""
    raise NativeKernelsError(f"native kernels need cmake >= 3.28 (pip install 'cmake>=3.28' ninja){found}")


def _find_compiler() -> str:
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if not cxx:
        raise NativeKernelsError("native kernels need a C++17 compiler (apt-get install g++, or set CXX)")
    return cxx


def _run(cmd: list[str], log: Path, what: str) -> None:
    with open(log, "a") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        first = next((i for i, ln in enumerate(lines) if "CMake Error" in ln or "error:" in ln), None)
        # a CMake error puts its message on the next line; a compiler error on the same one
        hint = "" if first is None else ": " + " ".join(lines[first : first + 2])[:240]
        raise NativeKernelsError(f"native kernel {what} failed (log: {log}){hint}")


def configure_and_build(build_dir: Path, options: dict[str, str] | None = None, targets: list[str] | None = None,
                        source_dir: Path = SOURCE_DIR) -> None:
    """cmake configure + build of this project (or another edgelight CMake project, ``source_dir``) into
    ``build_dir`` (also used by the tests for test binaries)."""
    cmake, cxx = find_cmake(), _find_compiler()
    build_dir.mkdir(parents=True, exist_ok=True)
    log = build_dir / "build.log"
    cmd = [cmake, "-S", str(source_dir), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_CXX_COMPILER={cxx}"]
    if source_dir == SOURCE_DIR:
        cmd.append(f"-DCMAKE_PREFIX_PATH={executorch_prefix()}")
    ninja = Path(sys.executable).parent / "ninja"
    ninja = str(ninja) if ninja.exists() else shutil.which("ninja")
    if ninja and not (build_dir / "CMakeCache.txt").exists():
        cmd += ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"]
    cmd += [f"-D{k}={v}" for k, v in (options or {}).items()]
    _run(cmd, log, "configure")
    jobs = os.environ.get("EDGELIGHT_BUILD_JOBS", "2")
    build = [cmake, "--build", str(build_dir), "--parallel", jobs]
    for target in targets or []:
        build += ["--target", target]
    _run(build, log, "build")


def build_once(name: str, root: Path, options: dict[str, str], force: bool, source_dir: Path = SOURCE_DIR) -> Path:
    """Build CMake target ``name`` into ``root/name`` once (``force`` rebuilds), safe across processes."""
    out = root / name
    if out.exists() and not force:
        return out
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build per cache dir across processes
        if out.exists() and not force:
            return out
        with tempfile.TemporaryDirectory(dir=root, prefix="build-") as tmp:
            configure_and_build(Path(tmp), options, [name], source_dir)
            staged = root / (name + ".tmp")
            shutil.copy2(Path(tmp) / name, staged)
            shutil.copy2(Path(tmp) / "build.log", root / f"{name}.build.log")
            os.replace(staged, out)  # atomic: a concurrent loader sees the old or the new file
    return out


def build_native_kernels(force: bool = False) -> Path:
    """Build the kernel library into the cache (once; ``force`` rebuilds) and return its path."""
    return build_once(LIB_NAME, cache_dir(), {"EDGELIGHT_NATIVE_ARCH": "ON"}, force)


def build_bench_runner(force: bool = False) -> Path:
    """Build ``edgelight-bench`` (runner/, the native .pte runner) for this machine, once, and return its path."""
    digest = hashlib.sha256()
    for path in [SOURCE_DIR / "CMakeLists.txt", *sorted((SOURCE_DIR / "runner").glob("*"))]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    # no -march=native: the runner's figures are compared with the Python runtime's, built for any x86-64
    return build_once("edgelight-bench", cache_dir() / f"runner-{digest.hexdigest()[:12]}", {"EDGELIGHT_BENCH_RUNNER": "ON"}, force)


def load_native_kernels() -> Path:
    """Build if needed, then load the kernels into this process; returns the library path (idempotent)."""
    global _loaded
    if _loaded is not None:
        return _loaded
    import edgelight.ops.fused  # noqa: F401  (the Python schemas of the fused/quantized ops)

    try:
        from executorch.runtime import Runtime
    except ImportError as err:
        raise NativeKernelsError(f"executorch runtime is not importable: {err}") from err
    lib = build_native_kernels()
    runtime = Runtime.get()  # loads libexecutorch.so first; the kernel library then registers into it
    try:
        ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
    except OSError as err:
        raise NativeKernelsError(f"could not load {lib}: {err}") from err
    names = set(runtime.operator_registry.operator_names)
    if "edgelight::shift2d.out" not in names:
        raise NativeKernelsError(f"{lib} loaded but registered no edgelight kernels (a different libexecutorch.so?)")
    _loaded = lib
    return lib


def _backend_call(name: str):
    load_native_kernels()
    fn = getattr(ctypes.CDLL(str(_loaded), mode=ctypes.RTLD_GLOBAL), name)
    fn.restype = ctypes.c_int
    return fn


def set_backend_option(backend: str, key: str, value: bool | int) -> None:
    """``executorch::runtime::set_option`` on this process's runtime (process-wide; before a program loads)."""
    fn = _backend_call("edgelight_set_backend_option_bool" if isinstance(value, bool) else "edgelight_set_backend_option_int")
    err = fn(backend.encode(), key.encode(), ctypes.c_int(int(value)))
    if err:
        raise NativeKernelsError(f"ExecuTorch refused backend option {backend}.{key}={value} (error 0x{err:x})")


def get_backend_option(backend: str, key: str) -> int:
    value = ctypes.c_int(0)
    err = _backend_call("edgelight_get_backend_option")(backend.encode(), key.encode(), ctypes.byref(value))
    if err:
        raise NativeKernelsError(f"ExecuTorch has no backend option {backend}.{key} (error 0x{err:x})")
    return value.value


__all__ = ["NativeKernelsError", "build_bench_runner", "build_once", "build_native_kernels", "cache_dir", "configure_and_build", "load_native_kernels"]
