"""ExecuTorch (.pte) with the XNNPACK delegate; w8a8 by PT2E (XNNPACKQuantizer, per-channel).

shift2d and channel_shuffle are lowered at trace time (edgelight.ops.lowering): the
shift as a frozen one-hot depthwise conv, which XNNPACK runs in fp32 and int8 (the
pad+slice+cat form makes an int8 program XNNPACK refuses to load), the shuffle as a
rank-4 reshape/transpose. ``options={"ops": "native"}`` keeps them as custom ops for
edgelight's native kernels instead (edgelight/targets/executorch/native.py), and
``{"ops": "delegate"}`` runs those kernels as the EdgelightBackend delegate (delegate.py).
"""

from edgelight.targets.base import Exporter, Runtime, lazy, missing_module

OPTIONS = {
    # lowered: builtin ops XNNPACK takes; native: custom ops on edgelight kernels; delegate: the same kernels
    # behind the EdgelightBackend delegate (delegate.py)
    "ops": ("lowered", "native", "delegate"),
    "shift": ("depthwise", "slices", "grouped"),  # the lowered form of shift2d; the first is the measured best (bench/lowering.py)
    "fuse": ("off", "on"),  # ops=native/delegate: fuse shift -> 1x1 conv into one kernel
    # ops=native/delegate, where XNNPACK's partitions meet our kernels: transpose = NCHW tensors (XNNPACK
    # transposes at each edge, our kernels copy whole planes); channels-last = XNNPACK's own NHWC, no transpose,
    # our kernels gather per pixel. The first is the measured faster (bench/boundaries.py, docs/kernels.md)
    "boundary": ("transpose", "channels-last"),
    # LruNet's reused blocks: one delegate run R times by a loop (reuse_loop.py), or R copies in the graph;
    # auto: the loop in fp32 (packed once on any runtime, smaller, faster to lower), copies in int8 (per-use scales)
    "reuse": ("auto", "loop", "unrolled"),
}

RUNTIME = Runtime(
    name="executorch",
    title="ExecuTorch (XNNPACK)",
    suffixes=(".pte",),
    make_runner=lazy("edgelight.targets.executorch.runner:ExecuTorchRunner"),
    runnable_here=missing_module("executorch.runtime", "the ExecuTorch Python runtime is not importable ({error})"),
    preload=("torch", "executorch.runtime"),
    prepare=lazy("edgelight.targets.executorch.runner:prepare"),
    packages=("executorch", "torch"),
    color="#dd8452",
    exporter=Exporter(
        precisions=("fp32", "w8a8"),
        lower=lazy("edgelight.targets.executorch.lowering:lower"),
        options=OPTIONS,
        aliases={"int8": "w8a8"},
        validate=lazy("edgelight.targets.executorch.lowering:validate"),
    ),
    inspect=lazy("edgelight.targets.executorch.lowering:inspect_program"),
    profiler=lazy("edgelight.targets.executorch.profile:op_profile"),
    apps=("android",),
    listed_by=("ios",),  # the iOS demo lists .pte files; its engine is Core ML
)
