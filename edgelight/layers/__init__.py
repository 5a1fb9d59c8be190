"""Model-agnostic building blocks. Nothing here knows about the registry."""

from edgelight.layers.blocks import ConvBnAct, LruShuffle, Shift, make_divisible

__all__ = ["ConvBnAct", "LruShuffle", "Shift", "make_divisible"]
