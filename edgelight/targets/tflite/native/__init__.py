"""edgelight's shift and channel shuffle inside ai-edge-litert: LiteRT custom ops on LiteRT's CompiledModel.

ai-edge-litert's Python API has no way to add a custom op (its ``CompiledModel`` options take none), but the
wheel's ``libLiteRt.so`` exports the C API that does (``LiteRtAddCustomOpKernelOption``, the mechanism behind
LiteRT's C++ / Kotlin / Swift ``addCustomOpKernel``). ``libedgelight_litert.so`` (this folder) implements the
kernels against that C API and opens, runs and closes a CompiledModel with them; this module builds it on first
use, next to the ExecuTorch kernels' cache, and wraps it for the runner. ``$EDGELIGHT_LITERT_KERNELS`` names a
prebuilt library instead (the ARM64 lane's cross build: its Python has no torch and no compiler).
"""

import ctypes
import hashlib
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

from edgelight.targets.base import TargetError

SOURCE_DIR = Path(__file__).resolve().parent
LIB_NAME = "libedgelight_litert.so"
# every edgelight custom op code starts with CUSTOM_PREFIX; custom_ops.py writes them, the kernels parse them
CUSTOM_PREFIX, SHIFT_PREFIX = "Edgelight", "EdgelightShift2d"
_lib = None


def litert_library() -> Path:
    """The ai-edge-litert wheel's libLiteRt.so (the C API the custom ops and the runner link)."""
    import importlib.util

    from edgelight.ops.kernels import NativeKernelsError

    spec = importlib.util.find_spec("ai_edge_litert")
    lib = Path(list(spec.submodule_search_locations)[0]) / "libLiteRt.so" if spec and spec.submodule_search_locations else None
    if lib is None or not lib.exists():
        raise NativeKernelsError("edgelight's LiteRT custom ops need ai-edge-litert's libLiteRt.so; pip install 'ai-edge-litert>=2.3,<2.4'")
    return lib


def sources() -> list[Path]:
    """What libedgelight_litert.so is built from (this folder and the shared kernel header)."""
    from edgelight.ops.kernels import SOURCE_DIR as KERNELS_DIR

    return [*sorted(SOURCE_DIR.glob("*.cpp")), *sorted(SOURCE_DIR.glob("*.h")), SOURCE_DIR / "CMakeLists.txt", KERNELS_DIR / "src" / "edgelight_kernels.h"]


def build_litert_kernels(force: bool = False) -> Path:
    """Build libedgelight_litert.so for this machine and ai-edge-litert version, once (``force`` rebuilds)."""
    from edgelight.ops.kernels import build_once, cache_dir

    digest = hashlib.sha256()
    for path in sources():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(f"{metadata.version('ai-edge-litert')}|{platform.machine()}|{sys.platform}".encode())
    root = cache_dir() / f"litert-{digest.hexdigest()[:12]}"
    return build_once(LIB_NAME, root, {"EDGELIGHT_LITERT_LIBRARY": str(litert_library()), "EDGELIGHT_NATIVE_ARCH": "ON"}, force, SOURCE_DIR)


def load_library():
    """libedgelight_litert.so, built on first use and loaded once per process."""
    global _lib
    if _lib is None:
        path = os.environ.get("EDGELIGHT_LITERT_KERNELS") or str(build_litert_kernels())
        try:
            lib = ctypes.CDLL(path)
        except OSError as err:
            raise TargetError(f"could not load edgelight's LiteRT kernels {path}: {err}") from err
        lib.edgelight_litert_open.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int,
                                              ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_size_t]
        lib.edgelight_litert_io_bytes.argtypes, lib.edgelight_litert_io_bytes.restype = [ctypes.c_void_p, ctypes.c_int], ctypes.c_size_t
        lib.edgelight_litert_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        lib.edgelight_litert_close.argtypes, lib.edgelight_litert_close.restype = [ctypes.c_void_p], None
        _lib = lib
    return _lib


def custom_ops(inventory: dict) -> list[str]:
    """The edgelight custom op codes in an op inventory (``inspect_tflite``'s "CUSTOM:<code>" keys)."""
    return sorted(k.split(":", 1)[1] for k in inventory if k.startswith(f"CUSTOM:{CUSTOM_PREFIX}"))


class CustomOpModel:
    """A .tflite with edgelight custom ops on LiteRT's CompiledModel (CPU: XNNPACK plus edgelight's kernels)."""

    def __init__(self, path: Path, threads: int | None, op_codes: list[str], input_dtype, output_shape, output_dtype,
                 weight_cache: bool = False):
        lib = load_library()
        # LiteRT's CpuOptions as they serialize (litert/c/options/litert_cpu_options.cc): TOML lines
        cpu = (f"num_threads = {threads}\n" if threads else "") + ('weight_cache_file_path = ":memory"\n' if weight_cache else "")
        names = (ctypes.c_char_p * len(op_codes))(*[c.encode() for c in op_codes])
        handle, err = ctypes.c_void_p(), ctypes.create_string_buffer(512)
        if lib.edgelight_litert_open(str(path).encode(), cpu.encode(), names, len(op_codes), ctypes.byref(handle), err, len(err)):
            raise TargetError(f"LiteRT could not load '{path}' with edgelight's custom ops: {err.value.decode(errors='replace')}")
        self.lib, self.handle = lib, handle
        self.input_dtype = np.dtype(input_dtype)
        self.output = np.empty(output_shape, dtype=output_dtype)
        if lib.edgelight_litert_io_bytes(handle, 1) != self.output.nbytes:
            self.close()
            raise TargetError(f"'{path}': its output tensor does not match its flatbuffer's description")
        self.input_bytes = lib.edgelight_litert_io_bytes(handle, 0)

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=self.input_dtype)
        if x.nbytes != self.input_bytes:
            raise TargetError(f"input of {x.nbytes} bytes for a model that takes {self.input_bytes}")
        status = self.lib.edgelight_litert_run(self.handle, x.ctypes.data, self.output.ctypes.data)
        if status == -2:
            raise TargetError("an edgelight custom op refused its tensors (rank 4 expected, and the precision its name says)")
        if status:
            raise TargetError(f"LiteRT failed to run the model (status {status})")
        return self.output.copy()

    def close(self) -> None:
        if self.handle:
            self.lib.edgelight_litert_close(self.handle)
            self.handle = None


__all__ = ["CUSTOM_PREFIX", "SHIFT_PREFIX", "CustomOpModel", "build_litert_kernels", "custom_ops", "load_library", "sources"]
