"""RPG: recurrent parameter generators (Wang et al., arXiv 2107.07110 / WACV 2023).

Every conv of the residual stages draws its weight from one shared 1-D parameter ring:
``W_l = reshape(ring[perm_l] * sign_l) * sqrt(512 * 9 / (C_out * k^2))`` with a fixed
per-layer slice of one global permutation and a fixed random sign mask (as in
samaonline/Recurrent-Parameter-Generators ``SuperParams``). The stem, BatchNorms and
the classifier are ordinary parameters. Permutations and signs come from ``seed``, so
a checkpoint stores only the ring. ``materialize()`` returns a plain ResNet-18 with the
generated weights, which is what exporters take.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from edgelight.models._registry import register_model

ONE_CONV_LAYER = 512 * 512 * 3 * 3  # the paper's "as many weights as one conv layer" ring
RESNET18_STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))


class ParameterRing(nn.Module):
    """The shared parameter vector and the fixed index/sign tables that slice it into conv weights."""

    def __init__(self, size: int, seed: int = 0):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(size))
        nn.init.normal_(self.weight, 0.0, math.sqrt(2.0 / (512 * 9)))  # kaiming fan_out of a 512x.x3x3 conv
        self.seed, self.shapes = seed, []

    def claim(self, shape: tuple[int, ...]) -> int:
        self.shapes.append(shape)
        return len(self.shapes) - 1

    def finalize(self) -> None:
        """Every ring entry is used equally often (+-1) under one global permutation."""
        gen = torch.Generator().manual_seed(self.seed)
        total, size = sum(math.prod(s) for s in self.shapes), self.weight.numel()
        index = torch.cat([torch.arange(size).repeat(total // size), torch.randperm(size, generator=gen)[: total % size]])
        index = index[torch.randperm(total, generator=gen)]
        sign = torch.randint(0, 2, (total,), generator=gen).float() * 2 - 1
        self.register_buffer("index", index, persistent=False)
        self.register_buffer("sign", sign, persistent=False)
        self.offsets = [0]
        for s in self.shapes:
            self.offsets.append(self.offsets[-1] + math.prod(s))

    def generate(self, layer: int) -> torch.Tensor:
        lo, hi = self.offsets[layer], self.offsets[layer + 1]
        shape = self.shapes[layer]
        scale = math.sqrt(512 * 9 / (shape[0] * shape[2] * shape[3]))
        return (self.weight[self.index[lo:hi]] * self.sign[lo:hi]).reshape(shape) * scale


class RingConv2d(nn.Module):
    """A bias-free conv whose weight is generated from the model's ring (not registered as a submodule)."""

    def __init__(self, ring: ParameterRing, in_chs: int, out_chs: int, kernel_size: int, stride: int = 1):
        super().__init__()
        object.__setattr__(self, "_ring", ring)  # one ring, owned by the model; keeps state_dict free of copies
        self.layer = ring.claim((out_chs, in_chs, kernel_size, kernel_size))
        self.stride, self.padding = stride, kernel_size // 2

    @property
    def weight(self) -> torch.Tensor:
        return self._ring.generate(self.layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, stride=self.stride, padding=self.padding)


class BasicBlock(nn.Module):
    def __init__(self, conv, in_chs: int, out_chs: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = conv(in_chs, out_chs, 3, stride), nn.BatchNorm2d(out_chs)
        self.conv2, self.bn2 = conv(out_chs, out_chs, 3, 1), nn.BatchNorm2d(out_chs)
        self.shortcut = nn.Identity()
        if stride != 1 or in_chs != out_chs:
            self.shortcut = nn.Sequential(conv(in_chs, out_chs, 1, stride), nn.BatchNorm2d(out_chs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def _plain_conv(in_chs, out_chs, kernel_size, stride):
    return nn.Conv2d(in_chs, out_chs, kernel_size, stride, kernel_size // 2, bias=False)


class ResNet18(nn.Module):
    """CIFAR-style ResNet-18 (3x3 stem, no max-pool); ``conv`` builds the residual-stage convs."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, conv=_plain_conv):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_chans, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        blocks, chs = [], 64
        for width, stride in RESNET18_STAGES:
            blocks += [BasicBlock(conv, chs, width, stride), BasicBlock(conv, width, width, 1)]
            chs = width
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1), 1))


class RPGResNet18(ResNet18):
    def __init__(self, num_classes: int = 10, in_chans: int = 3, ring_size: int = ONE_CONV_LAYER, seed: int = 0):
        ring = ParameterRing(ring_size, seed)
        super().__init__(num_classes, in_chans, conv=lambda i, o, k, s: RingConv2d(ring, i, o, k, s))
        self.ring = ring
        ring.finalize()

    @torch.no_grad()
    def materialize(self) -> ResNet18:
        """A plain ResNet-18 holding the generated weights: what an exporter sees."""
        plain = ResNet18(self.fc.out_features, self.stem[0].in_channels)
        state = {k: v for k, v in self.state_dict().items() if not k.startswith("ring.")}
        for name, module in self.named_modules():
            if isinstance(module, RingConv2d):
                state[f"{name}.weight"] = module.weight
        plain.load_state_dict(state)
        return plain.train(self.training)


register_model("rpg-resnet18", "rpg", RPGResNet18)
