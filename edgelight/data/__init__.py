"""Data sets: the built-in ``digits``, CIFAR-10/100 / Fashion-MNIST from their files, and image folders.

Every loader returns a ``Dataset`` of float images in [0, 1], NCHW, so one preprocessing rule
(``(x - mean) / std``) applies everywhere. A data set is named by a *spec*: ``digits``, ``cifar10:DIR``
(``cifar100``, ``fashion-mnist`` likewise) or an image folder ``DIR``; a checkpoint records its data as a
``source`` dict that ``from_source`` opens again.
"""

from pathlib import Path

from edgelight.data.base import DataError, Dataset, normalize
from edgelight.data.builtin import CIFAR_FILES, FASHION_FILES, load_cifar, load_digits, load_fashion_mnist
from edgelight.data.folders import IMAGE_SUFFIXES, RESIZE, load_image_folder, read_image

DATASETS = ("digits", "cifar10", "cifar100", "fashion-mnist")


def _files_of(name: str) -> tuple[str, ...]:
    return FASHION_FILES if name == "fashion-mnist" else (*CIFAR_FILES[name][0], *CIFAR_FILES[name][1], CIFAR_FILES[name][2])


def load_dataset(name: str, data_dir: Path | None = None, in_chans: int = 3, size: int = 32) -> Dataset:
    """A built-in name; the file-based sets need ``data_dir``."""
    if name == "digits":
        return load_digits(in_chans, size)
    if name not in DATASETS:
        raise DataError(f"unknown dataset '{name}'; choose one of: {', '.join(DATASETS)}, or give an image folder with --data DIR")
    if data_dir is None or not Path(data_dir).is_dir():
        raise DataError(f"{name} needs --data-dir pointing at an existing folder with its files (or --data {name}:DIR): {', '.join(_files_of(name))} (got {data_dir})")
    if name == "fashion-mnist":
        return load_fashion_mnist(Path(data_dir), in_chans, size)
    return load_cifar(Path(data_dir), name, in_chans, size)


def open_data(spec: str, in_chans: int = 3, size: int = 32, classes: list[str] | None = None, data_dir: Path | None = None, whole: bool = False) -> Dataset:
    """``digits`` | ``cifar10:DIR`` (cifar100, fashion-mnist; or the bare name with ``data_dir``) | an image folder ``DIR``
    (``whole``: to evaluate or calibrate on, not split; see ``load_image_folder``)."""
    spec = str(spec)
    name, sep, folder = spec.partition(":")
    if spec in DATASETS:
        return load_dataset(spec, data_dir, in_chans, size)  # a bare file-based name without data_dir says how to pass it
    if sep and name in DATASETS:
        return load_dataset(name, Path(folder) if folder else None, in_chans, size)
    if Path(spec).is_dir():
        return load_image_folder(Path(spec), in_chans, size, classes, whole=whole)
    raise DataError(f"data '{spec}' is neither digits, NAME:DIR (NAME one of {', '.join(DATASETS[1:])}) nor an existing image folder")


def evaluation_data(spec: str, in_chans: int, size: int, classes: list[str], own: dict | None = None, how_to_pass: str = "--data DATA") -> Dataset:
    """Data given to evaluate a model on: the folder it was trained on means that folder's test split; any other
    image folder is used whole (its test split if it has train/ + test/); built-in sets give their test split."""
    if own and own.get("kind") == "folder" and Path(str(spec)).resolve() == Path(own.get("path", "")).resolve():
        return from_source(own, in_chans, size, how_to_pass)
    return open_data(spec, in_chans, size, classes, whole=True)


def check_data(spec: str) -> None:
    """Fail on a bad data spec without reading the images (a bench checks before any run)."""
    from edgelight.data.builtin import _find
    from edgelight.data.folders import _layout, class_files

    spec = str(spec)
    name, sep, folder = spec.partition(":")
    if spec == "digits":
        return
    if sep and name in DATASETS:
        if not Path(folder).is_dir():
            raise DataError(f"{name}: '{folder}' is not a folder")
        _find(Path(folder), list(_files_of(name)), name)
    elif Path(spec).is_dir():  # the structure only: the images are decoded (and named when corrupt) when read
        layout = _layout(Path(spec))
        for part in layout.values() if layout else [Path(spec)]:
            class_files(part)
    else:
        open_data(spec)  # raises with the message that says what a spec may be


def from_source(source: dict, in_chans: int, size: int, how_to_pass: str = "--data DATA") -> Dataset:
    """Open the data a checkpoint was trained on; where it is not on this machine, say how to pass it."""
    kind, name, path = source.get("kind"), source.get("name"), source.get("path")
    if kind == "builtin":
        return open_data(str(name), in_chans, size)
    if not path or not Path(path).is_dir():
        what = f"the image folder '{path}'" if kind == "folder" else f"{name}" + (f" from '{path}'" if path else "")
        example = "DIR" if kind == "folder" else f"{name}:DIR"
        raise DataError(f"the checkpoint was trained on {what}, which is not on this machine; pass its data with {how_to_pass.replace('DATA', example)}")
    if kind == "folder":
        return load_image_folder(Path(path), in_chans, size, source.get("classes"), source.get("seed", 0), source.get("test_fraction", 0.2))
    return load_dataset(str(name), Path(path), in_chans, size)


__all__ = ["DATASETS", "IMAGE_SUFFIXES", "check_data", "evaluation_data", "RESIZE", "DataError", "Dataset", "from_source", "load_cifar", "load_dataset", "load_digits",
           "load_fashion_mnist", "load_image_folder", "normalize", "open_data", "read_image"]
