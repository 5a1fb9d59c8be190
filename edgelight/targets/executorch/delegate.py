"""EdgelightBackend: an ExecuTorch delegate for edgelight's ops ("ops=delegate").

The program is prepared as for ops=native (native.py: the int8 shift and shuffle on int8 tensors, the
optional fused shift -> 1x1 conv); then ``EdgelightPartitioner`` claims each edgelight op ahead of XNNPACK in
the same ``to_edge_transform_and_lower`` call, and ``EdgelightBackend.preprocess`` writes the op, its
arguments and its constant tensors into the blob that the C++ side (ops/kernels/src/edgelight_backend.cpp)
reads at load. The runtime needs edgelight's kernel library (the sidecar says so): the Python runner loads
it, the apps and edgelight-bench link it whole-archive.
"""

import struct

import torch
from executorch.exir.backend.backend_details import BackendDetails, PreprocessResult
from executorch.exir.backend.partitioner import DelegationSpec, Partitioner, PartitionResult
from executorch.exir.backend.utils import tag_constant_data

from edgelight.targets.executorch.runner import EDGELIGHT_BACKEND as BACKEND_ID

MAGIC = b"ELB1"
# op name -> code (edgelight_backend.cpp's enum Op), and where its arguments go: ints, reals, tensors
OP_CODES = {"shift2d": 0, "quantized_shift2d": 1, "channel_shuffle": 2, "shift_conv1x1": 3, "quantized_shift_conv1x1": 4}
_LAYOUT = {
    # schema argument names (after x) in blob order
    "shift2d": (("kernel_size", "dilation"), (), ()),
    "quantized_shift2d": (("in_zero_point", "out_zero_point", "kernel_size", "dilation"), ("in_scale", "out_scale"), ()),
    "channel_shuffle": (("groups",), (), ()),
    "shift_conv1x1": (("stride", "kernel_size", "dilation", "relu"), (), ("weight", "bias")),
    "quantized_shift_conv1x1": (
        ("in_zero_point", "mid_zero_point", "out_zero_point", "stride", "kernel_size", "dilation", "relu"),
        ("in_scale", "mid_scale", "out_scale"),
        ("weight", "weight_scales", "bias"),
    ),
}
_DTYPES = {torch.float32: 6, torch.int8: 1, torch.int32: 3}  # c10::ScalarType codes


def op_name(node: torch.fx.Node) -> str | None:
    """The edgelight op a call_function node runs (edge dialect or plain torch.ops), else None."""
    schema = getattr(node.target, "_schema", None)
    if node.op != "call_function" or schema is None or not schema.name.startswith("edgelight::"):
        return None
    name = schema.name.split("::", 1)[1]
    return name if name in OP_CODES else None


class EdgelightPartitioner(Partitioner):
    """Claims every edgelight op, one delegate call each (a shift sits between two XNNPACK convs)."""

    def __init__(self):
        super().__init__()
        self.delegation_spec = DelegationSpec(BACKEND_ID, [])

    def partition(self, exported_program) -> PartitionResult:
        tags = {}
        for node in exported_program.graph_module.graph.nodes:
            if op_name(node) is None:
                continue
            tag = f"edgelight_{len(tags)}"
            node.meta["delegation_tag"] = tag
            tags[tag] = self.delegation_spec
        tag_constant_data(exported_program)  # the fused ops' weights go into their delegate's blob
        return PartitionResult(tagged_exported_program=exported_program, partition_tags=tags)


def partitioners(delegate: bool) -> list[Partitioner]:
    """What to_edge_transform_and_lower gets: XNNPACK, with EdgelightPartitioner first for ops=delegate."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    return ([EdgelightPartitioner()] if delegate else []) + [XnnpackPartitioner()]


def _arguments(node: torch.fx.Node) -> dict:
    schema = node.target._schema
    values = {arg.name: arg.default_value for arg in schema.arguments if arg.has_default_value()}
    values.update(zip((arg.name for arg in schema.arguments), node.args))
    values.update(node.kwargs)
    return values


def _tensor(program, value) -> torch.Tensor | None:
    from executorch.backends.transforms.utils import get_param_tensor

    if value is None:
        return None
    tensor = get_param_tensor(program, value)
    if tensor is None:
        raise ValueError(f"EdgelightBackend: {value} is not a constant tensor of the partition")
    return tensor


def serialize(name: str, values: dict, tensors: list[torch.Tensor]) -> bytes:
    """The blob edgelight_backend.cpp reads (layout in its header comment)."""
    int_names, real_names, _ = _LAYOUT[name]
    ints = [int(values[key]) for key in int_names] + [0] * (8 - len(int_names))
    reals = [float(values[key]) for key in real_names] + [0.0] * (8 - len(real_names))
    out = bytearray(MAGIC + struct.pack("<I8q8dQ", OP_CODES[name], *ints, *reals, len(tensors)))
    for tensor in tensors:
        data = tensor.detach().contiguous().cpu().numpy().tobytes()
        shape = list(tensor.shape) + [1] * (4 - tensor.dim())
        out += struct.pack("<qq4qQ", _DTYPES[tensor.dtype], tensor.dim(), *shape, len(data))
        out += data + b"\0" * (-len(data) % 16)
    return bytes(out)


class EdgelightBackend(BackendDetails):
    """AOT side of the delegate: one claimed op -> its blob (ExecuTorch finds this class by its name)."""

    @staticmethod
    def preprocess(edge_program, compile_specs) -> PreprocessResult:
        (node,) = [n for n in edge_program.graph_module.graph.nodes if op_name(n) is not None]
        name = op_name(node)
        values = _arguments(node)
        tensors = [t for t in (_tensor(edge_program, values.get(key)) for key in _LAYOUT[name][2]) if t is not None]
        return PreprocessResult(processed_bytes=serialize(name, values, tensors))
