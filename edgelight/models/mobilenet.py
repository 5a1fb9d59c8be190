"""MobileNetV1 / V2 (Howard et al. 2017; Sandler et al. 2018) and the CIFAR MobileNetV2.

``mobilenetv{1,2}-XXX`` follow the ImageNet layout (torchvision's for V2: 3,504,872
parameters at 1000 classes). ``mobilenetv2-cifar-XXX`` is kuangliu/pytorch-cifar's
variant behind the 94.43% CIFAR-10 anchor: stride-1 stem and second stage, an
expansion 1x1 conv even where t=1, a 1x1 conv + BN shortcut where a stride-1 block
changes width, plain ReLU (2,296,922 parameters). XXX is the width multiplier x100.
"""

import torch
from torch import nn

from edgelight.layers import ConvBnAct, make_divisible
from edgelight.models._registry import register_model

# (expansion t, channels c, repeats n, first stride s)
V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
# (channels, stride) of each depthwise-separable block
V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *((512, 1),) * 5, (1024, 2), (1024, 1))


class _Classifier(nn.Module):
    """Shared tail: global average pool -> (dropout) -> linear."""

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class MobileNetV1(_Classifier):
    def __init__(self, width: float = 1.0, num_classes: int = 10, in_chans: int = 3, stem_stride: int = 2):
        super().__init__()
        chs = make_divisible(32 * width)
        layers = [ConvBnAct(in_chans, chs, 3, stem_stride)]
        for out, stride in V1_BLOCKS:
            out = make_divisible(out * width)
            layers += [ConvBnAct(chs, chs, 3, stride, groups=chs), ConvBnAct(chs, out, 1)]
            chs = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(chs, num_classes)
        self._init_weights()


class InvertedResidual(nn.Module):
    """expand 1x1 -> depthwise 3x3 -> project 1x1, residual when shapes allow (or a 1x1 shortcut in the CIFAR variant)."""

    def __init__(self, in_chs, out_chs, stride, expansion, act_layer, always_expand=False, conv_shortcut=False):
        super().__init__()
        mid = in_chs * expansion
        layers = [ConvBnAct(in_chs, mid, 1, act_layer=act_layer)] if expansion != 1 or always_expand else []
        layers += [ConvBnAct(mid, mid, 3, stride, groups=mid, act_layer=act_layer), ConvBnAct(mid, out_chs, 1, act_layer=None)]
        self.conv = nn.Sequential(*layers)
        self.stride = stride
        self.shortcut = None
        if stride == 1 and in_chs == out_chs:
            self.shortcut = nn.Identity()
        elif stride == 1 and conv_shortcut:
            self.shortcut = ConvBnAct(in_chs, out_chs, 1, act_layer=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return out if self.shortcut is None else out + self.shortcut(x)


class MobileNetV2(_Classifier):
    def __init__(self, width: float = 1.0, num_classes: int = 10, in_chans: int = 3, cifar: bool = False, drop: float = 0.2):
        super().__init__()
        act = nn.ReLU if cifar else nn.ReLU6
        stages = [(t, c, n, 1 if cifar and i == 1 else s) for i, (t, c, n, s) in enumerate(V2_STAGES)]
        chs = make_divisible(32 * width)
        layers = [ConvBnAct(in_chans, chs, 3, 1 if cifar else 2, act_layer=act)]
        for t, c, n, s in stages:
            out = make_divisible(c * width)
            for i in range(n):
                layers.append(InvertedResidual(chs, out, s if i == 0 else 1, t, act, always_expand=cifar, conv_shortcut=cifar))
                chs = out
        last = make_divisible(1280 * max(1.0, width))
        layers.append(ConvBnAct(chs, last, 1, act_layer=act))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.0 if cifar else drop), nn.Linear(last, num_classes))
        self._init_weights()


for _w in (100, 75, 50, 25):
    register_model(f"mobilenetv1-{_w:03d}", "mobilenetv1", MobileNetV1, input_size=224, width=_w / 100)
    register_model(f"mobilenetv2-{_w:03d}", "mobilenetv2", MobileNetV2, input_size=224, width=_w / 100)
    register_model(f"mobilenetv2-cifar-{_w:03d}", "mobilenetv2", MobileNetV2, width=_w / 100, cifar=True)
