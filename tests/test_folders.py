"""Your own data: image folders read by one reader, training / eval / fine-tuning on them, and an export that
calibrates and verifies on the checkpoint's own data. Every bad folder is one clear error naming the culprit."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgelight.data import DataError, load_image_folder, open_data, read_image


def cli(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgelight", *args], capture_output=True, text=True, cwd=cwd, timeout=900)


def one_error(proc) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def small_folder(root: Path, classes=("cat", "dog"), per_class=3, size=(12, 9)) -> Path:
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.new("RGB", size, (40 * k + 10 * i, 100, 200)).save(root / name / f"{i}.png")
    return root


# ---------------------------------------------------------------- the reader


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "CMYK", "P", "I;16", "1"])
def test_every_image_mode_becomes_float_rgb_in_0_1(tmp_path, mode):
    img = Image.new(mode, (20, 10))
    if mode == "I;16":
        img = Image.fromarray(np.full((10, 20), 65535 // 2, dtype=np.uint16))
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    img.save(path)
    a = read_image(path, 3, 8)
    assert a.shape == (3, 8, 8) and a.dtype == np.float32 and 0 <= a.min() <= a.max() <= 1
    if mode == "I;16":  # 16-bit by its full range: half of 65535 is 0.5, not clipped to white
        assert abs(float(a.mean()) - 0.5) < 0.01


def test_transparency_is_composited_on_white_and_the_shorter_side_is_resized_then_center_cropped(tmp_path):
    rgba = np.zeros((10, 30, 4), np.uint8)
    rgba[:, 10:20] = (255, 0, 0, 255)  # an opaque red centre third, transparent sides
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    a = read_image(tmp_path / "a.png", 3, 10)  # 10x30 -> 10x30 (shorter side 10) -> the centre 10x10: all red
    assert a.shape == (3, 10, 10)
    assert np.allclose(a[0], 1.0, atol=0.02) and np.allclose(a[1:], 0.0, atol=0.05)
    grey = read_image(tmp_path / "a.png", 1, 4)
    assert grey.shape == (1, 4, 4)


def test_a_corrupt_image_is_an_error_naming_it(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match=r"'.*bad\.png' is not a readable image"):
        read_image(tmp_path / "bad.png")


# ---------------------------------------------------------------- folders and splits


def test_a_class_folder_set_gets_a_fixed_seeded_split_that_covers_every_class(tmp_path):
    root = small_folder(tmp_path / "pets", per_class=5)
    a, b = load_image_folder(root, 3, 8), load_image_folder(root, 3, 8)
    assert a.classes == ["cat", "dog"] and len(a.test_y) == 2 and len(a.train_y) == 8
    assert sorted(a.test_y.tolist()) == [0, 1] and sorted(set(a.train_y.tolist())) == [0, 1]
    assert all(np.array_equal(x.numpy(), y.numpy()) for x, y in ((a.train_x, b.train_x), (a.test_x, b.test_x)))
    assert a.source["kind"] == "folder" and a.source["path"] == str(root.resolve()) and a.source["classes"] == ["cat", "dog"]
    assert a.train_x.shape[1:] == (3, 8, 8)


def test_a_train_and_val_layout_is_used_as_given(tmp_path):
    small_folder(tmp_path / "d" / "train", per_class=4)
    small_folder(tmp_path / "d" / "val", per_class=2)
    ds = open_data(str(tmp_path / "d"), 3, 8)
    assert (len(ds.train_y), len(ds.test_y)) == (8, 4) and ds.source["layout"] == "split"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda r: small_folder(r, classes=("only",)), r"has one class folder \(only\); a classifier needs at least two"),
        (lambda r: (small_folder(r), (r / "bird").mkdir()), r"class folder '.*bird' holds no images"),
        (lambda r: (small_folder(r), (r / "cat" / "notes.txt").write_text("hi")), r"'.*notes\.txt' is not an image file"),
        (lambda r: (small_folder(r), (r / "cat" / "9.png").write_bytes(b"garbage")), r"'.*9\.png' is not a readable image"),
        (lambda r: (small_folder(r), (r / "stray.png").write_bytes(b"")), r"'.*stray\.png': images go in class folders"),
        (lambda r: (small_folder(r / "train"), small_folder(r / "test", classes=("cat", "cow"))), r"different classes; only in train/: dog; only in test/: cow"),
        (lambda r: small_folder(r / "train"), "a split layout needs train/ and val/ or test/"),
        (lambda r: small_folder(r, per_class=1), "has one image; the seeded split needs two or more per class"),
        (lambda r: (small_folder(r / "train"), small_folder(r / "test"), small_folder(r / "__MACOSX")), r"mixes split folders \(test, train\) with other folders \(__macosx\)"),
    ],
    ids=["one-class", "empty-class", "non-image", "corrupt", "stray-file", "mismatched-splits", "train-only", "one-image", "mixed-layout"],
)
def test_bad_folders_are_one_clear_error_naming_the_culprit(tmp_path, make, message):
    root = tmp_path / "data"
    root.mkdir()
    make(root)
    with pytest.raises(DataError, match=message):
        open_data(str(root), 3, 8)


def test_adding_images_never_moves_a_trained_image_into_the_test_split(tmp_path):
    def add(k: int, first: int, count: int):
        (tmp_path / "d" / f"c{k}").mkdir(parents=True, exist_ok=True)
        for i in range(first, first + count):  # every image a colour of its own: (i, class, 0) identifies it
            Image.new("RGB", (4, 4), (i, 100 * k, 0)).save(tmp_path / "d" / f"c{k}" / f"{i}.png")

    def ids(x):
        return {(round(float(v[0, 0, 0]) * 255), round(float(v[1, 0, 0]) * 255)) for v in x}

    for k in (0, 1):
        add(k, 0, 20)
    before = load_image_folder(tmp_path / "d", 3, 4)
    for k in (0, 1):
        add(k, 20, 15)
    after = load_image_folder(tmp_path / "d", 3, 4)
    assert not (ids(before.train_x) & ids(after.test_x))  # nothing trained on is tested on
    assert ids(before.test_x) <= ids(after.test_x)  # and the old test images stay test images


def test_a_folder_given_to_evaluate_on_is_used_whole_and_may_hold_one_class(tmp_path):
    root = small_folder(tmp_path / "d", classes=("dog",), per_class=3)
    ds = open_data(str(root), 3, 8, classes=["cat", "dog"], whole=True)
    assert len(ds.test_y) == 3 and ds.test_y.tolist() == [1, 1, 1] and ds.source["layout"] == "whole"


def test_hidden_files_are_ignored(tmp_path):
    root = small_folder(tmp_path / "d")
    (root / ".DS_Store").write_bytes(b"\0")
    (root / "cat" / ".thumbs").write_bytes(b"\0")
    assert len(load_image_folder(root, 3, 8).train_y) + len(load_image_folder(root, 3, 8).test_y) == 6


def test_a_data_spec_that_is_nothing_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="neither digits, NAME:DIR"):
        open_data(str(tmp_path / "absent"))
    with pytest.raises(DataError, match=r"cifar10 needs --data-dir .* \(or --data cifar10:DIR\)"):
        open_data("cifar10")


# ---------------------------------------------------------------- train, eval, fine-tune, export on a folder


def test_train_on_a_folder_records_its_source_and_eval_reads_it_back(folder_checkpoint, digit_folder):
    config = json.loads((folder_checkpoint / "config.json").read_text())
    data = config["preprocessing"]["data"]
    assert data["kind"] == "folder" and data["path"] == str(digit_folder.resolve()) and data["classes"] == [str(i) for i in range(10)]
    assert config["preprocessing"]["resize"] == "shorter-side-bilinear+center-crop" and config["preprocessing"]["input_size"] == [3, 16, 16]
    proc = cli("eval", str(folder_checkpoint))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["dataset"] == "digit-folder" and result["samples"] == 354
    assert result["test_accuracy"] == json.loads((folder_checkpoint / "metrics.json").read_text())["test_accuracy"] > 0.8


def test_export_verifies_and_calibrates_on_the_checkpoints_own_folder(exported, folder_checkpoint):
    result = exported(str(folder_checkpoint), "onnx", "w8a8")  # LiteRT w8a8 on a folder: the your-images tutorial (tests/test_tutorials.py)
    v = result.verification
    assert v["dataset"] == "digit-folder-test" and v["samples"] == 354
    assert v["accuracy"] is not None and v["accuracy"] >= v["reference_accuracy"] - 0.01  # the int8 check ran on its own data
    side = json.loads(result.sidecar.read_text())
    assert side["data"]["kind"] == "folder" and side["sidecar_version"] == 4 and len(side["sha256"]) == 64
    from edgelight.checkpoint import load_checkpoint, weights_digest

    assert side["weights"] == "checkpoint" and side["weights_sha256"] == weights_digest(load_checkpoint(folder_checkpoint).model)  # which weights, not just which model


def test_a_missing_data_folder_is_a_clear_error_that_says_how_to_pass_it(tmp_path, folder_checkpoint, digit_folder):
    moved = tmp_path / "ckpt"
    shutil.copytree(folder_checkpoint, moved)
    config = json.loads((moved / "config.json").read_text())
    config["preprocessing"]["data"]["path"] = str(tmp_path / "gone")
    (moved / "config.json").write_text(json.dumps(config))
    proc = cli("export", str(moved), "-t", "onnx", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "not on this machine; pass its data with --verify-data DIR" in one_error(proc)  # fp32: no calibration
    assert not (tmp_path / "out").exists()
    proc = cli("eval", str(moved))
    assert proc.returncode == 2 and "edgelight eval CKPT --data DIR" in one_error(proc)
    proc = cli("export", str(moved), "-t", "onnx", "--out", str(tmp_path / "out"), "--verify-data", str(digit_folder))  # passing it works
    assert proc.returncode == 0, proc.stderr
    assert "verified on 1797 digit-folder images" in proc.stdout  # another folder than the recorded one: all of it


def test_fine_tuning_recreates_the_head_for_new_classes_and_refuses_other_mismatches(tmp_path, folder_checkpoint, digit_folder):
    three = tmp_path / "three"
    for k in ("0", "1", "2"):
        shutil.copytree(digit_folder / k, three / k)
    proc = cli("train", "shiftresnet-20-e1", "--init", str(folder_checkpoint), "--data", str(three), "--size", "16", "--epochs", "1", "--recipe", "digits",
               "--out", str(tmp_path / "tuned"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    config = json.loads((tmp_path / "tuned" / "config.json").read_text())
    metrics = json.loads((tmp_path / "tuned" / "metrics.json").read_text())
    assert config["classes"] == ["0", "1", "2"] and config["model_args"]["num_classes"] == 3
    assert metrics["init"] == str(folder_checkpoint) and metrics["test_accuracy"] > 0.6  # one epoch from the digits features
    proc = cli("train", "shiftresnet-20-e3", "--init", str(folder_checkpoint), "--data", str(three), "--size", "16", "--epochs", "1", "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "holds shiftresnet-20-e1, not shiftresnet-20-e3" in one_error(proc)
    proc = cli("train", "shiftresnet-20-e1", "--init", str(folder_checkpoint), "--data", str(three), "--in-chans", "1", "--size", "16", "--epochs", "1", "--out", str(tmp_path / "y"))
    assert proc.returncode == 2 and "(in_chans=3 there, 1 here); only the class count may change" in one_error(proc)


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "shiftresnet-20-e1", "--data", "NOWHERE"], "data 'NOWHERE' is neither digits"),
        (["train", "shiftresnet-20-e1", "--data", "digits", "--dataset", "digits"], "give --data or --dataset, not both"),
        (["eval", "shiftresnet-20-e3", "--data", "NOWHERE"], "data 'NOWHERE' is neither digits"),
        (["train", "shiftresnet-20-e1", "--init", "somewhere", "--resume", "--size", "8"], "--init starts a new run; --resume continues the one in --out"),
    ],
)
def test_cli_data_mistakes_are_one_line_and_exit_2(tmp_path, args, message):
    proc = cli(*args, cwd=tmp_path)
    assert proc.returncode == 2 and message in one_error(proc)
    assert not (tmp_path / "runs").exists()


def test_a_bad_folder_on_the_cli_names_the_file_and_writes_nothing(tmp_path):
    root = small_folder(tmp_path / "d")
    (root / "dog" / "broken.jpg").write_bytes(b"no jpeg")
    proc = cli("train", "shiftresnet-20-e1", "--data", str(root), "--out", str(tmp_path / "run"))
    assert proc.returncode == 2 and "broken.jpg' is not a readable image" in one_error(proc)
    assert not (tmp_path / "run").exists()


def test_eval_on_another_folder_maps_classes_by_name(folder_checkpoint, digit_folder, tmp_path):
    part = tmp_path / "sevens-and-ones"
    for k in ("7", "1"):
        shutil.copytree(digit_folder / k, part / k)
    proc = cli("eval", str(folder_checkpoint), "--data", str(part))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["test_accuracy"] > 0.8  # '7' is class 7 of the checkpoint, not class 1 of the folder
    assert result["samples"] == len(list((part / "7").iterdir())) + len(list((part / "1").iterdir()))  # another folder: all of it
    (part / "x").mkdir()
    Image.new("L", (8, 8)).save(part / "x" / "a.png")
    Image.new("L", (8, 8)).save(part / "x" / "b.png")
    proc = cli("eval", str(folder_checkpoint), "--data", str(part))
    assert proc.returncode == 2 and "class folders the model does not know: x" in one_error(proc)


def test_a_cifar_checkpoint_is_verified_on_cifar_not_digits(tmp_path, random_checkpoints):
    """A checkpoint from before sources were recorded, trained on CIFAR-10: export must not fall back to digits."""
    ckpt = tmp_path / "cifar-ckpt"
    shutil.copytree(random_checkpoints("resnet-20"), ckpt)
    config = json.loads((ckpt / "config.json").read_text())
    config["preprocessing"] = {**config["preprocessing"], "dataset": "cifar10"}
    config["preprocessing"].pop("data", None)
    (ckpt / "config.json").write_text(json.dumps(config))
    proc = cli("export", str(ckpt), "-t", "onnx", "--precision", "w8a8", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "trained on cifar10, which is not on this machine; pass its data with --calib cifar10:DIR and --verify-data cifar10:DIR" in one_error(proc)
    assert not (tmp_path / "out").exists()


def test_fine_tuning_on_the_same_count_of_other_classes_recreates_the_head(tmp_path, random_checkpoints):
    from edgelight.checkpoint import load_checkpoint
    from edgelight.models import create_model
    from edgelight.train.loop import init_from

    src = load_checkpoint(random_checkpoints("shiftresnet-20-e1"))
    same, other = create_model("shiftresnet-20-e1"), create_model("shiftresnet-20-e1")
    init_from(same, "shiftresnet-20-e1", Path(src.source), [str(i) for i in range(10)])
    init_from(other, "shiftresnet-20-e1", Path(src.source), [f"c{i}" for i in range(10)])
    theirs = src.model.state_dict()
    assert all((same.state_dict()[k] == v).all() for k, v in theirs.items())
    assert not (other.state_dict()["fc.weight"] == theirs["fc.weight"]).all()  # ten new classes: a new head
    assert all((other.state_dict()[k] == v).all() for k, v in theirs.items() if not k.startswith("fc."))
