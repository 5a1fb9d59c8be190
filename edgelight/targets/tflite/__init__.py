"""LiteRT (.tflite) via litert-torch: fp32 and full-integer w8a8, shift/shuffle as builtin ops.

options: ``io`` ("float" | "int8": the w8a8 artifact's input/output type), ``shift`` (a form of
``edgelight.ops.lowering.SHIFT_FORMS``; default the measured best), ``shared_bn`` ("keep": a
BatchNorm after a reused conv stays a separate op so the weight is stored once; "fold": fp32
only, folds it, one weight copy per use, faster), ``ops`` ("lowered": builtin ops; "custom": edgelight's
kernels as LiteRT custom ops, run through LiteRT's CompiledModel C API). See docs/targets/tflite.md.
"""

from edgelight.targets.base import Exporter, Runtime, lazy, missing_module

OPTIONS = {
    "io": ("float", "int8"),  # int8: the w8a8 artifact takes and returns int8 tensors
    "shift": ("depthwise", "slices", "grouped"),  # how shift2d becomes builtin ops; the first is the measured best (bench/lowering.py)
    "shared_bn": ("keep", "fold"),  # fold (fp32 only): faster, but one weight copy per reuse
    # custom: shift2d / channel_shuffle as edgelight custom ops on LiteRT's CompiledModel (native/); the stock
    # interpreter cannot load such a file
    "ops": ("lowered", "custom"),
}

RUNTIME = Runtime(
    name="tflite",
    title="LiteRT (XNNPACK)",
    suffixes=(".tflite",),
    make_runner=lazy("edgelight.targets.tflite.runner:TFLiteRunner"),
    runnable_here=missing_module("ai_edge_litert.interpreter", "ai-edge-litert is not installed ({error}); pip install 'ai-edge-litert>=2.3,<2.4'"),
    preload=("ai_edge_litert.interpreter",),
    prepare=lazy("edgelight.targets.tflite.runner:prepare"),
    packages=("ai-edge-litert", "litert-torch"),
    color="#55a868",
    exporter=Exporter(
        precisions=("fp32", "w8a8"),
        lower=lazy("edgelight.targets.tflite.lowering:lower"),
        options=OPTIONS,
        aliases={"int8": "w8a8"},
        validate=lazy("edgelight.targets.tflite.lowering:validate"),
    ),
    inspect=lazy("edgelight.targets.tflite.runner:inspect_tflite"),
    no_profile="the ai-edge-litert Python Interpreter has no op profiler; run benchmark_model --enable_op_profiling for one",
    apps=("android",),
)
