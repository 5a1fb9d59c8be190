"""PyTorch -> .tflite with litert-torch: fp32, or full-integer w8a8 through PT2E.

Three things the stock path gets wrong for our models, fixed here:
- shift2d / channel_shuffle are traced as builtins (``edgelight.ops.lowering.lowered``);
- a BatchNorm after a *shared* conv (LruNet) is folded by the LiteRT converter into the
  conv weight, one copy per use (lrunet-14-1x: 6.3 MB instead of ~0.9 MB); those BNs stay
  separate ops (edgelight.shared_weights), so the shared weight is stored once;
- torch 2.13's non-strict torch.export drops ``source_fn_stack``, so PT2EQuantizer's
  add / cat / max_pool annotators match nothing and leave float islands (DEQUANTIZE ->
  ADD -> QUANTIZE). We restore the tag, and share qparams through layout ops.
"""

import contextlib
import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgelight.errors import converter_errors
from edgelight.shared_weights import keep_shared_weights, reuse_note
from edgelight.targets.base import LoweringReport, LoweringRequest, OptionError, TargetError
from edgelight.targets.tflite import OPTIONS
from edgelight.utils.logs import native_log


def validate(precision: str, options: dict) -> None:
    """Option combinations, checked before any work (the pipeline calls this through the record)."""
    if options["io"] == "int8" and precision != "w8a8":
        raise OptionError("tflite option io='int8' needs precision w8a8")
    if options["shared_bn"] == "fold" and precision == "w8a8":
        raise OptionError("tflite option shared_bn='fold' is fp32 only (w8a8 keeps per-use BatchNorms apart)")


def _quantizer():
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, SharedQuantizationSpec

    aten = torch.ops.aten
    # what PT2EQuantizer's source-partition annotators look for, keyed by the aten op. Not cat: its
    # annotator maps a repeated input (LruNet's cat([x, x])) to a qspec shared with itself -> endless recursion.
    sources = {
        aten.add.Tensor: torch.add, aten.add_.Tensor: torch.add,
        aten.relu.default: nn.ReLU, aten.relu_.default: nn.ReLU,
        aten.max_pool2d.default: nn.MaxPool2d, aten.max_pool2d_with_indices.default: nn.MaxPool2d,
    }
    # ops that move or pick values without changing them: output shares the input's qparams
    passthrough = {
        aten.reshape.default, aten.view.default, aten._unsafe_view.default, aten.transpose.int, aten.permute.default,
        aten.slice.Tensor, aten.select.int, aten.constant_pad_nd.default, aten.pad.default, aten.clone.default,
        aten.contiguous.default, aten.flatten.using_ints, aten.unsqueeze.default, aten.squeeze.dim, aten.stack.default,
        aten.cat.default, torch.ops.edgelight.shift2d.default, torch.ops.edgelight.channel_shuffle.default,
    }

    class EdgelightQuantizer(PT2EQuantizer):
        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            for node in model.graph.nodes:
                if node.op == "call_function" and node.target in sources and not node.meta.get("source_fn_stack"):
                    node.meta["source_fn_stack"] = [(node.name, sources[node.target])]
            model = super().annotate(model)
            for node in model.graph.nodes:  # topological order: chains of layout ops propagate
                if node.op != "call_function" or node.target not in passthrough or "quantization_annotation" in node.meta:
                    continue
                first = node.args[0][0] if node.target in (aten.cat.default, aten.stack.default) else node.args[0]
                if not isinstance(first, torch.fx.Node):
                    continue
                src = first.meta.get("quantization_annotation")
                if src is None or src.output_qspec is None:
                    continue
                shared = SharedQuantizationSpec(first)
                inputs = node.args[0] if node.target in (aten.cat.default, aten.stack.default) else [first]
                node.meta["quantization_annotation"] = QuantizationAnnotation(
                    input_qspec_map={i: shared for i in inputs if isinstance(i, torch.fx.Node)}, output_qspec=shared, _annotated=True
                )
            return model

    return EdgelightQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))


def convert(model: nn.Module, example: torch.Tensor, precision: str, calibration: list, shift: str, shared_bn: str = "keep",
            shuffle=None, ops: str = "lowered"):
    """Trace and convert; returns (litert-torch exported model, BNs kept unfused, (BNs folded in w8a8, with own codes)).

    ``shuffle`` replaces the channel_shuffle lowering (the benchmark's naive 5-D form uses it); ``ops="custom"``
    keeps shift2d / channel_shuffle as edgelight's custom ops (custom_ops.py) instead of builtins.
    """
    import litert_torch

    from edgelight.ops._library import ACTIVE_LOWERING
    from edgelight.ops.lowering import lowered, shift_model

    if ops == "custom":
        import edgelight.targets.tflite.custom_ops  # noqa: F401  (registers the NHWC twins and their lowerings)
    unfused, model = 0, model if ops == "custom" else shift_model(model, shift)
    if shared_bn == "keep" or precision == "w8a8":  # PT2E's conv-bn fusion would also rewrite a shared weight
        model, unfused = keep_shared_weights(model, example)
    with lowered(shift=shift) if ops == "lowered" else contextlib.nullcontext(), torch.no_grad():
        if shuffle is not None:
            ACTIVE_LOWERING.set({**ACTIVE_LOWERING.get(), "channel_shuffle": shuffle})  # undone when lowered() exits
        if precision == "fp32":
            return litert_torch.convert(model, (example,)), unfused, (0, 0)
        from litert_torch.quantize.quant_config import QuantConfig

        from edgelight.quantize import QuantizationError, pt2e_quantize

        quantizer = _quantizer()
        try:
            quantized, folded = pt2e_quantize(model, example, calibration, quantizer, fold_quantize=False)
        except QuantizationError as e:
            raise TargetError(str(e)) from None
        return litert_torch.convert(quantized, (example,), quant_config=QuantConfig(pt2e_quantizer=quantizer)), unfused, folded


def int8_custom_ops(data: bytes) -> bytes:
    """DEQUANTIZE -> edgelight custom op -> QUANTIZE, one scale and zero point on both sides (the quantizer shares
    them), becomes the custom op on the int8 tensor: no float round trip. A shift's int8 name carries the zero
    point, its border fill (custom_ops.int8_shift_code). The converter cannot type a custom op int8 itself:
    litert-torch resolves quantized types after lowering, in converter passes that know only builtins."""
    from ai_edge_litert import schema_py_generated as fb

    from edgelight.targets.tflite.custom_ops import CUSTOM_PREFIX, SHIFT_PREFIX, int8_shift_code

    model = _unpack(data)
    graph, codes = model.subgraphs[0], model.operatorCodes
    builtin = lambda op: max(codes[op.opcodeIndex].builtinCode, codes[op.opcodeIndex].deprecatedBuiltinCode)  # noqa: E731
    readers = {}
    for op in graph.operators:
        for t in op.inputs:
            readers.setdefault(t, []).append(op)
    producer = {t: op for op in graph.operators for t in op.outputs}

    def params(t):
        q = graph.tensors[t].quantization
        ok = graph.tensors[t].type == fb.TensorType.INT8 and q is not None and len(q.scale) == 1
        return (float(q.scale[0]), int(q.zeroPoint[0])) if ok else None

    def opcode(name: bytes) -> int:
        for i, c in enumerate(codes):
            if c.customCode == name:
                return i
        code = fb.OperatorCodeT()
        code.builtinCode, code.deprecatedBuiltinCode, code.customCode, code.version = fb.BuiltinOperator.CUSTOM, fb.BuiltinOperator.CUSTOM, name, 1
        codes.append(code)
        return len(codes) - 1

    dropped = set()
    for op in list(graph.operators):
        name = codes[op.opcodeIndex].customCode or b""
        if builtin(op) != fb.BuiltinOperator.CUSTOM or not name.startswith(CUSTOM_PREFIX.encode()):
            continue
        dq, users = producer.get(op.inputs[0]), readers.get(op.outputs[0], [])
        if dq is None or builtin(dq) != fb.BuiltinOperator.DEQUANTIZE or len(readers[op.inputs[0]]) != 1:
            continue
        if len(users) != 1 or builtin(users[0]) != fb.BuiltinOperator.QUANTIZE or op.outputs[0] in graph.outputs:
            continue
        q = users[0]
        src, dst = params(dq.inputs[0]), params(q.outputs[0])
        if src is None or src != dst:
            continue
        if name.startswith(SHIFT_PREFIX.encode()):
            name = int8_shift_code(name.decode(), src[1]).encode()
        op.opcodeIndex, op.inputs, op.outputs = opcode(name), [dq.inputs[0]], [q.outputs[0]]
        dropped |= {id(dq), id(q)}
    graph.operators = [op for op in graph.operators if id(op) not in dropped]
    return _pack(model, len(data))


def float_io(data: bytes) -> bytes:
    """Give a full-int8 model float32 I/O: a QUANTIZE after each int8 input, a DEQUANTIZE before each output.

    litert-torch's PT2E path always writes int8 graph inputs/outputs; the inverse, int8 -> float,
    would be ai_edge_litert's modify_model_interface.
    """
    from ai_edge_litert import schema_py_generated as fb

    model = _unpack(data)
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]

    def opcode(builtin: int) -> int:
        if builtin not in codes:
            code = fb.OperatorCodeT()
            code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), 1
            model.operatorCodes.append(code)
            codes.append(builtin)
        return codes.index(builtin)

    graph = model.subgraphs[0]
    remap = {}

    def float_twin(index: int, suffix: str) -> int:
        twin = copy.deepcopy(graph.tensors[index])
        twin.type, twin.quantization, twin.buffer = fb.TensorType.FLOAT32, None, 0
        twin.name = (twin.name or b"") + suffix.encode()
        graph.tensors.append(twin)
        remap[index] = len(graph.tensors) - 1
        return remap[index]

    def op(code: int, src: int, dst: int):
        o = fb.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = code, [src], [dst]
        return o

    heads = [op(opcode(fb.BuiltinOperator.QUANTIZE), float_twin(i, "_float"), i) for i in graph.inputs if graph.tensors[i].type == fb.TensorType.INT8]
    tails = [op(opcode(fb.BuiltinOperator.DEQUANTIZE), o, float_twin(o, "_float")) for o in graph.outputs if graph.tensors[o].type == fb.TensorType.INT8]
    graph.operators = heads + list(graph.operators) + tails
    graph.inputs = [remap.get(i, i) for i in graph.inputs]
    graph.outputs = [remap.get(o, o) for o in graph.outputs]
    for sig in model.signatureDefs or []:
        for t in list(sig.inputs or []) + list(sig.outputs or []):
            t.tensorIndex = remap.get(t.tensorIndex, t.tensorIndex)
    return _pack(model, len(data))


def _unpack(data: bytes):
    from ai_edge_litert import schema_py_generated as fb

    return fb.ModelT.InitFromPackedBuf(bytearray(data), 0)


def _pack(model, size_hint: int) -> bytes:
    import flatbuffers

    class SharingBuilder(flatbuffers.Builder):
        """Writes each distinct quantization vector once; tensors with equal ones point at that copy.

        A per-channel int8 tensor stores a scale and an int64 zero point per channel; LruNet's per-use
        weights and biases repeat the same all-zero vectors 112 times (~0.6 MB of lrunet-14-1x's 1.5 MB).
        A flatbuffer vector may be referenced from several tables; the interpreter reads it the same way.
        """

        def __init__(self, size: int):
            super().__init__(size)
            self.vectors = {}

        def CreateNumpyVector(self, x):  # noqa: N802 (flatbuffers' name)
            if x.dtype not in (np.int64, np.float32):
                return super().CreateNumpyVector(x)
            key = (x.dtype.str, x.tobytes())
            if key not in self.vectors:
                self.vectors[key] = super().CreateNumpyVector(x)
            return self.vectors[key]

    builder = SharingBuilder(size_hint + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@contextlib.contextmanager
def _quiet_progress():
    from litert_torch import progress

    was, progress.console.quiet = progress.console.quiet, True
    try:
        yield
    finally:
        progress.console.quiet = was


def lower(request: LoweringRequest) -> LoweringReport:
    from edgelight.targets.tflite.runner import inspect_tflite, xnnpack_partitions

    precision = request.precision
    options = {key: request.options.get(key, values[0]) for key, values in OPTIONS.items()}
    io, shift, shared_bn, ops = options["io"], options["shift"], options["shared_bn"], options["ops"]
    if precision == "w8a8" and not request.calibration:
        raise TargetError("w8a8 needs calibration data; pass calibration images (the pipeline uses the train split)")
    example = torch.as_tensor(request.example, dtype=torch.float32)
    # the converter reports every stage (rich on stdout, absl/TF logs on stderr); its errors are MLIR dumps
    with native_log(), _quiet_progress(), converter_errors(f"litert-torch conversion ({precision}, shift={shift}, ops={ops})", TargetError):
        edge, unfused, folded = convert(request.model, example, precision, request.calibration, shift, shared_bn, ops=ops)
        data = edge.model_content()
    if precision == "w8a8" and ops == "custom":
        data = int8_custom_ops(data)
    if precision == "w8a8":  # re-packed either way: _pack writes equal quantization vectors once
        data = float_io(data) if io == "float" else _pack(_unpack(data), len(data))
    out_path = Path(request.out_path)
    out_path.write_bytes(data)
    spec = inspect_tflite(out_path)
    notes = [f"shift lowered as '{shift}'" if ops == "lowered" else "shift2d / channel_shuffle kept as edgelight custom ops", f"{precision} with {spec['inputs'][0]['dtype']} input / {spec['outputs'][0]['dtype']} output"]
    if note := reuse_note(unfused, folded):
        notes.append(note)
    from edgelight.targets.tflite.native import custom_ops
    from edgelight.targets.tflite.runner import LITERT_KERNELS, WEIGHT_CACHE

    requires = []
    if custom := custom_ops(spec["ops"]):
        requires = [LITERT_KERNELS]
        notes.append(f"edgelight custom ops {', '.join(custom)}: runs on LiteRT's CompiledModel with edgelight's kernels, "
                     "not on the stock interpreter")
    else:
        partitions = xnnpack_partitions(out_path)
        notes.append(f"XNNPACK partitions: {partitions}" + ("" if partitions == 1 else " (some ops run on LiteRT's own kernels between them)"))

    # fp32 only: XNNPACK's cache keys a packed weight by its buffer, not by the int8 requantization scales
    runtime_options = {WEIGHT_CACHE: True} if unfused and precision == "fp32" else {}
    if runtime_options:
        notes.append("reused conv weights: the runner uses LiteRT's CompiledModel with XNNPACK's weights cache, each packed once")
    return LoweringReport(op_inventory=spec["ops"], delegated_fraction=None, notes=notes, requires=requires, runtime_options=runtime_options)


__all__ = ["OPTIONS", "convert", "float_io", "int8_custom_ops", "lower"]
