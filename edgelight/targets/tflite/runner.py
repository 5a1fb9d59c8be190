"""Run a .tflite with the LiteRT interpreter (XNNPACK is its default CPU delegate), and read one back."""

import gc
import hashlib
from collections import Counter
from pathlib import Path

import numpy as np

from edgelight.targets.base import TargetError
from edgelight.targets.tflite.native import custom_ops
from edgelight.utils.logs import native_log


def _names(cls) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def inspect_tflite(path: Path) -> dict:
    """Op inventory (builtin op names; CUSTOM ops as 'CUSTOM:<code>'), I/O tensors and sizes, from the flatbuffer on disk.

    Read with the schema, not the interpreter: an interpreter reports delegated nodes as DELEGATE.
    """
    from ai_edge_litert import schema_py_generated as fb

    data = Path(path).read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise TargetError(f"'{path}' is not a .tflite flatbuffer (no TFL3 identifier)")
    model = fb.Model.GetRootAs(data, 0)
    ops_by_name, types = _names(fb.BuiltinOperator), _names(fb.TensorType)
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = ops_by_name.get(builtin, str(builtin))
        codes.append(f"CUSTOM:{code.CustomCode().decode()}" if name == "CUSTOM" else name)
    ops, tensors = Counter(), {}
    graph = model.Subgraphs(0)
    for s in range(model.SubgraphsLength()):
        sub = model.Subgraphs(s)
        for i in range(sub.OperatorsLength()):
            ops[codes[sub.Operators(i).OpcodeIndex()]] += 1

    def describe(index: int) -> dict:
        t = graph.Tensors(index)
        q = t.Quantization()
        scale = q.ScaleAsNumpy() if q is not None and q.ScaleLength() else None
        zero = q.ZeroPointAsNumpy() if q is not None and q.ZeroPointLength() else None
        return {
            "name": (t.Name() or b"").decode(),
            "dtype": types.get(t.Type(), str(t.Type())).lower(),
            "shape": t.ShapeAsNumpy().tolist() if t.ShapeLength() else [],
            "scale": float(scale[0]) if scale is not None and len(scale) == 1 else None,
            "zero_point": int(zero[0]) if zero is not None and len(zero) == 1 else None,
        }

    tensors = {"inputs": [describe(i) for i in graph.InputsAsNumpy()], "outputs": [describe(i) for i in graph.OutputsAsNumpy()]}
    weight_bytes = sum(model.Buffers(i).DataLength() for i in range(model.BuffersLength()))
    # each distinct buffer content once: what a runtime that dedupes (XNNPACK's weights cache) has to hold
    distinct = {hashlib.sha256(model.Buffers(i).DataAsNumpy().tobytes()).digest(): model.Buffers(i).DataLength() for i in range(model.BuffersLength()) if model.Buffers(i).DataLength()}
    first = tensors["inputs"][0] if tensors["inputs"] else None
    spec = {"shape": first["shape"], "dtype": first["dtype"]} if first else None
    return {"ops": dict(sorted(ops.items())), **tensors, "input": spec, "file_bytes": len(data), "weight_bytes": weight_bytes, "weights_bytes": sum(distinct.values())}


def xnnpack_partitions(path: Path) -> int:
    """How many XNNPACK partitions the interpreter makes: 1 means every op runs in the delegate.

    The Python API lists replaced nodes next to the DELEGATE nodes, so a share of ops cannot be read here.
    """
    from ai_edge_litert.interpreter import Interpreter

    with native_log():
        interpreter = Interpreter(model_path=str(path), num_threads=1)
        interpreter.allocate_tensors()  # the default delegate is applied here
    return sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())


WEIGHT_CACHE = "xnnpack_weight_cache"  # a sidecar runtime option: pack each shared weight once (fp32 programs)
LITERT_KERNELS = "edgelight-litert-kernels"  # in a sidecar's "requires": edgelight custom ops (native/)


_PREPARED = []  # the benchmark child's LiteRT environment, made before its memory baseline (prepare)


def _new_environment():
    from ai_edge_litert.compiled_model import _create_default_environment

    return _create_default_environment()


def prepare(hints: dict) -> None:
    """Load LiteRT's CompiledModel runtime (libLiteRt.so) before the memory baseline when the cache path is used,
    and edgelight's custom-op library (which links libLiteRt.so) when the artifact needs it."""
    if LITERT_KERNELS in (hints.get("requires") or []):
        from edgelight.targets.tflite.native import load_library

        with native_log():
            load_library()
    elif hints.get("runtime_options", {}).get(WEIGHT_CACHE) and not _PREPARED:
        with native_log():
            _PREPARED.append(_new_environment())


class _CompiledModel:
    """LiteRT's CompiledModel on the CPU with XNNPACK's in-memory weights cache, behind the Interpreter calls the
    runner makes. The Interpreter API cannot turn the cache on; with it, a weight that several ops read (one
    buffer) is packed once instead of once per op."""

    def __init__(self, path: Path, threads: int | None, out_elements: int):
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.cpu_options import CpuOptions
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        from ai_edge_litert.options import Options

        cpu = CpuOptions(num_threads=threads or 0, xnnpack_weight_cache_path=":memory")
        options = Options(hardware_accelerators=HardwareAccelerator.CPU, cpu_options=cpu)
        self.environment = _PREPARED[0] if _PREPARED else _new_environment()  # elsewhere (export, tests): its own, freed on close
        self.model = CompiledModel.from_file(str(path), environment=self.environment, options=options)
        self.inputs, self.outputs = self.model.create_input_buffers(0), self.model.create_output_buffers(0)
        self.out_elements = out_elements

    def close(self) -> None:
        self.model.close()

    def run(self, x: np.ndarray) -> np.ndarray:
        self.inputs[0].write(x)
        self.model.run_by_index(0, self.inputs, self.outputs)
        return self.outputs[0].read(self.out_elements, np.float32)


class TFLiteRunner:
    """Fixed-batch runner: a run() batch is fed in chunks of the artifact's batch; int8 I/O is (de)quantized here."""

    def load(self, path: Path, threads: int | None = None, hints: dict | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        from edgelight.artifacts import runner_hints

        hints = runner_hints(path) if hints is None else hints
        self.compiled = None
        spec = inspect_tflite(Path(path))
        if custom := custom_ops(spec["ops"]):  # the stock interpreter cannot resolve them: CompiledModel + our kernels
            self._load_custom(Path(path), threads, spec, custom, hints)
            return
        try:
            with native_log():  # "Created TensorFlow Lite XNNPACK delegate" on every load
                self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
                self.input = self.interpreter.get_input_details()[0]
                self.output = self.interpreter.get_output_details()[0]
                if hints["runtime_options"].get(WEIGHT_CACHE) and self.input["dtype"] == np.float32:
                    # the interpreter only described the I/O (never allocated: no weights packed by it)
                    self.compiled = _CompiledModel(Path(path), threads, int(np.prod(self.output["shape"])))
                    self.interpreter = None
                else:
                    self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise TargetError(f"LiteRT could not load '{path}': {str(exc).strip().splitlines()[0]}") from exc

    def _load_custom(self, path: Path, threads: int | None, spec: dict, custom: list[str], hints: dict) -> None:
        from edgelight.targets.tflite.native import CustomOpModel

        self.interpreter = None
        self.input, self.output = ({"dtype": np.dtype(t["dtype"]), "shape": np.asarray(t["shape"]), "quantization": (t["scale"], t["zero_point"])}
                                   for t in (spec["inputs"][0], spec["outputs"][0]))
        with native_log():  # a first use builds libedgelight_litert.so (NativeKernelsError, one line, if it cannot)
            self.compiled = CustomOpModel(path, threads, custom, self.input["dtype"], tuple(self.output["shape"]), self.output["dtype"],
                                          weight_cache=bool(hints["runtime_options"].get(WEIGHT_CACHE)))

    def _quantize(self, x: np.ndarray) -> np.ndarray:
        if self.input["dtype"] == np.float32:
            return x
        scale, zero = self.input["quantization"]
        info = np.iinfo(self.input["dtype"])
        return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(self.input["dtype"])

    def _dequantize(self, y: np.ndarray) -> np.ndarray:
        if self.output["dtype"] == np.float32:
            return y.copy()
        scale, zero = self.output["quantization"]
        return ((y.astype(np.float32) - zero) * scale).astype(np.float32)

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        shape = tuple(self.input["shape"])
        if x.ndim != len(shape) or x.shape[1:] != shape[1:] or x.shape[0] % shape[0]:
            raise TargetError(f"this .tflite takes inputs of shape {list(shape)} (batch a multiple of {shape[0]}), got {list(x.shape)}")
        outs = []
        for chunk in np.split(x, x.shape[0] // shape[0]):
            if self.compiled is not None:
                outs.append(self._dequantize(self.compiled.run(self._quantize(chunk)).reshape(self.output["shape"])))
                continue
            self.interpreter.set_tensor(self.input["index"], self._quantize(chunk))
            self.interpreter.invoke()
            outs.append(self._dequantize(self.interpreter.get_tensor(self.output["index"])))
        return np.concatenate(outs)

    def close(self) -> None:
        self.interpreter = None
        if self.compiled is not None:
            with native_log():  # LiteRT's accelerators log their teardown ("INFO: DestroyAccelerator ...")
                self.compiled.close()
                self.compiled = None
                gc.collect()
        self.compiled = None
