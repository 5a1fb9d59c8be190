"""DenseNet-BC (Huang et al., CVPR 2017) for CIFAR: bottleneck layers and 0.5 compression.

densenet-bc-100-k12: three dense blocks of 16 bottleneck layers, growth 12, a 3x3 stem of
2k channels; the paper's 0.8M-parameter, 95.49% C10+ configuration.
"""

import torch
from torch import nn

from edgelight.models._registry import register_model


def _bn_relu_conv(in_chs: int, out_chs: int, kernel_size: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(in_chs), nn.ReLU(inplace=True), nn.Conv2d(in_chs, out_chs, kernel_size, padding=kernel_size // 2, bias=False))


class Bottleneck(nn.Module):
    def __init__(self, in_chs: int, growth: int):
        super().__init__()
        self.body = nn.Sequential(_bn_relu_conv(in_chs, 4 * growth, 1), _bn_relu_conv(4 * growth, growth, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], dim=1)


class DenseNetBC(nn.Module):
    def __init__(self, depth: int = 100, growth: int = 12, reduction: float = 0.5, num_classes: int = 10, in_chans: int = 3):
        super().__init__()
        per_block = (depth - 4) // 6
        chs = 2 * growth
        layers: list[nn.Module] = [nn.Conv2d(in_chans, chs, 3, padding=1, bias=False)]
        for block in range(3):
            for _ in range(per_block):
                layers.append(Bottleneck(chs, growth))
                chs += growth
            if block < 2:
                out = int(chs * reduction)
                layers += [_bn_relu_conv(chs, out, 1), nn.AvgPool2d(2)]
                chs = out
        layers += [nn.BatchNorm2d(chs), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(chs, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


register_model("densenet-bc-100-k12", "densenet", DenseNetBC, depth=100, growth=12)
