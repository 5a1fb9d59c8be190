"""Lowering to an .mlpackage: torch.export -> coremltools mlprogram, iOS 17, classifier with metadata.

The model is exported with ``edgelight::shift2d`` / ``edgelight::channel_shuffle`` intact (one
node each); the converters registered in ``ops.py`` (imported here) build them from MIL ops.
Precisions: fp16 (default, fp16 compute), fp32, w8 (int8 weights, fp16 compute), w8a8 (int8
weights and activations; coremltools calibrates it by running Core ML, so it needs macOS).

Shared weights: coremltools' ``fuse_conv_batchnorm`` folds each BatchNorm into the conv before
it; when one conv weight feeds several convs (LruNet's reuse) that writes one folded copy per
use (lrunet-14-1x fp16: 3.06 MB of weights instead of 0.44 MB). Such models convert without that pass
(and without the conv scale/bias folds that would do the same), with each BatchNorm's statistics moved
into its scale/shift so the unfused ones store 2 vectors, not 4; others keep the default pipeline.

Packages are byte-deterministic: model.mlmodel is re-serialized deterministically, Manifest.json
gets name-derived item ids instead of random UUIDs, and coremltools' ExecuTorch debug-handle
map (not part of the package manifest, and larger than the model) is dropped.
"""

import json
import uuid
from collections import Counter
from pathlib import Path

from edgelight.errors import UsageError, converter_errors
from edgelight.targets.base import LoweringReport, LoweringRequest, TargetError
from edgelight.targets.coreml import OPTIONS
from edgelight.targets.coreml.runner import classify_labels, runnable_here
from edgelight.utils.logs import native_log

try:  # registers the converters for the two custom ops with coremltools' torch frontend
    from edgelight.targets.coreml import ops as _ops
except ImportError as exc:  # coremltools missing: the target still imports, lower() says why
    _ops, _IMPORT_ERROR = None, exc

MIN_TARGET = "iOS17"
# Passes that fold a per-use BatchNorm / scale / bias into a conv weight: with a shared weight, one copy per use.
WEIGHT_FOLDING_PASSES = ("common::fuse_conv_batchnorm", "common::fuse_conv_scale", "common::fuse_conv_bias")
DEBUG_MAP = "executorch_debug_handle_mapping.json"
W8A8_NEEDS_MACOS = (
    "W8A8 needs macOS: coremltools calibrates activations by running Core ML predictions; "
    "on this host use precision 'w8' (int8 weights, fp16 activations)"
)
_ID_NAMESPACE = uuid.UUID("6f0c1d7e-2a51-4c49-9a53-1f0e5d0b7c11")  # fixed: item ids depend only on the item path


def _export(model, example):
    """torch.export with the custom ops kept as single nodes (an empty decomposition table leaves them alone)."""
    import torch

    with torch.no_grad():
        ep = torch.export.export(model.eval(), (example,))
    return ep.run_decompositions({})


def bn_statistics_in_affine(model):
    """A copy whose BatchNorms hold their statistics in weight/bias (mean 0, var 1 - eps): the same function.

    Where BatchNorms stay unfused (shared weights) their constant mean/var vectors then dedupe across uses,
    so each per-use BatchNorm stores 2 vectors instead of 4; where they fold into a conv nothing changes.
    """
    import copy

    import torch

    model = copy.deepcopy(model)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.affine and m.running_var is not None:
                scale = m.weight * torch.rsqrt(m.running_var + m.eps)
                m.bias.copy_(m.bias - m.running_mean * scale)
                m.weight.copy_(scale)
                m.running_mean.zero_()
                m.running_var.fill_(1.0 - m.eps)
    return model


def shared_conv_weights(ep) -> dict[str, int]:
    """Conv weight placeholders that feed more than one conv node: {name: uses}."""
    import torch

    uses = Counter()
    for node in ep.graph.nodes:
        if node.op == "call_function" and node.target in (torch.ops.aten.conv2d.default, torch.ops.aten.convolution.default):
            uses[node.args[1].name] += 1
    return {name: n for name, n in uses.items() if n > 1}


def _pass_pipeline(keep_weights_shared: bool):
    import coremltools as ct

    pipeline = ct.PassPipeline.DEFAULT
    if keep_weights_shared:
        pipeline.remove_passes(set(WEIGHT_FOLDING_PASSES))
    return pipeline


def _weight_consts(mlmodel) -> tuple[list[str], list[str]]:
    """(one-hot depthwise weights of the shift composite, const weights feeding several convs) by const op name."""
    import numpy as np

    one_hot, shared = [], []
    for op in mlmodel._mil_program.functions["main"].operations:
        if op.op_type == "const" and sum(c.op_type == "conv" for c in op.outputs[0].child_ops) > 1:
            shared.append(op.name)
        if op.op_type != "conv" or op.weight.op.op_type != "const":
            continue
        w = op.weight.val
        if w.ndim == 4 and w.shape[1] == 1 and op.groups.val == w.shape[0] and np.all((w == 0) | (w == 1)):
            if np.all(w.reshape(w.shape[0], -1).sum(axis=1) == 1):
                one_hot.append(op.weight.op.name)
    return one_hot, [name for name in shared if name not in one_hot]


def _quantize(mlmodel, request: LoweringRequest, input_name: str):
    import coremltools.optimize as cto

    def int8(threshold=2048):
        return cto.coreml.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=threshold)

    one_hot, shared = _weight_consts(mlmodel)
    # One-hot shift weights are exact in fp16, int8 would only blur them. Shared weights below the size threshold
    # are quantized anyway: quantization re-runs coremltools' default passes, which would fold each per-use
    # BatchNorm into a still-float shared weight (one copy per use); a constexpr weight cannot be folded.
    names = {name: None for name in one_hot} | {name: int8(threshold=0) for name in shared}
    config = cto.coreml.OptimizationConfig(global_config=int8(), op_name_configs=names)
    if request.precision == "w8a8":
        if not request.calibration:
            raise TargetError("W8A8 needs calibration batches: a few hundred preprocessed inputs")
        samples = [{input_name: t[i : i + 1].numpy()} for t in request.calibration for i in range(t.shape[0])]
        mlmodel = cto.coreml.linear_quantize_activations(mlmodel, config, samples)
    return cto.coreml.linear_quantize_weights(mlmodel, config)


def _describe(mlmodel, metadata: dict, precision: str, shift_form: str) -> None:
    pre = metadata.get("preprocessing", {})
    name, version = metadata.get("model", "model"), metadata.get("edgelight_version", "")
    mlmodel.short_description = (
        f"{name} ({precision}) exported by edgelight {version}. Input: float32 NCHW, "
        f"normalised per channel with mean {pre.get('mean')} and std {pre.get('std')}."
    )
    mlmodel.author = "edgelight"
    mlmodel.version = str(version)
    extra = {
        "edgelight.model": name,
        "edgelight.version": str(version),
        "edgelight.precision": precision,
        "edgelight.shift_form": shift_form,
        "edgelight.preprocessing": json.dumps(pre, sort_keys=True),
        "edgelight.classes": json.dumps(list(metadata.get("classes", []))),
    }
    mlmodel.user_defined_metadata.update(extra)
    # the conversion date would make the bytes depend on the day; the pipeline's sidecar records when
    mlmodel.user_defined_metadata.pop("com.github.apple.coremltools.conversion_date", None)
    spec_input = mlmodel.get_spec().description.input[0].name
    mlmodel.input_description[spec_input] = "float32 NCHW, normalised per channel with the mean/std in edgelight.preprocessing"
    probs = mlmodel.get_spec().description.predictedProbabilitiesName
    if probs:  # classify maps the model output to labels as is: edgelight models output logits, not softmax
        mlmodel.output_description[probs] = "logits (not probabilities) keyed by class label"


def make_deterministic(path: Path) -> None:
    """Rewrite what coremltools writes non-deterministically; the package must still reload."""
    from coremltools.models.utils import load_spec

    path = Path(path)
    (path / DEBUG_MAP).unlink(missing_ok=True)
    spec_file = path / "Data" / "com.apple.CoreML" / "model.mlmodel"
    spec_file.write_bytes(load_spec(str(path)).SerializeToString(deterministic=True))
    manifest_file = path / "Manifest.json"
    manifest = json.loads(manifest_file.read_text())
    renamed = {old: str(uuid.uuid5(_ID_NAMESPACE, item["path"])).upper() for old, item in manifest["itemInfoEntries"].items()}
    manifest["itemInfoEntries"] = {renamed[old]: item for old, item in manifest["itemInfoEntries"].items()}
    manifest["rootModelIdentifier"] = renamed[manifest["rootModelIdentifier"]]
    manifest_file.write_text(json.dumps(manifest, indent=4, sort_keys=True) + "\n")


def lower(request: LoweringRequest) -> LoweringReport:
    if _ops is None:
        raise TargetError(f"the Core ML target needs coremltools ({_IMPORT_ERROR}); pip install coremltools==9.0")
    import coremltools as ct

    precision = request.precision
    shift_form = request.options.get("shift", OPTIONS["shift"][0])
    out_path = Path(request.out_path)
    if out_path.suffix != ".mlpackage":
        raise TargetError(f"a Core ML package path must end in .mlpackage, got '{out_path}'")

    # Statistics in scale/shift: the same function; it only changes storage where BatchNorms stay unfused.
    ep = _export(bn_statistics_in_affine(request.model), request.example)
    shared = shared_conv_weights(ep)
    # Core ML's classifier output is one {label: value} dictionary: only for a batch-1 package
    batch = int(request.example.shape[0])
    labels = list(request.metadata.get("classes") or []) if batch == 1 else []
    token = _ops.SHIFT_FORM.set(shift_form)
    try:
        with native_log(), converter_errors("Core ML conversion", TargetError):  # coremltools draws a progress bar per stage on stderr
            mlmodel = ct.convert(
                ep,
                convert_to="mlprogram",
                minimum_deployment_target=getattr(ct.target, MIN_TARGET),
                compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16,
                classifier_config=ct.ClassifierConfig(labels) if labels else None,
                pass_pipeline=_pass_pipeline(keep_weights_shared=bool(shared)),
                skip_model_load=True,  # nothing to load on Linux; on macOS predict-time loading is the runner's job
            )
    finally:
        _ops.SHIFT_FORM.reset(token)

    input_name = mlmodel.get_spec().description.input[0].name
    if precision in ("w8", "w8a8"):
        with native_log():
            mlmodel = _quantize(mlmodel, request, input_name)
    _describe(mlmodel, request.metadata, precision, shift_form)
    mlmodel.save(str(out_path))
    make_deterministic(out_path)

    info = inspect(out_path)
    notes = [f"{MIN_TARGET} mlprogram, {precision}; shift as '{shift_form}' composite"]
    if batch != 1:
        notes.append(f"batch {batch}: no classifier output (Core ML's is one label dictionary); the output is the logits array")
    if shared:
        notes.append(
            f"{len(shared)} conv weights are reused ({max(shared.values())}x at most): converted without "
            f"{', '.join(WEIGHT_FOLDING_PASSES)} so each is stored once ({info['weights_bytes']} weight bytes)"
        )
    return LoweringReport(op_inventory=info["ops"], delegated_fraction=None, notes=notes)


def inspect(path) -> dict:
    """Read a package back without Core ML (works on Linux): spec, classifier, metadata, MIL op inventory, sizes."""
    import coremltools as ct

    path = Path(path)
    if not (path / "Manifest.json").is_file():
        raise TargetError(f"'{path}' is not an .mlpackage (no Manifest.json)")
    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    desc = spec.description
    if spec.WhichOneof("Type") != "mlProgram":
        raise TargetError(f"'{path}' holds a {spec.WhichOneof('Type')} model, not an mlprogram")
    main = spec.mlProgram.functions["main"]
    block = main.block_specializations[main.opset].operations
    ops = Counter(op.type for op in block if op.type != "const")  # consts are weights and attributes, not work
    weight_uses = Counter(op.inputs["weight"].arguments[0].name for op in block if op.type == "conv")
    weights = path / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    return {
        "specification_version": spec.specificationVersion,
        "opset": main.opset,
        "inputs": [{"name": i.name, "shape": list(i.type.multiArrayType.shape)} for i in desc.input],
        "input": {"shape": [int(d) for d in desc.input[0].type.multiArrayType.shape], "dtype": "float32"} if desc.input else None,
        "outputs": [o.name for o in desc.output],
        "classifier": bool(desc.predictedFeatureName),
        "labels": classify_labels(spec),
        "metadata": dict(desc.metadata.userDefined),
        "short_description": desc.metadata.shortDescription,
        "ops": dict(sorted(ops.items())),
        "const_ops": sum(op.type == "const" for op in block),
        # a weight that feeds several convs is one var used several times: LruNet's reuse, kept as such
        "conv_weights": {
            "distinct": len(weight_uses),
            "reused": sum(n > 1 for n in weight_uses.values()),
            "max_uses": max(weight_uses.values(), default=0),
        },
        "weights_bytes": weights.stat().st_size if weights.exists() else 0,
        "package_bytes": sum(f.stat().st_size for f in path.rglob("*") if f.is_file()),
    }



def validate(precision: str, options: dict) -> None:
    """Before any work: w8a8 is calibrated by running Core ML, which only macOS can."""
    if precision == "w8a8" and runnable_here():
        raise UsageError(W8A8_NEEDS_MACOS)
