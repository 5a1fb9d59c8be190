"""Data loaders: the built-in digits set, and CIFAR-10/100 / Fashion-MNIST on small files in their real formats."""

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from edgelight.data import DATASETS, DataError, load_cifar, load_dataset, load_digits, load_fashion_mnist, normalize

CIFAR10_FILES = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch", "batches.meta"]
CIFAR100_FILES = ["train", "test", "meta"]
FASHION_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


# ---------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_digits_split_and_format(digits):
    assert digits.name == "digits"
    assert len(digits.train_x) == len(digits.train_y) == 1437
    assert len(digits.test_x) == len(digits.test_y) == 360
    assert digits.train_x.shape == (1437, 3, 32, 32) and digits.test_x.shape == (360, 3, 32, 32)
    assert digits.input_shape == (3, 32, 32)
    for x in (digits.train_x, digits.test_x):
        assert x.dtype == torch.float32 and x.is_contiguous()
        assert x.min() >= 0.0 and x.max() <= 1.0 and x.max() > 0.5
    for y in (digits.train_y, digits.test_y):
        assert y.dtype == torch.int64 and set(y.tolist()) == set(range(10))
    assert digits.classes == [str(i) for i in range(10)]
    assert len(digits.mean) == len(digits.std) == 3 and all(s > 0 for s in digits.std)
    assert digits.flip is False  # mirrored digits are other symbols


def test_digits_is_the_whole_sklearn_set(digits):
    from sklearn.datasets import load_digits as sk_digits

    target = sk_digits().target
    labels = torch.cat([digits.train_y, digits.test_y])
    assert len(labels) == 1797
    assert torch.equal(torch.bincount(labels, minlength=10), torch.bincount(torch.from_numpy(target), minlength=10))
    # train and test are disjoint: no test image appears in the training split (compared at the native 8x8)
    native = load_digits(in_chans=1, size=8)
    train = {tuple(v.tolist()) for v in native.train_x.flatten(1).mul(16).round().int()}
    assert not any(tuple(v.tolist()) in train for v in native.test_x.flatten(1).mul(16).round().int())


def test_digits_is_deterministic(digits):
    again = load_digits()
    for a, b in [(digits.train_x, again.train_x), (digits.train_y, again.train_y), (digits.test_x, again.test_x), (digits.test_y, again.test_y)]:
        assert torch.equal(a, b)
    assert (digits.mean, digits.std) == (again.mean, again.std)
    assert torch.equal(load_dataset("digits").test_y, digits.test_y)


def test_digits_channels_and_size(digits):
    grey = load_digits(in_chans=1)
    assert grey.train_x.shape == (1437, 1, 32, 32) and len(grey.mean) == 1
    torch.testing.assert_close(digits.train_x, grey.train_x.expand(-1, 3, -1, -1))  # RGB is the grey image thrice
    small = load_dataset("digits", in_chans=1, size=16)
    assert small.train_x.shape == (1437, 1, 16, 16) and small.test_x.shape == (360, 1, 16, 16)
    assert small.train_x.min() >= 0 and small.train_x.max() <= 1
    assert torch.equal(small.train_y, digits.train_y)
    native = load_digits(in_chans=1, size=8)  # no resampling at the native 8x8: the values are sklearn's / 16
    assert torch.equal(native.train_x * 16, (native.train_x * 16).round())


def test_normalize():
    x = torch.rand(4, 3, 5, 5)
    out = normalize(x, (0.5, 0.25, 0.0), (0.5, 2.0, 1.0))
    torch.testing.assert_close(out[:, 0], (x[:, 0] - 0.5) / 0.5)
    torch.testing.assert_close(out[:, 1], (x[:, 1] - 0.25) / 2.0)
    torch.testing.assert_close(out[:, 2], x[:, 2])


# ---------------------------------------------------------------- CIFAR (python-pickle batches)


def _cifar_batch(n: int, label_key: bytes, classes: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    batch = {
        b"batch_label": b"training batch",
        label_key: rng.integers(0, classes, n).tolist(),
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{seed}_{i}.png".encode() for i in range(n)],
    }
    if label_key == b"fine_labels":
        batch[b"coarse_labels"] = rng.integers(0, 20, n).tolist()
    return batch


def _dump(path, obj) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


def write_cifar10(folder, n=3):
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for i, name in enumerate(CIFAR10_FILES[:-1]):
        batches[name] = _cifar_batch(n if name != "test_batch" else n + 1, b"labels", 10, seed=i)
        _dump(folder / name, batches[name])
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    _dump(folder / "batches.meta", {b"label_names": names, b"num_cases_per_batch": n, b"num_vis": 3072})
    return batches


def write_cifar100(folder, n=4):
    folder.mkdir(parents=True, exist_ok=True)
    batches = {"train": _cifar_batch(n, b"fine_labels", 100, 0), "test": _cifar_batch(n - 1, b"fine_labels", 100, 1)}
    for name, batch in batches.items():
        _dump(folder / name, batch)
    _dump(folder / "meta", {b"fine_label_names": [f"class{i}".encode() for i in range(100)], b"coarse_label_names": [b"c"] * 20})
    return batches


def _pixels(batch) -> torch.Tensor:
    return torch.from_numpy(batch[b"data"].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)


@pytest.mark.parametrize("sub", ["", "cifar-10-batches-py"])
def test_cifar10(tmp_path, sub):
    batches = write_cifar10(tmp_path / sub if sub else tmp_path)
    ds = load_dataset("cifar10", tmp_path)
    assert ds.name == "cifar10" and ds.flip is True
    assert ds.train_x.shape == (15, 3, 32, 32) and ds.test_x.shape == (4, 3, 32, 32)
    assert ds.train_x.dtype == torch.float32 and ds.train_x.min() >= 0 and ds.train_x.max() <= 1
    assert ds.classes[0] == "airplane" and ds.classes[-1] == "truck" and len(ds.classes) == 10
    # batches are concatenated in order 1..5; each row is 1024 R, then G, then B values, row-major
    expected = torch.cat([_pixels(batches[f"data_batch_{i}"]) for i in range(1, 6)])
    assert torch.equal(ds.train_x, expected)
    assert ds.train_x[0, 1, 2, 3] == batches["data_batch_1"][b"data"][0, 1024 + 2 * 32 + 3] / 255.0
    assert ds.train_y.tolist() == sum((batches[f"data_batch_{i}"][b"labels"] for i in range(1, 6)), [])
    assert ds.test_y.tolist() == batches["test_batch"][b"labels"]
    assert torch.equal(ds.test_x, _pixels(batches["test_batch"]))
    assert len(ds.mean) == 3
    torch.testing.assert_close(torch.tensor(ds.mean), expected.mean((0, 2, 3)), atol=1e-4, rtol=0)


def test_cifar10_channels_and_size(tmp_path):
    batches = write_cifar10(tmp_path)
    grey = load_cifar(tmp_path, "cifar10", in_chans=1, size=16)
    assert grey.train_x.shape == (15, 1, 16, 16) and grey.test_x.shape == (4, 1, 16, 16)
    full = load_cifar(tmp_path, "cifar10", in_chans=1)
    torch.testing.assert_close(full.test_x[:, 0], _pixels(batches["test_batch"]).mean(1))


@pytest.mark.parametrize("sub", ["", "cifar-100-python"])
def test_cifar100(tmp_path, sub):
    batches = write_cifar100(tmp_path / sub if sub else tmp_path)
    ds = load_dataset("cifar100", tmp_path)
    assert ds.name == "cifar100"
    assert ds.train_x.shape == (4, 3, 32, 32) and ds.test_x.shape == (3, 3, 32, 32)
    assert len(ds.classes) == 100 and ds.classes[7] == "class7"
    assert ds.train_y.tolist() == batches["train"][b"fine_labels"]  # fine labels, not coarse
    assert ds.test_y.tolist() == batches["test"][b"fine_labels"]
    assert torch.equal(ds.train_x, _pixels(batches["train"]))


def test_cifar10_is_not_cifar100(tmp_path):
    write_cifar100(tmp_path)
    with pytest.raises(DataError) as err:
        load_dataset("cifar10", tmp_path)
    for name in CIFAR10_FILES:
        assert name in str(err.value)


# ---------------------------------------------------------------- Fashion-MNIST (IDX)


def _idx_images(images: np.ndarray) -> bytes:
    return struct.pack(">IIII", 0x803, *images.shape) + images.astype(np.uint8).tobytes()


def _idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 0x801, len(labels)) + labels.astype(np.uint8).tobytes()


def write_fashion(folder, n_train=5, n_test=3, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        FASHION_FILES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        FASHION_FILES[1]: rng.integers(0, 10, n_train, dtype=np.uint8),
        FASHION_FILES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        FASHION_FILES[3]: rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        data = _idx_images(array) if array.ndim == 3 else _idx_labels(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_fashion_mnist(tmp_path, gz):
    arrays = write_fashion(tmp_path / "fashion", gz=gz)
    ds = load_dataset("fashion-mnist", tmp_path)
    assert ds.name == "fashion-mnist" and ds.flip is False
    assert ds.train_x.shape == (5, 3, 32, 32) and ds.test_x.shape == (3, 3, 32, 32)
    assert ds.train_x.min() >= 0 and ds.train_x.max() <= 1
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot" and len(ds.classes) == 10
    assert ds.train_y.dtype == torch.int64
    assert ds.train_y.tolist() == arrays[FASHION_FILES[1]].tolist()
    assert ds.test_y.tolist() == arrays[FASHION_FILES[3]].tolist()
    native = load_fashion_mnist(tmp_path / "fashion", in_chans=1, size=28)  # exact pixels at 28x28
    assert native.train_x.shape == (5, 1, 28, 28)
    assert torch.equal(native.train_x[:, 0], torch.from_numpy(arrays[FASHION_FILES[0]]).float() / 255.0)
    assert torch.equal(native.test_x[:, 0], torch.from_numpy(arrays[FASHION_FILES[2]]).float() / 255.0)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("name,files", [("cifar10", CIFAR10_FILES), ("cifar100", CIFAR100_FILES), ("fashion-mnist", FASHION_FILES)])
def test_missing_or_empty_folder_names_the_files(tmp_path, name, files):
    for folder in (tmp_path / "missing", tmp_path):  # a folder that does not exist, then an empty one
        with pytest.raises(DataError) as err:
            load_dataset(name, folder)
        for f in files:
            assert f in str(err.value), (folder, str(err.value))
        assert str(folder) in str(err.value)


def test_partial_folder_names_the_files(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "data_batch_4").unlink()
    with pytest.raises(DataError, match="data_batch_4"):
        load_dataset("cifar10", tmp_path)


def test_no_data_dir(tmp_path):
    with pytest.raises(DataError, match="--data-dir") as err:
        load_dataset("cifar10")
    assert "data_batch_1" in str(err.value)
    with pytest.raises(DataError, match="--data-dir"):
        load_dataset("fashion-mnist", None)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError):  # a file is not a data folder
        load_dataset("cifar100", tmp_path / "file")


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset 'imagenet'") as err:
        load_dataset("imagenet")
    for name in DATASETS:
        assert name in str(err.value)


@pytest.mark.parametrize(
    "content",
    [
        b"this is not a pickle at all",
        pickle.dumps([1, 2, 3]),
        pickle.dumps(5),
        pickle.dumps("a string"),
        pickle.dumps({b"x": 1}),
        pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}),  # not 3x32x32 images
        pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}),  # fewer labels than images
        pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}),  # label out of range
    ],
    ids=["garbage", "list", "int", "str", "other-dict", "bad-shape", "label-count", "label-range"],
)
def test_a_pickle_that_is_not_a_cifar_batch(tmp_path, content):
    write_cifar10(tmp_path)
    (tmp_path / "data_batch_3").write_bytes(content)
    with pytest.raises(DataError, match="data_batch_3"):
        load_dataset("cifar10", tmp_path)


@pytest.mark.parametrize("content", [pickle.dumps({b"other": 1}), pickle.dumps(7), b"\x00garbage"], ids=["no-names", "int", "garbage"])
def test_a_bad_cifar_meta_file(tmp_path, content):
    write_cifar10(tmp_path)
    (tmp_path / "batches.meta").write_bytes(content)
    with pytest.raises(DataError, match="batches.meta"):
        load_dataset("cifar10", tmp_path)


def _corrupt_fashion(folder, name, data: bytes, gz: bool = False):
    write_fashion(folder, gz=gz)
    path = folder / (f"{name}.gz" if gz else name)
    path.write_bytes(gzip.compress(data) if gz else data)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_truncated_idx(tmp_path, gz):
    images = np.zeros((5, 28, 28), np.uint8)
    _corrupt_fashion(tmp_path, FASHION_FILES[0], _idx_images(images)[:-100], gz)
    with pytest.raises(DataError, match="truncated") as err:
        load_dataset("fashion-mnist", tmp_path)
    assert FASHION_FILES[0] in str(err.value)


def test_idx_with_a_truncated_header(tmp_path):
    _corrupt_fashion(tmp_path, FASHION_FILES[2], struct.pack(">II", 0x803, 5))  # magic + one of three dims
    with pytest.raises(DataError, match=FASHION_FILES[2]):
        load_dataset("fashion-mnist", tmp_path)


def test_bad_idx_magic(tmp_path):
    _corrupt_fashion(tmp_path, FASHION_FILES[1], struct.pack(">II", 0x803, 5) + bytes(5))  # an image magic on the labels
    with pytest.raises(DataError, match="bad magic number") as err:
        load_dataset("fashion-mnist", tmp_path)
    assert FASHION_FILES[1] in str(err.value)
    _corrupt_fashion(tmp_path, FASHION_FILES[0], b"\x1f\x8b")  # too short to hold a header
    with pytest.raises(DataError, match=FASHION_FILES[0]):
        load_dataset("fashion-mnist", tmp_path)


def test_a_gz_that_is_not_gzip(tmp_path):
    write_fashion(tmp_path, gz=True)
    (tmp_path / f"{FASHION_FILES[3]}.gz").write_bytes(_idx_labels(np.zeros(3, np.uint8)))  # plain bytes under .gz
    with pytest.raises(DataError, match=FASHION_FILES[3]):
        load_dataset("fashion-mnist", tmp_path)


def test_idx_label_count_mismatch(tmp_path):
    _corrupt_fashion(tmp_path, FASHION_FILES[3], _idx_labels(np.zeros(2, np.uint8)))  # 2 labels for 3 images
    with pytest.raises(DataError, match="2 labels for 3 images"):
        load_dataset("fashion-mnist", tmp_path)


def test_unsupported_channel_count():
    with pytest.raises(DataError, match="2 channels"):
        load_digits(in_chans=2)


class _RunsCode:
    """A pickle whose loading would call a function: what a crafted 'CIFAR batch' could do."""

    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path, monkeypatch):
    write_cifar10(tmp_path)
    (tmp_path / "data_batch_2").write_bytes(pickle.dumps({b"data": _RunsCode(), b"labels": [0]}, protocol=2))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="data_batch_2.*refusing to load"):
        load_dataset("cifar10", tmp_path)
    assert not (tmp_path / "pwned").exists()
