"""Your own nn.Module through the same pipeline as the zoo: edgelight.export(...) and `edgelight export FILE.py:FN`."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import edgelight
from edgelight.layers import ChannelShuffle, ConvBnAct, CSCBlock, LruBlock, Shift
from edgelight.pipeline import ExportResult
from edgelight.user_models import ModuleExportError

MODULE_FILE = '''
import torch
from torch import nn

from edgelight.layers import CSCBlock, ConvBnAct


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = ConvBnAct(3, 8, 3)
        self.block = CSCBlock(8, 16, stride=2)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        return self.head(self.block(self.stem(x)).mean((2, 3)))


def build():
    torch.manual_seed(0)
    return Net().eval()


def build_with_input():
    return build(), torch.zeros(2, 3, 16, 16)


class DataDependent(nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x.mean((2, 3))
        return x.amax((2, 3))


def build_bad():
    return DataDependent()


def build_not_a_module():
    return 42
'''


class TinyShiftNet(nn.Module):
    """Every public edgelight block in one network."""

    def __init__(self):
        super().__init__()
        self.stem = ConvBnAct(3, 16, 3)
        self.body = nn.Sequential(CSCBlock(16, 16), LruBlock(16, 2), ChannelShuffle(4), Shift(3))
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.body(self.stem(x)).mean((2, 3)))


def cli(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgelight", *args], capture_output=True, text=True, cwd=cwd, timeout=900)


@pytest.mark.parametrize("target", ["tflite", "onnx"])  # ExecuTorch: the custom-network tutorial (tests/test_tutorials.py)
def test_a_user_module_built_from_edgelight_layers_exports_verified_with_the_same_sidecar(tmp_path, target):
    torch.manual_seed(0)
    model = TinyShiftNet().eval()
    x = torch.randn(40, 3, 16, 16)
    y = model(x).argmax(1).numpy()  # labels the model gets right: its accuracy must come back as 100%
    result = edgelight.export(model, torch.zeros(1, 3, 16, 16), target=target, eval_data=(x, y), labels=["a", "b", "c"], out=tmp_path, mean=(0.5,) * 3, std=(0.25,) * 3)
    assert isinstance(result, ExportResult) and result.artifact.is_file() and result.artifact.name == f"tinyshiftnet_{target}_fp32{result.artifact.suffix}"
    v = result.verification
    assert v["status"] == "passed" and v["dataset"] == "user" and v["samples"] == 40 and v["accuracy"] == 1.0
    side = json.loads(result.sidecar.read_text())
    assert side["weights"] == "user" and side["labels"] == ["a", "b", "c"] and side["mean"] == [0.5] * 3 and side["input_shape"] == [1, 3, 16, 16]
    assert side["model"] == "tinyshiftnet" and side["sidecar_version"] == 4


def test_a_user_module_w8a8_calibrates_on_the_inputs_given(tmp_path):
    torch.manual_seed(0)
    model = TinyShiftNet().eval()
    calibration = torch.randn(32, 3, 16, 16)
    result = edgelight.export(model, torch.zeros(1, 3, 16, 16), target="tflite", precision="w8a8", calibration=calibration, out=tmp_path)
    assert result.precision == "w8a8" and result.verification["dataset"] == "random-inputs" and result.verification["accuracy"] is None


def test_a_module_torch_export_cannot_trace_names_the_users_line(tmp_path):
    (tmp_path / "nets.py").write_text(MODULE_FILE)
    sys.path.insert(0, str(tmp_path))
    try:
        import nets
    finally:
        sys.path.pop(0)
    with pytest.raises(ModuleExportError) as caught:
        edgelight.export(nets.DataDependent(), torch.zeros(1, 3, 8, 8), target="onnx", out=tmp_path / "out")
    message = str(caught.value)
    assert "cannot be exported by torch.export" in message and "data-dependent" in message
    assert "nets.py:" in message and "`if x.sum() > 0:`" in message and "\n" not in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "model, example, kwargs, message",
    [
        ("not a module", torch.zeros(1, 3, 8, 8), {}, "export takes a torch.nn.Module, got str"),
        (nn.Conv2d(3, 4, 3), torch.zeros(1, 3, 8, 8), {}, r"must return logits \[N, classes\]"),
        (nn.Flatten(), torch.zeros(1, 3, 8), {}, r"example_input must be a float32 \[N, C, H, W\]"),
        (nn.Sequential(nn.Flatten(), nn.Linear(192, 5)), torch.zeros(1, 3, 8, 8), {"labels": ["a"]}, "1 labels for 5 outputs"),
        (nn.Sequential(nn.Flatten(), nn.Linear(192, 5)), torch.zeros(1, 3, 8, 8), {"mean": (0.5,)}, "mean and std need 3 values"),
        (nn.Sequential(nn.Flatten(), nn.Linear(192, 5)), torch.zeros(1, 3, 8, 8), {"eval_data": np.zeros((4, 3, 9, 9), np.float32)}, r"verification inputs must be \[N,3,8,8\]"),
    ],
    ids=["not-a-module", "not-logits", "3d-input", "labels", "mean", "eval-shape"],
)
def test_user_module_mistakes_are_usage_errors_and_write_nothing(tmp_path, model, example, kwargs, message):
    with pytest.raises(ValueError, match=message):
        edgelight.export(model, example, target="onnx", out=tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_the_cli_exports_file_colon_function(tmp_path):
    (tmp_path / "nets.py").write_text(MODULE_FILE)
    proc = cli("export", "nets.py:build_with_input", "-t", "onnx", "--out", "out", "--mean", "0.5,0.5,0.5", "--std", "0.2,0.2,0.2", "--labels", "a,b,c,d", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["nets_onnx_fp32_b2.onnx", "nets_onnx_fp32_b2.onnx.json"]
    side = json.loads((tmp_path / "out" / "nets_onnx_fp32_b2.onnx.json").read_text())
    assert side["input_shape"] == [2, 3, 16, 16] and side["labels"] == ["a", "b", "c", "d"] and side["std"] == [0.2] * 3
    assert "verified on 64 random-inputs images" in proc.stdout


@pytest.mark.parametrize(
    "ref, message",
    [
        ("nets.py:build_bad", "cannot be exported by torch.export"),
        ("nets.py:nope", "'nets.py' has no function 'nope' (it defines: Net, build, build_with_input, DataDependent, build_bad, build_not_a_module)"),
        ("nets.py:build_not_a_module", "must return an nn.Module (or (module, example_input)), got int"),
        ("absent.py:build", "'absent.py' does not exist"),
    ],
)
def test_cli_module_mistakes_are_one_line_exit_2(tmp_path, ref, message):
    (tmp_path / "nets.py").write_text(MODULE_FILE)
    proc = cli("export", ref, "-t", "onnx", "--out", "out", cwd=tmp_path)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()


def test_checkpoint_exports_refuse_user_module_options(tmp_path):
    proc = cli("export", "shiftresnet-20-e3", "-t", "onnx", "--mean", "0.5", cwd=tmp_path)
    assert proc.returncode == 2 and "--mean, --std and --labels are for FILE.py:BUILD_FN" in proc.stderr


def test_the_public_layers_are_the_ones_the_zoo_uses():
    from edgelight.models import create_model

    model = create_model("lrunet-4-1x")
    assert any(isinstance(m, LruBlock) for m in model.modules())
    assert any(isinstance(m, CSCBlock) for m in create_model("shiftresnet-20-e3").modules())
    assert Path(edgelight.layers.__file__).parent.name == "layers"
