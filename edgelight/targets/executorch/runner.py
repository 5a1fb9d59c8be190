"""Runs a .pte in ExecuTorch's Python runtime (the same C++ runtime and XNNPACK the apps link)."""

import contextlib
import warnings
from pathlib import Path

import numpy as np

from edgelight.targets.base import TargetError
from edgelight.utils.logs import native_log, quote_errors

NATIVE_KERNELS = "edgelight-native-kernels"  # in a sidecar's "requires": the program kept edgelight's ops
EDGELIGHT_BACKEND = "EdgelightBackend"  # the delegate in edgelight's kernel library (delegate.py)


def required(path: Path, requires: list[str] | None) -> list[str]:
    """What the artifact needs beyond the runtime: its sidecar says (written at export); else read the program."""
    if requires is None:  # a .pte made elsewhere: only its operator table can tell
        from edgelight.targets.executorch.lowering import inspect_program, needs_native_kernels

        requires = [NATIVE_KERNELS] if needs_native_kernels(inspect_program(path)) else []
    return requires


WEIGHT_CACHE = "xnnpack_weight_cache"  # a sidecar runtime option: pack each shared weight once (fp32 programs)


@contextlib.contextmanager
def xnnpack_weight_cache(enabled: bool):
    """XNNPACK's weights cache on while a program loads (packing happens at load), then back to what it was.

    The option is process-wide and the 1.5.1 cache keys a packed weight by its data's name only, not by the
    requantization scales: an int8 program whose uses of one weight have different scales would share one
    wrongly packed copy. So it is turned on only for the programs whose sidecar asks (fp32 with reuse).
    """
    from edgelight.ops.kernels import NativeKernelsError, get_backend_option, set_backend_option

    try:
        before = bool(get_backend_option("XnnpackBackend", "weight_cache_enabled")) if enabled else None
    except NativeKernelsError as e:  # no compiler here, say: the program still runs, packing a copy per use
        warnings.warn(f"XNNPACK's weights cache is unavailable ({e}); shared weights are packed once per use", stacklevel=3)
        before = None
    if before is None:
        yield
        return
    set_backend_option("XnnpackBackend", "weight_cache_enabled", True)
    try:
        yield
    finally:
        set_backend_option("XnnpackBackend", "weight_cache_enabled", before)


def prepare(hints: dict) -> None:
    """Load edgelight's native library when the program needs its kernels or the weights cache (set_option)."""
    from edgelight.ops.kernels import NativeKernelsError, load_native_kernels

    if NATIVE_KERNELS in (hints.get("requires") or []):
        load_native_kernels()
    elif hints.get("runtime_options", {}).get(WEIGHT_CACHE):
        with contextlib.suppress(NativeKernelsError):  # the load warns and runs without the cache
            load_native_kernels()


class ExecuTorchRunner:
    def load(self, path: Path, threads: int | None = None, hints: dict | None = None) -> None:
        import torch  # noqa: F401  (ExecuTorch's runtime links libtorch; load it first)
        from executorch.extension.pybindings import portable_lib
        from executorch.runtime import Runtime

        from edgelight.artifacts import runner_hints

        hints = runner_hints(path) if hints is None else hints
        if NATIVE_KERNELS in required(path, hints.get("requires")):
            from edgelight.ops.kernels import load_native_kernels  # programs that kept our ops need our kernels

            load_native_kernels()
        failure = None
        with native_log() as log:
            if threads:
                portable_lib._unsafe_reset_threadpool(threads)
            try:
                with xnnpack_weight_cache(bool(hints.get("runtime_options", {}).get(WEIGHT_CACHE))):
                    self.method = Runtime.get().load_program(Path(path)).load_method("forward")
            except Exception as e:  # noqa: BLE001 (the runtime raises RuntimeError/ValueError with its status code)
                failure = e
        if failure is not None:
            said = quote_errors(log)
            raise TargetError(f"ExecuTorch could not load '{path}': {failure}" + (f" (runtime: {said})" if said else ""))

    def run(self, x: np.ndarray) -> np.ndarray:
        import torch

        return self.method.execute([torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))])[0].numpy()

    def close(self) -> None:
        self.method = None
