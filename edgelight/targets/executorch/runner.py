"""Runs a .pte in ExecuTorch's Python runtime (the same C++ runtime and XNNPACK the apps link)."""

from pathlib import Path

import numpy as np

from edgelight.targets.base import TargetError, native_log, quote_errors


class ExecuTorchRunner:
    def load(self, path: Path, threads: int | None = None) -> None:
        import torch  # noqa: F401  (ExecuTorch's runtime links libtorch; load it first)
        from executorch.extension.pybindings import portable_lib
        from executorch.runtime import Runtime

        from edgelight.targets.executorch.export import inspect_program

        if any(op.startswith("edgelight::") for op in inspect_program(path)["operators"]):
            from edgelight.ops.kernels import load_native_kernels  # programs that kept our ops need our kernels

            load_native_kernels()
        failure = None
        with native_log() as log:
            if threads:
                portable_lib._unsafe_reset_threadpool(threads)
            try:
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
