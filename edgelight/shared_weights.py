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
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in hooks:
            h.remove()
    targets = {bn for bn, conv in fed if calls[conv] > 1}
    for mod in list(model.modules()):
        for child_name, child in list(mod.named_children()):
            if child in targets:
                setattr(mod, child_name, ChannelAffine(child))
    return model, len(targets)
