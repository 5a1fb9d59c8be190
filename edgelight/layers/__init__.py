"""Model-agnostic building blocks, public for your own networks. Nothing here knows about the registry.

- ``Shift``: the zero-FLOP, parameter-free shift (ShiftNet), lowered as a custom op or a delegate per runtime;
- ``ChannelShuffle`` / ``LruShuffle``: fixed channel permutations (ShuffleNet, LruNet);
- ``CSCBlock``: ShiftResNet's conv-shift-conv residual block;
- ``LruBlock``: one depthwise + pointwise pair reused N times with per-reuse BatchNorm (LruNet's layer reuse);
- ``ConvBnAct``, ``make_divisible``: the usual helpers.
"""

from edgelight.layers.blocks import ChannelShuffle, ConvBnAct, CSCBlock, LruBlock, LruShuffle, Shift, make_divisible, shortcut

__all__ = ["CSCBlock", "ChannelShuffle", "ConvBnAct", "LruBlock", "LruShuffle", "Shift", "make_divisible", "shortcut"]
