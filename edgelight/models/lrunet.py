"""LruNet: convolutional layer reuse (Köpüklü et al., 2019, arXiv 1901.09615).

Exact to ``okankop/CNN-layer-reuse`` models/lrunet.py: one depthwise (x2) and one
grouped pointwise conv per stage are applied N times with a BatchNorm pair per reuse,
a residual add, and LruNet's shuffle between reuses. CIFAR-10 1x has
125,642 + 5,760 * N parameters.
"""

import torch
from torch import nn

from edgelight.errors import UsageError
from edgelight.layers import LruBlock
from edgelight.models._registry import register_model

STAGE_WIDTHS = (64, 128, 256, 512, 256)


def _duplicate(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, x], dim=1)


class LruNet(nn.Module):
    def __init__(self, reuses: int = 8, width: int = 1, num_classes: int = 10, in_chans: int = 3, drop: float = 0.5):
        super().__init__()
        if width not in (1, 2):
            raise UsageError(f"LruNet width must be 1 or 2 (the stem always has 64 channels), got {width}")
        cfg = [c * width for c in STAGE_WIDTHS]
        self.width = width
        self.stem = nn.Sequential(nn.Conv2d(in_chans, 64, 3, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        self.stages = nn.ModuleList(LruBlock(c, reuses) for c in cfg[:4])
        # Every pool here sees ReLU outputs (>= 0), so zero padding is the same as the usual -inf: LiteRT
        # writes -inf padding as PADV2, which XNNPACK does not take (4 partitions instead of 1).
        self.pool = nn.Sequential(nn.ZeroPad2d(1), nn.MaxPool2d(3, 2))
        self.head = nn.Sequential(
            nn.Conv2d(cfg[3], cfg[4], 1, groups=8, bias=False),
            nn.BatchNorm2d(cfg[4]),
            nn.ReLU(inplace=True),
            nn.Dropout(drop),
            nn.Conv2d(cfg[4], num_classes, 1),
            nn.ReLU(inplace=True),  # the reference applies ReLU to the logits before pooling
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(1),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stem(x)
        if self.width == 2:
            out = _duplicate(out)
        out = _duplicate(self.pool(self.stages[0](out)))
        out = _duplicate(self.pool(self.stages[1](out)))
        out = _duplicate(self.stages[2](out))
        out = self.pool(self.stages[3](out))
        return self.head(out)


for _n in (1, 4, 8, 10, 14):
    for _w in (1, 2):
        register_model(f"lrunet-{_n}-{_w}x", "lrunet", LruNet, reuses=_n, width=_w)
