"""Image folders, in the layouts people already have, read by one reader with one resize policy.

- ``DIR/<class>/*.png|jpg|jpeg|bmp|webp``: a fixed seeded split, ``TEST_FRACTION`` of each class held out;
- ``DIR/train/<class>/...`` with ``DIR/test/<class>/...`` (or ``DIR/val/...``): the split as given.

Every image is decoded by Pillow, brought to [0, 1] (16-bit greyscale by its full range, transparency
composited on white, CMYK / palette converted), then its shorter side resized to SIZE (bilinear) and
the centre SIZE x SIZE kept: ``RESIZE``, recorded in the checkpoint. Class indices follow sorted names.
"""

from pathlib import Path

import numpy as np
import torch

from edgelight.data.base import DataError, Dataset, stats

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
RESIZE = "shorter-side-bilinear+center-crop"
TEST_FRACTION, SPLIT_SEED = 0.2, 0
SPLIT_NAMES = ("train", "val", "test")


def _to_8bit_or_float(img, in_chans: int):
    """A Pillow image of any mode as an 8-bit L / RGB image, or (16/32-bit greyscale) a float 'F' image in [0, 1]."""
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # by its full range, not clipped at 255
        a = np.asarray(img, dtype=np.float32)
        top = 65535.0 if img.mode.startswith("I;16") or a.max(initial=0) <= 65535 else float(a.max())
        a = a / (1.0 if img.mode == "F" and a.max(initial=0) <= 1 else top)
        return Image.fromarray(np.clip(a, 0, 1).astype(np.float32), mode="F")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return img.convert("L" if in_chans == 1 else "RGB")


def _resize_crop(img, size: int, in_chans: int) -> np.ndarray:
    """Shorter side to ``size`` (bilinear, on the 8-bit image: a large photo never becomes a float copy), centre crop."""
    from PIL import Image

    w, h = img.size
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    top, left = (nh - size) // 2, (nw - size) // 2
    img = img.resize((nw, nh), Image.BILINEAR, reducing_gap=3.0).crop((left, top, left + size, top + size))
    a = np.asarray(img, dtype=np.float32) / (1.0 if img.mode == "F" else 255.0)
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    return np.ascontiguousarray(np.clip(np.repeat(a, in_chans, axis=0) if a.shape[0] != in_chans else a, 0, 1), dtype=np.float32)


def read_image(path: Path, in_chans: int = 3, size: int = 32) -> np.ndarray:
    """One image file as float32 [in_chans, size, size] in [0, 1]; a file Pillow cannot decode is a DataError naming it."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if in_chans not in (1, 3):
        raise DataError(f"images can be presented with 1 or 3 channels, not {in_chans}")
    try:
        with Image.open(path) as img:
            img.draft("RGB" if in_chans == 3 else "L", (size * 2, size * 2))  # JPEG: decode at a reduced scale when it is far larger
            img.load()
            return _resize_crop(_to_8bit_or_float(ImageOps.exif_transpose(img), in_chans), size, in_chans)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as e:
        raise DataError(f"'{path}' is not a readable image ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'cannot decode'})") from None


def _visible(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.iterdir()) if not p.name.startswith(".")]


def class_files(folder: Path) -> dict[str, list[Path]]:
    """{class name: its image files} of one ``DIR/<class>/...`` folder, every rule checked with the culprit named."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"'{folder}' is not a folder of class folders")
    entries = _visible(folder)
    stray = next((p for p in entries if p.is_file()), None)
    if stray is not None:
        raise DataError(f"'{stray}': images go in class folders ({folder}/<class>/<image>), not in '{folder}' itself")
    classes = {}
    for d in (p for p in entries if p.is_dir()):
        files = [f for f in sorted(d.rglob("*")) if f.is_file() and not any(part.startswith(".") for part in f.relative_to(d).parts)]
        other = next((f for f in files if f.suffix.lower() not in IMAGE_SUFFIXES), None)
        if other is not None:
            raise DataError(f"'{other}' is not an image file ({', '.join(IMAGE_SUFFIXES)}); move it out of the class folder")
        if not files:
            raise DataError(f"class folder '{d}' holds no images")
        classes[d.name] = files
    if not classes:
        raise DataError(f"'{folder}' holds no class folders ({folder}/<class>/<image>)")
    return classes


def _layout(folder: Path) -> dict[str, Path] | None:
    """{'train': .., 'test': ..} for a DIR/train + DIR/val|test layout, None for DIR/<class>/..."""
    names = {p.name.lower(): p for p in _visible(folder) if p.is_dir()}
    splits = set(names) & set(SPLIT_NAMES)
    if not splits:
        return None
    if set(names) - splits:
        others = ", ".join(sorted(set(names) - splits)[:5])
        raise DataError(f"'{folder}' mixes split folders ({', '.join(sorted(splits))}) with other folders ({others}): use {folder}/train + {folder}/test, or {folder}/<class> only")
    if "train" not in names or not ({"val", "test"} & set(names)):
        raise DataError(f"'{folder}' has {', '.join(sorted(names))}/ but a split layout needs train/ and val/ or test/")
    return {"train": names["train"], "test": names.get("test", names.get("val"))}


def _read(files: list[tuple[Path, int]], in_chans: int, size: int, cache: dict) -> tuple[torch.Tensor, torch.Tensor]:
    for f, _ in files:
        if f not in cache:
            cache[f] = read_image(f, in_chans, size)
    x = np.stack([cache[f] for f, _ in files]) if files else np.zeros((0, in_chans, size, size), np.float32)
    return torch.from_numpy(x), torch.tensor([k for _, k in files], dtype=torch.int64)


def _held_out(files: list[Path], folder: Path, seed: int, fraction: float) -> set[Path]:
    """The test images of one class: each file by a hash of its name, so adding images never moves one that was
    trained on into the test split; at least one image on each side."""
    import hashlib

    def rank(f: Path) -> float:
        return int(hashlib.sha256(f"{seed}:{f.relative_to(folder).as_posix()}".encode()).hexdigest()[:12], 16) / 16**12

    by_rank = sorted(files, key=rank)
    held = {f for f in files if rank(f) < fraction} or {by_rank[0]}
    return held - {by_rank[-1]} if len(held) == len(files) else held


def _check_classes(found: list[str], classes: list[str] | None, where: Path, whole: bool = False) -> list[str]:
    if classes is None:
        if whole:
            return found
        if len(found) < 2:
            raise DataError(f"'{where}' has one class folder ({found[0]}); a classifier needs at least two")
        return found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise DataError(f"'{where}' has class folders the model does not know: {', '.join(unknown[:5])} (its classes: {', '.join(classes[:10])})")
    return list(classes)


def load_image_folder(folder: Path, in_chans: int = 3, size: int = 32, classes: list[str] | None = None, seed: int = SPLIT_SEED, test_fraction: float = TEST_FRACTION,
                      whole: bool = False) -> Dataset:
    """An image-folder data set; ``classes`` (a checkpoint's) fixes the label order, else sorted folder names.

    ``whole``: a folder given to evaluate or calibrate on rather than to train: a DIR/<class> folder is not
    split (every image is in both splits) and may hold one class."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise DataError(f"'{folder}' is not a folder")
    layout = _layout(folder)
    if layout is not None:
        train, test = class_files(layout["train"]), class_files(layout["test"])
        if set(train) != set(test):
            only_train, only_test = sorted(set(train) - set(test)), sorted(set(test) - set(train))
            raise DataError(
                f"'{layout['train']}' and '{layout['test']}' have different classes"
                + (f"; only in {layout['train'].name}/: {', '.join(only_train[:5])}" if only_train else "")
                + (f"; only in {layout['test'].name}/: {', '.join(only_test[:5])}" if only_test else "")
            )
        names = _check_classes(sorted(train), classes, folder, whole)
        train_files = [(f, names.index(c)) for c in train for f in train[c]]
        test_files = [(f, names.index(c)) for c in test for f in test[c]]
    else:
        per_class = class_files(folder)
        names = _check_classes(sorted(per_class), classes, folder, whole)
        train_files, test_files = [], []
        for c, files in per_class.items():
            if whole:
                test_files += [(f, names.index(c)) for f in files]
                continue
            if len(files) < 2:
                raise DataError(f"class folder '{folder / c}' has one image; the seeded split needs two or more per class (or give {folder}/train and {folder}/test)")
            held = _held_out(files, folder, seed, test_fraction)
            test_files += [(f, names.index(c)) for f in files if f in held]
            train_files += [(f, names.index(c)) for f in files if f not in held]
        train_files = train_files if not whole else list(test_files)
    # the train split in a fixed mixed order, so its first images (calibration) cover every class
    mix = torch.randperm(len(train_files), generator=torch.Generator().manual_seed(seed)).tolist()
    decoded: dict = {}  # a whole folder is both splits: each image decoded once
    train_x, train_y = _read([train_files[i] for i in mix], in_chans, size, decoded)
    test_x, test_y = _read(test_files, in_chans, size, decoded)
    mean, std = stats(train_x)
    source = {"kind": "folder", "name": folder.name, "path": str(folder), "classes": names, "layout": "split" if layout else "whole" if whole else "seeded",
              "seed": seed, "test_fraction": test_fraction, "resize": RESIZE}
    return Dataset(folder.name, train_x, train_y, test_x, test_y, names, mean, std, flip=True, source=source)


def folder_classes(folder: Path) -> list[str]:
    """The class names (sorted) of an image folder in either layout: the labels a model trained on it carries."""
    layout = _layout(Path(folder))
    return sorted(class_files(layout["train"] if layout else Path(folder)))


def read_flat_images(folder: Path, in_chans: int, size: int, limit: int | None = None) -> np.ndarray | None:
    """The images directly in a folder (unlabeled: calibration), or None when it holds none."""
    files = [p for p in _visible(Path(folder)) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES][:limit]
    return np.stack([read_image(f, in_chans, size) for f in files]) if files else None
