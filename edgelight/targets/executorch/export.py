"""Lowering to a .pte: torch.export -> (PT2E int8) -> XNNPACK partition -> ExecuTorch program."""

from collections import Counter
from contextlib import nullcontext
from pathlib import Path

import torch

from edgelight.shared_weights import keep_shared_weights
from edgelight.targets.base import LoweringReport, LoweringRequest, OptionError, TargetError, check_options

OPTIONS = {
    "ops": ("lowered", "native"),  # lowered: builtin ops XNNPACK takes; native: custom ops on edgelight kernels
    "shift": ("depthwise", "slices"),  # the lowered form of shift2d; the first is the measured best (bench/lowering.py)
    "fuse": ("off", "on"),  # ops=native: fuse shift -> 1x1 conv into one kernel
}


def _quantize(model: torch.nn.Module, example: torch.Tensor, calibration: list) -> torch.nn.Module:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer, get_symmetric_quantization_config

    from edgelight.quantize import QuantizationError, pt2e_quantize

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    try:
        return pt2e_quantize(model, example, calibration, quantizer)
    except QuantizationError as e:
        raise TargetError(str(e)) from None


def _trace(request: LoweringRequest) -> "torch.export.ExportedProgram":
    from executorch.exir.passes.constant_prop_pass import constant_prop_pass

    from edgelight.ops.lowering import lowered

    options = check_options("executorch", OPTIONS, request.options)
    native = options["ops"] == "native"
    if options["fuse"] == "on" and not native:
        raise OptionError("executorch option fuse=on needs ops=native (it fuses the native shift kernel into the next 1x1 conv)")
    if options["shift"] != OPTIONS["shift"][0] and native:
        raise OptionError(f"executorch option shift={options['shift']} picks a lowered form; it does not apply with ops=native")
    with torch.no_grad(), (nullcontext() if native else lowered(options["shift"])):
        # A BatchNorm after a conv whose weight runs several times (LruNet) must not be folded into it:
        # XNNPACK's fusion pass folds one use's BatchNorm into the shared weight and every other use computes
        # garbage (top-1 agreement 0%); PT2E's fusion leaves the later uses unquantized. Kept apart (a 1x1
        # depthwise conv), the weight stays one tensor, stored once, in fp32 and int8.
        model, _ = keep_shared_weights(request.model, request.example)
        if request.precision == "int8":
            model = _quantize(model, request.example, request.calibration)
        ep = torch.export.export(model, (request.example,))
    if native:
        from edgelight.targets.executorch.native import prepare_native

        ep = prepare_native(ep, request.precision, fuse=options["fuse"] == "on")
    distinct_cat_inputs(ep)
    # fp32: the shift's one-hot weight is traced as a lift_fresh_copy, so XNNPACK would take the copy and
    # leave the conv on the portable kernel (30x slower); folding constants makes it a plain conv weight.
    # Not for int8: there the weights are already int8 parameters, and folding would turn their
    # dequantize into fp32 constants (a 2.6x larger, slower program).
    return constant_prop_pass(ep) if request.precision == "fp32" else ep


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
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.devtools.backend_debug import get_delegation_info
    from executorch.exir import to_edge_transform_and_lower

    if request.precision not in ("fp32", "int8"):
        raise TargetError(f"executorch exports fp32 or int8, not {request.precision}")
    edge = to_edge_transform_and_lower(_trace(request), partitioner=[XnnpackPartitioner()])
    info = get_delegation_info(edge.exported_program().graph_module)
    program = edge.to_executorch()
    Path(request.out_path).write_bytes(program.buffer)
    inventory = inspect_program(request.out_path)
    delegated, portable = info.num_delegated_nodes, info.num_non_delegated_nodes
    notes = [f"{delegated} of {delegated + portable} graph nodes delegated to XNNPACK in {info.num_delegated_subgraphs} subgraph(s)"]
    kept = {k: v for k, v in inventory["operators"].items()}
    if kept:
        notes.append("outside the delegate: " + ", ".join(f"{k} x{v}" for k, v in sorted(kept.items())))
    return LoweringReport(inventory["operators"] | {f"delegate:{k}": v for k, v in inventory["delegates"].items()}, delegated / max(1, delegated + portable), notes)


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
        # constants: XNNPACK's (named data, one entry per distinct content) + the program's own
        "weights_bytes": sum(len(b) for b in pte.named_data.buffers) + sum(len(b.storage) for b in program.constant_buffer),
    }
