"""Runs an .mlpackage with Core ML. Core ML exists only on macOS: elsewhere ``load`` raises with the reason."""

import platform
from pathlib import Path

import numpy as np

from edgelight.targets.base import TargetError

NOT_HERE = "Core ML runs only on macOS; on this host the package is checked by spec and op inventory"


def runnable_here() -> str | None:
    return None if platform.system() == "Darwin" else NOT_HERE


def classify_labels(spec) -> list:
    """Labels of the mlprogram's ``classify`` op, in order (they are inline in the op's ``classes`` argument)."""
    main = spec.mlProgram.functions["main"]
    for op in main.block_specializations[main.opset].operations:
        if op.type == "classify":
            values = op.inputs["classes"].arguments[0].value.immediateValue.list.values
            return [v.immediateValue.tensor.strings.values[0] if v.immediateValue.tensor.HasField("strings") else int(v.immediateValue.tensor.longInts.values[0]) for v in values]
    return []


class CoreMLRunner:
    """MLModel.predict: a batch-1 package one sample at a time (logits in label order), a batch-N one per batch."""

    def __init__(self, compute_units: str = "ALL"):
        self.compute_units = compute_units
        self.model = None

    def load(self, path: Path, threads: int | None = None, hints: dict | None = None) -> None:
        # threads: Core ML schedules its own compute units; there is no thread-count knob to honour.
        reason = runnable_here()
        if reason:
            raise TargetError(reason)
        import coremltools as ct

        self.model = ct.models.MLModel(str(path), compute_units=getattr(ct.ComputeUnit, self.compute_units))
        spec = self.model.get_spec()
        desc = spec.description
        self.input_name = desc.input[0].name
        self.input_shape = tuple(desc.input[0].type.multiArrayType.shape)
        self.probs_name = desc.predictedProbabilitiesName or None  # classifier: a {label: logit} dictionary
        self.output_name = self.probs_name or desc.output[0].name
        self.labels = classify_labels(spec) if self.probs_name else None

    def run(self, x: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise TargetError("CoreMLRunner.run called before load")
        x = np.ascontiguousarray(x, dtype=np.float32)
        if tuple(x.shape[1:]) != self.input_shape[1:]:
            raise TargetError(f"input shape {tuple(x.shape)} does not match the package's {self.input_shape}")
        if not self.probs_name and self.input_shape[0] != 1:  # a batch-N package: whole batches only
            if x.shape[0] != self.input_shape[0]:
                raise TargetError(f"this package takes batches of {self.input_shape[0]}, got {x.shape[0]}")
            return np.asarray(self.model.predict({self.input_name: x})[self.output_name], dtype=np.float32)
        rows = []
        for i in range(x.shape[0]):
            out = self.model.predict({self.input_name: x[i : i + 1]})[self.output_name]
            if self.probs_name:
                rows.append(np.array([out[label] for label in self.labels], dtype=np.float32))
            else:
                rows.append(np.asarray(out, dtype=np.float32).reshape(-1))
        return np.stack(rows)

    def close(self) -> None:
        self.model = None
