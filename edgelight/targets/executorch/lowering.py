"""Lowering to a .pte: torch.export -> (PT2E w8a8) -> XNNPACK partition -> ExecuTorch program."""

from collections import Counter
from contextlib import nullcontext
from pathlib import Path

import torch

import edgelight.ops  # noqa: F401 (registers torch.ops.edgelight, named below)
from edgelight.errors import converter_errors
from edgelight.shared_weights import keep_shared_weights, reuse_note
from edgelight.targets.base import LoweringReport, LoweringRequest, OptionError, TargetError
from edgelight.targets.executorch import OPTIONS
from edgelight.targets.executorch.reuse_loop import loop_reused_blocks, lower_step, swap_in_bodies

# ops XNNPACK runs in int8 only when the output has its input's scale and zero point; and (ops=native) the
# shift and shuffle, which only move values: with their input's scale the int8 kernel is a plain copy
SAME_SCALE_OPS = (torch.ops.aten.constant_pad_nd.default, torch.ops.aten.pad.default, torch.ops.aten.max_pool2d.default,
                  torch.ops.edgelight.shift2d.default, torch.ops.edgelight.channel_shuffle.default)


def validate(precision: str, options: dict) -> None:
    """Option combinations, checked before any work (the pipeline calls this through the record)."""
    native = options["ops"] != "lowered"  # native custom ops or the EdgelightBackend delegate: the same kernels
    if options["fuse"] == "on" and not native:
        raise OptionError("executorch option fuse=on needs ops=native or ops=delegate (it fuses the native shift kernel into the next 1x1 conv)")
    if options["shift"] != OPTIONS["shift"][0] and native:
        raise OptionError(f"executorch option shift={options['shift']} picks a lowered form; it does not apply with ops={options['ops']}")
    if options["boundary"] != OPTIONS["boundary"][0] and not native:
        raise OptionError(f"executorch option boundary={options['boundary']} is where XNNPACK meets edgelight's kernels; it needs ops=native or ops=delegate")
    if options["reuse"] == "loop" and (native or precision != "fp32"):
        raise OptionError("executorch option reuse=loop is for fp32 with ops=lowered: an int8 reuse has its own requantization scales, which one delegate cannot take per step")


def _quantize(model: torch.nn.Module, example: torch.Tensor, calibration: list) -> tuple[torch.nn.Module, tuple[int, int]]:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer, get_symmetric_quantization_config

    from edgelight.quantize import QuantizationError, pt2e_quantize

    class SameScaleQuantizer(XNNPACKQuantizer):
        """XNNPACK takes an int8 constant pad or max pool only with its input's scale and zero point. The stock
        quantizer leaves a pad unannotated, so what follows observes scales of its own and the program fails
        to load (LruNet's zero pad before each max pool); here they share their input's."""

        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, SharedQuantizationSpec

            model = super().annotate(model)
            for node in model.graph.nodes:
                source = node.args[0] if node.target in SAME_SCALE_OPS else None
                annotation = source.meta.get("quantization_annotation") if isinstance(source, torch.fx.Node) else None
                if annotation is not None and annotation.output_qspec is not None and "quantization_annotation" not in node.meta:
                    shared = SharedQuantizationSpec(source)
                    node.meta["quantization_annotation"] = QuantizationAnnotation(input_qspec_map={source: shared}, output_qspec=shared, _annotated=True)
            return model

    quantizer = SameScaleQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    try:
        return pt2e_quantize(model, example, calibration, quantizer)
    except QuantizationError as e:
        raise TargetError(str(e)) from None


def _trace(request: LoweringRequest) -> tuple["torch.export.ExportedProgram", int, tuple[int, int], list]:
    """The exported program, how many BatchNorms follow a conv that runs more than once (LruNet's reuse),
    how many of them w8a8 folded into the reuses' requantization (fold_affines_into_reused_convs), and
    (reuse=loop) the lowered body of each looped block."""
    from edgelight.ops.lowering import lowered, shift_model

    options = {key: request.options.get(key, values[0]) for key, values in OPTIONS.items()}
    native = options["ops"] != "lowered"
    with torch.no_grad(), (nullcontext() if native else lowered(options["shift"])):
        model, steps = request.model if native else shift_model(request.model, options["shift"]), []
        if options["reuse"] == "loop" or (options["reuse"] == "auto" and not native and request.precision == "fp32"):
            model, steps = loop_reused_blocks(model, request.example)  # each LruBlock: one delegate run in a loop
        # A BatchNorm after a conv whose weight runs several times (LruNet, unrolled) must not be folded into it:
        # XNNPACK's fusion pass folds one use's BatchNorm into the shared weight and every other use computes
        # garbage (top-1 agreement 0%); PT2E's fusion leaves the later uses unquantized. Kept apart (a 1x1
        # depthwise conv), the weight stays one tensor, stored once, in fp32 and int8.
        model, reused = keep_shared_weights(model, request.example)
        folded = (0, 0)
        if request.precision == "w8a8":
            model, folded = _quantize(model, request.example, request.calibration)
        ep = torch.export.export(model, (request.example,))
        bodies = [lower_step(step, example, lambda body: _prepare(body, request.precision)) for step, example in steps]
    if native:
        from edgelight.targets.executorch.native import prepare_native

        ep = prepare_native(ep, request.precision, fuse=options["fuse"] == "on")
        if options["boundary"] == "channels-last":  # our ops on XNNPACK's own NHWC: no transpose at the boundaries
            from edgelight.targets.executorch.native import channels_last_boundaries

            channels_last_boundaries(ep)
    return _prepare(ep, request.precision), reused, folded, bodies


def _prepare(ep: "torch.export.ExportedProgram", precision: str) -> "torch.export.ExportedProgram":
    from executorch.exir.passes.constant_prop_pass import constant_prop_pass

    distinct_cat_inputs(ep)
    # fp32: the shift's one-hot weight is traced as a lift_fresh_copy, so XNNPACK would take the copy and
    # leave the conv on the portable kernel (30x slower); folding constants makes it a plain conv weight.
    # Not for w8a8: there the weights are already int8 parameters, and folding would turn their
    # dequantize into fp32 constants (a 2.6x larger, slower program).
    return constant_prop_pass(ep) if precision == "fp32" else ep


def distinct_cat_inputs(ep: "torch.export.ExportedProgram") -> int:
    """Make every input of a cat its own node; returns how many were split off.

    XNNPACK counts a cat's *distinct* inputs, so LruNet's channel duplication cat([x, x]) stays on the
    portable kernel and splits the delegate in two (a NHWC<->NCHW round trip each time). A copy of the
    repeated input (the dequantize itself in int8, a clone in fp32) keeps the whole graph in XNNPACK.
    """
    dequantize = torch.ops.quantized_decomposed.dequantize_per_tensor.default
    graph, split = ep.graph, 0
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target != torch.ops.aten.cat.default:
            continue
        inputs, seen = list(node.args[0]), set()
        for i, x in enumerate(inputs):
            if x in seen:
                with graph.inserting_before(node):
                    twin = graph.node_copy(x) if x.target == dequantize else graph.call_function(torch.ops.aten.clone.default, (x,))
                twin.meta = dict(x.meta)
                inputs[i], split = twin, split + 1
            seen.add(x)
        node.args = (inputs, *node.args[1:])
    if split:
        ep.graph_module.recompile()
    return split


def lower(request: LoweringRequest) -> LoweringReport:
    from executorch.devtools.backend_debug import get_delegation_info
    from executorch.exir import to_edge_transform_and_lower

    from edgelight.targets.executorch.delegate import partitioners

    with converter_errors("executorch lowering", TargetError):
        ep, reused, folded, bodies = _trace(request)
        # ops=delegate: edgelight's ops go to EdgelightBackend first, XNNPACK takes the rest
        edge = to_edge_transform_and_lower(ep, partitioner=partitioners(request.options.get("ops") == "delegate"))
        if bodies:
            swap_in_bodies(edge, bodies)
        info = get_delegation_info(edge.exported_program().graph_module)
        program = edge.to_executorch()
    Path(request.out_path).write_bytes(program.buffer)
    inventory = inspect_program(request.out_path)
    delegated, portable = info.num_delegated_nodes, info.num_non_delegated_nodes
    by_backend = ", ".join(f"{k} x{v}" for k, v in sorted(inventory["delegates"].items())) or "none"
    notes = [f"{delegated} of {delegated + portable} graph nodes delegated in {info.num_delegated_subgraphs} subgraph(s) ({by_backend})"]
    if inventory["operators"]:
        notes.append("outside the delegate: " + ", ".join(f"{k} x{v}" for k, v in sorted(inventory["operators"].items())))
    if note := reuse_note(reused, folded):
        notes.append(note)
    if bodies:
        notes.append(f"{len(bodies)} reused block(s) as loops: one reuse is one XNNPACK delegate (the shared weights, packed once at load) that the program runs once per reuse")
    from edgelight.targets.executorch.runner import NATIVE_KERNELS, WEIGHT_CACHE

    requires = [NATIVE_KERNELS] if needs_native_kernels(inventory) else []
    # fp32 only: XNNPACK's cache keys a packed weight by name, not by the int8 requantization scales
    runtime_options = {WEIGHT_CACHE: True} if reused and request.precision == "fp32" else {}
    if runtime_options:
        notes.append("reused conv weights: the runner turns on XNNPACK's weights cache so each is packed once per process")
    inventory_ops = inventory["operators"] | {f"delegate:{k}": v for k, v in inventory["delegates"].items()}
    return LoweringReport(inventory_ops, delegated / max(1, delegated + portable), notes, requires, runtime_options)


def needs_native_kernels(inventory: dict) -> bool:
    """A program that kept edgelight's ops or delegates to EdgelightBackend runs only with edgelight's library."""
    from edgelight.targets.executorch.runner import EDGELIGHT_BACKEND

    return any(op.startswith("edgelight::") for op in inventory["operators"]) or EDGELIGHT_BACKEND in inventory["delegates"]


def _input_spec(plan) -> dict | None:
    value = plan.values[plan.inputs[0]].val if plan.inputs else None
    if type(value).__name__ != "Tensor":
        return None
    return {"shape": [int(d) for d in value.sizes], "dtype": value.scalar_type.name.lower()}


def inspect_program(path: Path) -> dict:
    """Operators, delegate calls and the planned activation arena of a .pte read back from disk."""
    from executorch.exir._serialize._program import deserialize_pte_binary

    try:
        pte = deserialize_pte_binary(Path(path).read_bytes())
    except Exception as e:  # noqa: BLE001 (flatbuffer errors have many types; all mean "not a program")
        raise TargetError(f"'{path}' is not a readable ExecuTorch program ({type(e).__name__})") from None
    program = pte.program
    plan = program.execution_plan[0]
    operators = Counter()
    delegates = Counter(d.id for d in plan.delegates)
    for chain in plan.chains:
        for instr in chain.instructions:
            args = instr.instr_args
            if hasattr(args, "op_index"):
                op = plan.operators[args.op_index]
                operators[f"{op.name}.{op.overload}" if op.overload else op.name] += 1
    return {
        "operators": dict(operators),
        "delegates": dict(delegates),
        "planned_arena_bytes": int(sum(plan.non_const_buffer_sizes[1:])),
        "inputs": len(plan.inputs),
        "input": _input_spec(plan),
        # constants: XNNPACK's (named data, one entry per distinct content) + the program's own
        "weights_bytes": sum(len(b) for b in pte.named_data.buffers) + sum(len(b.storage) for b in program.constant_buffer),
    }
