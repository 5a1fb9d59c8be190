"""Training on the built-in digits set, the checkpoint it writes (safetensors + JSON, never pickle), resume,
the papers' recipes, and clear errors for broken checkpoint directories."""

import json
import pickle
import shutil
import struct

import pytest
import torch
from safetensors.torch import load_file

from edgelight.checkpoint import Checkpoint, CheckpointError, Preprocessing, load_checkpoint, resolve, save_checkpoint
from edgelight.data import load_digits
from edgelight.errors import UsageError
from edgelight.models import create_model
from edgelight.models.shiftresnet import CifarResNet
from edgelight.train import RECIPES, default_recipe, evaluate, train
from edgelight.train.loop import lr_at

TRAIN_MODEL, TRAIN_EPOCHS = "resnet-20", 3  # reaches 0.94-0.98 on seeds 0-4 in about 15 s on one core
MIN_ACCURACY = 0.8  # chance is 0.1
PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "run"
    result = train(TRAIN_MODEL, epochs=TRAIN_EPOCHS, out=out, progress=False, seed=0)
    return result, out


def _json(path):
    return json.loads(path.read_text())


def _assert_no_pickle(folder):
    for path in folder.rglob("*"):
        if path.is_file():
            assert path.suffix in {".safetensors", ".json"}, path
            assert path.suffix not in PICKLE_SUFFIXES
            head = path.read_bytes()[:8]
            assert not head.startswith(b"\x80") and not head.startswith(b"PK\x03\x04"), f"{path} looks like a pickle / torch.save file"
            if path.suffix == ".safetensors":  # u64 little-endian header length, then a JSON header
                (length,) = struct.unpack("<Q", head)
                assert path.read_bytes()[8 : 8 + length].lstrip().startswith(b"{")


# ---------------------------------------------------------------- a real (short) training run


@pytest.mark.slow
def test_training_reaches_far_above_chance(trained):
    result, out = trained
    metrics = result.metrics
    assert MIN_ACCURACY <= metrics["test_accuracy"] <= 1.0
    assert json.loads(json.dumps(metrics)) == _json(out / "metrics.json")  # (tuples come back as lists)
    assert result.out_dir == out and result.checkpoint.name == TRAIN_MODEL


@pytest.mark.slow
def test_training_writes_the_checkpoint(trained):
    _, out = trained
    for name in ("model.safetensors", "config.json", "metrics.json", "train_state.json", "last.safetensors", "optimizer.safetensors"):
        assert (out / name).is_file(), name
    config = _json(out / "config.json")
    assert config["model"] == TRAIN_MODEL
    assert config["model_args"] == {"num_classes": 10, "in_chans": 3}
    assert config["classes"] == [str(i) for i in range(10)]
    digits = load_digits()
    pre = config["preprocessing"]
    assert pre["dataset"] == "digits" and pre["input_size"] == [3, 32, 32]
    assert pre["mean"] == list(digits.mean) and pre["std"] == list(digits.std)  # the digits recipe normalizes
    metrics = _json(out / "metrics.json")
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert metrics["params"] == 272_474
    assert metrics["epochs"] == TRAIN_EPOCHS and 1 <= metrics["best_epoch"] <= TRAIN_EPOCHS
    assert metrics["train_seconds"] > 0
    assert metrics["dataset"] == "digits" and metrics["test_samples"] == 360
    assert metrics["recipe"]["name"] == "digits" and metrics["recipe"]["epochs"] == TRAIN_EPOCHS
    assert _json(out / "train_state.json")["next_epoch"] == TRAIN_EPOCHS


@pytest.mark.slow
def test_training_writes_no_pickle(trained):
    _, out = trained
    _assert_no_pickle(out)


@pytest.mark.slow
def test_load_checkpoint_rebuilds_the_model(trained):
    result, out = trained
    ckpt = load_checkpoint(out)
    assert isinstance(ckpt.model, CifarResNet) and not ckpt.model.training
    assert ckpt.name == TRAIN_MODEL and ckpt.args == {"num_classes": 10, "in_chans": 3}
    assert ckpt.source == str(out) and ckpt.metrics == _json(out / "metrics.json")
    assert ckpt.preprocessing.input_size == (3, 32, 32) and ckpt.preprocessing.dataset == "digits"
    saved = load_file(out / "model.safetensors")
    state = ckpt.model.state_dict()
    assert saved.keys() == state.keys()
    for k, v in saved.items():
        assert torch.equal(state[k], v), k
    # evaluate() reproduces the reported accuracy from the directory, the loaded checkpoint and resolve()
    for source in (out, ckpt, resolve(str(out))):
        report = evaluate(source)
        assert report["test_accuracy"] == result.metrics["test_accuracy"]
        assert report["model"] == TRAIN_MODEL and report["dataset"] == "digits" and report["samples"] == 360


@pytest.mark.slow
def test_resume_continues_from_train_state(tmp_path):
    out = tmp_path / "run"
    first = train("shiftresnet-20-e1", epochs=1, out=out, progress=False)
    assert first.metrics["epochs"] == 1
    state = _json(out / "train_state.json")
    assert state["next_epoch"] == 1 and state["best_epoch"] == 1
    last = load_file(out / "last.safetensors")
    momentum = load_file(out / "optimizer.safetensors")
    assert len(momentum) == len(list(create_model("shiftresnet-20-e1").parameters()))

    second = train("shiftresnet-20-e1", epochs=2, out=out, resume=True, progress=False)
    assert second.metrics["epochs"] == 2 and _json(out / "metrics.json")["epochs"] == 2
    assert second.metrics["best_epoch"] in (1, 2)
    assert second.metrics["test_accuracy"] >= first.metrics["test_accuracy"]  # the best of both epochs
    assert second.metrics["train_seconds"] > first.metrics["train_seconds"]  # time adds up across the two runs
    assert _json(out / "train_state.json")["next_epoch"] == 2
    after = load_file(out / "last.safetensors")
    assert any(not torch.equal(after[k], last[k]) for k in last)  # one more epoch of training happened
    assert evaluate(out)["test_accuracy"] == second.metrics["test_accuracy"]
    _assert_no_pickle(out)


def test_resume_without_state_raises(tmp_path):
    with pytest.raises(UsageError, match="nothing to resume"):
        train("shiftresnet-20-e1", epochs=1, out=tmp_path / "fresh", resume=True, progress=False)


# ---------------------------------------------------------------- recipes


def test_lrunet_recipe():
    r = RECIPES["lrunet"]
    assert (r.epochs, r.batch_size, r.lr, r.momentum, r.weight_decay) == (300, 256, 0.1, 0.9, 5e-4)
    assert (r.schedule, r.milestones, r.gamma) == ("step", (200, 250), 0.1)
    assert r.rotation == 10.0 and r.normalize is False
    assert lr_at(r, 0) == lr_at(r, 199) == 0.1
    assert lr_at(r, 200) == pytest.approx(0.01) and lr_at(r, 249) == pytest.approx(0.01)
    assert lr_at(r, 250) == pytest.approx(0.001) and lr_at(r, 299) == pytest.approx(0.001)


def test_shiftresnet_recipe():
    r = RECIPES["shiftresnet"]
    assert (r.epochs, r.batch_size, r.lr, r.momentum, r.weight_decay) == (164, 128, 0.1, 0.9, 5e-4)
    assert (r.schedule, r.milestones, r.gamma) == ("step", (81, 122), 0.1)
    assert r.normalize is True and r.flip is True and r.crop_padding == 4
    assert lr_at(r, 80) == 0.1 and lr_at(r, 81) == pytest.approx(0.01) and lr_at(r, 122) == pytest.approx(0.001)


def test_mobilenetv2_recipe():
    r = RECIPES["mobilenetv2"]
    assert (r.schedule, r.epochs, r.batch_size, r.lr, r.momentum, r.weight_decay) == ("cosine", 200, 128, 0.1, 0.9, 5e-4)
    assert lr_at(r, 0) == pytest.approx(0.1) and lr_at(r, 100) == pytest.approx(0.05) and lr_at(r, 199) < 1e-4
    values = [lr_at(r, e) for e in range(200)]
    assert values == sorted(values, reverse=True)


def test_with_epochs_scales_milestones():
    lrunet, shift = RECIPES["lrunet"], RECIPES["shiftresnet"]
    short = lrunet.with_epochs(30)
    assert short.epochs == 30 and short.milestones == (20, 25)
    assert short.lr == lrunet.lr and short.batch_size == lrunet.batch_size and short.rotation == lrunet.rotation
    assert lrunet.with_epochs(6).milestones == (4, 5)
    assert lrunet.with_epochs(1).milestones == (1, 1)  # never at epoch 0
    assert shift.with_epochs(328).milestones == (162, 244)
    assert shift.with_epochs(None) is shift and shift.with_epochs(164) is shift
    cosine = RECIPES["mobilenetv2"].with_epochs(10)
    assert cosine.epochs == 10 and cosine.milestones == () and lr_at(cosine, 5) == pytest.approx(0.05)
    assert RECIPES["lrunet"].epochs == 300  # the presets themselves are unchanged


def test_default_recipes():
    assert default_recipe("lrunet", "cifar10") is RECIPES["lrunet"]
    assert default_recipe("shiftresnet", "cifar100") is RECIPES["shiftresnet"]
    assert default_recipe("resnet", "cifar10") is RECIPES["shiftresnet"]
    assert default_recipe("mobilenetv2", "cifar10") is RECIPES["mobilenetv2"]
    assert default_recipe("lrunet", "digits") is RECIPES["digits"]
    assert RECIPES["digits"].flip is False


# ---------------------------------------------------------------- checkpoint errors


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A valid lrunet-1-1x checkpoint (random weights) that each error test copies and breaks."""
    out = tmp_path_factory.mktemp("ckpt") / "lrunet-1-1x"
    torch.manual_seed(0)
    model = create_model("lrunet-1-1x")
    save_checkpoint(out, Checkpoint(model, "lrunet-1-1x", dict(model.model_args), [str(i) for i in range(10)], Preprocessing(), {"test_accuracy": 0.5}))
    return out


def _copy(saved, tmp_path):
    target = tmp_path / "ckpt"
    shutil.copytree(saved, target)
    return target


def _edit_config(ckpt, **changes):
    config = _json(ckpt / "config.json")
    config.update(changes)
    (ckpt / "config.json").write_text(json.dumps(config))


def test_saved_checkpoint_loads(saved):
    ckpt = load_checkpoint(saved)
    assert ckpt.name == "lrunet-1-1x" and ckpt.metrics == {"test_accuracy": 0.5}
    assert sorted(p.name for p in saved.iterdir()) == ["config.json", "metrics.json", "model.safetensors"]
    _assert_no_pickle(saved)


def test_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="is not a checkpoint directory") as err:
        load_checkpoint(tmp_path / "nope")
    assert "model.safetensors" in str(err.value) and "config.json" in str(err.value)


def test_missing_config(saved, tmp_path):
    ckpt = _copy(saved, tmp_path)
    (ckpt / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json is missing"):
        load_checkpoint(ckpt)


def test_missing_weights(saved, tmp_path):
    ckpt = _copy(saved, tmp_path)
    (ckpt / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="has no model.safetensors"):
        load_checkpoint(ckpt)


@pytest.mark.parametrize("text", ["{not json", "", "\xff\xfe"])
def test_invalid_json(saved, tmp_path, text):
    ckpt = _copy(saved, tmp_path)
    (ckpt / "config.json").write_text(text, errors="surrogateescape")
    with pytest.raises(CheckpointError, match="config.json' is not valid JSON"):
        load_checkpoint(ckpt)


def test_config_not_an_object(saved, tmp_path):
    ckpt = _copy(saved, tmp_path)
    (ckpt / "config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="must hold a JSON object"):
        load_checkpoint(ckpt)


def test_config_without_model(saved, tmp_path):
    ckpt = _copy(saved, tmp_path)
    config = _json(ckpt / "config.json")
    del config["model"]
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="lacks a required field"):
        load_checkpoint(ckpt)


def test_config_naming_an_unknown_model(saved, tmp_path):
    ckpt = _copy(saved, tmp_path)
    _edit_config(ckpt, model="lrunet-1-1")
    with pytest.raises(CheckpointError, match="unknown model 'lrunet-1-1'") as err:
        load_checkpoint(ckpt)
    assert "lrunet-1-1x" in str(err.value)


def test_config_with_arguments_the_model_does_not_take(saved, tmp_path):
    ckpt = _copy(saved, tmp_path)
    _edit_config(ckpt, model_args={"num_classes": 10, "in_chans": 3, "bogus": 1})
    with pytest.raises(CheckpointError, match="model arguments do not fit lrunet-1-1x"):
        load_checkpoint(ckpt)


def test_weights_of_another_model(saved, tmp_path):
    ckpt = _copy(saved, tmp_path)
    _edit_config(ckpt, model="lrunet-4-1x")  # lrunet-1-1x weights next to a config saying lrunet-4-1x
    with pytest.raises(CheckpointError, match="the weights do not match lrunet-4-1x") as err:
        load_checkpoint(ckpt)
    assert "Missing key" in str(err.value)


def test_weights_of_another_shape(saved, tmp_path):
    ckpt = _copy(saved, tmp_path)
    _edit_config(ckpt, model_args={"num_classes": 7, "in_chans": 3}, classes=list("abcdefg"))
    with pytest.raises(CheckpointError, match="the weights do not match lrunet-1-1x") as err:
        load_checkpoint(ckpt)
    assert "size mismatch" in str(err.value)


def test_class_names_that_do_not_fit(saved, tmp_path):
    ckpt = _copy(saved, tmp_path)
    _edit_config(ckpt, classes=["a", "b"])
    with pytest.raises(CheckpointError, match="2 class names for 10 outputs"):
        load_checkpoint(ckpt)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_weights(saved, tmp_path, damage):
    ckpt = _copy(saved, tmp_path)
    weights = ckpt / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"\x13\x37" * 100, "empty": b""}[damage])
    with pytest.raises(CheckpointError, match="is not a readable safetensors file"):
        load_checkpoint(ckpt)


class _Payload:
    """A pickle that creates a file when it is loaded."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_loading_never_unpickles(saved, tmp_path):
    marker = tmp_path / "code-ran"
    # a pickle, and a torch.save zip, under the weights' name are rejected without being executed
    ckpt = _copy(saved, tmp_path)
    (ckpt / "model.safetensors").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(CheckpointError, match="is not a readable safetensors file"):
        load_checkpoint(ckpt)
    torch.save({"x": _Payload(marker)}, ckpt / "model.safetensors")
    with pytest.raises(CheckpointError, match="is not a readable safetensors file"):
        load_checkpoint(ckpt)
    assert not marker.exists()
    # pickle files next to a valid checkpoint are ignored
    shutil.rmtree(ckpt)
    ckpt = _copy(saved, tmp_path)
    for name in ("model.pt", "model.pth", "model.pkl", "optimizer.pt"):
        (ckpt / name).write_bytes(pickle.dumps(_Payload(marker)))
    assert load_checkpoint(ckpt).name == "lrunet-1-1x"
    assert not marker.exists()
