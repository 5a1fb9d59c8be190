"""An .onnx read back from disk: op inventory, inputs/outputs and weight bytes (initializers, counted once)."""

from collections import Counter
from pathlib import Path

from edgelight.targets.base import TargetError


def inspect_onnx(path: Path) -> dict:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 (protobuf errors have many types; all mean "not a model")
        raise TargetError(f"'{path}' is not a readable ONNX model ({type(e).__name__})") from None
    graph = model.graph
    ops = Counter(f"{n.domain}::{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type for n in graph.node)

    def shape(value) -> list:
        return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in value.type.tensor_type.shape.dim]

    weights = {}
    for init in graph.initializer:
        weights[init.name] = len(init.raw_data) if init.raw_data else onnx.numpy_helper.to_array(init).nbytes
    return {
        "ops": dict(sorted(ops.items())),
        "inputs": [{"name": v.name, "shape": shape(v)} for v in graph.input],
        # a dynamic batch is fed as 1; any other dynamic dimension cannot be guessed (None)
        "input": {"shape": [d if isinstance(d, int) and d > 0 else 1 if i == 0 else None for i, d in enumerate(shape(graph.input[0]))], "dtype": "float32"} if graph.input else None,
        "outputs": [{"name": v.name, "shape": shape(v)} for v in graph.output],
        "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None),
        "weights_bytes": sum(weights.values()),
        "initializers": len(weights),
        "file_bytes": Path(path).stat().st_size,
    }
