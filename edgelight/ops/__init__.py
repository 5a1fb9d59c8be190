"""edgelight's two custom ops, defined once for every target.

Importing this package registers ``torch.ops.edgelight.shift2d`` and
``torch.ops.edgelight.channel_shuffle`` (functional and ``.out`` schemas, a CPU
kernel, a fake kernel for export, autograd). Each export target decides how to
lower them; the plain-Python references here are what every lowering and native
kernel is tested against.
"""

from edgelight.ops.shift import shift2d, shift2d_reference
from edgelight.ops.shuffle import channel_shuffle, channel_shuffle_reference

CUSTOM_OPS = ("edgelight::shift2d", "edgelight::channel_shuffle")

__all__ = ["CUSTOM_OPS", "channel_shuffle", "channel_shuffle_reference", "shift2d", "shift2d_reference"]
