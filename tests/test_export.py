"""The export pipeline over registry x target x precision, through edgelight.pipeline.export_model.

Each cell is a real export: lowering, the target's own runtime on the digits test split (Core ML off
macOS: the package read back), atomic publication and the sidecar. Cells known to fail sit in a strict
expected-failure table: a cell that starts passing fails the run until it leaves the table.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgelight.checkpoint import Checkpoint, Preprocessing, builtin_checkpoint_dir, save_checkpoint
from edgelight.models import create_model, get_spec
from edgelight.pipeline import VerificationError, export_model
from edgelight.targets import TARGET_NAMES, get_target

# trained on digits, so accuracy is checked: through every target x precision (the one full matrix of a
# trained model), and the two larger built-ins once each, where their question is asked
BUILTIN = ("shiftresnet-20-e3", "mobilenetv2-cifar-050", "lrunet-14-1x")
FULL_MATRIX = ("shiftresnet-20-e3", "mobilenetv2-cifar-050")
ONCE = {"lrunet-14-1x": ("executorch", "fp32")}  # its 14 reuses: the .pte test_executorch.py reads as well
# a small member of every family, random weights with trained-like BatchNorm statistics (parity is checked):
# what the lowering must handle is each family's block, not its full depth, reuse count or input size
FAMILIES = {  # name -> (input size, model arguments, precisions: "all" or the target's default only)
    "resnet-20": (32, {}, "all"),
    "lrunet-4-1x": (32, {}, "all"),  # LruNet's reuse, quantized: 4 uses of each shared weight instead of 14
    "lrunet-1-2x": (32, {}, "default"),
    "mobilenetv1-025": (32, {}, "default"),
    "mobilenetv2-025": (32, {}, "default"),
    "densenet-bc-100-k12": (16, {"depth": 22}, "default"),  # 3 bottlenecks per dense block instead of 16
    "rpg-resnet18": (16, {}, "default"),
}
SIZES = {m: size for m, (size, _, _) in FAMILIES.items() if size != 32}
CELLS = [(t, p) for t in TARGET_NAMES for p in get_target(t).precisions]
NEEDS_MAC = {("coreml", "w8a8"): "Core ML W8A8 is calibrated by running Core ML: macOS only"}
# the usual way of writing the shift, exported with edgelight's pipeline: what the lowering choice is measured against
NAIVE = [("shiftresnet-20-e3", "executorch", "fp32", {"shift": "slices"}), ("shiftresnet-20-e3", "executorch", "w8a8", {"shift": "slices"}),
         ("shiftresnet-20-e3", "tflite", "fp32", {"shift": "slices"}), ("shiftresnet-20-e3", "tflite", "w8a8", {"shift": "slices"})]

# (model, target, precision, options as k=v) -> why; strict: remove an entry once it passes. Empty since the
# ExecuTorch int8 pad shares its input's scale (the shift=slices program used to fail to load)
EXPECTED_FAILURES: dict[tuple, str] = {}


def _key(model, target, precision, options) -> tuple:
    return (model, target, precision, ",".join(f"{k}={v}" for k, v in sorted(options.items())))


def t_default(target: str) -> str:
    return get_target(target).default_precision


def _matrix():
    cells = [(m, t, p, {}) for m in FULL_MATRIX for t, p in CELLS]
    cells += [(m, t, p, {}) for m, (t, p) in ONCE.items()]
    cells += [(m, t, p, {}) for m, (_, _, which) in FAMILIES.items() for t, p in CELLS if which == "all" or p == t_default(t)]
    cells += NAIVE
    for model, target, precision, options in cells:
        key = _key(model, target, precision, options)
        marks = [pytest.mark.xfail(reason=EXPECTED_FAILURES[key], strict=True, raises=(VerificationError, RuntimeError))] if key in EXPECTED_FAILURES else []
        if (target, precision) in NEEDS_MAC and sys.platform != "darwin":
            marks.append(pytest.mark.skip(reason=NEEDS_MAC[(target, precision)]))
        yield pytest.param(model, target, precision, options, marks=marks, id="-".join(filter(None, key)))


def test_expected_failures_are_matrix_cells():
    keys = {_key(*p.values) for p in _matrix()}
    assert set(EXPECTED_FAILURES) <= keys


def _source(model: str, random_checkpoints) -> str:
    if model in BUILTIN:
        path = builtin_checkpoint_dir(model)
        assert path is not None, f"{model} has no built-in checkpoint in edgelight/pretrained"
        return str(path)
    size, args, _ = FAMILIES[model]
    return str(random_checkpoints(model, size, **args))


@pytest.mark.slow
@pytest.mark.parametrize("model, target, precision, options", list(_matrix()))
def test_export_cell(model, target, precision, options, random_checkpoints, exported):
    size = SIZES.get(model)
    result = exported(_source(model, random_checkpoints), target, precision, size=size, **options)
    tgt = get_target(target)

    # the artifact, its sidecar, and nothing else (no temporary left behind)
    assert result.artifact.exists() and result.artifact.suffix == tgt.suffix and result.bytes > 0
    assert sorted(p.name for p in result.artifact.parent.iterdir()) == sorted([result.artifact.name, result.sidecar.name])
    side = json.loads(result.sidecar.read_text())
    assert (side["model"], side["precision"], side["target"], side["input_shape"]) == (model, precision, target, [1, 3, size or 32, size or 32])
    assert len(side["labels"]) == 10 and len(side["mean"]) == len(side["std"]) == 3 and side["params"] > 0 and side["macs"] > 0
    assert side["verification"] == result.verification and side["bytes"] == result.bytes

    # what is inside: builtin ops only, nothing left for a missing custom kernel
    ops = result.op_inventory
    assert not [op for op in ops if "edgelight" in op or op.startswith("CUSTOM")], ops
    if target == "executorch":
        assert ops.get("delegate:XnnpackBackend", 0) >= 1
        assert not [op for op in ops if "convolution" in op or "linear" in op or "addmm" in op], f"compute left outside XNNPACK: {ops}"
    if target == "coreml":
        assert ops.get("conv", 0) >= 1 and "classify" in ops

    v = result.verification
    if tgt.runnable_here() is not None:
        assert v["status"] == "inspected" and v["inspection"]["labels"] == [str(i) for i in range(10)]
        return
    assert v["status"] == "passed" and v["samples"] == 360 and not v["nan_outputs"]
    if precision == "fp32":
        assert v["top1_agreement"] >= 0.995 and v["max_rel_diff"] <= 1e-3
    if model in BUILTIN:
        assert v["reference_accuracy"] >= 0.97
        assert v["accuracy"] >= v["reference_accuracy"] - 0.01


def _constant_sizes(target: str, path: Path) -> list[int]:
    """Byte sizes of the constant tensors an artifact stores (Core ML: none, see its test)."""
    if target == "executorch":
        from executorch.exir._serialize._program import deserialize_pte_binary

        pte = deserialize_pte_binary(path.read_bytes())
        return [len(b) for b in pte.named_data.buffers] + [len(b.storage) for b in pte.program.constant_buffer]
    if target == "onnx":
        import onnx

        return [len(i.raw_data) for i in onnx.load(str(path)).graph.initializer]
    from ai_edge_litert import schema_py_generated as fb

    model = fb.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    return [len(b.data) for b in model.buffers if b.data is not None]


@pytest.mark.slow
@pytest.mark.parametrize("target, precision", [c for c in CELLS if c not in NEEDS_MAC])
def test_shared_weights_are_stored_once(target, precision, exported, random_checkpoints):
    """lrunet-4-1x applies each stage's conv pair 4 times: every artifact holds those weights once.

    The largest shared weight (stage 4's grouped 1x1 conv, 512 x 128 = 65,536 weights) must be stored
    exactly once; the rest of the growth per reuse is that reuse's own BatchNorm.
    """
    result = exported(_source("lrunet-4-1x", random_checkpoints), target, precision)
    conv_params, uses = 125_002, 4  # the conv/FC weights; the other parameters are per-reuse BatchNorms
    per_weight = {"fp32": 4, "fp16": 2, "w8a8": 1, "w8": 1}[precision]
    if target == "coreml":
        info = get_target(target).inspect(result.artifact)
        assert info["conv_weights"]["max_uses"] == uses and info["conv_weights"]["reused"] >= 8, info["conv_weights"]
        stored = info["weights_bytes"]
    else:
        sizes = _constant_sizes(target, result.artifact)
        assert sizes.count(65_536 * per_weight) == 1, sorted(sizes)[-10:]
        stored = sum(sizes)
    # a copy per use would be at least uses x the conv weights; quantization adds per-use scales and int32 biases
    assert stored < 0.75 * uses * conv_params * per_weight, f"{stored} constant bytes: copies of the shared weights?"


@pytest.mark.slow
@pytest.mark.parametrize("target, precision", [("executorch", "fp32"), ("executorch", "w8a8"), ("tflite", "fp32"), ("tflite", "w8a8"), ("coreml", "fp16"), ("onnx", "fp32"), ("onnx", "w8a8")])
def test_the_same_input_gives_the_same_bytes(target, precision, tmp_path, exported):
    """A fresh export in this process against the run's shared one (often made by another worker)."""
    a = exported("shiftresnet-20-e3", target, precision)
    b = export_model("shiftresnet-20-e3", target, precision, out=tmp_path / "b.tmp" / f"m{get_target(target).suffix}", verify_artifact=False)

    def content(path: Path) -> list[tuple[str, bytes]]:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        return [(str(f.relative_to(path)) if path.is_dir() else "", f.read_bytes()) for f in files]

    assert content(a.artifact) == content(b.artifact)


# ---------------------------------------------------------------- failures leave nothing behind


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("target", TARGET_NAMES)
@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_lowering_leaves_nothing(target, error, tmp_path, monkeypatch):
    """Ctrl-C (or a crash) after the target wrote half a file: no artifact, no temporary, no sidecar, no new folder."""
    import dataclasses

    import edgelight.pipeline as pipeline

    def half_written(request):
        path = Path(request.out_path)
        if path.suffix == ".mlpackage":  # a package is a folder
            (path / "Data").mkdir(parents=True)
            (path / "Data" / "partial").write_bytes(b"\0" * 100)
        else:
            path.write_bytes(b"\0" * 100)
        raise error("stopped half way")

    real = get_target(target)
    monkeypatch.setattr(pipeline, "get_target", lambda name: dataclasses.replace(real, exporter=dataclasses.replace(real.exporter, lower=half_written)))
    before = _listing(tmp_path)
    with pytest.raises(error):
        export_model("shiftresnet-20-e3", target, out=tmp_path / "new" / "deeper", verify_artifact=False)
    assert _listing(tmp_path) == before


def test_a_failed_verification_publishes_nothing(tmp_path, monkeypatch):
    import edgelight.pipeline as pipeline

    monkeypatch.setitem(pipeline.THRESHOLDS, "fp32", (1.01, 1e-3))  # no artifact can agree on 101% of top-1
    with pytest.raises(VerificationError, match="top-1 agreement"):
        export_model("shiftresnet-20-e3", "executorch", "fp32", out=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_published_artifact_survives_a_failed_re_export(tmp_path, monkeypatch):
    import edgelight.pipeline as pipeline

    first = export_model("shiftresnet-20-e3", "executorch", "fp32", out=tmp_path, verify_artifact=False)
    data = first.artifact.read_bytes()
    monkeypatch.setitem(pipeline.THRESHOLDS, "fp32", (1.01, 1e-3))
    with pytest.raises(VerificationError):
        export_model("shiftresnet-20-e3", "executorch", "fp32", out=tmp_path)
    assert first.artifact.read_bytes() == data and sorted(p.name for p in tmp_path.iterdir()) == sorted([first.artifact.name, first.sidecar.name])


# ---------------------------------------------------------------- bad input: one clear line, non-zero exit


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "edgelight", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


@pytest.fixture()
def mismatched_checkpoint(tmp_path):
    """config.json says lrunet-4-1x next to lrunet-1-1x weights."""
    path = tmp_path / "mismatch"
    model = create_model("lrunet-1-1x")
    save_checkpoint(path, Checkpoint(model, "lrunet-1-1x", dict(model.model_args), [str(i) for i in range(10)], Preprocessing()))
    config = json.loads((path / "config.json").read_text())
    config["model"] = "lrunet-4-1x"
    (path / "config.json").write_text(json.dumps(config))
    return path


@pytest.mark.parametrize(
    "args, message",
    [
        (["shiftresnet-20-e3", "--target", "tensorrt"], "unknown target 'tensorrt'"),
        (["shiftresnet-20-e3", "--target", "coreml2"], "did you mean coreml"),
        (["shiftresnet-20-e3", "--target", "eager"], "not an export target"),
        (["shiftresnet-20-e3", "--target", "executorch", "--precision", "fp16"], "supports precisions fp32, w8a8, not 'fp16'"),
        (["shiftresnet-20-e3", "--target", "tflite", "--option", "io=int4"], "io='int4' is not one of: float, int8"),
        (["shiftresnet-20-e3", "--target", "tflite", "--option", "speed=max"], "unknown tflite option(s): speed"),
        (["shiftresnet-20-e3", "--target", "tflite", "--option", "io"], "--option takes KEY=VALUE"),
        (["shiftresnet-20-e", "--target", "tflite"], "Did you mean: shiftresnet-20-e9, shiftresnet-20-e6, shiftresnet-20-e3?"),
        (["./no/such/dir", "--target", "tflite"], "is not a checkpoint directory"),
        (["shiftresnet-20-e3", "--target", "tflite", "--out", "model.pte"], "must end in .tflite"),
        (["shiftresnet-20-e3", "--target", "executorch", "--batch", "0"], "--batch must be >= 1"),
        (["shiftresnet-20-e3", "--target", "executorch", "-O", "fuse=on"], "fuse=on needs ops=native"),
        (["shiftresnet-20-e3", "--target", "coreml", "--precision", "int8"], "'int8' is ambiguous here: w8 or w8a8"),
        (["shiftresnet-20-e3", "--target", "coreml", "--precision", "w8a8"], "W8A8 needs macOS"),
        (["shiftresnet-20-e3", "--target", "tflite", "-O", "io=int8"], "io='int8' needs precision w8a8"),
        (["shiftresnet-20-e3", "--target", "executorch", "-O", "ops=native", "-O", "shift=slices"], "does not apply with ops=native"),
        (["shiftresnet-20-e3", "--target", "executorch", "-O", "boundary=channels-last"], "needs ops=native or ops=delegate"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args, message, tmp_path):
    proc = _cli("export", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and _listing(tmp_path) == []


def test_bad_inputs_on_disk_are_one_line_and_leave_nothing(tmp_path, mismatched_checkpoint):
    work = tmp_path / "work"
    work.mkdir()
    (work / "empty").mkdir()
    (work / "a_file").write_text("not a folder")
    (work / "objects").mkdir()
    np.save(work / "objects" / "a.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    (work / "nan").mkdir()
    np.save(work / "nan" / "a.npy", np.full((4, 3, 32, 32), np.nan, dtype=np.float32))
    cases = [
        ([str(mismatched_checkpoint), "--target", "tflite"], "the weights do not match lrunet-4-1x"),
        (["shiftresnet-20-e3", "--target", "executorch", "--precision", "int8", "--calib", "empty"], "holds no .npy arrays, images (.png, .jpg"),
        (["shiftresnet-20-e3", "--target", "executorch", "--precision", "int8", "--calib", "missing"], "data 'missing' is neither digits, NAME:DIR"),
        (["shiftresnet-20-e3", "--target", "executorch", "--out", "a_file/sub/m.pte"], "cannot write to"),
        (["shiftresnet-20-e3", "--target", "tflite", "--precision", "int8", "--calib", "objects"], "is not a plain numeric array"),
        (["shiftresnet-20-e3", "--target", "tflite", "--precision", "int8", "--calib", "nan"], "holds NaN or infinite values"),
    ]
    for args, message in cases:
        before = _listing(work)
        proc = _cli("export", *args, cwd=work)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], (args, proc.stderr)
        assert _listing(work) == before, args


def test_calibration_from_a_folder_of_arrays(tmp_path):
    from edgelight.data import load_digits, normalize

    ds = load_digits()
    for i in range(3):
        x = normalize(ds.train_x[i * 20 : (i + 1) * 20], ds.mean, ds.std)
        np.save(tmp_path / f"batch{i}.npy", x.numpy())
    result = export_model("shiftresnet-20-e3", "executorch", "w8a8", calib=str(tmp_path), out=tmp_path / "out", threads=1)
    assert result.verification["status"] == "passed" and result.verification["accuracy"] >= 0.95


def test_the_cli_export_prints_where_and_how_well(tmp_path):
    proc = _cli("export", "shiftresnet-20-e3", "--target", "executorch", "--out", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {tmp_path / 'shiftresnet-20-e3_executorch_fp32.pte'}" in proc.stdout
    assert "verified on 360 digits-test images: top-1 agreement 100.00%" in proc.stdout
    assert proc.stderr.strip() == ""  # no library chatter, no warnings for a built-in checkpoint


def test_a_model_without_a_checkpoint_exports_random_weights_with_a_warning(tmp_path):
    assert builtin_checkpoint_dir("resnet-20") is None
    proc = _cli("export", "resnet-20", "--target", "executorch", "--out", str(tmp_path), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "warning: resnet-20 has no built-in checkpoint: using random weights"
    result = json.loads(proc.stdout)
    side = json.loads(Path(result["sidecar"]).read_text())
    assert side["weights"] == "random" and result["verification"]["accuracy"] is None
    assert get_spec("resnet-20").input_size == side["input_shape"][-1]


def test_default_names_keep_variants_apart():
    """Non-default options, batch and size go into the default file name, so a variant never overwrites another."""
    from edgelight.checkpoint import resolve
    from edgelight.pipeline import default_name

    ckpt, tflite = resolve("shiftresnet-20-e3"), get_target("tflite")
    defaults = tflite.check_options({})
    assert default_name(ckpt, tflite, "w8a8", defaults, (1, 3, 32, 32)) == "shiftresnet-20-e3_tflite_w8a8.tflite"
    assert default_name(ckpt, tflite, "w8a8", {**defaults, "io": "int8"}, (4, 3, 48, 48)) == "shiftresnet-20-e3_tflite_w8a8_io-int8_b4_48x48.tflite"


@pytest.mark.slow
@pytest.mark.parametrize("target, precision", [("executorch", "fp32"), ("executorch", "w8a8"), ("tflite", "fp32"), ("tflite", "w8a8")])
def test_the_grouped_shift_is_exact_and_stays_in_one_xnnpack_partition(target, precision, tmp_path):
    """-O shift=grouped regroups each CSC block's channels (a copy of the model); the artifact verifies against the
    original model. ExecuTorch: one XNNPACK subgraph. LiteRT int8: one partition (the cat tree keeps every
    CONCATENATION at <= 5 inputs); LiteRT fp32: the converter merges the tree back into one 10-input
    CONCATENATION, which LiteRT's XNNPACK delegate leaves out, so each of the 2 shifts splits the graph."""
    import torch
    from torch import nn

    import edgelight
    from edgelight.layers import ConvBnAct, CSCBlock
    from edgelight.testing import trained_like_batchnorm

    torch.manual_seed(0)
    model = trained_like_batchnorm(nn.Sequential(ConvBnAct(3, 16, 3), CSCBlock(16, 16), CSCBlock(16, 32, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 4))).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(64, 3, 16, 16)
    result = edgelight.export(model, x[:1], target=target, precision=precision, calibration=x[:32] if precision == "w8a8" else None,
                              eval_data=x, out=tmp_path, options={"shift": "grouped"})
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # the caller's model is not regrouped
    v = result.verification
    assert v["status"] == "passed" and v["max_rel_diff"] <= (1e-5 if precision == "fp32" else 0.1), v
    if target == "executorch":
        assert result.op_inventory == {"delegate:XnnpackBackend": 1}, result.op_inventory
    else:
        from edgelight.targets.tflite.runner import xnnpack_partitions

        assert xnnpack_partitions(result.artifact) == (1 if precision == "w8a8" else 3)
        assert "SLICE" in result.op_inventory and "DEPTHWISE_CONV_2D" not in result.op_inventory, result.op_inventory
