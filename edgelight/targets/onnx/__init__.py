"""ONNX Runtime (.onnx): torch.onnx's exporter (dynamo, opset 18); w8a8 by onnxruntime's static QDQ quantizer.

shift2d is lowered like everywhere else (edgelight.ops.lowering): a frozen one-hot depthwise Conv by
default, or pad+slice+concat; channel_shuffle is Reshape/Transpose/Reshape. A BatchNorm after a reused
conv stays apart (edgelight.shared_weights) so LruNet's shared weights are one initializer each.
Verified and benchmarked with onnxruntime's CPU execution provider. See docs/targets/onnx.md.
"""

from edgelight.targets.base import Exporter, Runtime, lazy, missing_module

OPTIONS = {
    "shift": ("depthwise", "slices"),  # the lowered form of shift2d (bench/run_suite.py onnx measures both)
    "activations": ("uint8", "int8"),  # w8a8: the activations' integer type (weights are int8, per channel)
}

RUNTIME = Runtime(
    name="onnx",
    title="ONNX Runtime (CPU)",
    suffixes=(".onnx",),
    make_runner=lazy("edgelight.targets.onnx.runner:OnnxRunner"),
    runnable_here=missing_module("onnxruntime", "onnxruntime is not installed ({error}); pip install onnxruntime==1.32.0"),
    preload=("onnxruntime",),
    packages=("onnxruntime", "onnx", "onnxscript"),
    color="#8172b2",
    exporter=Exporter(
        precisions=("fp32", "w8a8"),
        lower=lazy("edgelight.targets.onnx.lowering:lower"),
        options=OPTIONS,
        aliases={"int8": "w8a8"},
    ),
    inspect=lazy("edgelight.targets.onnx.inspect:inspect_onnx"),
    profiler=lazy("edgelight.targets.onnx.runner:op_profile"),
    apps=("android",),
)
