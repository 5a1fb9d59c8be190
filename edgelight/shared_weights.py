"""Keep a conv weight that runs several times (LruNet's layer reuse) stored once in every artifact.

Converters fold each BatchNorm into the conv before it. When one conv weight serves N uses, each
with its own BatchNorm, folding writes N different weights: the file grows N-fold (lrunet-14-1x on
LiteRT: 6.3 MB instead of 0.9 MB), and PT2E's conv-bn fusion leaves the later uses unquantized.
``keep_shared_weights`` rewrites exactly those BatchNorms as a 1x1 depthwise conv (scale as weight,
shift as bias) that no converter pass fuses, so the shared conv keeps one weight. Used by the
ExecuTorch (int8) and LiteRT targets; Core ML does the same with its pass pipeline.
"""

import copy
from collections import Counter

import torch
from torch import nn
from torch.nn import functional as F


class ChannelAffine(nn.Module):
    """An eval BatchNorm as a 1x1 depthwise conv: survives conversion as its own op."""

    def __init__(self, bn: nn.BatchNorm2d):
        super().__init__()
        scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps) if bn.affine else 1 / torch.sqrt(bn.running_var + bn.eps)
        shift = (bn.bias.detach() if bn.affine else 0) - bn.running_mean * scale
        self.register_buffer("weight", scale.reshape(-1, 1, 1, 1).clone().float())
        self.register_buffer("bias", shift.clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, groups=x.shape[1])


def run_hooked(model: nn.Module, example: torch.Tensor, hooks: list) -> None:
    """One forward pass (no grad) with the given hook handles registered, removed afterwards whatever happens."""
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in hooks:
            h.remove()


def keep_shared_weights(model: nn.Module, example: torch.Tensor) -> tuple[nn.Module, int]:
    """Copy of ``model`` where every BatchNorm fed by a conv that runs more than once is a ChannelAffine."""
    model = copy.deepcopy(model).eval()
    calls, produced, fed, keep = Counter(), {}, [], []

    def on_conv(mod, inp, out):
        calls[mod] += 1
        produced[id(out)] = mod
        keep.append(out)  # hold the tensor so its id is not reused

    def on_bn(mod, inp):
        if id(inp[0]) in produced:
            fed.append((mod, produced[id(inp[0])]))

    hooks = [m.register_forward_hook(on_conv) for m in model.modules() if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_pre_hook(on_bn) for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    run_hooked(model, example, hooks)
    targets = {bn for bn, conv in fed if calls[conv] > 1}
    for mod in list(model.modules()):
        for child_name, child in list(mod.named_children()):
            if child in targets:
                setattr(mod, child_name, ChannelAffine(child))
    return model, len(targets)


def reuse_note(kept: int, folded: tuple[int, int] = (0, 0)) -> str | None:
    """One line for the export report: what happened to the BatchNorms of reused convs."""
    done, own = folded
    if done:
        extra = f"; {own} use(s) with a channel of scale <= 0 keep codes of their own" if own else ""
        return f"{done} BatchNorms of reused convs folded into their use's int8 scales and bias, over shared int8 codes{extra}"
    return f"{kept} BatchNorms after shared convs kept as 1x1 depthwise convs (weights stored once)" if kept else None


INT8_LEVELS = 127  # symmetric per-channel int8 weights, as both PT2E quantizers configure them
FOLDED_WEIGHT = "_folded_weight"  # suffix of the weights fold_affines_into_reused_convs makes


def fold_affines_into_reused_convs(gm: torch.fx.GraphModule) -> tuple[int, int]:
    """Fold each ChannelAffine that follows a reused conv into that use (w8a8 only); returns (folded, own codes).

    int8 can do what fp32 cannot: a reuse's BatchNorm scale ``a`` (per output channel) goes into that
    use's weight *scales* and its shift into the int32 bias, over one set of int8 codes. The folded
    weight is built from the shared weight already snapped to its per-channel int8 grid, so the
    quantizer's observer finds scale ``|a| * s`` and the codes ``q`` again, bit for bit; the
    serializers store equal codes once. A channel with ``a < 0`` gets codes ``-q`` and one with
    ``a == 0`` codes 0: correct, but that use then needs codes of its own (the second count).
    """
    aten = torch.ops.aten
    conv = aten.conv2d.default
    uses = Counter(n.args[1] for n in gm.graph.nodes if n.target == conv and isinstance(n.args[1], torch.fx.Node))
    reused = {weight for weight, count in uses.items() if count > 1}
    folded = own = 0
    for affine in list(gm.graph.nodes):
        producer = affine.args[0] if affine.target == conv else None
        if not (isinstance(producer, torch.fx.Node) and producer.target == conv and len(producer.users) == 1):
            continue
        weight_node = producer.args[1]
        if weight_node not in reused or weight_node.op != "get_attr" or not _is_channel_affine(gm, affine):
            continue
        weight = _attr(gm, weight_node.target).detach()
        scale, shift = _attr(gm, affine.args[1].target).detach().flatten(), _attr(gm, affine.args[2].target).detach()
        bias = producer.args[2] if len(producer.args) > 2 else None
        first_bias = _attr(gm, bias.target).detach() if isinstance(bias, torch.fx.Node) else torch.zeros_like(shift)
        grid = _snap_to_int8_grid(weight)
        new_weight = grid * scale.reshape(-1, *[1] * (weight.dim() - 1))
        own += bool((scale <= 0).any())
        name = affine.name
        gm.register_buffer(name + FOLDED_WEIGHT, new_weight.clone())
        gm.register_buffer(f"{name}_bias", (first_bias * scale + shift).clone())
        with gm.graph.inserting_before(affine):
            w, b = gm.graph.get_attr(name + FOLDED_WEIGHT), gm.graph.get_attr(f"{name}_bias")
            w.meta, b.meta = dict(weight_node.meta), dict(affine.args[2].meta)
            fused = gm.graph.call_function(conv, (producer.args[0], w, b, *producer.args[3:]))
        fused.meta = {**producer.meta, "val": affine.meta.get("val")}
        affine.replace_all_uses_with(fused)
        gm.graph.erase_node(affine)
        gm.graph.erase_node(producer)
        folded += 1
    if folded:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return folded, own


def exact_scales_for_folded_weights(prepared: torch.fx.GraphModule) -> None:
    """Let the folded weights' observers give any positive scale (after prepare_pt2e, before calibration).

    Both quantizers clamp weight scales at 2**-12; a small BatchNorm scale times a small weight falls
    below it, and the clamped scale would give that use other codes. XNNPACK takes any positive scale.
    """
    for node in prepared.graph.nodes:
        source = node.args[0] if node.op == "call_module" and node.args else None
        if isinstance(source, torch.fx.Node) and source.op == "get_attr" and source.target.endswith(FOLDED_WEIGHT):
            observer = prepared.get_submodule(node.target)
            if isinstance(getattr(observer, "eps", None), torch.Tensor):
                observer.eps.fill_(torch.finfo(torch.float32).eps)


def _attr(gm: torch.fx.GraphModule, target: str) -> torch.Tensor:
    obj = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _is_channel_affine(gm: torch.fx.GraphModule, node: torch.fx.Node) -> bool:
    """conv2d(x, w [C,1,1,1], b [C], stride 1, padding 0, dilation 1, groups C): a per-channel a * x + b."""
    args = list(node.args) + [None] * (7 - len(node.args))
    weight, bias, groups = args[1], args[2], args[6]
    if not all(isinstance(n, torch.fx.Node) and n.op == "get_attr" for n in (weight, bias)):
        return False
    shape = tuple(_attr(gm, weight.target).shape)
    return len(shape) == 4 and shape[1:] == (1, 1, 1) and groups == shape[0] and list(args[3] or [1, 1]) == [1, 1] and list(args[4] or [0, 0]) in ([0, 0], [0]) and list(args[5] or [1, 1]) == [1, 1]


def _snap_to_int8_grid(weight: torch.Tensor) -> torch.Tensor:
    """The weight as symmetric per-output-channel int8 would represent it: round(w / s) * s, s = max|w| / 127."""
    flat = weight.reshape(weight.shape[0], -1)
    step = (flat.abs().amax(dim=1) / INT8_LEVELS).clamp(min=torch.finfo(torch.float32).eps)
    codes = torch.clamp(torch.round(flat / step[:, None]), -INT8_LEVELS, INT8_LEVELS)
    return (codes * step[:, None]).reshape(weight.shape)
