"""ExecuTorch "ops=native": keep the edgelight ops as custom ops run by the native kernels.

``prepare_native(ep, precision)`` takes a ``torch.export`` ExportedProgram with the edgelight ops intact
(fp32, or PT2E-quantized with the XNNPACK quantizer) and rewrites it in place so that
``to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()])`` gives XNNPACK everything else:

- fp32 with ``fuse=True``: shift2d -> 1x1 conv [-> batch_norm (folded)] [-> relu] becomes one
  ``edgelight::shift_conv1x1`` (the ShiftResNet CSC tail), so the shift never writes a tensor.
- int8: dq -> shift2d -> q becomes ``edgelight::quantized_shift2d`` on the int8 tensor (zero fill = the
  zero point); with ``fuse=True`` the following dq -> 1x1 conv [-> relu] -> q is folded in as
  ``edgelight::quantized_shift_conv1x1``. dq -> channel_shuffle -> q with equal params runs the shuffle on
  int8 directly.

Every op left between XNNPACK partitions costs an NHWC<->NCHW transpose on each side; bench/kernels.py
measures that against the all-XNNPACK depthwise lowering. ``channels_last_boundaries`` (``boundary=channels-last``)
hands XNNPACK's NHWC over instead, at the price of a per-pixel shift (bench/boundaries.py).
"""

import operator

import torch
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind

import edgelight.ops  # noqa: F401  (shift2d / channel_shuffle schemas)
import edgelight.ops.fused  # noqa: F401  (quantized_shift2d / shift_conv1x1 schemas)
from edgelight.errors import UsageError

aten, el = torch.ops.aten, torch.ops.edgelight
QD = torch.ops.quantized_decomposed
CONVS = (aten.conv2d.default, aten.convolution.default)
RELUS = (aten.relu.default, aten.relu_.default)
BATCH_NORMS = (aten.batch_norm.default, aten._native_batch_norm_legit_no_training.default)


class NativeLoweringError(UsageError):
    """The program cannot be prepared for native kernels (message says why)."""


def _only_user(node: torch.fx.Node, targets) -> torch.fx.Node | None:
    users = list(node.users)
    return users[0] if len(users) == 1 and users[0].target in targets else None


def _conv_1x1(ep: ExportedProgram, node: torch.fx.Node | None):
    """(weight node, bias node, stride) if node is a plain 1x1 conv (no padding/dilation/groups), else None."""
    from executorch.backends.transforms.utils import get_param_tensor

    if node is None or node.target not in CONVS:
        return None
    a = list(node.args) + [None] * 9
    if node.target == aten.conv2d.default:
        _, w, b, stride, pad, dil, groups = a[:7]
    else:
        _, w, b, stride, pad, dil, transposed, _, groups = a[:9]
        if transposed:
            return None
    stride, pad, dil, groups = stride or [1, 1], pad or [0, 0], dil or [1, 1], groups or 1
    if any(pad) or any(d != 1 for d in dil) or groups != 1 or len(set(stride)) != 1 or w.op != "placeholder":
        return None
    weight = get_param_tensor(ep, w)
    if weight is None or weight.dim() != 4 or tuple(weight.shape[2:]) != (1, 1):
        return None
    return w, b, int(stride[0])


def _constant(ep, graph, name: str, data: torch.Tensor) -> torch.fx.Node:
    from executorch.backends.transforms.utils import create_constant_placeholder

    first_user_input = next(n for n in graph.nodes if n.op == "placeholder" and n.name in ep.graph_signature.user_inputs)
    with graph.inserting_before(first_user_input):
        return create_constant_placeholder(ep, graph, name, InputKind.PARAMETER, data.contiguous())


def _shift_args(node: torch.fx.Node) -> tuple[int, int]:
    args = list(node.args) + [None, None]
    k = node.kwargs.get("kernel_size", args[1] if args[1] is not None else 3)
    d = node.kwargs.get("dilation", args[2] if args[2] is not None else 1)
    return k, d


def _fuse_fp32(ep: ExportedProgram, shift: torch.fx.Node) -> bool:
    from executorch.backends.transforms.utils import get_param_tensor

    conv = _only_user(shift, CONVS)
    match = _conv_1x1(ep, conv)
    if match is None or conv.args[0] is not shift:
        return False
    w_node, b_node, stride = match
    weight = get_param_tensor(ep, w_node).detach().float()
    bias = get_param_tensor(ep, b_node).detach().float() if b_node is not None else torch.zeros(weight.shape[0])
    last = conv
    bn = _only_user(conv, BATCH_NORMS)
    if bn is not None:
        gamma, beta, mean, var = (get_param_tensor(ep, n) for n in bn.args[1:5])
        eps = bn.args[7] if bn.target == aten.batch_norm.default else bn.args[6]
        if bn.target == aten.batch_norm.default and bn.args[5]:
            return False  # training-mode batch norm
        getitem = _only_user(bn, (operator.getitem,)) if bn.target != aten.batch_norm.default else bn
        if getitem is None:
            return False
        scale = (gamma if gamma is not None else 1.0) / torch.sqrt(var + eps)
        weight = weight * scale.reshape(-1, 1, 1, 1)
        bias = (bias - mean) * scale + (beta if beta is not None else 0.0)
        last = getitem
    relu = _only_user(last, RELUS)
    last = relu or last
    graph = ep.graph
    w_new = _constant(ep, graph, f"{shift.name}_fused_weight", weight.detach())
    b_new = _constant(ep, graph, f"{shift.name}_fused_bias", bias.detach())
    x, (k, d) = shift.args[0], _shift_args(shift)
    with graph.inserting_before(last):
        fused = graph.call_function(el.shift_conv1x1.default, (x, w_new, b_new, stride, k, d, relu is not None))
    fused.meta["val"] = last.meta["val"]
    last.replace_all_uses_with(fused)
    return True


def _qparams(node: torch.fx.Node, target) -> tuple[float, int] | None:
    """(scale, zero_point) of an int8 [-128, 127] quantize/dequantize_per_tensor node with constant params."""
    if node is None or node.target != target:
        return None
    _, scale, zp, qmin, qmax, dtype = node.args[:6]
    if dtype != torch.int8 or (qmin, qmax) != (-128, 127) or not isinstance(scale, float) or not isinstance(zp, int):
        return None
    return scale, zp


def _fuse_int8(ep: ExportedProgram, qshift: torch.fx.Node, q_mid: torch.fx.Node) -> bool:
    """qshift -> [q_mid's users] dq -> conv1x1(dq_per_channel(w)) [-> relu] -> q  =>  quantized_shift_conv1x1."""
    from executorch.backends.transforms.utils import get_param_tensor

    dq = _only_user(q_mid, (QD.dequantize_per_tensor.default,))
    conv = _only_user(dq, CONVS) if dq is not None else None
    if conv is None or conv.args[0] is not dq or conv.args[1].target != QD.dequantize_per_channel.default:
        return False
    w_dq = conv.args[1]
    wq_node, ws_node, wz_node, axis = w_dq.args[:4]
    wq = get_param_tensor(ep, wq_node)
    if axis != 0 or wq is None or wq.dtype != torch.int8 or wq.dim() != 4 or tuple(wq.shape[2:]) != (1, 1):
        return False
    if torch.count_nonzero(get_param_tensor(ep, wz_node)) != 0:
        return False  # the int8 kernel assumes symmetric weights
    a = list(conv.args) + [None] * 9
    stride, pad, dil = a[3] or [1, 1], a[4] or [0, 0], a[5] or [1, 1]
    groups = (a[6] if conv.target == aten.conv2d.default else a[8]) or 1
    if any(pad) or any(v != 1 for v in dil) or groups != 1 or len(set(stride)) != 1:
        return False
    bias = get_param_tensor(ep, a[2]) if a[2] is not None else None
    if bias is not None and bias.dtype != torch.float32:
        return False  # the kernel takes an fp32 bias (what the XNNPACK quantizer leaves)
    relu = _only_user(conv, RELUS)
    q_out = _only_user(relu or conv, (QD.quantize_per_tensor.default,))
    out_params = _qparams(q_out, QD.quantize_per_tensor.default)
    if out_params is None:
        return False
    graph = ep.graph
    scales = _constant(ep, graph, f"{qshift.name}_wscales", get_param_tensor(ep, ws_node).float())
    x, in_s, in_z, mid_s, mid_z, k, d = qshift.args
    with graph.inserting_before(q_out):
        fused = graph.call_function(
            el.quantized_shift_conv1x1.default,
            (x, in_s, in_z, mid_s, mid_z, wq_node, scales, a[2], *out_params, int(stride[0]), k, d, relu is not None),
        )
    fused.meta["val"] = q_out.meta["val"]
    q_out.replace_all_uses_with(fused)
    return True


def _rewrite_int8(ep: ExportedProgram, node: torch.fx.Node, fuse: bool) -> bool:
    dq = node.args[0]
    in_params = _qparams(dq, QD.dequantize_per_tensor.default)
    users = list(node.users)
    out_params = {_qparams(u, QD.quantize_per_tensor.default) for u in users}
    if in_params is None or len(out_params) != 1 or None in out_params:
        return False  # not a dq -> op -> q island: the op stays fp32 (still a native kernel)
    (out_params,) = out_params
    graph = ep.graph
    with graph.inserting_before(node):
        if node.target == el.channel_shuffle.default:
            if in_params != out_params:
                return False
            groups = node.kwargs.get("groups", node.args[1] if len(node.args) > 1 else None)
            new = graph.call_function(el.channel_shuffle.default, (dq.args[0], groups))
        else:
            k, d = _shift_args(node)
            new = graph.call_function(el.quantized_shift2d.default, (dq.args[0], *in_params, *out_params, k, d))
    new.meta["val"] = users[0].meta["val"]
    for u in users:
        u.replace_all_uses_with(new)
    if fuse and node.target == el.shift2d.default:
        _fuse_int8(ep, new, new)
    return True


def _remove_dead(ep: ExportedProgram) -> None:
    from executorch.backends.transforms.utils import delete_constant_placeholder

    graph = ep.graph
    graph.eliminate_dead_code()
    for node in [n for n in graph.nodes if n.op == "placeholder" and not n.users]:
        if node.name not in ep.graph_signature.user_inputs:
            delete_constant_placeholder(ep, node)
    ep.graph_module.recompile()


def prepare_native(ep: ExportedProgram, precision: str = "fp32", fuse: bool = False) -> ExportedProgram:
    """Rewrite ``ep`` (in place, also returned) for native edgelight kernels; see the module docstring.

    ``fuse`` is off by default: measured on shiftresnet-20-e3 the fused kernel loses to XNNPACK's 1x1 GEMM
    (docs/kernels.md), while the plain int8 shift op beats the all-XNNPACK lowering.
    """
    if precision not in ("fp32", "w8a8"):
        raise NativeLoweringError(f"native edgelight kernels support fp32 and w8a8, not '{precision}'")
    graph = ep.graph
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target not in (el.shift2d.default, el.channel_shuffle.default):
            continue
        if precision == "w8a8":
            _rewrite_int8(ep, node, fuse)
        elif fuse and node.target == el.shift2d.default:
            _fuse_fp32(ep, node)
    _remove_dead(ep)
    return ep


def _layout_copy(graph, src: torch.fx.Node, memory_format, qparams: tuple[float, int] | None) -> torch.fx.Node:
    """src in ``memory_format``: one dim-order copy, for int8 as dq -> copy -> q with src's own parameters (how
    XNNPACK's quantized partitions take a copy)."""
    val = src.meta["val"]
    with val.fake_mode:
        moved = val.to(memory_format=memory_format)
        floats = moved.float() if qparams else None
    if qparams is None:
        copy = graph.call_function(aten._to_copy.default, (src,), {"memory_format": memory_format})
        copy.meta["val"] = moved
        return copy
    q_args = (*qparams, -128, 127, torch.int8)
    dq = graph.call_function(QD.dequantize_per_tensor.default, (src, *q_args))
    with val.fake_mode:
        dq.meta["val"] = val.float()
    copy = graph.call_function(aten._to_copy.default, (dq,), {"memory_format": memory_format})
    copy.meta["val"] = floats
    q = graph.call_function(QD.quantize_per_tensor.default, (copy, *q_args))
    q.meta["val"] = moved
    return q


def _int8_params(node: torch.fx.Node) -> tuple[tuple[float, int] | None, tuple[float, int] | None] | None:
    """(input, output) quantization parameters of a wrapped op; (None, None) in fp32; None when unknown."""
    if node.target == el.quantized_shift2d.default:
        return tuple(node.args[1:3]), tuple(node.args[3:5])
    if node.args[0].meta["val"].dtype != torch.int8:
        return None, None
    params = _qparams(node.args[0], QD.quantize_per_tensor.default)
    return (params, params) if params else None  # the int8 shift/shuffle kept their input's parameters


def channels_last_boundaries(ep: ExportedProgram) -> int:
    """Run each shift and shuffle on channels-last tensors: a dim-order copy to channels-last before it and one
    back after, which XNNPACK's partitions absorb, so what they hand over is their own NHWC and the boundary
    costs no transpose (the kernels take either layout). Returns how many ops were wrapped."""
    graph, wrapped = ep.graph, 0
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target not in (el.shift2d.default, el.quantized_shift2d.default, el.channel_shuffle.default):
            continue
        params = _int8_params(node)
        if params is None:
            continue
        x, val = node.args[0], node.meta["val"]
        source = x.meta.get("edgelight_nhwc_source")  # straight from another wrapped op (a shift, then a shuffle)
        with graph.inserting_before(node):
            to_cl = source if source is not None else _layout_copy(graph, x, torch.channels_last, params[0])
        node.replace_input_with(x, to_cl)
        with val.fake_mode:
            node.meta["val"] = val.to(memory_format=torch.channels_last)
        users = list(node.users)
        with graph.inserting_before(node.next):  # (inserting_after would put a 3-node chain in reverse)
            back = _layout_copy(graph, node, torch.contiguous_format, params[1])
        back.meta["edgelight_nhwc_source"] = node
        for user in users:
            user.replace_input_with(node, back)
        wrapped += 1
    if wrapped:
        graph.eliminate_dead_code()
        ep.graph_module.recompile()
    return wrapped


def edgelight_op_counts(program) -> dict[str, int]:
    """edgelight op name -> count in an ExportedProgram / EdgeProgramManager graph."""
    gm = program.exported_program().graph_module if hasattr(program, "exported_program") else program.graph_module
    counts: dict[str, int] = {}
    for node in gm.graph.nodes:
        name = str(node.target)
        if node.op == "call_function" and "edgelight" in name:
            key = name.split("edgelight.")[-1].split(".")[0]
            counts[key] = counts.get(key, 0) + 1
    return counts


def to_native_pte(ep: ExportedProgram, precision: str = "fp32", fuse: bool = False, delegate: bool = False) -> bytes:
    """prepare_native + XNNPACK lowering + to_executorch: the .pte bytes (runs after load_native_kernels()).
    ``delegate``: edgelight's ops as EdgelightBackend calls (delegate.py) instead of custom ops."""
    from executorch.exir import to_edge_transform_and_lower

    from edgelight.targets.executorch.delegate import partitioners

    edge = to_edge_transform_and_lower(prepare_native(ep, precision, fuse), partitioner=partitioners(delegate))
    return edge.to_executorch().buffer
