"""ExecuTorch (.pte) with the XNNPACK delegate; int8 by PT2E (XNNPACKQuantizer, per-channel).

shift2d and channel_shuffle are lowered at trace time (edgelight.ops.lowering): the
shift as a frozen one-hot depthwise conv, which XNNPACK runs in fp32 and int8 (the
pad+slice+cat form makes an int8 program XNNPACK refuses to load), the shuffle as a
rank-4 reshape/transpose. ``options={"ops": "native"}`` keeps them as custom ops for
edgelight's native kernels instead (edgelight/targets/executorch/native.py).
"""

from edgelight.targets.base import Target, missing_module
from edgelight.targets.executorch.export import OPTIONS, inspect_program, lower
from edgelight.targets.executorch.runner import ExecuTorchRunner


_runnable = missing_module("executorch.runtime", "the ExecuTorch Python runtime is not importable ({error})")


TARGET = Target("executorch", ".pte", ("fp32", "int8"), lower, ExecuTorchRunner, _runnable, "fp32", inspect_program, OPTIONS)
