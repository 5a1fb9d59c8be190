"""LiteRT (.tflite) via litert-torch: fp32 and full-integer int8, shift/shuffle as builtin ops.

options: ``io`` ("float" | "int8": the int8 artifact's input/output type), ``shift`` (a form of
``edgelight.ops.lowering.SHIFT_FORMS``; default the measured best), ``shared_bn`` ("keep": a
BatchNorm after a reused conv stays a separate op so the weight is stored once; "fold": fp32
only, folds it, one weight copy per use, faster). See docs/targets/tflite.md.
"""

from edgelight.targets.base import Target, missing_module
from edgelight.targets.tflite.lowering import OPTIONS, lower
from edgelight.targets.tflite.runner import TFLiteRunner, inspect_tflite


_runnable_here = missing_module("ai_edge_litert.interpreter", "ai-edge-litert is not installed ({error}); pip install 'ai-edge-litert>=2.3,<2.4'")


TARGET = Target("tflite", ".tflite", ("fp32", "int8"), lower, TFLiteRunner, _runnable_here, "fp32", inspect_tflite, OPTIONS)
