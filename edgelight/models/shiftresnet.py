"""ShiftResNet (Wu et al., CVPR 2018) and the CIFAR ResNet it is compared against.

Exact to ``alvinwan/shiftresnet-cifar``: each BasicBlock becomes one CSC module
(1x1 -> BN -> ReLU -> shift -> strided 1x1 -> BN -> ReLU, shortcut added after the
ReLU) with expansion e relative to the block's output width. shiftresnet-20-e3 has
95,642 parameters; resnet-20 has 272,474.
"""

import torch
from torch import nn

from edgelight.layers import ConvBnAct, CSCBlock, shortcut
from edgelight.models._registry import register_model

DEPTHS = {20: 3, 56: 9, 110: 18}
WIDTHS = (16, 32, 64)


class BasicBlock(nn.Module):
    def __init__(self, in_chs: int, out_chs: int, stride: int = 1):
        super().__init__()
        self.conv1 = ConvBnAct(in_chs, out_chs, 3, stride)
        self.conv2 = ConvBnAct(out_chs, out_chs, 3, act_layer=None)
        self.shortcut = shortcut(in_chs, out_chs, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class CifarResNet(nn.Module):
    """Three stages of 16/32/64 channels on a 3x3 stem; ``block`` decides ResNet or ShiftResNet."""

    def __init__(self, depth: int = 20, expansion: int | None = None, num_classes: int = 10, in_chans: int = 3):
        super().__init__()
        blocks = DEPTHS[depth]
        make = BasicBlock if expansion is None else (lambda i, o, s: CSCBlock(i, o, s, expansion))
        self.stem = ConvBnAct(in_chans, WIDTHS[0], 3)
        layers, in_chs = [], WIDTHS[0]
        for stage, width in enumerate(WIDTHS):
            for b in range(blocks):
                layers.append(make(in_chs, width, 2 if stage > 0 and b == 0 else 1))
                in_chs = width
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_chs, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


for _depth in DEPTHS:
    register_model(f"resnet-{_depth}", "resnet", CifarResNet, depth=_depth)
    for _e in (1, 3, 6, 9):
        register_model(f"shiftresnet-{_depth}-e{_e}", "shiftresnet", CifarResNet, depth=_depth, expansion=_e)
