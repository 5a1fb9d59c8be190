"""Core ML (.mlpackage): torch.export -> coremltools mlprogram, iOS 17, classifier with metadata.

Precisions: fp16 (default), fp32, w8 (int8 weights, fp16 compute), w8a8 (macOS only: coremltools
calibrates activations by running Core ML). Off macOS an exported package is verified by reading it
back (its spec, ops and weights), since no Core ML runtime exists here. See lowering.py and ops.py.
"""

from edgelight.targets.base import Exporter, Runtime, lazy

OPTIONS = {
    "shift": ("conv", "slices"),  # the MIL composite for shift2d
}

RUNTIME = Runtime(
    name="coreml",
    title="Core ML",
    suffixes=(".mlpackage",),
    make_runner=lazy("edgelight.targets.coreml.runner:CoreMLRunner"),
    runnable_here=lazy("edgelight.targets.coreml.runner:runnable_here"),
    preload=("coremltools",),
    packages=("coremltools",),
    color="#c44e52",
    exporter=Exporter(
        precisions=("fp16", "fp32", "w8", "w8a8"),
        lower=lazy("edgelight.targets.coreml.lowering:lower"),
        options=OPTIONS,
        default_precision="fp16",
        validate=lazy("edgelight.targets.coreml.lowering:validate"),
    ),
    inspect=lazy("edgelight.targets.coreml.lowering:inspect"),
    no_profile="Core ML gives no per-op timing through coremltools",
    apps=("ios",),
    bench_precisions=("fp16",),  # what quickstart and the suites measure: the package the iOS app runs by default
)
