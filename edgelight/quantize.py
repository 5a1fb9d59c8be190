"""PT2E static int8 quantization, shared by every target that quantizes in PyTorch (ExecuTorch, LiteRT).

The model is exported once with a dynamic batch dimension so that calibration runs in batches of
``CALIBRATION_BATCH`` (a HistogramObserver call costs about the same for 1 image or 32), then
converted; the caller re-exports the converted module at the artifact's fixed input shape.
"""

import torch

from edgelight.errors import UsageError
from edgelight.shared_weights import exact_scales_for_folded_weights, fold_affines_into_reused_convs

CALIBRATION_BATCH = 32


class QuantizationError(UsageError):
    """Calibration data that cannot calibrate this model."""


def calibrate_batches(calibration: list, example: torch.Tensor) -> list[torch.Tensor]:
    """The calibration tensors re-cut into batches of CALIBRATION_BATCH with the example's C, H, W."""
    if not calibration:
        raise QuantizationError("int8 needs calibration data (--calib digits, or a folder of inputs)")
    data = torch.cat([torch.as_tensor(c, dtype=torch.float32) for c in calibration])
    if tuple(data.shape[1:]) != tuple(example.shape[1:]):
        raise QuantizationError(f"calibration inputs are {list(data.shape[1:])}, the model takes {list(example.shape[1:])}")
    return list(data.split(CALIBRATION_BATCH))


def untie_shared_weights(gm: torch.fx.GraphModule) -> int:
    """Give each use of a weight that feeds several convs its own graph node (equal values); returns how many.

    PT2E quantizers annotate a weight node once, so the second and later uses of a shared conv weight
    (LruNet's reuse) would stay fp32. Untied, every use quantizes to the same int8 values, which the
    serializers store once again (XNNPACK keys constants by content hash; the LiteRT converter merges
    equal constants into one buffer).
    """
    convs = (torch.ops.aten.conv2d.default, torch.ops.aten.convolution.default)
    untied = 0
    for node in list(gm.graph.nodes):
        if node.op != "get_attr":
            continue
        uses = [u for u in node.users if u.target in convs and len(u.args) > 1 and u.args[1] is node]
        for i, user in enumerate(uses[1:], 1):
            name = f"{node.target.replace('.', '_')}_use{i}"
            gm.register_buffer(name, gm.get_parameter(node.target).detach().clone() if _is_param(gm, node.target) else gm.get_buffer(node.target).clone())
            with gm.graph.inserting_before(user):
                twin = gm.graph.get_attr(name)
            twin.meta = dict(node.meta)
            user.replace_input_with(node, twin)
            untied += 1
    if untied:
        gm.recompile()
    return untied


def _is_param(gm: torch.fx.GraphModule, target: str) -> bool:
    return target in dict(gm.named_parameters())


def pt2e_quantize(model: torch.nn.Module, example: torch.Tensor, calibration: list, quantizer, fold_quantize: bool = True) -> tuple[torch.fx.GraphModule, tuple[int, int]]:
    """export (dynamic batch) -> fold reuses' BatchNorms -> prepare_pt2e -> calibrate -> convert_pt2e.

    Traces inside the caller's lowering context. Returns the converted module and what
    ``fold_affines_into_reused_convs`` folded.
    """
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    batches = calibrate_batches(calibration, example)
    first = batches[0] if len(batches[0]) > 1 else torch.cat([batches[0]] * 2)  # batch 1 would be specialized away
    dynamic = ({0: torch.export.Dim("batch", min=1, max=4096)},)
    with torch.no_grad():
        graph = torch.export.export(model, (first,), dynamic_shapes=dynamic).module()
        folded = fold_affines_into_reused_convs(graph)
        untie_shared_weights(graph)
        prepared = prepare_pt2e(graph, quantizer)
        exact_scales_for_folded_weights(prepared)
        for batch in batches:
            prepared(batch)
        return convert_pt2e(prepared, fold_quantize=fold_quantize), folded
