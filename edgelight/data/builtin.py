"""The built-in ``digits`` (scikit-learn's 1,797 real hand-written digits) and CIFAR-10/100 /
Fashion-MNIST read from the user's files in their own formats. Nothing is ever downloaded."""

import gzip
import pickle  # only CIFAR's own data format, through an unpickler that admits arrays only; never checkpoints
import struct
from pathlib import Path

import numpy as np
import torch

from edgelight.data.base import DataError, Dataset, fit, stats

DIGITS_SEED, DIGITS_TEST = 0, 360


def load_digits(in_chans: int = 3, size: int = 32) -> Dataset:
    """scikit-learn's 8x8 digits, upsampled to size x size, with a fixed seeded 1,437 / 360 split."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(DIGITS_SEED))
    test, train = order[:DIGITS_TEST], order[DIGITS_TEST:]
    x = fit(x, in_chans, size)
    mean, std = stats(x[train])
    return Dataset("digits", x[train], y[train], x[test], y[test], [str(i) for i in range(10)], mean, std, flip=False, source={"kind": "builtin", "name": "digits"})


CIFAR_FILES = {
    "cifar10": (["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"], ["test_batch"], "batches.meta", b"labels", b"label_names"),
    "cifar100": (["train"], ["test"], "meta", b"fine_labels", b"fine_label_names"),
}
FASHION_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _find(data_dir: Path, names: list[str], dataset: str) -> list[Path]:
    """Locate the files in data_dir or one of its sub-folders (the archives unpack into one)."""
    for folder in [data_dir, *sorted(p for p in data_dir.glob("*") if p.is_dir())]:
        found = [next((folder / n for n in (name, name + ".gz") if (folder / n).is_file()), None) for name in names]
        if all(found):
            return found
    raise DataError(f"{dataset}: '{data_dir}' does not hold the expected files: {', '.join(names)}")


class _ArraysOnly(pickle.Unpickler):
    """CIFAR batches are dicts of bytes, lists and numpy arrays: refuse every other global, so a crafted
    file cannot run code while it is read."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
               ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
               ("_codecs", "encode")}  # how a Python 3 protocol-2 pickle writes bytes

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _unpickle(path: Path, dataset: str) -> dict:
    try:
        with open(path, "rb") as f:
            return _ArraysOnly(f, encoding="bytes").load()
    except Exception as e:  # noqa: BLE001 (any decoding failure means the same thing to the user)
        raise DataError(f"{dataset}: '{path}' is not a CIFAR python-pickle batch ({e})") from None


def load_cifar(data_dir: Path, variant: str = "cifar10", in_chans: int = 3, size: int = 32) -> Dataset:
    """CIFAR-10/100 from the standard python-pickle batches (cifar-10-batches-py / cifar-100-python)."""
    train_names, test_names, meta_name, label_key, names_key = CIFAR_FILES[variant]
    paths = _find(Path(data_dir), train_names + test_names + [meta_name], variant)

    meta = _unpickle(paths[-1], variant)
    if not isinstance(meta, dict) or not isinstance(meta.get(names_key), list):
        raise DataError(f"{variant}: '{paths[-1]}' lacks the '{names_key.decode()}' entry of a CIFAR meta file")
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in meta[names_key]]

    def read(ps):
        xs, ys = [], []
        for p in ps:
            batch = _unpickle(p, variant)
            if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
                raise DataError(f"{variant}: '{p}' lacks the 'data' / '{label_key.decode()}' entries of a CIFAR batch")
            try:
                data, labels = np.asarray(batch[b"data"], dtype=np.uint8), np.asarray(batch[label_key], dtype=np.int64)
            except (TypeError, ValueError) as e:
                raise DataError(f"{variant}: '{p}' is not a CIFAR batch ({e})") from None
            if data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (len(data),) or not ((labels >= 0) & (labels < len(classes))).all():
                raise DataError(
                    f"{variant}: '{p}' is not a CIFAR batch (expected uint8 data [N, 3072] and N labels in 0..{len(classes) - 1}; "
                    f"got data {list(data.shape)} and {labels.size} labels)"
                )
            xs.append(data.reshape(-1, 3, 32, 32))
            ys.append(labels)
        return torch.from_numpy(np.concatenate(xs)).float() / 255.0, torch.from_numpy(np.concatenate(ys))

    train_x, train_y = read(paths[: len(train_names)])
    test_x, test_y = read(paths[len(train_names) : -1])
    train_x, test_x = fit(train_x, in_chans, size), fit(test_x, in_chans, size)
    mean, std = stats(train_x)
    return Dataset(variant, train_x, train_y, test_x, test_y, classes, mean, std, flip=True, source={"kind": "files", "name": variant, "path": str(Path(data_dir).resolve())})


def _read_idx(path: Path, magic: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:  # a .gz that is not gzip, or is cut short
        raise DataError(f"fashion-mnist: '{path}' cannot be read ({e})") from None
    if len(data) < 8 or struct.unpack(">I", data[:4])[0] != magic:
        raise DataError(f"fashion-mnist: '{path}' is not an IDX file (bad magic number)")
    dims = magic & 0xFF
    if len(data) < 4 + 4 * dims:
        raise DataError(f"fashion-mnist: '{path}' is truncated (its header needs {dims} dimensions)")
    shape = struct.unpack(f">{dims}I", data[4 : 4 + 4 * dims])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise DataError(f"fashion-mnist: '{path}' is truncated ({body.size} of {int(np.prod(shape))} values)")
    return body.reshape(shape)


def load_fashion_mnist(data_dir: Path, in_chans: int = 3, size: int = 32) -> Dataset:
    """Fashion-MNIST from the standard IDX files (optionally gzipped)."""
    paths = _find(Path(data_dir), list(FASHION_FILES), "fashion-mnist")
    xs = [torch.from_numpy(_read_idx(p, 0x803).copy()).float().unsqueeze(1) / 255.0 for p in paths[0::2]]
    ys = [torch.from_numpy(_read_idx(p, 0x801).astype(np.int64)) for p in paths[1::2]]
    for x, y, p in zip(xs, ys, paths[1::2]):
        if len(x) != len(y):
            raise DataError(f"fashion-mnist: '{p}' has {len(y)} labels for {len(x)} images")
    train_x, test_x = fit(xs[0], in_chans, size), fit(xs[1], in_chans, size)
    mean, std = stats(train_x)
    return Dataset("fashion-mnist", train_x, ys[0], test_x, ys[1], FASHION_CLASSES, mean, std, flip=False, source={"kind": "files", "name": "fashion-mnist", "path": str(Path(data_dir).resolve())})
